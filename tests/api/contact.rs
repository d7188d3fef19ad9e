//! Contact requests: a practitioner shown a fact as an indicator asks the owning team to
//! get in touch; the team is told on its notification stream and answers; the requester
//! sees the status and is told the answer; unanswered requests become overdue on a
//! controlled clock and are escalated; every step is in the disclosure log and in the
//! subject's subject-access report.

use safegate::api::proto::{
    AnswerContactRequest, ContactOutcome, ContactRequest, ContactScope, ContactStatus,
    ContactUrgency, Level, ListContactRequestsRequest, ListNoticesRequest, Notice,
    PractitionerContext, Purpose, QueryResponse, ReleaseForSubjectAccessRequest,
    RequestContactRequest, Role, SubjectAccessReportRequest, SubscribeRequest,
    contact_service_client::ContactServiceClient,
    notification_service_client::NotificationServiceClient,
};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestGateway, auditor};
use crate::ig_support::{get, query_dean, with_case};

pub(crate) fn as_practitioner(id: &str, role: Role) -> PractitionerContext {
    PractitionerContext {
        practitioner_id: id.into(),
        role: role.into(),
        purpose: Purpose::ChildSafeguarding.into(),
        ..Default::default()
    }
}

fn iom() -> PractitionerContext {
    as_practitioner("IOM-0001", Role::IomOfficer)
}

pub(crate) fn health_visitor() -> PractitionerContext {
    as_practitioner("HV-0001", Role::HealthVisitor)
}

/// A fact shown in the answer at `level` in `category`: (record id, person id, owner).
pub(crate) fn shown(
    answer: &QueryResponse,
    category: &str,
    level: Level,
) -> (String, String, String) {
    shown_by(answer, category, level, None)
}

/// Like [`shown`], an indicator whose owner is `owner` when given.
fn shown_by(
    answer: &QueryResponse,
    category: &str,
    level: Level,
    owner: Option<&str>,
) -> (String, String, String) {
    answer
        .subject
        .iter()
        .chain(answer.linked.iter().filter_map(|l| l.person.as_ref()))
        .flat_map(|view| view.facts.iter().map(move |f| (view, f)))
        .find(|(_, f)| {
            f.category == category
                && f.level() == level
                && owner.is_none_or(|o| f.indicator.as_ref().is_some_and(|i| i.owner_system == o))
        })
        .map(|(view, f)| {
            let owner = f
                .indicator
                .as_ref()
                .map(|i| i.owner_system.clone())
                .unwrap_or_default();
            (f.record_id.clone(), view.person_id.clone(), owner)
        })
        .unwrap_or_else(|| panic!("no {category} shown at {level:?}"))
}

pub(crate) fn asking(entry: &str, record: &str, urgency: ContactUrgency) -> RequestContactRequest {
    RequestContactRequest {
        context: Some(iom()),
        answer_entry_id: entry.into(),
        record_id: record.into(),
        urgency: urgency.into(),
        reason: "Dean has supervised contact only; please share what you see at visits".into(),
        contact_route: "DC Shah, 0161 496 0000".into(),
        client_request_id: String::new(),
    }
}

pub(crate) async fn contacts(
    gateway: &TestGateway,
    system: &str,
) -> ContactServiceClient<tonic::transport::Channel> {
    ContactServiceClient::new(gateway.channel(system).await)
}

pub(crate) async fn requested(
    gateway: &TestGateway,
    system: &str,
    context: PractitionerContext,
    scope: ContactScope,
) -> Vec<ContactRequest> {
    contacts(gateway, system)
        .await
        .list_contact_requests(ListContactRequestsRequest {
            context: Some(context),
            scope: scope.into(),
        })
        .await
        .expect("listed")
        .into_inner()
        .requests
}

async fn notices(gateway: &TestGateway, system: &str, context: PractitionerContext) -> Vec<Notice> {
    NotificationServiceClient::new(gateway.channel(system).await)
        .list_notices(ListNoticesRequest {
            context: Some(context),
            after_cursor: 0,
            limit: 500,
        })
        .await
        .expect("notices")
        .into_inner()
        .notices
}

async fn report(gateway: &TestGateway, person_id: &str) -> Vec<String> {
    gateway
        .audit()
        .await
        .subject_access_report(SubjectAccessReportRequest {
            context: Some(auditor()),
            person_id: person_id.into(),
        })
        .await
        .expect("report")
        .into_inner()
        .disclosures
        .into_iter()
        .map(|d| d.entry_id)
        .collect()
}

/// The IOM officer's answer about Dean, and the health visitor's involvement it showed
/// as an indicator: (answer, record id, person id).
pub(crate) async fn iom_sees_the_health_visitor(
    gateway: &TestGateway,
) -> (QueryResponse, String, String) {
    let answer = query_dean(gateway, "police-iom", iom())
        .await
        .expect("the IOM officer is answered");
    let (record, person, _) = shown_by(
        &answer,
        "health_involvement",
        Level::Indicator,
        Some("health-visiting"),
    );
    (answer, record, person)
}

#[tokio::test]
async fn a_request_on_an_indicator_is_delivered_answered_and_shown_to_the_requester() {
    let (gateway, _case) = with_case().await;
    let (answer, record, person) = iom_sees_the_health_visitor(&gateway).await;

    // The health visiting team is subscribed before the request is made.
    let mut stream = NotificationServiceClient::new(gateway.channel("health-visiting").await)
        .subscribe(SubscribeRequest {
            context: Some(health_visitor()),
            after_cursor: 0,
        })
        .await
        .expect("subscribed")
        .into_inner();

    let made = contacts(&gateway, "police-iom")
        .await
        .request_contact(asking(
            &answer.disclosure_entry_id,
            &record,
            ContactUrgency::SameDay,
        ))
        .await
        .expect("requested")
        .into_inner();
    let request = made.request.expect("request");
    assert_eq!(request.status(), ContactStatus::Open);
    assert_eq!(request.owner_system_id, "health-visiting");
    assert_eq!(request.subject_person_id, person);
    assert_eq!(request.category, "health_involvement");
    assert!(request.due_at > request.created_at);
    let rules = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/contact.toml"
    ))
    .expect("contact rules");
    assert_eq!(request.rules_version, hex::encode(Sha256::digest(&rules)));

    // The team's stream delivers everything before it in order, then the request.
    let mut last_cursor = 0;
    let notice = loop {
        let next = stream
            .message()
            .await
            .expect("stream open")
            .expect("a notice")
            .notice
            .expect("notice");
        assert!(next.cursor > last_cursor, "in order");
        last_cursor = next.cursor;
        if next.rule == "contact_request" {
            break next;
        }
    };
    assert_eq!(notice.contact_request_id, request.request_id);
    assert_eq!(notice.subject_person_id, person);
    assert!(notice.headline.contains("supervised contact only"));
    assert!(notice.headline.contains("DC Shah, 0161 496 0000"));
    assert!(notice.headline.contains("same_day"));
    // Shaped by the policy: the team sees its own fact in detail.
    assert_eq!(notice.facts.len(), 1);
    assert_eq!(notice.facts[0].record_id, record);
    assert_eq!(notice.facts[0].level(), Level::Detail);
    let delivery = get(&gateway, &notice.disclosure_entry_id).await;
    assert_eq!(delivery.kind, "notification");
    assert_eq!(delivery.subject_person_id, person);
    assert!(
        delivery
            .rule_ids
            .contains(&"notify.contact_request".to_owned())
    );

    // The team sees it among the requests addressed to it, and answers.
    let addressed = requested(
        &gateway,
        "health-visiting",
        health_visitor(),
        ContactScope::AddressedToMyTeam,
    )
    .await;
    assert_eq!(addressed.len(), 1);
    assert_eq!(addressed[0].request_id, request.request_id);
    let answered = contacts(&gateway, "health-visiting")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(health_visitor()),
            request_id: request.request_id.clone(),
            outcome: ContactOutcome::Contacted.into(),
            note: "Spoke to DC Shah; we will share visit observations".into(),
            passed_to_system_id: String::new(),
        })
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(
        answered.request.expect("request").status(),
        ContactStatus::Answered
    );

    // Answering twice is refused by name; the first answer stands.
    let again = contacts(&gateway, "health-visiting")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(health_visitor()),
            request_id: request.request_id.clone(),
            outcome: ContactOutcome::Declined.into(),
            note: "changed our mind".into(),
            passed_to_system_id: String::new(),
        })
        .await
        .expect_err("answered already");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("contact.already_answered"));

    // The requester sees the status and the answer, and is told by a notice.
    let mine = requested(&gateway, "police-iom", iom(), ContactScope::RequestedByMe).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].status(), ContactStatus::Answered);
    assert_eq!(mine[0].outcome(), ContactOutcome::Contacted);
    assert!(mine[0].answer_note.contains("visit observations"));
    let told = notices(&gateway, "police-iom", iom()).await;
    let back = told
        .iter()
        .find(|n| n.rule == "contact_answer")
        .expect("the answer is a notice back");
    assert_eq!(back.contact_request_id, request.request_id);
    assert!(back.headline.contains("contacted"));
    // Shaped for the requester: still an indicator, nothing new.
    assert!(back.facts.iter().all(|f| f.level() == Level::Indicator));

    // Every step is in the log with the subject.
    let logged = get(&gateway, &made.disclosure_entry_id).await;
    assert_eq!(logged.kind, "contact");
    assert_eq!(logged.subject_person_id, person);
    assert!(logged.rule_ids.contains(&"contact.request".to_owned()));
    assert!(logged.canonical.contains(&request.rules_version));
    let answer_entry = get(&gateway, &answered.disclosure_entry_id).await;
    assert_eq!(answer_entry.kind, "contact");
    assert_eq!(answer_entry.subject_person_id, person);
    assert_eq!(answer_entry.rule_ids, ["contact.answer"]);

    // The subject-access report shows the answer and the deliveries at once, and the
    // police request once an IG officer releases it (law enforcement, DPA 2018 s45(4)).
    let sar = report(&gateway, &person).await;
    assert!(sar.contains(&answered.disclosure_entry_id), "{sar:?}");
    assert!(sar.contains(&notice.disclosure_entry_id));
    assert!(!sar.contains(&made.disclosure_entry_id));
    gateway
        .audit()
        .await
        .release_for_subject_access(ReleaseForSubjectAccessRequest {
            context: Some(auditor()),
            entry_id: made.disclosure_entry_id.clone(),
            note: "The subject asked who sought contact about them".into(),
        })
        .await
        .expect("released");
    assert!(
        report(&gateway, &person)
            .await
            .contains(&made.disclosure_entry_id)
    );
}

#[tokio::test]
async fn a_request_on_a_fact_never_shown_as_an_indicator_or_on_another_practitioners_answer_is_refused_and_logged()
 {
    let (gateway, _case) = with_case().await;
    let (answer, indicator, _) = iom_sees_the_health_visitor(&gateway).await;
    let (detail, detail_person, _) = shown(&answer, "court_order", Level::Detail);
    let mut client = contacts(&gateway, "police-iom").await;

    // A fact shown in detail, not as an indicator.
    let refused = client
        .request_contact(asking(
            &answer.disclosure_entry_id,
            &detail,
            ContactUrgency::Routine,
        ))
        .await
        .expect_err("not an indicator");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.get_details_error_info().expect("rule").reason,
        "contact.not_shown_as_indicator"
    );
    let logged = crate::ig_support::list(
        &gateway,
        safegate::api::proto::ListEntriesRequest {
            decision: "refused".into(),
            ..Default::default()
        },
    )
    .await;
    let entry = logged
        .iter()
        .find(|e| e.rule_ids == ["contact.not_shown_as_indicator"])
        .expect("the refusal is logged");
    assert_eq!(entry.subject_person_id, detail_person);

    // Another practitioner's answer, even on the same system.
    let mut other = asking(
        &answer.disclosure_entry_id,
        &indicator,
        ContactUrgency::Routine,
    );
    other.context = Some(as_practitioner("IOM-0002", Role::IomOfficer));
    let refused = client.request_contact(other).await.expect_err("not theirs");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.get_details_error_info().expect("rule").reason,
        "contact.not_your_answer"
    );
    // Another system presenting the IOM officer's entry.
    let mut hv = asking(
        &answer.disclosure_entry_id,
        &indicator,
        ContactUrgency::Routine,
    );
    hv.context = Some(health_visitor());
    let refused = contacts(&gateway, "health-visiting")
        .await
        .request_contact(hv)
        .await
        .expect_err("not theirs");
    assert!(refused.message().contains("contact.not_your_answer"));
    let logged = crate::ig_support::list(
        &gateway,
        safegate::api::proto::ListEntriesRequest {
            decision: "refused".into(),
            ..Default::default()
        },
    )
    .await;
    let not_yours: Vec<_> = logged
        .iter()
        .filter(|e| e.rule_ids == ["contact.not_your_answer"])
        .collect();
    assert_eq!(not_yours.len(), 2);
    assert!(not_yours.iter().all(|e| !e.subject_person_id.is_empty()));

    // Bad input names the field.
    let mut bad = asking("not-an-id", &indicator, ContactUrgency::Unspecified);
    bad.reason = "urgent".into();
    let invalid = client.request_contact(bad).await.expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let fields: Vec<String> = invalid
        .get_details_bad_request()
        .expect("bad request")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["answer_entry_id", "urgency", "reason"]);

    // Nothing was stored, and nobody was told.
    assert_eq!(gateway.count("contact_request").await, 0);
    assert!(
        notices(&gateway, "health-visiting", health_visitor())
            .await
            .iter()
            .all(|n| n.rule != "contact_request")
    );
}

#[tokio::test]
async fn overdue_requests_are_escalated_once_to_the_managers_role_on_a_controlled_clock() {
    let (gateway, _case) = with_case().await;
    let gp = as_practitioner("GP-0001", Role::Gp);
    let answer = query_dean(&gateway, "gp-practice", gp.clone())
        .await
        .expect("the GP is answered");
    // Children's Services' contact arrangement is an indicator for a GP.
    let (record, person, owner) = shown(&answer, "contact_arrangement", Level::Indicator);
    assert_eq!(owner, "childrens-services");
    let made = contacts(&gateway, "gp-practice")
        .await
        .request_contact(RequestContactRequest {
            context: Some(gp.clone()),
            ..asking(
                &answer.disclosure_entry_id,
                &record,
                ContactUrgency::Routine,
            )
        })
        .await
        .expect("requested")
        .into_inner();
    let request = made.request.expect("request");

    // The clock: nothing is overdue a day later; three days and a minute later it is.
    let now = time::OffsetDateTime::now_utc();
    let early = gateway
        .contacts
        .escalate_overdue(now + time::Duration::days(1))
        .await
        .expect("swept");
    assert!(early.is_empty());
    assert_eq!(
        requested(
            &gateway,
            "gp-practice",
            gp.clone(),
            ContactScope::RequestedByMe
        )
        .await[0]
            .status(),
        ContactStatus::Open
    );
    let late = now + time::Duration::days(3) + time::Duration::minutes(2);
    let escalated = gateway
        .contacts
        .escalate_overdue(late)
        .await
        .expect("swept");
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].request_id, request.request_id);
    assert_eq!(escalated[0].notified, ["childrens-services", "gp-practice"]);
    // Once only.
    assert!(
        gateway
            .contacts
            .escalate_overdue(late)
            .await
            .expect("swept")
            .is_empty()
    );

    let mine = requested(
        &gateway,
        "gp-practice",
        gp.clone(),
        ContactScope::RequestedByMe,
    )
    .await;
    assert_eq!(mine[0].status(), ContactStatus::Overdue);
    assert!(mine[0].escalated);
    let manager = as_practitioner("TM-0001", Role::TeamManager);
    let told = notices(&gateway, "childrens-services", manager.clone()).await;
    let escalation = told
        .iter()
        .find(|n| n.rule == "contact_overdue")
        .expect("the manager is told");
    assert_eq!(escalation.recipient_role(), Role::TeamManager);
    assert_eq!(escalation.contact_request_id, request.request_id);
    assert!(
        notices(&gateway, "gp-practice", gp.clone())
            .await
            .iter()
            .any(|n| n.rule == "contact_overdue" && n.contact_request_id == request.request_id)
    );
    let step = get(&gateway, &escalated[0].entry_id).await;
    assert_eq!(step.kind, "contact");
    assert_eq!(step.rule_ids, ["contact.escalation"]);
    assert_eq!(step.subject_person_id, person);
    assert_eq!(step.recipient_system, "childrens-services");

    // The manager may answer for the team; the requester then sees it answered.
    contacts(&gateway, "childrens-services")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(manager),
            request_id: request.request_id.clone(),
            outcome: ContactOutcome::Declined.into(),
            note: "The allocated social worker will raise it at the core group".into(),
            passed_to_system_id: String::new(),
        })
        .await
        .expect("the manager answers");
    let mine = requested(&gateway, "gp-practice", gp, ContactScope::RequestedByMe).await;
    assert_eq!(mine[0].status(), ContactStatus::Answered);
    assert_eq!(mine[0].outcome(), ContactOutcome::Declined);

    // Request, escalation and answer are in the subject's report (no police entries here).
    let sar = report(&gateway, &person).await;
    for entry in [
        &made.disclosure_entry_id,
        &escalated[0].entry_id,
        &escalation.disclosure_entry_id,
    ] {
        assert!(sar.contains(entry), "{entry} missing from {sar:?}");
    }
}

#[tokio::test]
async fn without_a_manager_role_the_team_is_reminded_and_a_request_can_be_passed_on() {
    let (gateway, _case) = with_case().await;
    let (answer, record, _) = iom_sees_the_health_visitor(&gateway).await;
    let made = contacts(&gateway, "police-iom")
        .await
        .request_contact(asking(
            &answer.disclosure_entry_id,
            &record,
            ContactUrgency::ImmediateRisk,
        ))
        .await
        .expect("requested")
        .into_inner();
    let request = made.request.expect("request");
    let late = time::OffsetDateTime::now_utc() + time::Duration::minutes(61);
    let escalated = gateway
        .contacts
        .escalate_overdue(late)
        .await
        .expect("swept");
    // Health has no manager role in policies/contact.toml: the team itself is reminded.
    assert_eq!(escalated[0].notified, ["health-visiting", "police-iom"]);
    assert!(
        notices(&gateway, "health-visiting", health_visitor())
            .await
            .iter()
            .any(|n| n.rule == "contact_overdue" && n.headline.contains("Overdue"))
    );

    // The team passes it to the GP practice, which then holds and answers it.
    let passed = contacts(&gateway, "health-visiting")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(health_visitor()),
            request_id: request.request_id.clone(),
            outcome: ContactOutcome::PassedOn.into(),
            note: "The GP sees Chloe weekly".into(),
            passed_to_system_id: "gp-practice".into(),
        })
        .await
        .expect("passed on")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(passed.current_system_id, "gp-practice");
    assert_eq!(passed.status(), ContactStatus::Overdue, "still unanswered");
    let gp = as_practitioner("GP-0001", Role::Gp);
    assert!(
        notices(&gateway, "gp-practice", gp.clone())
            .await
            .iter()
            .any(|n| n.rule == "contact_request" && n.contact_request_id == request.request_id)
    );
    // The team that passed it may no longer answer.
    let refused = contacts(&gateway, "health-visiting")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(health_visitor()),
            request_id: request.request_id.clone(),
            outcome: ContactOutcome::Contacted.into(),
            note: String::new(),
            passed_to_system_id: String::new(),
        })
        .await
        .expect_err("no longer theirs");
    assert!(refused.message().contains("contact.not_addressed_to_you"));
    let done = contacts(&gateway, "gp-practice")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(gp),
            request_id: request.request_id.clone(),
            outcome: ContactOutcome::Contacted.into(),
            note: String::new(),
            passed_to_system_id: String::new(),
        })
        .await
        .expect("the GP answers")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(done.status(), ContactStatus::Answered);
    assert_eq!(done.steps.len(), 3, "escalated, passed on, answered");
}
