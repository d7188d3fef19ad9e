//! The contact service: make a request, answer it, list requests, escalate overdue ones.
//! Each step is written to the disclosure log first (fail closed), then stored with the
//! notices it raises in one transaction.

use std::sync::Arc;

use crate::domain::contact::logged::{self, Logged, Recorded};
use crate::domain::contact::{
    ContactRequest, ContactRules, ContactStep, ContactStore, ContactThread, Outcome, StepKind,
    Urgency, rule,
};
use crate::domain::ledger::{ContactRecord, Decision, Entry, EntryKind, Ledger, timestamp};
use crate::domain::notify::{Notice, NoticeRule, Surroundings};
use crate::domain::policy::{Level, Policy, PolicyHolder};
use crate::domain::query::{FactView, Shown, indicator};
use crate::domain::records::FactAbout;
use crate::domain::{AgencySystem, Practitioner, Purpose, Role};
use crate::error::Error;

/// A practitioner's request to the team that owns a fact they were shown as an indicator.
#[derive(Debug, Clone)]
pub struct Requesting {
    pub system: Arc<AgencySystem>,
    pub practitioner: Practitioner,
    pub answer_entry_id: String,
    pub record_id: String,
    pub urgency: Urgency,
    pub reason: String,
    /// How to reach the requester; empty means the requesting system's registered route.
    pub contact_route: String,
    pub client_request_id: String,
    /// The log entry so far: who asked, how and when.
    pub entry: Entry,
}

/// A team's answer to a request.
#[derive(Debug, Clone)]
pub struct Answering {
    pub system: Arc<AgencySystem>,
    pub practitioner: Practitioner,
    pub request_id: String,
    pub outcome: Outcome,
    pub note: String,
    /// For [`Outcome::PassedOn`]: the registered system the request goes to.
    pub passed_to: String,
    pub entry: Entry,
}

/// One overdue request escalated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalated {
    pub request_id: String,
    /// The systems told: managers (or the team itself), and the requester.
    pub notified: Vec<String>,
    pub entry_id: String,
}

/// Contact requests over the contact room's storage.
#[derive(Debug, Clone)]
pub struct Contacts {
    store: Arc<dyn ContactStore>,
    ledger: Ledger,
    policy: Arc<PolicyHolder>,
    rules: Arc<ContactRules>,
    /// The registered agency systems: who can be passed to and who manages whom.
    directory: Arc<Vec<AgencySystem>>,
    /// Answers and escalations of this process one at a time, so a request is answered
    /// or escalated once.
    transitions: Arc<tokio::sync::Mutex<()>>,
    /// This process's name on the deployment-wide escalation lease.
    sweeper_id: Arc<str>,
    /// The log position up to which logged steps were looked for without a row.
    restored_through: Arc<std::sync::atomic::AtomicU64>,
}

/// How long a sweeping process holds the escalation lease at most: a process that stops
/// mid-sweep holds it no longer than this.
const ESCALATION_LEASE: time::Duration = time::Duration::minutes(5);

impl Contacts {
    pub fn new(
        store: Arc<dyn ContactStore>,
        ledger: Ledger,
        policy: Arc<PolicyHolder>,
        rules: Arc<ContactRules>,
        directory: Vec<AgencySystem>,
    ) -> Self {
        Contacts {
            store,
            ledger,
            policy,
            rules,
            directory: Arc::new(directory),
            transitions: Arc::new(tokio::sync::Mutex::new(())),
            sweeper_id: uuid::Uuid::new_v4().to_string().into(),
            restored_through: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Stores every request and step the log records but the contact tables do not hold,
    /// derived from its entry, and returns how many. The log is the source of truth: a
    /// step is logged first and stored after, so a gateway that stopped between the two
    /// leaves a logged step with no row, and the row is derived from the hashed entry,
    /// which carries it whole. Called at start-up (the whole log, once) and before each
    /// overdue sweep (entries since the last look), so a request answered or escalated
    /// just before a crash is not escalated again. The notices such a step raised are not
    /// re-sent: they went with the row that was never stored, and an unanswered request
    /// is still escalated when it falls overdue. Entries written before entries carried
    /// their row cannot be restored; verify reports them as not stored.
    pub async fn restore_logged(&self) -> Result<usize, Error> {
        use std::sync::atomic::Ordering;
        let after = self.restored_through.load(Ordering::Acquire);
        let (entries, through) = self.store.unstored_contact_entries(after).await?;
        let mut restored = 0;
        for entry in &entries {
            let Recorded::Row(row) = logged::recorded(entry) else {
                continue;
            };
            match *row {
                Logged::Request(request) => self.store.add_contact_request(&request, &[]).await?,
                Logged::Step(step) => self.store.add_contact_step(&step, &[]).await?,
            }
            restored += 1;
        }
        self.restored_through.fetch_max(through, Ordering::AcqRel);
        Ok(restored)
    }

    /// The contact rules in force.
    pub fn rules(&self) -> &ContactRules {
        &self.rules
    }

    fn system(&self, id: &str) -> Option<&AgencySystem> {
        self.directory.iter().find(|s| s.id == id)
    }

    /// Writes a refusal about `subject` and returns it as already recorded (or
    /// UNAVAILABLE when the log cannot be written).
    async fn refused(&self, mut entry: Entry, subject: Subject, error: Error) -> Error {
        entry.kind = EntryKind::Refusal;
        entry.decision = Decision::Refused;
        entry.rule_ids = vec![error.rule().to_owned()];
        entry.reason = error.to_string();
        match subject {
            Subject::Person(person) => entry.subject_person_id = person,
            Subject::Asked(asked) => entry.subject_asked = asked,
        }
        match self.ledger.append(entry).await {
            Ok(_) => Error::Recorded(Box::new(error)),
            Err(unavailable) => unavailable,
        }
    }

    /// Asks the team owning a fact the practitioner was shown as an indicator to get in
    /// touch. Refused (and logged with its subject) unless the entry is this
    /// practitioner's own answer and showed the fact as an indicator.
    pub async fn request(&self, asked: Requesting) -> Result<(ContactThread, String), Error> {
        if !asked.client_request_id.is_empty()
            && let Some(first) = self
                .store
                .contact_by_client_id(&asked.system.id, &asked.client_request_id)
                .await?
        {
            if first.request.requester_practitioner != asked.practitioner.id {
                return Err(Error::invalid(
                    "client_request_id",
                    "is already the id of another practitioner's request from this system",
                ));
            }
            let entry_id = first.request.log_entry_id.clone();
            return Ok((first, entry_id));
        }
        let policy = self.policy.current();
        let purpose = asked.practitioner.purpose.ok_or_else(|| {
            Error::invalid(
                "context.purpose",
                "must be set: why you ask the team to get in touch",
            )
        })?;
        let grant = policy.purpose(&asked.system.id, asked.practitioner.role, purpose)?;
        let lawful_basis = grant.lawful_basis.to_owned();

        // The answer must be this practitioner's own, and must have shown the fact as an
        // indicator: only what the requester already saw is referred to.
        let answer = self.store.answer_entry(&asked.answer_entry_id).await?;
        let asked_about = Subject::Asked(format!(
            "entry {} record {}",
            asked.answer_entry_id, asked.record_id
        ));
        let answer = match answer {
            Some(answer)
                if answer.kind == EntryKind::Query
                    && answer.decision == Decision::Released
                    && answer.system_id == asked.system.id
                    && answer.practitioner_id == asked.practitioner.id =>
            {
                answer
            }
            other => {
                let subject = other
                    .map(|e| subject_of(&e, &asked.record_id))
                    .unwrap_or(asked_about);
                let error = Error::PermissionDenied {
                    rule: rule::NOT_YOUR_ANSWER,
                    reason: "answer_entry_id does not name an answer this practitioner \
                             received; ask about an indicator in one of your own answers"
                        .into(),
                };
                return Err(self.refused(asked.entry, subject, error).await);
            }
        };
        let Some(shown) = answer
            .released
            .iter()
            .find(|d| d.record_id == asked.record_id && d.level == Level::Indicator.as_str())
        else {
            let error = Error::PermissionDenied {
                rule: rule::NOT_SHOWN_AS_INDICATOR,
                reason: "record_id was not shown to you as an indicator in that answer; a \
                         contact request refers only to an indicator you were shown"
                    .into(),
            };
            let subject = subject_of(&answer, &asked.record_id);
            return Err(self.refused(asked.entry, subject, error).await);
        };
        let subject = shown.person_id.clone();
        let Some((fact, world)) = self.store.current_fact(&subject, &asked.record_id).await? else {
            let error = Error::FailedPrecondition {
                rule: rule::FACT_NOT_CURRENT,
                reason: "the fact has ended since that answer, so there is no team to ask".into(),
            };
            return Err(self
                .refused(asked.entry, Subject::Person(subject), error)
                .await);
        };
        let Some(owner) = self.system(&fact.owner_system).cloned() else {
            return Err(Error::internal(
                "the fact's owning system is not registered",
            ));
        };
        let category = fact.fact.category();
        let owner_role = recipient_role(&policy, &owner, category);
        let shown_as = indicator(&fact, &world);
        let created = time::OffsetDateTime::now_utc();
        let mut entry = asked.entry;
        let request = ContactRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id: asked.client_request_id,
            requester_system: asked.system.id.clone(),
            requester_agency: asked.system.agency,
            requester_practitioner: asked.practitioner.id.clone(),
            requester_role: asked.practitioner.role,
            requester_contact_route: if asked.contact_route.is_empty() {
                asked.system.contact_route.clone()
            } else {
                asked.contact_route
            },
            purpose,
            lawful_basis: lawful_basis.clone(),
            urgency: asked.urgency,
            reason: asked.reason,
            answer_entry_id: asked.answer_entry_id,
            record_id: asked.record_id,
            category,
            subject_person_id: subject.clone(),
            owner_system: owner.id.clone(),
            owner_agency: owner.agency,
            owner_role,
            team: shown_as.team,
            team_contact_route: shown_as.contact_route,
            created_at: timestamp(created),
            due_at: timestamp(created + self.rules.deadline(asked.urgency)),
            rules_version: self.rules.version().to_owned(),
            policy_version: policy.version().to_owned(),
            log_entry_id: entry.entry_id.clone(),
        };
        let headline = format!(
            "Contact request ({urgency}): {agency}'s {role} {practitioner} ({system}) asks \
             your team to get in touch about the {category} record you hold on this person, \
             for {purpose}. Their reason: {reason} Reach them at {route}. Please answer by \
             {due} (contacted, declined with a reason, or passed to another team); request \
             {id}.",
            urgency = request.urgency,
            agency = request.requester_agency,
            role = request.requester_role,
            practitioner = request.requester_practitioner,
            system = asked.system.name,
            category = request.category,
            purpose = request.purpose,
            reason = request.reason,
            route = request.requester_contact_route,
            due = request.due_at,
            id = request.request_id,
        );
        let notice = self.notice(
            &policy,
            (&owner.id, owner_role),
            &request,
            NoticeRule::ContactRequest,
            headline,
            Some((&fact, &world)),
        );
        entry.kind = EntryKind::Contact;
        entry.decision = Decision::Recorded;
        entry.subject_person_id = subject;
        entry.purpose = purpose.as_str().into();
        entry.lawful_basis = lawful_basis;
        entry.justification = request.reason.clone();
        entry.policy_version = request.policy_version.clone();
        entry.recipient_system = owner.id.clone();
        entry.rule_ids = vec![rule::REQUEST.into(), grant.rule_id.to_owned()];
        entry.reason = format!(
            "contact request {} ({}) on record {} shown as an indicator in entry {}; due {}",
            request.request_id,
            request.urgency,
            request.record_id,
            request.answer_entry_id,
            request.due_at
        );
        entry.contact = Some(ContactRecord {
            request_id: request.request_id.clone(),
            step: "requested".into(),
            urgency: request.urgency.as_str().into(),
            due_at: request.due_at.clone(),
            outcome: String::new(),
            answer_entry_id: request.answer_entry_id.clone(),
            record_id: request.record_id.clone(),
            to_systems: vec![owner.id.clone()],
            notice_ids: vec![notice.notice_id.clone()],
            rules_version: request.rules_version.clone(),
            row: Some(logged_row(&request)?),
        });
        // Fail closed: nothing is stored or sent until the request's entry is committed.
        let appended = self.ledger.append(entry).await?;
        self.store.add_contact_request(&request, &[notice]).await?;
        Ok((
            ContactThread {
                request,
                steps: Vec::new(),
            },
            appended.entry_id,
        ))
    }

    /// Records a team's answer and tells the requester (and, when passed on, the team
    /// it was passed to). Only the team holding the request, or its agency's manager
    /// role, may answer, and only once.
    pub async fn answer(&self, given: Answering) -> Result<(ContactThread, String), Error> {
        let _one_at_a_time = self.transitions.lock().await;
        let thread = self.store.contact_thread(&given.request_id).await?;
        let holder_agency = thread
            .as_ref()
            .and_then(|t| self.system(t.current_system()))
            .map(|s| s.agency);
        let may_answer = thread.as_ref().is_some_and(|t| {
            t.current_system() == given.system.id
                || (Some(given.system.agency) == holder_agency
                    && holder_agency.and_then(|a| self.rules.manager(a))
                        == Some(given.practitioner.role))
        });
        let Some(mut thread) = thread.filter(|_| may_answer) else {
            let error = Error::PermissionDenied {
                rule: rule::NOT_ADDRESSED_TO_YOU,
                reason: "request_id does not name a contact request your team holds".into(),
            };
            let subject = match self.store.contact_thread(&given.request_id).await? {
                Some(t) => Subject::Person(t.request.subject_person_id),
                None => Subject::Asked(format!("contact request {}", given.request_id)),
            };
            return Err(self.refused(given.entry, subject, error).await);
        };
        let subject = thread.request.subject_person_id.clone();
        if thread.answer().is_some() {
            let error = Error::FailedPrecondition {
                rule: rule::ALREADY_ANSWERED,
                reason: "the request was answered already; its answer stands".into(),
            };
            return Err(self
                .refused(given.entry, Subject::Person(subject), error)
                .await);
        }
        let passed_to = match given.outcome {
            Outcome::PassedOn => {
                let Some(to) = self.system(&given.passed_to).cloned() else {
                    return Err(Error::invalid(
                        "passed_to_system_id",
                        "must name a registered agency system",
                    ));
                };
                if to.id == thread.current_system() {
                    return Err(Error::invalid(
                        "passed_to_system_id",
                        "must name another team's system than the one holding the request",
                    ));
                }
                Some(to)
            }
            _ => None,
        };
        let policy = self.policy.current();
        let request = &thread.request;
        let found = self
            .store
            .current_fact(&request.subject_person_id, &request.record_id)
            .await?;
        let fact = found.as_ref().map(|(f, w)| (f, w));
        let team = self
            .system(&given.system.id)
            .map_or(given.system.id.clone(), |s| s.name.clone());
        let words = match given.outcome {
            Outcome::Contacted => "contacted: they have got in touch".to_owned(),
            Outcome::Declined => "declined".to_owned(),
            Outcome::PassedOn => format!(
                "passed on to {}, which will answer",
                passed_to.as_ref().map_or("", |t| t.name.as_str())
            ),
        };
        let note = if given.note.is_empty() {
            String::new()
        } else {
            format!(" Their words: {}", given.note)
        };
        let mut notices = vec![self.notice(
            &policy,
            (&request.requester_system, request.requester_role),
            request,
            NoticeRule::ContactAnswer,
            format!(
                "Your contact request {} about the {} record was answered by {team}: \
                 {words}.{note}",
                request.request_id, request.category
            ),
            fact,
        )];
        let mut to_systems = Vec::new();
        if let Some(to) = &passed_to {
            let role = recipient_role(&policy, to, request.category);
            notices.push(self.notice(
                &policy,
                (&to.id, role),
                request,
                NoticeRule::ContactRequest,
                format!(
                    "Contact request ({}) passed to your team by {team}: {}'s {} {} asks you \
                     to get in touch about this person ({} record), for {}. Their reason: \
                     {} Reach them at {}. Please answer by {}; request {}.{note}",
                    request.urgency,
                    request.requester_agency,
                    request.requester_role,
                    request.requester_practitioner,
                    request.category,
                    request.purpose,
                    request.reason,
                    request.requester_contact_route,
                    request.due_at,
                    request.request_id
                ),
                None,
            ));
            to_systems.push(to.id.clone());
        }
        let mut entry = given.entry;
        let step = ContactStep {
            step_id: uuid::Uuid::new_v4().to_string(),
            request_id: request.request_id.clone(),
            kind: StepKind::Answered,
            outcome: Some(given.outcome),
            note: given.note.clone(),
            by_system: given.system.id.clone(),
            by_practitioner: given.practitioner.id.clone(),
            to_systems: to_systems.clone(),
            recorded_at: entry.recorded_at.clone(),
            log_entry_id: entry.entry_id.clone(),
        };
        entry.kind = EntryKind::Contact;
        entry.decision = Decision::Recorded;
        entry.subject_person_id = subject;
        entry.purpose = request.purpose.as_str().into();
        entry.lawful_basis = request.lawful_basis.clone();
        entry.justification = given.note;
        entry.policy_version = policy.version().to_owned();
        entry.recipient_system = request.requester_system.clone();
        entry.rule_ids = vec![rule::ANSWER.into()];
        entry.reason = format!(
            "contact request {} answered: {}",
            request.request_id, given.outcome
        );
        entry.contact = Some(ContactRecord {
            request_id: request.request_id.clone(),
            step: StepKind::Answered.as_str().into(),
            urgency: request.urgency.as_str().into(),
            due_at: request.due_at.clone(),
            outcome: given.outcome.as_str().into(),
            answer_entry_id: request.answer_entry_id.clone(),
            record_id: request.record_id.clone(),
            to_systems: std::iter::once(request.requester_system.clone())
                .chain(to_systems)
                .collect(),
            notice_ids: notices.iter().map(|n| n.notice_id.clone()).collect(),
            rules_version: request.rules_version.clone(),
            row: Some(logged_row(&step)?),
        });
        let appended = self.ledger.append(entry).await?;
        self.store.add_contact_step(&step, &notices).await?;
        thread.steps.push(step);
        Ok((thread, appended.entry_id))
    }

    /// The practitioner's own requests (`addressed_to_team` false), or those made or
    /// passed to their system; the read is logged. Returns the entry id and the time the
    /// statuses were read at.
    pub async fn list(
        &self,
        system: &AgencySystem,
        practitioner: &Practitioner,
        addressed_to_team: bool,
        mut entry: Entry,
    ) -> Result<(Vec<ContactThread>, String, String), Error> {
        let threads = if addressed_to_team {
            self.store.contacts_addressed_to(&system.id).await?
        } else {
            self.store
                .contacts_requested_by(&system.id, &practitioner.id)
                .await?
        };
        let mut persons: Vec<String> = threads
            .iter()
            .map(|t| t.request.subject_person_id.clone())
            .collect();
        persons.sort();
        persons.dedup();
        entry.kind = EntryKind::Contact;
        entry.decision = Decision::Released;
        entry.linked_person_ids = persons;
        entry.rule_ids = vec![rule::STATUS.into()];
        entry.reason = format!(
            "status of {} contact requests {}",
            threads.len(),
            if addressed_to_team {
                "addressed to the team"
            } else {
                "made by the practitioner"
            }
        );
        let now = entry.recorded_at.clone();
        let appended = self.ledger.append(entry).await?;
        Ok((threads, appended.entry_id, now))
    }

    /// Escalates every request unanswered at `at` past its deadline, once each: the
    /// holding agency's manager role is told where the rules name one (otherwise the
    /// team itself is reminded), and the requester is told it is overdue. `at` is the
    /// clock: the gateway passes the time now; tests pass a later one.
    pub async fn escalate_overdue(
        &self,
        at: time::OffsetDateTime,
    ) -> Result<Vec<Escalated>, Error> {
        let _one_at_a_time = self.transitions.lock().await;
        // One process of the deployment sweeps at a time; another holding the lease is
        // sweeping now, and whatever it leaves is swept next time.
        let now = time::OffsetDateTime::now_utc();
        let claimed = self
            .store
            .claim_escalations(
                &self.sweeper_id,
                &timestamp(now),
                &timestamp(now + ESCALATION_LEASE),
            )
            .await?;
        if !claimed {
            return Ok(Vec::new());
        }
        let swept = self.sweep(at).await;
        let released = self.store.release_escalations(&self.sweeper_id).await;
        let escalated = swept?;
        released?;
        Ok(escalated)
    }

    /// [`Contacts::escalate_overdue`] with the lease held: steps logged but not stored are
    /// restored first, so a request escalated by a process that stopped before storing
    /// the step is not escalated again.
    async fn sweep(&self, at: time::OffsetDateTime) -> Result<Vec<Escalated>, Error> {
        let restored = self.restore_logged().await?;
        if restored > 0 {
            tracing::warn!(
                restored,
                "contact steps logged but not stored were restored from their log entries"
            );
        }
        let policy = self.policy.current();
        let mut escalated = Vec::new();
        for thread in self.store.contacts_due(&timestamp(at)).await? {
            let request = &thread.request;
            let holder = self.system(thread.current_system()).cloned();
            let agency = holder.as_ref().map_or(request.owner_agency, |h| h.agency);
            let manager = self.rules.manager(agency);
            let mut recipients: Vec<(String, Role)> = match manager {
                Some(role) => self
                    .directory
                    .iter()
                    .filter(|s| s.agency == agency && s.roles.contains(&role))
                    .map(|s| (s.id.clone(), role))
                    .collect(),
                None => Vec::new(),
            };
            let reminded = recipients.is_empty();
            if reminded && let Some(holder) = &holder {
                let role = if holder.id == request.owner_system {
                    request.owner_role
                } else {
                    recipient_role(&policy, holder, request.category)
                };
                recipients.push((holder.id.clone(), role));
            }
            let found = self
                .store
                .current_fact(&request.subject_person_id, &request.record_id)
                .await?;
            let fact = found.as_ref().map(|(f, w)| (f, w));
            let held_by = holder
                .as_ref()
                .map_or("the owning team", |h| h.name.as_str());
            let mut notices: Vec<Notice> = recipients
                .iter()
                .map(|(system, role)| {
                    let headline = if reminded {
                        format!(
                            "Overdue contact request ({}): {}'s {} {} asked your team to get \
                             in touch about this person ({} record) by {} and has had no \
                             answer. Their reason: {} Reach them at {}; request {}.",
                            request.urgency,
                            request.requester_agency,
                            request.requester_role,
                            request.requester_practitioner,
                            request.category,
                            request.due_at,
                            request.reason,
                            request.requester_contact_route,
                            request.request_id
                        )
                    } else {
                        format!(
                            "Escalated to you as {role}: a contact request ({}) to {held_by} \
                             was not answered by {}. {}'s {} {} asked the team to get in \
                             touch about this person ({} record). Their reason: {} Reach \
                             them at {}; request {}.",
                            request.urgency,
                            request.due_at,
                            request.requester_agency,
                            request.requester_role,
                            request.requester_practitioner,
                            request.category,
                            request.reason,
                            request.requester_contact_route,
                            request.request_id
                        )
                    };
                    self.notice(
                        &policy,
                        (system, *role),
                        request,
                        NoticeRule::ContactOverdue,
                        headline,
                        fact,
                    )
                })
                .collect();
            notices.push(self.notice(
                &policy,
                (&request.requester_system, request.requester_role),
                request,
                NoticeRule::ContactOverdue,
                format!(
                    "Your contact request {} ({}) to {held_by} about the {} record is \
                     overdue: no answer by {}. {}",
                    request.request_id,
                    request.urgency,
                    request.category,
                    request.due_at,
                    if reminded {
                        "The team has been reminded."
                    } else {
                        "It has been escalated to the team's manager."
                    }
                ),
                fact,
            ));
            let to_systems: Vec<String> = recipients.iter().map(|(s, _)| s.clone()).collect();
            let mut entry = Entry::new(EntryKind::Contact, Decision::Recorded);
            entry.rpc = "gateway/contact_escalation".into();
            entry.agency = agency.as_str().into();
            entry.system_id = thread.current_system().to_owned();
            entry.role = manager.map(|r| r.as_str().to_owned()).unwrap_or_default();
            entry.purpose = request.purpose.as_str().into();
            entry.lawful_basis = request.lawful_basis.clone();
            entry.subject_person_id = request.subject_person_id.clone();
            entry.policy_version = policy.version().to_owned();
            entry.recipient_system = to_systems.join(",");
            entry.rule_ids = vec![rule::ESCALATION.into()];
            entry.reason = format!(
                "contact request {} unanswered past {}: {} {}",
                request.request_id,
                request.due_at,
                if reminded {
                    "team reminded"
                } else {
                    "escalated to"
                },
                manager.map_or(String::new(), |r| r.as_str().to_owned())
            );
            let step = ContactStep {
                step_id: uuid::Uuid::new_v4().to_string(),
                request_id: request.request_id.clone(),
                kind: StepKind::Escalated,
                outcome: None,
                note: String::new(),
                by_system: String::new(),
                by_practitioner: String::new(),
                to_systems: to_systems.clone(),
                recorded_at: entry.recorded_at.clone(),
                log_entry_id: entry.entry_id.clone(),
            };
            entry.contact = Some(ContactRecord {
                request_id: request.request_id.clone(),
                step: StepKind::Escalated.as_str().into(),
                urgency: request.urgency.as_str().into(),
                due_at: request.due_at.clone(),
                outcome: String::new(),
                answer_entry_id: request.answer_entry_id.clone(),
                record_id: request.record_id.clone(),
                to_systems: to_systems.clone(),
                notice_ids: notices.iter().map(|n| n.notice_id.clone()).collect(),
                rules_version: self.rules.version().to_owned(),
                row: Some(logged_row(&step)?),
            });
            let appended = self.ledger.append(entry).await?;
            self.store.add_contact_step(&step, &notices).await?;
            escalated.push(Escalated {
                request_id: request.request_id.clone(),
                notified: notices.iter().map(|n| n.recipient_system.clone()).collect(),
                entry_id: appended.entry_id,
            });
        }
        Ok(escalated)
    }

    /// A notice about a request for one recipient, the fact shaped for its role by the
    /// sharing policy as any notice is (left out where the role may see nothing of it).
    fn notice(
        &self,
        policy: &Policy,
        (system, role): (&str, Role),
        request: &ContactRequest,
        rule: NoticeRule,
        headline: String,
        fact: Option<(&FactAbout, &Surroundings)>,
    ) -> Notice {
        let facts = fact
            .and_then(|(about, world)| {
                let category = about.fact.category();
                let cell = policy.level(system, role, category);
                let shown = match cell.level {
                    Level::Detail => Shown::Detail(about.fact.clone()),
                    Level::Indicator => Shown::Indicator(indicator(about, world)),
                    Level::Nothing => return None,
                };
                Some(FactView {
                    record_id: about.record_id.clone(),
                    category,
                    rule_id: cell.rule_id.to_owned(),
                    shown,
                })
            })
            .into_iter()
            .collect();
        Notice {
            notice_id: uuid::Uuid::new_v4().to_string(),
            rule,
            recipient_system: system.to_owned(),
            recipient_role: role,
            subject_person_id: request.subject_person_id.clone(),
            headline,
            facts,
            lawful_basis: request.lawful_basis.clone(),
            policy_version: policy.version().to_owned(),
            created_at: crate::domain::ledger::now(),
            identity_links: Vec::new(),
            contact_request_id: request.request_id.clone(),
        }
    }
}

/// A request or step as its entry carries it: the row is derived from the hashed entry.
fn logged_row(row: &impl serde::Serialize) -> Result<serde_json::Value, Error> {
    serde_json::to_value(row).map_err(Error::internal)
}

/// Who a refusal is about.
enum Subject {
    Person(String),
    /// The reference as asked, when the gateway knows no person for it.
    Asked(String),
}

/// The person a refusal about `record_id` in `answer` is about: the person the record
/// was shown under, else the answer's subject.
fn subject_of(answer: &Entry, record_id: &str) -> Subject {
    answer
        .released
        .iter()
        .chain(answer.withheld.iter())
        .find(|d| d.record_id == record_id)
        .map(|d| d.person_id.clone())
        .or_else(|| Some(answer.subject_person_id.clone()).filter(|s| !s.is_empty()))
        .map_or_else(
            || Subject::Asked(format!("entry {} record {record_id}", answer.entry_id)),
            Subject::Person,
        )
}

/// The role a team's notice is shaped for: the first role its system may assert that
/// may act for child safeguarding and see something of the category.
fn recipient_role(
    policy: &Policy,
    system: &AgencySystem,
    category: crate::domain::records::Category,
) -> Role {
    system
        .roles
        .iter()
        .copied()
        .find(|role| {
            policy
                .purpose(&system.id, *role, Purpose::ChildSafeguarding)
                .is_ok()
                && policy.level(&system.id, *role, category).level != Level::Nothing
        })
        .or_else(|| system.roles.first().copied())
        .unwrap_or(Role::IgOfficer)
}
