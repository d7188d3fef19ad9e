//! What information-governance officers record about earlier entries: a review of each
//! break-glass use, and the release of a law-enforcement entry for subject access. Both
//! are append-only records written in the same transaction as the disclosure-log entry
//! that records the action; that entry's hashed encoding carries the same outcome and
//! note, so the hash chain proves them as it proves every disclosure.

use crate::domain::ledger::Entry;

vocabulary! {
    /// An IG officer's finding on one use of break-glass.
    ReviewOutcome {
        Appropriate => "appropriate",
        Inappropriate => "inappropriate",
    }
}

/// Rule id of a break-glass review entry.
pub const REVIEW_RULE: &str = "audit.break_glass_review";
/// Rule id of a subject-access release entry.
pub const RELEASE_RULE: &str = "audit.subject_access_release";

/// A finding on one break-glass entry. A later review of the same entry supersedes an
/// earlier one; neither is ever changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassReview {
    pub review_id: String,
    /// The break-glass entry reviewed.
    pub entry_id: String,
    pub outcome: ReviewOutcome,
    pub note: String,
    pub reviewer_system: String,
    pub reviewer_id: String,
    pub reviewed_at: String,
    /// The disclosure-log entry that records the review.
    pub log_entry_id: String,
}

/// An IG officer's decision that a law-enforcement entry may appear in subject-access
/// reports (DPA 2018 s45(4): such entries are held back until then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAccessRelease {
    pub release_id: String,
    /// The entry released.
    pub entry_id: String,
    pub note: String,
    pub released_by_system: String,
    pub released_by_id: String,
    pub released_at: String,
    /// The disclosure-log entry that records the release.
    pub log_entry_id: String,
}

/// A record committed together with the log entry that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    Review(BreakGlassReview),
    Release(SubjectAccessRelease),
    /// A privacy alert, committed only if no alert with its key exists yet, with its
    /// notices to the IG office.
    Alert {
        alert: crate::domain::ledger::alert_rows::Alert,
        notices: Vec<NoticeRow>,
    },
    /// A step of an alert case, committed only if it is the case's next step.
    AlertEvent(crate::domain::ledger::alert_rows::AlertEvent),
}

/// A notice committed with the record that raised it, as the outbox keeps it. The notify
/// room words notices (`Notice::row`); the ledger carries them into the transaction
/// without importing that room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    pub notice_id: String,
    pub recipient_system: String,
    /// The notice's rule, as written in the outbox.
    pub rule: &'static str,
    /// The whole notice, as its recipient reads it (JSON).
    pub payload: String,
    pub created_at: String,
}

impl BreakGlassReview {
    /// The review recorded by `recording`, the IG officer's log entry.
    pub fn recorded_by(
        recording: &Entry,
        entry_id: &str,
        outcome: ReviewOutcome,
        note: &str,
    ) -> Self {
        BreakGlassReview {
            review_id: uuid::Uuid::new_v4().to_string(),
            entry_id: entry_id.to_owned(),
            outcome,
            note: note.to_owned(),
            reviewer_system: recording.system_id.clone(),
            reviewer_id: recording.practitioner_id.clone(),
            reviewed_at: recording.recorded_at.clone(),
            log_entry_id: recording.entry_id.clone(),
        }
    }
}

impl SubjectAccessRelease {
    /// The release recorded by `recording`, the IG officer's log entry.
    pub fn recorded_by(recording: &Entry, entry_id: &str, note: &str) -> Self {
        SubjectAccessRelease {
            release_id: uuid::Uuid::new_v4().to_string(),
            entry_id: entry_id.to_owned(),
            note: note.to_owned(),
            released_by_system: recording.system_id.clone(),
            released_by_id: recording.practitioner_id.clone(),
            released_at: recording.recorded_at.clone(),
            log_entry_id: recording.entry_id.clone(),
        }
    }
}
