//! The disclosure ledger: every disclosure and every refusal, written before any data
//! leaves the gateway (fail closed), hash-chained and placed in an RFC 6962 Merkle tree
//! whose signed checkpoints prove later that no entry was changed or removed.

pub mod alert_rows;
mod appender;
pub mod audit;
pub mod bound;
pub mod checkpoint;
pub mod export;
mod fhir;
pub mod merkle;
pub mod note;
pub mod review;
pub mod rotation;
pub mod statistics;
pub mod subject_access;
pub mod verify;
pub mod witnessing;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use appender::{Appended, CommitObserver, Committed, Ledger};
pub use checkpoint::{Checkpoint, CheckpointSigner};

use crate::domain::ledger::merkle::Hash;

vocabulary! {
    /// What kind of answer or refusal an entry records.
    EntryKind {
        Query => "query",
        Explain => "explain",
        Notification => "notification",
        Export => "export",
        LogRead => "log_read",
        Refusal => "refusal",
        /// An IG officer's record about an earlier entry: a break-glass review or a
        /// release for subject access (its rule id says which).
        Review => "review",
        /// An identity decision (a link on demographics, a review task, a steward's
        /// confirmation, rejection or split) or a steward's view of identity details.
        Identity => "identity",
        /// The checkpoint signing key changed: checkpoints of sizes after this entry are
        /// signed by the new key.
        KeyChange => "key_change",
        /// A contact request (a practitioner asks the team owning an indicator to get in
        /// touch), a team's answer, an escalation of an overdue request, or a read of
        /// requests' status.
        Contact => "contact",
        /// A privacy alert raised by the rules of `policies/alerts.toml`: the gateway's
        /// own record that a pattern in the log needs an IG officer's reading.
        Alert => "alert",
    }
}

vocabulary! {
    /// The outcome an entry records.
    Decision {
        /// Data was released (at detail or indicator level).
        Released => "released",
        /// The request was refused; nothing was released.
        Refused => "refused",
        /// A dry run: what would be released, with nothing released.
        DryRun => "dry_run",
        /// A decision was recorded (an identity link, review or split).
        Recorded => "recorded",
    }
}

/// One fact released or withheld, and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosed {
    pub person_id: String,
    pub record_id: String,
    pub category: String,
    /// `detail`, `indicator` or `nothing`.
    pub level: String,
    pub rule_id: String,
}

/// An identity link an entry rests on: the answer joined two agencies' records of one
/// person through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUsed {
    pub link_id: String,
    pub person_id: String,
    pub other_person_id: String,
    /// `automatic` or `steward` (for an identity decision entry: the decision's kind).
    pub method: String,
    /// The match probability, six decimals; empty where none was scored.
    pub probability: String,
    /// SHA-256 of the matching rules that scored it.
    pub rules_version: String,
}

/// A change of the checkpoint signing key, recorded in the log: the entry's own checkpoint
/// is the old key's last, and every checkpoint of a larger size is the new key's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    /// The key that signed up to this entry: its C2SP vkey.
    pub old_key: String,
    /// The key that signs after it: its C2SP vkey.
    pub new_key: String,
}

/// A step of a contact request, as its entry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub request_id: String,
    /// `requested`, `answered` or `escalated`.
    pub step: String,
    pub urgency: String,
    pub due_at: String,
    /// For an answer: `contacted`, `declined` or `passed_on`.
    pub outcome: String,
    /// The answer in which the fact was shown as an indicator.
    pub answer_entry_id: String,
    pub record_id: String,
    /// The systems this step told.
    pub to_systems: Vec<String>,
    /// The notices it raised.
    pub notice_ids: Vec<String>,
    /// SHA-256 of the contact rules (`policies/contact.toml`) in force.
    pub rules_version: String,
    /// The row the step is stored as (the request, or the answer or escalation), whole:
    /// the contact tables are derived from the hashed entry, checked against it by verify
    /// and restored from it when the gateway stopped between logging and storing. Left
    /// out when absent, so entries written before it hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<serde_json::Value>,
}

/// A disclosure-log entry. Its canonical encoding (compact JSON, fields in this order) is
/// what is hashed; empty strings stand for "not applicable".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub entry_id: String,
    pub recorded_at: String,
    pub kind: EntryKind,
    pub decision: Decision,
    /// The RPC that produced the entry, e.g. `safegate.v1.QueryService/Query`.
    pub rpc: String,
    pub agency: String,
    pub system_id: String,
    pub certificate_sha256: String,
    pub practitioner_id: String,
    pub role: String,
    pub purpose: String,
    pub lawful_basis: String,
    pub justification: String,
    pub break_glass: bool,
    pub subject_person_id: String,
    pub linked_person_ids: Vec<String>,
    pub released: Vec<Disclosed>,
    pub withheld: Vec<Disclosed>,
    pub rule_ids: Vec<String>,
    pub policy_version: String,
    /// For a refusal: the rule and the reason, in words; never personal data.
    pub reason: String,
    /// For a notification or export: the system that receives it.
    pub recipient_system: String,
    pub trace_id: String,
    /// The identity links the answer rested on. Left out of the encoding when empty, so
    /// entries written before identity resolution hash as they did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_links: Vec<LinkUsed>,
    /// For a question asked by demographics: every person the search considered, whether
    /// or not it was answered (as a trace records every person it matched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_candidates: Vec<String>,
    /// For a refusal about a person the gateway does not know: the reference as asked
    /// (e.g. `nhs:...`), so the decision not to share is recorded against it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject_asked: String,
    /// For a key change: the old and the new checkpoint key. Left out when empty, so
    /// other entries hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_change: Option<KeyChange>,
    /// For a contact entry: the request's step. Left out when empty, so other entries
    /// hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactRecord>,
}

impl Entry {
    /// A blank entry of `kind` and `decision`, stamped with a new id and the current time.
    pub fn new(kind: EntryKind, decision: Decision) -> Self {
        Entry {
            // Time-ordered (UUIDv7), so each new id lands at the end of the unique index
            // rather than on a random page of it.
            entry_id: uuid::Uuid::now_v7().to_string(),
            recorded_at: now(),
            kind,
            decision,
            rpc: String::new(),
            agency: String::new(),
            system_id: String::new(),
            certificate_sha256: String::new(),
            practitioner_id: String::new(),
            role: String::new(),
            purpose: String::new(),
            lawful_basis: String::new(),
            justification: String::new(),
            break_glass: false,
            subject_person_id: String::new(),
            linked_person_ids: Vec::new(),
            released: Vec::new(),
            withheld: Vec::new(),
            rule_ids: Vec::new(),
            policy_version: String::new(),
            reason: String::new(),
            recipient_system: String::new(),
            trace_id: String::new(),
            identity_links: Vec::new(),
            search_candidates: Vec::new(),
            subject_asked: String::new(),
            key_change: None,
            contact: None,
        }
    }

    /// The bytes that are hashed.
    pub fn canonical(&self) -> Vec<u8> {
        // Sized up front for the listed facts, so the buffer is not regrown and copied as
        // it fills.
        let facts = self.released.len() + self.withheld.len();
        let mut bytes = Vec::with_capacity(1024 + 192 * facts);
        // Serialising a struct of strings, bools and vectors cannot fail.
        match serde_json::to_writer(&mut bytes, self) {
            Ok(()) => bytes,
            Err(_) => Vec::new(),
        }
    }

    /// Every person the entry is about: the subject and the linked persons.
    pub fn persons(&self) -> Vec<&str> {
        let mut persons: Vec<&str> = std::iter::once(self.subject_person_id.as_str())
            .chain(self.linked_person_ids.iter().map(String::as_str))
            .chain(self.released.iter().map(|d| d.person_id.as_str()))
            .chain(
                self.identity_links
                    .iter()
                    .flat_map(|l| [l.person_id.as_str(), l.other_person_id.as_str()]),
            )
            .chain(self.search_candidates.iter().map(String::as_str))
            .filter(|p| !p.is_empty())
            .collect();
        persons.sort_unstable();
        persons.dedup();
        persons
    }
}

/// An entry with its canonical encoding and leaf hash, which depend on the entry alone
/// and not on where it lands in the log: computed by each caller's own task before the
/// entry joins the group-commit queue, so the one committer only chains, builds the tree
/// and writes.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub entry: Entry,
    /// [`Entry::canonical`], the bytes that are hashed and stored.
    pub text: String,
    /// RFC 6962 leaf hash of `text`.
    pub leaf: Hash,
}

impl Sealed {
    pub fn new(entry: Entry) -> Result<Self, crate::error::Error> {
        let text = String::from_utf8(entry.canonical()).map_err(crate::error::Error::internal)?;
        let leaf = merkle::leaf_hash(text.as_bytes());
        Ok(Sealed { entry, text, leaf })
    }
}

/// `SHA-256(previous chain hash || leaf hash)`: each entry's link in the hash chain.
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(leaf);
    h.finalize().into()
}

/// RFC 3339 UTC with microseconds.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `at` as the ledger writes times: RFC 3339 UTC with microseconds, so that times
/// compare as text.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// A stored entry with its position and hashes.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: u64,
    pub entry: Entry,
    /// The canonical bytes as stored (what was hashed).
    pub text: String,
    pub leaf_hash: String,
    pub chain_hash: String,
    /// For a break-glass entry: the latest IG review, if any (a later review supersedes
    /// an earlier one).
    pub latest_review: Option<review::BreakGlassReview>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub person_id: Option<String>,
    /// With `person_id`: entries about any of these persons too (the other persons
    /// resolved to the same person).
    pub also_person_ids: Vec<String>,
    pub agency: Option<String>,
    pub system_id: Option<String>,
    pub practitioner_id: Option<String>,
    pub purpose: Option<String>,
    pub kind: Option<String>,
    pub decision: Option<String>,
    pub break_glass: Option<bool>,
    /// Only break-glass entries no IG officer has reviewed yet.
    pub break_glass_unreviewed: bool,
    /// RFC 3339 bounds on `recorded_at`, inclusive from, exclusive to.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only entries with `seq` greater than this (cursor paging).
    pub after_seq: u64,
    /// Only entries with `seq` up to this (a snapshot, e.g. a signed checkpoint's size).
    pub through_seq: Option<u64>,
    pub limit: u32,
}
