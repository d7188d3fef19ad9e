//! The identity steward's work (in the demo, the MASH): review tasks with their reasons
//! in words, confirming or rejecting a potential match, and splitting a wrong link so
//! each agency's facts return to the right person. Every decision is append-only and
//! reaches the disclosure log; every view of identity details is itself logged first.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::identity::MatchRules;
use crate::domain::identity::storage::IdentityStorage;
use crate::domain::ledger::EntryFilter;
use crate::domain::ledger::{Decision, Disclosed, Entry, EntryKind, Ledger, LinkUsed};
use crate::domain::records::facts::PersonDetails;
use crate::domain::records::{Actor, PersonRef};
use crate::domain::{Agency, AgencySystem, Practitioner, Role};
use crate::error::Error;

/// How a link between two persons was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// By the matching rules, at or above the auto-link threshold.
    Automatic,
    /// By a steward confirming a review task.
    Steward,
}

impl LinkMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMethod::Automatic => "automatic",
            LinkMethod::Steward => "steward",
        }
    }
}

/// A link on demographics between two persons, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityLink {
    pub link_id: String,
    /// The newer record's person.
    pub person_id: String,
    /// The person it was linked to.
    pub other_person_id: String,
    pub method: LinkMethod,
    pub probability: Option<f64>,
    pub rules_version: String,
    pub decided_by_system: String,
    pub decided_by_practitioner: String,
    pub decided_at: String,
    /// False once a steward split it.
    pub active: bool,
    pub split_at: Option<String>,
    pub note: String,
    /// For a steward's link: the review task confirmed.
    pub task_id: String,
}

impl IdentityLink {
    /// How the link is recorded in a disclosure-log entry that rests on it.
    pub fn used(&self) -> LinkUsed {
        LinkUsed {
            link_id: self.link_id.clone(),
            person_id: self.person_id.clone(),
            other_person_id: self.other_person_id.clone(),
            method: self.method.as_str().into(),
            probability: self
                .probability
                .map(|p| format!("{p:.6}"))
                .unwrap_or_default(),
            rules_version: self.rules_version.clone(),
        }
    }
}

/// Where a review task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Open,
    Confirmed,
    Rejected,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Open => "open",
            ReviewState::Confirmed => "confirmed",
            ReviewState::Rejected => "rejected",
        }
    }
}

/// A potential match for a steward to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewTask {
    pub task_id: String,
    /// The person whose record raised the task.
    pub person_id: String,
    /// The best candidate when it was raised.
    pub candidate_id: String,
    pub probability: Option<f64>,
    pub rules_version: String,
    /// Why it was not linked automatically, in words.
    pub reasons: Vec<String>,
    pub score: Option<super::Score>,
    pub raised_at: String,
    pub state: ReviewState,
}

/// One agency's person details of a person.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedDetails {
    pub agency: Agency,
    pub system_id: String,
    pub person_id: String,
    /// The person-details record.
    pub record_id: String,
    pub details: PersonDetails,
}

/// Everything agencies published about who a (resolved) person is; no case facts.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityCard {
    pub person_id: String,
    pub records: Vec<PublishedDetails>,
}

/// A task as the steward sees it: both sides' identity details and the waterfall.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub task: ReviewTask,
    pub person: IdentityCard,
    pub candidate: IdentityCard,
    pub explanation: Vec<String>,
}

/// A disclosure-log entry that released facts across a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub entry_id: String,
    pub recorded_at: String,
    pub kind: EntryKind,
    pub system_id: String,
    pub recipient_system: String,
}

/// What a split did.
#[derive(Debug, Clone)]
pub struct Split {
    pub decision_id: String,
    pub link: IdentityLink,
    /// Answers and notices that released facts across the link while it stood.
    pub crossed: Vec<Crossing>,
}

/// Who is acting as steward, and the log entry stamped for the request.
#[derive(Debug, Clone)]
pub struct StewardCall {
    pub system: Arc<AgencySystem>,
    pub practitioner: Practitioner,
    pub entry: Entry,
}

/// Rule ids of identity entries in the disclosure log.
pub mod rules {
    pub const STEWARD_ONLY: &str = "identity.steward_only";
    pub const VIEW: &str = "identity.steward_view";
    pub const AUTO_LINK: &str = "identity.auto_link";
    pub const REVIEW_RAISED: &str = "identity.review_raised";
    pub const CONFIRMED: &str = "identity.confirmed";
    pub const REJECTED: &str = "identity.rejected";
    pub const SPLIT: &str = "identity.split";
}

/// A decision on its way to the disclosure log.
#[derive(Debug, Clone)]
pub struct IdentityLogItem {
    pub decision_id: String,
    pub kind: String,
    pub person_id: String,
    pub other_person_id: String,
    pub task_id: String,
    pub link_id: String,
    pub probability: Option<f64>,
    pub rules_version: String,
    pub explanation: Vec<String>,
    pub system_id: String,
    pub practitioner_id: String,
    pub note: String,
}

/// The steward's service.
#[derive(Debug, Clone)]
pub struct Steward {
    store: Arc<dyn IdentityStorage>,
    ledger: Ledger,
    rules: Arc<MatchRules>,
}

/// Longest steward note accepted.
const NOTE_MAX: usize = 2000;

impl Steward {
    pub fn new(store: Arc<dyn IdentityStorage>, ledger: Ledger, rules: Arc<MatchRules>) -> Self {
        Steward {
            store,
            ledger,
            rules,
        }
    }

    /// The matching rules in force.
    pub fn rules(&self) -> &MatchRules {
        &self.rules
    }

    /// Review tasks with both sides' identity details, oldest first. The view is logged
    /// before it is returned.
    /// Returns the tasks and the entry that recorded the view.
    pub async fn tasks(
        &self,
        call: StewardCall,
        include_closed: bool,
    ) -> Result<(Vec<TaskView>, String), Error> {
        let actor = steward(&call)?;
        let mut views = Vec::new();
        for task in self.store.review_tasks(include_closed).await? {
            views.push(self.view(task).await?);
        }
        let mut entry = view_entry(call.entry, &actor);
        for view in &views {
            for card in [&view.person, &view.candidate] {
                entry.released.extend(card_disclosed(card));
            }
        }
        entry.reason = format!("identity steward viewed {} review tasks", views.len());
        entry.linked_person_ids = views
            .iter()
            .flat_map(|v| [v.person.person_id.clone(), v.candidate.person_id.clone()])
            .collect();
        let entry_id = entry.entry_id.clone();
        self.ledger.append(entry).await?;
        Ok((views, entry_id))
    }

    /// One review task (open or closed) with both sides' identity details, logged as
    /// [`Steward::tasks`] logs its view before it is returned.
    pub async fn task(&self, call: StewardCall, task_id: &str) -> Result<TaskView, Error> {
        let actor = steward(&call)?;
        let task_id = required("task_id", task_id)?;
        let task = self
            .store
            .review_task(task_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "task_id".into(),
                reason: "no review task has this id".into(),
            })?;
        let view = self.view(task).await?;
        let mut entry = view_entry(call.entry, &actor);
        for card in [&view.person, &view.candidate] {
            entry.released.extend(card_disclosed(card));
        }
        entry.subject_person_id = view.person.person_id.clone();
        entry.linked_person_ids = vec![view.candidate.person_id.clone()];
        entry.reason = format!("identity steward viewed review task {}", view.task.task_id);
        self.ledger.append(entry).await?;
        Ok(view)
    }

    /// The newest identity links of anyone (at most `limit`), each with the one agency
    /// record on either side; the view is logged before it is returned.
    pub async fn recent_links(
        &self,
        call: StewardCall,
        limit: u32,
    ) -> Result<Vec<(IdentityLink, IdentityCard, IdentityCard)>, Error> {
        let actor = steward(&call)?;
        let mut shown = Vec::new();
        for link in self.store.recent_identity_links(limit).await? {
            let person = self.store.record_card(&link.person_id).await?;
            let other = self.store.record_card(&link.other_person_id).await?;
            shown.push((link, person, other));
        }
        let mut entry = view_entry(call.entry, &actor);
        for (link, person, other) in &shown {
            entry.released.extend(card_disclosed(person));
            entry.released.extend(card_disclosed(other));
            entry.identity_links.push(link.used());
        }
        entry.linked_person_ids = shown
            .iter()
            .flat_map(|(link, _, _)| [link.person_id.clone(), link.other_person_id.clone()])
            .collect();
        entry.reason = format!("identity steward listed {} identity links", shown.len());
        self.ledger.append(entry).await?;
        Ok(shown)
    }

    async fn view(&self, task: ReviewTask) -> Result<TaskView, Error> {
        // The record that raised the task, and the rest of the candidate's person (once
        // confirmed, the two are one person: each side still shows its own records).
        let person = self.store.record_card(&task.person_id).await?;
        let candidate = self
            .store
            .identity_card(&task.candidate_id, Some(&task.person_id))
            .await?;
        let explanation = task.score.as_ref().map(|s| s.explain()).unwrap_or_default();
        Ok(TaskView {
            task,
            person,
            candidate,
            explanation,
        })
    }

    /// Confirms a potential match: the two persons become one resolved person.
    pub async fn confirm(
        &self,
        call: StewardCall,
        task_id: &str,
        note: &str,
    ) -> Result<String, Error> {
        self.decide(call, task_id, note, true).await
    }

    /// Rejects a potential match: the pair is never proposed again.
    pub async fn reject(
        &self,
        call: StewardCall,
        task_id: &str,
        note: &str,
    ) -> Result<String, Error> {
        self.decide(call, task_id, note, false).await
    }

    async fn decide(
        &self,
        call: StewardCall,
        task_id: &str,
        note: &str,
        confirm: bool,
    ) -> Result<String, Error> {
        let actor = steward(&call)?;
        let note = checked_note(note)?;
        let task_id = required("task_id", task_id)?;
        let decision = self
            .store
            .decide_task(
                task_id,
                confirm,
                &actor,
                note,
                &crate::domain::ledger::now(),
            )
            .await?;
        log_pending(&*self.store, &self.ledger, Some(&call.entry)).await?;
        Ok(decision)
    }

    /// Every identity link of the person a reference names (active and split).
    pub async fn links(
        &self,
        call: StewardCall,
        person: &PersonRef,
    ) -> Result<Vec<IdentityLink>, Error> {
        let actor = steward(&call)?;
        let person_id = self
            .store
            .find_person(person)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "person".into(),
                reason: format!("no {person} is known"),
            })?;
        let links = self.store.identity_links(&person_id).await?;
        let card = self.store.identity_card(&person_id, None).await?;
        let mut entry = view_entry(call.entry, &actor);
        entry.subject_person_id = card.person_id.clone();
        entry.released = card_disclosed(&card);
        entry.identity_links = links.iter().map(IdentityLink::used).collect();
        entry.reason = format!("identity steward listed {} identity links", links.len());
        self.ledger.append(entry).await?;
        Ok(links)
    }

    /// Splits a wrong link: each side resolves on its own again, and the answer says
    /// which disclosures released facts across it while it stood.
    pub async fn split(
        &self,
        call: StewardCall,
        link_id: &str,
        note: &str,
    ) -> Result<Split, Error> {
        let actor = steward(&call)?;
        let note = checked_note(note)?;
        let link_id = required("link_id", link_id)?;
        let (decision_id, link) = self
            .store
            .split_link(link_id, &actor, note, &crate::domain::ledger::now())
            .await?;
        log_pending(&*self.store, &self.ledger, Some(&call.entry)).await?;
        let crossed = self.crossed(&link).await?;
        Ok(Split {
            decision_id,
            link,
            crossed,
        })
    }

    /// The entries that rested on `link`: found through the persons it joined, from the
    /// time it was made.
    async fn crossed(&self, link: &IdentityLink) -> Result<Vec<Crossing>, Error> {
        let mut filter = EntryFilter {
            person_id: Some(link.person_id.clone()),
            also_person_ids: vec![link.other_person_id.clone()],
            from: Some(link.decided_at.clone()),
            limit: 500,
            ..Default::default()
        };
        let mut crossed = Vec::new();
        loop {
            let page = self.store.entries(&filter).await?;
            let Some(last) = page.last() else { break };
            filter.after_seq = last.seq;
            crossed.extend(
                page.into_iter()
                    .filter(|stored| {
                        stored.entry.kind != EntryKind::Identity
                            && stored
                                .entry
                                .identity_links
                                .iter()
                                .any(|used| used.link_id == link.link_id)
                    })
                    .map(|stored| Crossing {
                        entry_id: stored.entry.entry_id,
                        recorded_at: stored.entry.recorded_at,
                        kind: stored.entry.kind,
                        system_id: stored.entry.system_id,
                        recipient_system: stored.entry.recipient_system,
                    }),
            );
        }
        Ok(crossed)
    }
}

fn steward(call: &StewardCall) -> Result<Actor, Error> {
    if call.practitioner.role != Role::IdentitySteward {
        return Err(Error::PermissionDenied {
            rule: rules::STEWARD_ONLY,
            reason: format!(
                "only the {} role reviews and corrects identity links",
                Role::IdentitySteward
            ),
        });
    }
    Actor::for_records(&call.system, &call.practitioner)
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(field, "must be set"));
    }
    Ok(value)
}

fn checked_note(note: &str) -> Result<&str, Error> {
    let note = note.trim();
    if note.split_whitespace().count() < 3 || note.chars().count() > NOTE_MAX {
        return Err(Error::invalid(
            "note",
            format!("must say why, in at least three words and at most {NOTE_MAX} characters"),
        ));
    }
    Ok(note)
}

fn view_entry(mut entry: Entry, actor: &Actor) -> Entry {
    entry.kind = EntryKind::Identity;
    entry.decision = Decision::Released;
    entry.rule_ids = vec![rules::VIEW.into()];
    entry.agency = actor.agency.as_str().into();
    entry
}

/// Each published person-details record on a card, as released to the steward.
fn card_disclosed(card: &IdentityCard) -> Vec<Disclosed> {
    card.records
        .iter()
        .map(|record| Disclosed {
            person_id: record.person_id.clone(),
            record_id: record.record_id.clone(),
            category: "person".into(),
            level: "detail".into(),
            rule_id: rules::VIEW.into(),
        })
        .collect()
}

/// Writes every identity decision not yet in the disclosure log, oldest first. Called
/// after each identity change commits and at start-up, so a decision whose entry could
/// not be written then is written at the next chance. `stamp` carries the RPC, caller
/// and trace of the request that made the decisions.
pub async fn log_pending(
    store: &dyn IdentityStorage,
    ledger: &Ledger,
    stamp: Option<&Entry>,
) -> Result<(), Error> {
    // One logger at a time in this process, so a decision is not logged twice by two
    // requests finishing together.
    static LOGGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = LOGGING.lock().await;
    for item in store.unlogged_identity_decisions().await? {
        let mut entry = match stamp {
            Some(stamp) => {
                let mut entry = Entry::new(EntryKind::Identity, Decision::Recorded);
                entry.rpc = stamp.rpc.clone();
                entry.agency = stamp.agency.clone();
                entry.certificate_sha256 = stamp.certificate_sha256.clone();
                entry.role = stamp.role.clone();
                entry.trace_id = stamp.trace_id.clone();
                entry
            }
            None => Entry::new(EntryKind::Identity, Decision::Recorded),
        };
        entry.system_id = item.system_id.clone();
        entry.practitioner_id = item.practitioner_id.clone();
        entry.subject_person_id = item.person_id.clone();
        entry.linked_person_ids = vec![item.other_person_id.clone()];
        let (rule, words) = match item.kind.as_str() {
            "auto_link" => (rules::AUTO_LINK, "linked automatically on demographics"),
            "review_raised" => (rules::REVIEW_RAISED, "potential match raised for review"),
            "confirmed" => (rules::CONFIRMED, "steward confirmed a potential match"),
            "rejected" => (rules::REJECTED, "steward rejected a potential match"),
            _ => (rules::SPLIT, "steward split an identity link"),
        };
        entry.rule_ids = vec![rule.into()];
        let link_id = match item.kind.as_str() {
            "split" => item.link_id.clone(),
            _ => item.decision_id.clone(),
        };
        entry.identity_links = vec![LinkUsed {
            link_id,
            person_id: item.person_id.clone(),
            other_person_id: item.other_person_id.clone(),
            method: item.kind.clone(),
            probability: item
                .probability
                .map(|p| format!("{p:.6}"))
                .unwrap_or_default(),
            rules_version: item.rules_version.clone(),
        }];
        let mut reason = format!("{words} (decision {})", item.decision_id);
        if !item.task_id.is_empty() {
            reason.push_str(&format!("; review task {}", item.task_id));
        }
        if !item.explanation.is_empty() {
            reason.push_str(": ");
            reason.push_str(&item.explanation.join(" "));
        }
        entry.reason = reason;
        entry.justification = item.note.clone();
        let entry_id = entry.entry_id.clone();
        ledger.append(entry).await?;
        store
            .mark_identity_logged(&item.decision_id, &entry_id)
            .await?;
    }
    Ok(())
}
