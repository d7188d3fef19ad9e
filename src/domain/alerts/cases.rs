//! Each alert is a case: open when raised, assigned to an IG officer (again, to another),
//! closed with an outcome and a note; nothing in its history is ever changed. Only an IG
//! officer acting for the purpose of audit works cases, and every call that shows a case
//! writes its own disclosure-log entry before it answers, as reading the log does.
//!
//! This is the API the IG console calls (no gRPC needed): build the officer's `read`
//! entry (kind `log_read`, with who and why), then [`Cases::list`], [`Cases::get`],
//! [`Cases::assign`] or [`Cases::close`].

use std::sync::Arc;

use crate::domain::alerts::storage::AlertStorage;
use crate::domain::ledger::StoredEntry;
use crate::domain::ledger::alert_rows::{
    ASSIGN_RULE, Alert, AlertEvent, CLOSE_RULE, CaseAction, CaseOutcome, event_reason,
};
use crate::domain::ledger::review::Annotation;
use crate::domain::ledger::{Decision, Disclosed, Entry, EntryKind, Ledger};
use crate::error::Error;

/// Longest note, in characters.
const NOTE_MAX: usize = 4000;
/// Longest practitioner id an assignee may have.
const ASSIGNEE_MAX: usize = 128;
/// Largest page of alerts.
pub const PAGE_MAX: u32 = 500;

/// Rule id of a read of alert cases.
pub const READ_RULE: &str = "audit.alert_read";

vocabulary! {
    /// Where a case stands.
    CaseState {
        Open => "open",
        Assigned => "assigned",
        Closed => "closed",
    }
}

/// Which alerts to list; newest first.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub rule_id: Option<String>,
    pub state: Option<CaseState>,
    /// The officer the case is (or was last) assigned to.
    pub assignee: Option<String>,
    /// The agency system the alert is about.
    pub system_id: Option<String>,
    /// The practitioner the alert is about.
    pub practitioner_id: Option<String>,
    /// RFC 3339 bounds on when it was raised, inclusive from, exclusive to.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only alerts raised before the one at this position (cursor paging); 0 from the
    /// newest.
    pub before_seq: u64,
    pub limit: u32,
}

/// An alert with its history and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCase {
    /// The position of the entry that raised it (the paging cursor).
    pub seq: u64,
    pub alert: Alert,
    pub events: Vec<AlertEvent>,
    pub state: CaseState,
    /// The officer it is assigned to; empty while open.
    pub assignee: String,
    pub outcome: Option<CaseOutcome>,
    pub note: String,
}

impl AlertCase {
    fn new(seq: u64, alert: Alert, events: Vec<AlertEvent>) -> Self {
        let mut case = AlertCase {
            seq,
            alert,
            events: Vec::new(),
            state: CaseState::Open,
            assignee: String::new(),
            outcome: None,
            note: String::new(),
        };
        for event in events {
            case.assignee = event.assignee.clone();
            case.note = event.note.clone();
            match event.action {
                CaseAction::Assigned => case.state = CaseState::Assigned,
                CaseAction::Closed => {
                    case.state = CaseState::Closed;
                    case.outcome = event.outcome;
                }
            }
            case.events.push(event);
        }
        case
    }
}

/// How many alerts one rule has raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    pub rule_id: String,
    /// Open or assigned.
    pub not_closed: u64,
    pub closed: u64,
}

/// An alert case with the log entries it rests on.
#[derive(Debug, Clone)]
pub struct AlertDetail {
    pub case: AlertCase,
    pub entries: Vec<StoredEntry>,
}

/// The IG office's work on alert cases.
#[derive(Debug, Clone)]
pub struct Cases {
    ledger: Ledger,
    storage: Arc<dyn AlertStorage>,
}

fn checked_note(note: &str) -> Result<&str, Error> {
    let note = note.trim();
    if note.is_empty() {
        return Err(Error::invalid(
            "note",
            "must say why: the note is what a later reader relies on",
        ));
    }
    if note.chars().count() > NOTE_MAX {
        return Err(Error::invalid(
            "note",
            format!("must be at most {NOTE_MAX} characters"),
        ));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid("note", "must not hold control characters"));
    }
    Ok(note)
}

fn checked_alert_id(alert_id: &str) -> Result<&str, Error> {
    let alert_id = alert_id.trim();
    if uuid::Uuid::parse_str(alert_id).is_err() {
        return Err(Error::invalid("alert_id", "must be an alert id (a UUID)"));
    }
    Ok(alert_id)
}

/// An alert as a record the IG officer saw.
fn alert_record(case: &AlertCase, rule: &str) -> Disclosed {
    Disclosed {
        person_id: String::new(),
        record_id: case.alert.alert_id.clone(),
        category: "privacy_alert".into(),
        level: "detail".into(),
        rule_id: rule.into(),
    }
}

/// Refuses anyone but an IG officer acting for the purpose of audit (or an operator at
/// the console, whose CLI entry says so), whatever the caller checked before.
fn authorised(read: &Entry) -> Result<(), Error> {
    let officer = read.role == crate::domain::Role::IgOfficer.as_str()
        && read.purpose == crate::domain::Purpose::Audit.as_str();
    let operator = read.system_id == "cli" && read.role == "operator";
    if officer || operator {
        return Ok(());
    }
    Err(Error::PermissionDenied {
        rule: "audit.ig_officer_only",
        reason: "privacy alerts are worked by the ig_officer role, for the purpose `audit`".into(),
    })
}

impl Cases {
    /// Cases read from `storage` (the same database as `ledger`'s), each action written
    /// to `ledger`.
    pub fn new(ledger: Ledger, storage: Arc<dyn AlertStorage>) -> Self {
        Cases { ledger, storage }
    }

    /// The ledger every case action is written to.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    async fn cases(&self, found: Vec<(u64, Alert)>) -> Result<Vec<AlertCase>, Error> {
        let ids: Vec<String> = found.iter().map(|(_, a)| a.alert_id.clone()).collect();
        let mut events = self.storage.alert_events(&ids).await?;
        Ok(found
            .into_iter()
            .map(|(seq, alert)| {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    events.drain(..).partition(|e| e.alert_id == alert.alert_id);
                events = rest;
                AlertCase::new(seq, alert, mine)
            })
            .collect())
    }

    async fn case(&self, alert_id: &str) -> Result<AlertCase, Error> {
        let alert_id = checked_alert_id(alert_id)?;
        let found = self
            .storage
            .alert(alert_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "alert_id".into(),
                reason: "no privacy alert has this id".into(),
            })?;
        self.cases(vec![found])
            .await?
            .pop()
            .ok_or_else(|| Error::internal("alert case vanished"))
    }

    /// Alerts matching `filter`, newest first; `read` (the officer's log-read entry) is
    /// written, naming each alert shown, before they are returned.
    pub async fn list(
        &self,
        mut read: Entry,
        filter: &AlertFilter,
    ) -> Result<Vec<AlertCase>, Error> {
        authorised(&read)?;
        if filter.limit == 0 || filter.limit > PAGE_MAX {
            return Err(Error::invalid(
                "page_size",
                format!("must be between 1 and {PAGE_MAX}"),
            ));
        }
        let found = self.storage.alerts(filter).await?;
        let cases = self.cases(found).await?;
        read.kind = EntryKind::LogRead;
        read.decision = Decision::Released;
        read.rule_ids = vec![READ_RULE.into()];
        read.released = cases.iter().map(|c| alert_record(c, READ_RULE)).collect();
        self.ledger.append(read).await?;
        Ok(cases)
    }

    /// How many alerts each rule has raised, not yet closed and closed (a rule that
    /// raised none is absent); `read` is written, with the counts in its reason (no
    /// alert is named), before they are returned.
    pub async fn counts(&self, mut read: Entry) -> Result<Vec<RuleCount>, Error> {
        authorised(&read)?;
        let counts: Vec<RuleCount> = self
            .storage
            .alert_counts()
            .await?
            .into_iter()
            .map(|(rule_id, not_closed, closed)| RuleCount {
                rule_id,
                not_closed,
                closed,
            })
            .collect();
        read.kind = EntryKind::LogRead;
        read.decision = Decision::Released;
        read.rule_ids = vec![READ_RULE.into()];
        read.reason = format!(
            "privacy alert counts by rule: {}",
            counts
                .iter()
                .map(|c| format!(
                    "{} {} not closed, {} closed",
                    c.rule_id, c.not_closed, c.closed
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        self.ledger.append(read).await?;
        Ok(counts)
    }

    /// One case with the log entries it rests on; `read` is written, naming the alert
    /// and each entry shown, before it is returned.
    pub async fn get(&self, mut read: Entry, alert_id: &str) -> Result<AlertDetail, Error> {
        authorised(&read)?;
        let case = self.case(alert_id).await?;
        let mut entries = Vec::with_capacity(case.alert.entry_ids.len());
        for entry_id in &case.alert.entry_ids {
            if let Some(stored) = self.storage.entry(entry_id).await? {
                entries.push(stored);
            }
        }
        read.kind = EntryKind::LogRead;
        read.decision = Decision::Released;
        read.rule_ids = vec![READ_RULE.into()];
        read.released = std::iter::once(alert_record(&case, READ_RULE))
            .chain(entries.iter().map(|stored| Disclosed {
                person_id: stored.entry.subject_person_id.clone(),
                record_id: stored.entry.entry_id.clone(),
                category: "disclosure_log".into(),
                level: "detail".into(),
                rule_id: READ_RULE.into(),
            }))
            .collect();
        self.ledger.append(read).await?;
        Ok(AlertDetail { case, entries })
    }

    /// Assigns the case to `assignee` (an IG officer's practitioner id), from open or
    /// assigned; a closed case stays closed. `read` describes the officer acting.
    pub async fn assign(
        &self,
        read: Entry,
        alert_id: &str,
        assignee: &str,
        note: &str,
    ) -> Result<AlertCase, Error> {
        let assignee = assignee.trim();
        if assignee.is_empty()
            || assignee.chars().count() > ASSIGNEE_MAX
            || assignee
                .chars()
                .any(|c| c.is_control() || c == ';' || c == ')')
        {
            return Err(Error::invalid(
                "assignee",
                format!(
                    "must be the IG officer's practitioner id (1-{ASSIGNEE_MAX} characters, no \
                     control characters, `;` or `)`)"
                ),
            ));
        }
        let note = if note.trim().is_empty() {
            "assigned"
        } else {
            checked_note(note)?
        };
        let case = self.case(alert_id).await?;
        if case.state == CaseState::Closed {
            return Err(Error::FailedPrecondition {
                rule: "alerts.case_closed",
                reason: "the case is closed; a closed case is never reopened".into(),
            });
        }
        self.step(read, case, CaseAction::Assigned, assignee, None, note)
            .await
    }

    /// Closes an assigned case with `outcome` and a note saying why.
    pub async fn close(
        &self,
        read: Entry,
        alert_id: &str,
        outcome: CaseOutcome,
        note: &str,
    ) -> Result<AlertCase, Error> {
        let note = checked_note(note)?;
        let case = self.case(alert_id).await?;
        match case.state {
            CaseState::Assigned => {}
            CaseState::Open => {
                return Err(Error::FailedPrecondition {
                    rule: "alerts.case_not_assigned",
                    reason: "assign the case to an officer before closing it".into(),
                });
            }
            CaseState::Closed => {
                return Err(Error::FailedPrecondition {
                    rule: "alerts.case_closed",
                    reason: "the case is already closed".into(),
                });
            }
        }
        let assignee = case.assignee.clone();
        self.step(
            read,
            case,
            CaseAction::Closed,
            &assignee,
            Some(outcome),
            note,
        )
        .await
    }

    /// Writes the next step of `case` with the log entry that records it; if another
    /// officer acted first, nothing is written and the caller is told to read it again.
    async fn step(
        &self,
        mut read: Entry,
        mut case: AlertCase,
        action: CaseAction,
        assignee: &str,
        outcome: Option<CaseOutcome>,
        note: &str,
    ) -> Result<AlertCase, Error> {
        authorised(&read)?;
        let rule = match action {
            CaseAction::Assigned => ASSIGN_RULE,
            CaseAction::Closed => CLOSE_RULE,
        };
        read.kind = EntryKind::Review;
        read.decision = Decision::Recorded;
        read.rule_ids = vec![rule.into()];
        read.released = vec![alert_record(&case, rule)];
        read.justification = note.to_owned();
        let event = AlertEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            alert_id: case.alert.alert_id.clone(),
            step: u32::try_from(case.events.len() + 1).map_err(Error::internal)?,
            action,
            assignee: assignee.to_owned(),
            outcome,
            note: note.to_owned(),
            by_system: read.system_id.clone(),
            by_id: read.practitioner_id.clone(),
            at: read.recorded_at.clone(),
            log_entry_id: read.entry_id.clone(),
        };
        read.reason = event_reason(&event);
        self.ledger
            .append_annotated(read, Annotation::AlertEvent(event.clone()))
            .await?;
        let (seq, alert) = (case.seq, case.alert.clone());
        case.events.push(event);
        Ok(AlertCase::new(seq, alert, std::mem::take(&mut case.events)))
    }
}
