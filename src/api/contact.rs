//! `safegate.v1.ContactService`: request contact on an indicator, answer, list status.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::journal::{HasContext, RequestMeta, answer, entry_for};
use crate::api::practitioner;
use crate::api::proto::{
    self, AnswerContactRequest, AnswerContactResponse, ListContactRequestsRequest,
    ListContactRequestsResponse, RequestContactRequest, RequestContactResponse,
    contact_service_server::ContactService,
};
use crate::domain::contact::{
    Answering, ContactStatus, ContactThread, Contacts, Outcome, Requesting, Urgency,
};
use crate::domain::ledger::{Decision, EntryKind, Ledger};
use crate::error::{Error, FieldViolation};
use crate::registry::Caller;

/// Longest reason or note accepted, in characters.
const WORDS_MAX: usize = 2000;
/// A reason is a sentence, not a placeholder such as "urgent".
const REASON_MIN_WORDS: usize = 3;
/// Longest contact route or client request id accepted.
const ROUTE_MAX: usize = 500;
const ID_MAX: usize = 128;

/// Handlers over contact requests.
#[derive(Debug, Clone)]
pub struct ContactApi {
    contacts: Contacts,
    ledger: Ledger,
}

impl ContactApi {
    pub fn new(contacts: Contacts, ledger: Ledger) -> Self {
        ContactApi { contacts, ledger }
    }
}

macro_rules! context_of {
    ($($request:ty),+) => {$(
        impl HasContext for $request {
            fn context(&self) -> Option<&proto::PractitionerContext> {
                self.context.as_ref()
            }
        }
    )+};
}

context_of!(
    RequestContactRequest,
    AnswerContactRequest,
    ListContactRequestsRequest
);

fn urgency(wire: i32) -> Option<Urgency> {
    match proto::ContactUrgency::try_from(wire).ok()? {
        proto::ContactUrgency::Routine => Some(Urgency::Routine),
        proto::ContactUrgency::SameDay => Some(Urgency::SameDay),
        proto::ContactUrgency::ImmediateRisk => Some(Urgency::ImmediateRisk),
        proto::ContactUrgency::Unspecified => None,
    }
}

fn outcome(wire: i32) -> Option<Outcome> {
    match proto::ContactOutcome::try_from(wire).ok()? {
        proto::ContactOutcome::Contacted => Some(Outcome::Contacted),
        proto::ContactOutcome::Declined => Some(Outcome::Declined),
        proto::ContactOutcome::PassedOn => Some(Outcome::PassedOn),
        proto::ContactOutcome::Unspecified => None,
    }
}

fn wire_outcome(outcome: Option<Outcome>) -> proto::ContactOutcome {
    match outcome {
        Some(Outcome::Contacted) => proto::ContactOutcome::Contacted,
        Some(Outcome::Declined) => proto::ContactOutcome::Declined,
        Some(Outcome::PassedOn) => proto::ContactOutcome::PassedOn,
        None => proto::ContactOutcome::Unspecified,
    }
}

fn wire_urgency(urgency: Urgency) -> proto::ContactUrgency {
    match urgency {
        Urgency::Routine => proto::ContactUrgency::Routine,
        Urgency::SameDay => proto::ContactUrgency::SameDay,
        Urgency::ImmediateRisk => proto::ContactUrgency::ImmediateRisk,
    }
}

fn wire_status(status: ContactStatus) -> proto::ContactStatus {
    match status {
        ContactStatus::Open => proto::ContactStatus::Open,
        ContactStatus::Answered => proto::ContactStatus::Answered,
        ContactStatus::Overdue => proto::ContactStatus::Overdue,
    }
}

fn entry_id(field: &str, value: &str, violations: &mut Vec<FieldViolation>) {
    if uuid::Uuid::parse_str(value.trim()).is_err() {
        violations.push(FieldViolation::new(
            field,
            "must be set to an id the gateway returned (a UUID)",
        ));
    }
}

fn bounded(field: &str, value: &str, max: usize, violations: &mut Vec<FieldViolation>) {
    if value.chars().count() > max {
        violations.push(FieldViolation::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

/// A request's fields checked, each fault named.
fn requesting(
    caller: &Caller,
    meta: &RequestMeta,
    request: RequestContactRequest,
) -> Result<Requesting, Error> {
    let practitioner = practitioner(caller, request.context.clone())?;
    let mut violations = Vec::new();
    entry_id("answer_entry_id", &request.answer_entry_id, &mut violations);
    let record_id = request.record_id.trim();
    if record_id.is_empty() {
        violations.push(FieldViolation::new(
            "record_id",
            "must name the fact shown to you as an indicator",
        ));
    }
    bounded("record_id", record_id, ID_MAX, &mut violations);
    let urgency = urgency(request.urgency);
    if urgency.is_none() {
        violations.push(FieldViolation::new(
            "urgency",
            "must be routine, same_day or immediate_risk",
        ));
    }
    let reason = request.reason.trim();
    if reason.split_whitespace().count() < REASON_MIN_WORDS {
        violations.push(FieldViolation::new(
            "reason",
            format!(
                "must say in at least {REASON_MIN_WORDS} words why the team should get in touch"
            ),
        ));
    }
    bounded("reason", reason, WORDS_MAX, &mut violations);
    bounded(
        "contact_route",
        &request.contact_route,
        ROUTE_MAX,
        &mut violations,
    );
    bounded(
        "client_request_id",
        &request.client_request_id,
        ID_MAX,
        &mut violations,
    );
    if practitioner.purpose.is_none() {
        violations.push(FieldViolation::new(
            "context.purpose",
            "must be set: the purpose you ask the team to get in touch for",
        ));
    }
    let Some(urgency) = urgency.filter(|_| violations.is_empty()) else {
        return Err(Error::InvalidArgument(violations));
    };
    Ok(Requesting {
        system: Arc::clone(&caller.system),
        practitioner,
        answer_entry_id: request.answer_entry_id.trim().to_owned(),
        record_id: record_id.to_owned(),
        urgency,
        reason: reason.to_owned(),
        contact_route: request.contact_route.trim().to_owned(),
        client_request_id: request.client_request_id.trim().to_owned(),
        entry: entry_for(
            EntryKind::Contact,
            Decision::Recorded,
            Some(caller),
            request.context.as_ref(),
            Some(meta),
        ),
    })
}

/// An answer's fields checked, each fault named.
fn answering(
    caller: &Caller,
    meta: &RequestMeta,
    request: AnswerContactRequest,
) -> Result<Answering, Error> {
    let practitioner = practitioner(caller, request.context.clone())?;
    let mut violations = Vec::new();
    entry_id("request_id", &request.request_id, &mut violations);
    let outcome = outcome(request.outcome);
    let note = request.note.trim();
    let passed_to = request.passed_to_system_id.trim();
    match outcome {
        None => violations.push(FieldViolation::new(
            "outcome",
            "must be contacted, declined or passed_on",
        )),
        Some(Outcome::Declined) if note.is_empty() => violations.push(FieldViolation::new(
            "note",
            "must say why the request is declined",
        )),
        Some(Outcome::PassedOn) if passed_to.is_empty() => violations.push(FieldViolation::new(
            "passed_to_system_id",
            "must name the system of the team the request is passed to",
        )),
        Some(Outcome::Contacted | Outcome::Declined) if !passed_to.is_empty() => {
            violations.push(FieldViolation::new(
                "passed_to_system_id",
                "must be empty unless the outcome is passed_on",
            ))
        }
        Some(_) => {}
    }
    bounded("note", note, WORDS_MAX, &mut violations);
    let Some(outcome) = outcome.filter(|_| violations.is_empty()) else {
        return Err(Error::InvalidArgument(violations));
    };
    Ok(Answering {
        system: Arc::clone(&caller.system),
        practitioner,
        request_id: request.request_id.trim().to_owned(),
        outcome,
        note: note.to_owned(),
        passed_to: passed_to.to_owned(),
        entry: entry_for(
            EntryKind::Contact,
            Decision::Recorded,
            Some(caller),
            request.context.as_ref(),
            Some(meta),
        ),
    })
}

/// A request on the wire, its status as of `now`.
fn wire(thread: ContactThread, now: &str) -> proto::ContactRequest {
    let status = wire_status(thread.status(now));
    let current = thread.current_system().to_owned();
    let escalated = thread.escalated();
    let answered = thread.answer().cloned();
    let r = thread.request;
    proto::ContactRequest {
        request_id: r.request_id,
        status: status.into(),
        urgency: wire_urgency(r.urgency).into(),
        purpose: proto::Purpose::from(r.purpose).into(),
        reason: r.reason,
        answer_entry_id: r.answer_entry_id,
        record_id: r.record_id,
        category: r.category.as_str().into(),
        subject_person_id: r.subject_person_id,
        requester_system_id: r.requester_system,
        requester_practitioner_id: r.requester_practitioner,
        requester_role: proto::Role::from(r.requester_role).into(),
        requester_contact_route: r.requester_contact_route,
        owner_system_id: r.owner_system,
        team: r.team,
        team_contact_route: r.team_contact_route,
        current_system_id: current,
        created_at: r.created_at,
        due_at: r.due_at,
        outcome: wire_outcome(answered.as_ref().and_then(|a| a.outcome)).into(),
        answer_note: answered
            .as_ref()
            .map(|a| a.note.clone())
            .unwrap_or_default(),
        answered_at: answered.map(|a| a.recorded_at).unwrap_or_default(),
        escalated,
        steps: thread
            .steps
            .into_iter()
            .map(|s| proto::ContactStep {
                kind: s.kind.as_str().into(),
                outcome: wire_outcome(s.outcome).into(),
                note: s.note,
                by_system_id: s.by_system,
                by_practitioner_id: s.by_practitioner,
                to_system_ids: s.to_systems,
                recorded_at: s.recorded_at,
                disclosure_entry_id: s.log_entry_id,
            })
            .collect(),
        request_entry_id: r.log_entry_id,
        rules_version: r.rules_version,
    }
}

#[tonic::async_trait]
impl ContactService for ContactApi {
    async fn request_contact(
        &self,
        request: Request<RequestContactRequest>,
    ) -> Result<Response<RequestContactResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let asked = requesting(&caller, &meta, request)?;
            let (thread, entry_id) = self.contacts.request(asked).await?;
            Ok(RequestContactResponse {
                request: Some(wire(thread, &crate::domain::ledger::now())),
                disclosure_entry_id: entry_id,
            })
        })
        .await
    }

    async fn answer_contact(
        &self,
        request: Request<AnswerContactRequest>,
    ) -> Result<Response<AnswerContactResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let given = answering(&caller, &meta, request)?;
            let (thread, entry_id) = self.contacts.answer(given).await?;
            Ok(AnswerContactResponse {
                request: Some(wire(thread, &crate::domain::ledger::now())),
                disclosure_entry_id: entry_id,
            })
        })
        .await
    }

    async fn list_contact_requests(
        &self,
        request: Request<ListContactRequestsRequest>,
    ) -> Result<Response<ListContactRequestsResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let practitioner = practitioner(&caller, request.context.clone())?;
            let addressed_to_team = match proto::ContactScope::try_from(request.scope) {
                Ok(proto::ContactScope::AddressedToMyTeam) => true,
                Ok(proto::ContactScope::RequestedByMe | proto::ContactScope::Unspecified) => false,
                Err(_) => return Err(Error::invalid("scope", "is not a known scope")),
            };
            let entry = entry_for(
                EntryKind::Contact,
                Decision::Released,
                Some(&caller),
                request.context.as_ref(),
                Some(&meta),
            );
            let (threads, entry_id, now) = self
                .contacts
                .list(&caller.system, &practitioner, addressed_to_team, entry)
                .await?;
            Ok(ListContactRequestsResponse {
                requests: threads.into_iter().map(|t| wire(t, &now)).collect(),
                disclosure_entry_id: entry_id,
            })
        })
        .await
    }
}
