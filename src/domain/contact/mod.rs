//! Contact requests: a practitioner who was shown a fact as an indicator asks the team
//! that owns it to get in touch, and the conversation's outcome is recorded. The request
//! refers only to what the requester already saw (the answer's disclosure-log entry and
//! the fact's record id) and reveals nothing new to either side beyond who is asking,
//! why, and how to reach them. Deadlines by urgency and escalation come from the reviewed
//! file `policies/contact.toml` ([`ContactRules`]). No tonic, no SQL: the store
//! implements [`ContactStore`].

pub mod bound;
pub mod logged;
mod rules;
mod service;

use serde::{Deserialize, Serialize};

pub use rules::ContactRules;
pub use service::{Answering, Contacts, Escalated, Requesting};

use crate::domain::Stored;
use crate::domain::ledger::Entry;
use crate::domain::ledger::bound::BoundRow;
use crate::domain::notify::{Notice, Surroundings};
use crate::domain::records::Category;
use crate::domain::records::FactAbout;
use crate::domain::{Agency, Purpose, Role};

vocabulary! {
    /// How soon the owning team should get in touch, least urgent first.
    Urgency {
        Routine => "routine",
        SameDay => "same_day",
        ImmediateRisk => "immediate_risk",
    }
}

vocabulary! {
    /// The owning team's answer.
    Outcome {
        /// The team got in touch with the requester.
        Contacted => "contacted",
        /// The team will not get in touch; the answer says why.
        Declined => "declined",
        /// The team passed the request to another team, which now answers it.
        PassedOn => "passed_on",
    }
}

vocabulary! {
    /// Where a request stands, as the requester sees it.
    ContactStatus {
        /// Waiting for the owning team, within its deadline.
        Open => "open",
        /// The team answered: contacted or declined.
        Answered => "answered",
        /// Unanswered past the deadline its urgency sets; escalated where the rules say.
        Overdue => "overdue",
    }
}

vocabulary! {
    /// What happened to a request after it was made.
    StepKind {
        /// A team answered (contacted, declined or passed on).
        Answered => "answered",
        /// The deadline passed unanswered: the manager (or the team) and the requester
        /// were told.
        Escalated => "escalated",
    }
}

/// Rule ids recorded in the disclosure log and named by refusals.
pub mod rule {
    /// A request was made.
    pub const REQUEST: &str = "contact.request";
    /// A team answered.
    pub const ANSWER: &str = "contact.answer";
    /// An unanswered request passed its deadline and was escalated.
    pub const ESCALATION: &str = "contact.escalation";
    /// A practitioner read the status of requests.
    pub const STATUS: &str = "contact.status";
    /// Refusal: the entry named is not an answer this practitioner received.
    pub const NOT_YOUR_ANSWER: &str = "contact.not_your_answer";
    /// Refusal: the record was not shown to the practitioner as an indicator in that answer.
    pub const NOT_SHOWN_AS_INDICATOR: &str = "contact.not_shown_as_indicator";
    /// Refusal: the fact is no longer current (ended since the answer).
    pub const FACT_NOT_CURRENT: &str = "contact.fact_not_current";
    /// Refusal: the request is not addressed to the answering team.
    pub const NOT_ADDRESSED_TO_YOU: &str = "contact.not_addressed_to_you";
    /// Refusal: the request was answered already.
    pub const ALREADY_ANSWERED: &str = "contact.already_answered";
}

/// A request to get in touch, as made. Never changed: what follows is a [`ContactStep`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRequest {
    pub request_id: String,
    /// The requesting system's own id for the request (empty when none): a retry with
    /// the same id returns the first request.
    pub client_request_id: String,
    pub requester_system: String,
    pub requester_agency: Agency,
    pub requester_practitioner: String,
    pub requester_role: Role,
    /// How to reach the requester, in their words.
    pub requester_contact_route: String,
    pub purpose: Purpose,
    pub lawful_basis: String,
    pub urgency: Urgency,
    /// Why, in the requester's words.
    pub reason: String,
    /// The answer (disclosure-log entry) in which the fact was shown as an indicator.
    pub answer_entry_id: String,
    pub record_id: String,
    pub category: Category,
    /// The person the fact was shown under.
    pub subject_person_id: String,
    /// The team asked first: the system owning the fact, and the role its notice was
    /// shaped for.
    pub owner_system: String,
    pub owner_agency: Agency,
    pub owner_role: Role,
    /// The team and contact route as the indicator showed them.
    pub team: String,
    pub team_contact_route: String,
    pub created_at: String,
    pub due_at: String,
    /// SHA-256 of the contact rules that set the deadline.
    pub rules_version: String,
    /// The sharing policy that shaped the notice.
    pub policy_version: String,
    /// The disclosure-log entry that recorded the request.
    pub log_entry_id: String,
}

/// Something that happened to a request: an answer or an escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactStep {
    pub step_id: String,
    pub request_id: String,
    pub kind: StepKind,
    /// Set on answers.
    pub outcome: Option<Outcome>,
    /// The answer's words (why declined, what was agreed); empty for escalations.
    pub note: String,
    /// Who answered (for an escalation, the gateway).
    pub by_system: String,
    pub by_practitioner: String,
    /// The systems this step told: the team passed to, the managers escalated to.
    pub to_systems: Vec<String>,
    pub recorded_at: String,
    /// The disclosure-log entry that recorded the step.
    pub log_entry_id: String,
}

/// A request and everything that followed it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactThread {
    pub request: ContactRequest,
    pub steps: Vec<ContactStep>,
}

impl ContactThread {
    /// The answer that closed the request (contacted or declined), if any.
    pub fn answer(&self) -> Option<&ContactStep> {
        self.steps.iter().find(|s| {
            s.kind == StepKind::Answered
                && matches!(s.outcome, Some(Outcome::Contacted | Outcome::Declined))
        })
    }

    /// The system that holds the request now: the owner, or the last team it was
    /// passed to.
    pub fn current_system(&self) -> &str {
        self.steps
            .iter()
            .rev()
            .find(|s| s.outcome == Some(Outcome::PassedOn))
            .and_then(|s| s.to_systems.first())
            .map_or(&self.request.owner_system, String::as_str)
    }

    /// Whether it was escalated for being overdue.
    pub fn escalated(&self) -> bool {
        self.steps.iter().any(|s| s.kind == StepKind::Escalated)
    }

    /// Its status at `now` (RFC 3339 UTC, as the ledger writes times): answered once a
    /// team has answered; otherwise overdue once escalated or past its deadline.
    pub fn status(&self, now: &str) -> ContactStatus {
        if self.answer().is_some() {
            ContactStatus::Answered
        } else if self.escalated() || self.request.due_at.as_str() <= now {
            ContactStatus::Overdue
        } else {
            ContactStatus::Open
        }
    }
}

/// What the contact room needs from storage.
pub trait ContactStore: std::fmt::Debug + Send + Sync {
    /// A disclosure-log entry by id.
    fn answer_entry<'a>(&'a self, entry_id: &'a str) -> Stored<'a, Option<Entry>>;

    /// The current fact `record_id` naming `person_id`, and the current facts around its
    /// persons (for its indicator's team and contact route).
    fn current_fact<'a>(
        &'a self,
        person_id: &'a str,
        record_id: &'a str,
    ) -> Stored<'a, Option<(FactAbout, Surroundings)>>;

    /// The `contact` entries after `after_seq` that record a step with no row yet (the
    /// gateway stopped between logging and storing, or the row is being stored now), and
    /// the log's last position they were looked for up to.
    fn unstored_contact_entries(&self, after_seq: u64) -> Stored<'_, (Vec<Entry>, u64)>;

    /// Takes the deployment-wide escalation lease for `holder` until `until` (RFC 3339),
    /// if it is free or expired at `now`; false when another process holds it.
    fn claim_escalations<'a>(
        &'a self,
        holder: &'a str,
        now: &'a str,
        until: &'a str,
    ) -> Stored<'a, bool>;

    /// Gives the escalation lease back, if `holder` holds it.
    fn release_escalations<'a>(&'a self, holder: &'a str) -> Stored<'a, ()>;

    /// Stores a request and the notices it raises, together. A request already stored
    /// (restored from its entry meanwhile) is left as it is; the notices are still stored.
    fn add_contact_request<'a>(
        &'a self,
        request: &'a ContactRequest,
        notices: &'a [Notice],
    ) -> Stored<'a, ()>;

    /// Stores a step and the notices it raises, together; a step already stored is left
    /// as it is.
    fn add_contact_step<'a>(
        &'a self,
        step: &'a ContactStep,
        notices: &'a [Notice],
    ) -> Stored<'a, ()>;

    /// One request with its steps.
    fn contact_thread<'a>(&'a self, request_id: &'a str) -> Stored<'a, Option<ContactThread>>;

    /// The request a system made under its own id, if any.
    fn contact_by_client_id<'a>(
        &'a self,
        system: &'a str,
        client_request_id: &'a str,
    ) -> Stored<'a, Option<ContactThread>>;

    /// The requests one practitioner of one system made, newest first.
    fn contacts_requested_by<'a>(
        &'a self,
        system: &'a str,
        practitioner: &'a str,
    ) -> Stored<'a, Vec<ContactThread>>;

    /// The requests made to a system, or passed to it, newest first.
    fn contacts_addressed_to<'a>(&'a self, system: &'a str) -> Stored<'a, Vec<ContactThread>>;

    /// Requests neither answered nor escalated whose deadline is at or before `at`.
    fn contacts_due<'a>(&'a self, at: &'a str) -> Stored<'a, Vec<ContactThread>>;

    /// Every stored row of the contact tables, each with the entry it names (see
    /// [`bound::ContactTables`]).
    fn contact_bound_rows(&self) -> Stored<'_, Vec<BoundRow>>;
}
