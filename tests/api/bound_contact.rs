//! The contact tables (issue 16's `contact_request` and `contact_step`) are bound to the
//! `contact` entries that carry each row whole: a row edited, deleted or inserted by
//! someone who owns the database and drops the append-only triggers first is caught by
//! verify and named; a step logged but not stored (the gateway stopped between the two)
//! is derived again from its entry at the next start; two gateway processes on one
//! database escalate an overdue request once.

use safegate::api::proto::{
    AnswerContactRequest, ContactOutcome, ContactScope, ContactStatus, ContactUrgency, Level,
    RequestContactRequest, Role,
};

use crate::bound_tables::{named, scalar, seq_of, verifies, verify};
use crate::contact::{
    as_practitioner, asking, contacts, health_visitor, iom_sees_the_health_visitor, requested,
    shown,
};
use crate::helpers::TestGateway;
use crate::ig_support::{police_query, query_dean, with_case};

/// The IOM officer asks the health visiting team to get in touch and the team answers
/// "contacted": (request id, the request's entry, the answer's entry).
async fn asked_and_answered(gateway: &TestGateway) -> (String, String, String) {
    let (answer, record, _) = iom_sees_the_health_visitor(gateway).await;
    let made = contacts(gateway, "police-iom")
        .await
        .request_contact(asking(
            &answer.disclosure_entry_id,
            &record,
            ContactUrgency::SameDay,
        ))
        .await
        .expect("requested")
        .into_inner();
    let request_id = made.request.expect("request").request_id;
    let answered = contacts(gateway, "health-visiting")
        .await
        .answer_contact(AnswerContactRequest {
            context: Some(health_visitor()),
            request_id: request_id.clone(),
            outcome: ContactOutcome::Contacted.into(),
            note: "Spoke to DC Shah".into(),
            passed_to_system_id: String::new(),
        })
        .await
        .expect("answered")
        .into_inner();
    (
        request_id,
        made.disclosure_entry_id,
        answered.disclosure_entry_id,
    )
}

#[tokio::test]
async fn contact_requests_are_bound_to_the_entries_that_record_them() {
    let (gateway, _case) = with_case().await;
    let police = police_query(&gateway).await;
    let (request_id, request_entry, _) = asked_and_answered(&gateway).await;
    let request_seq = seq_of(&gateway, &request_entry).await;
    let police_seq = seq_of(&gateway, &police).await;
    verifies(&gateway).await;
    let table = "contact_request";

    // The requester's reason, reworded in the stored payload.
    let edited = named(
        &gateway,
        table,
        format!(
            "UPDATE contact_request SET payload = REPLACE(payload, 'supervised', 'unsupervised') \
             WHERE request_id = '{request_id}'"
        ),
        Some(request_seq),
        &[table, &request_id, "`payload` (field `reason`)", "edited"],
    )
    .await;
    assert_eq!(edited.first_bad_entry_id, request_entry);
    // A deadline moved in its column.
    named(
        &gateway,
        table,
        format!(
            "UPDATE contact_request SET due_at = '2099-01-01T00:00:00Z' \
             WHERE request_id = '{request_id}'"
        ),
        Some(request_seq),
        &["`due_at`"],
    )
    .await;
    let deleted = named(
        &gateway,
        table,
        format!("DELETE FROM contact_request WHERE request_id = '{request_id}'"),
        Some(request_seq),
        &["contact_request has no row", "deleted"],
    )
    .await;
    assert_eq!(deleted.first_bad_entry_id, request_entry);
    // A forged request, a copy of the real one said to be recorded by `log_entry_id`.
    let forged = |log_entry_id: &str| {
        format!(
            "INSERT INTO contact_request (request_id, requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, log_entry_id) \
             SELECT 'forged-request', requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, '{log_entry_id}' \
             FROM contact_request WHERE request_id = '{request_id}'"
        )
    };
    // By the police query's entry, which records no request, and by no entry at all.
    named(
        &gateway,
        table,
        forged(&police),
        Some(police_seq),
        &["forged-request", "inserted"],
    )
    .await;
    named(
        &gateway,
        table,
        forged("no-such-entry"),
        None,
        &["forged-request", "no-such-entry, which does not exist"],
    )
    .await;
}

#[tokio::test]
async fn contact_steps_are_bound_to_the_entries_that_record_them() {
    let (gateway, _case) = with_case().await;
    let police = police_query(&gateway).await;
    let (request_id, _, answer_entry) = asked_and_answered(&gateway).await;
    let step_id = scalar(
        &gateway,
        &format!("SELECT step_id FROM contact_step WHERE request_id = '{request_id}'"),
    )
    .await;
    let answer_seq = seq_of(&gateway, &answer_entry).await;
    let police_seq = seq_of(&gateway, &police).await;
    let table = "contact_step";

    // "contacted" turned into "declined".
    let edited = named(
        &gateway,
        table,
        format!("UPDATE contact_step SET outcome = 'declined' WHERE step_id = '{step_id}'"),
        Some(answer_seq),
        &[table, &step_id, "`outcome`", "edited"],
    )
    .await;
    assert_eq!(edited.first_bad_entry_id, answer_entry);
    // The answer's words changed in the payload.
    named(
        &gateway,
        table,
        format!(
            "UPDATE contact_step SET payload = REPLACE(payload, 'Spoke to', 'Never spoke to') \
             WHERE step_id = '{step_id}'"
        ),
        None,
        &["`payload` (field `note`)"],
    )
    .await;
    named(
        &gateway,
        table,
        format!("DELETE FROM contact_step WHERE step_id = '{step_id}'"),
        Some(answer_seq),
        &["contact_step has no row", "deleted"],
    )
    .await;
    // A forged step: `kind`, `outcome`, `to_system` and `log_entry_id` as SQL.
    let forged = |columns: &str| {
        format!(
            "INSERT INTO contact_step (step_id, request_id, kind, outcome, to_system, payload, \
             recorded_at, log_entry_id) SELECT 'forged-step', request_id, {columns} FROM \
             contact_step WHERE step_id = '{step_id}'"
        )
    };
    // An escalation naming the police query's entry.
    named(
        &gateway,
        table,
        forged(&format!(
            "'escalated', '', '', payload, recorded_at, '{police}'"
        )),
        Some(police_seq),
        &["forged-step", "inserted"],
    )
    .await;
    // A second answer naming the real answer's entry, which records only one.
    named(
        &gateway,
        table,
        forged("kind, outcome, to_system, payload, recorded_at, log_entry_id"),
        Some(answer_seq),
        &["forged-step", "records only one"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_logged_but_not_stored_is_derived_again_from_its_entry_at_the_next_start() {
    let (gateway, case) = with_case().await;
    let (request_id, _, answer_entry) = asked_and_answered(&gateway).await;
    // The state a crash between logging the answer and storing it leaves: the entry in
    // the log, no row (removed as the owner could, since the row was stored here).
    crate::bound_tables::as_owner(
        &gateway,
        "contact_step",
        &[format!(
            "DELETE FROM contact_step WHERE request_id = '{request_id}'"
        )],
    )
    .await;
    let said = verify(&gateway).await;
    assert!(!said.valid);
    assert_eq!(said.first_bad_entry_id, answer_entry);
    assert!(
        said.problem.contains("logged but not stored"),
        "{}",
        said.problem
    );
    let iom = as_practitioner("IOM-0001", Role::IomOfficer);
    assert_eq!(
        requested(
            &gateway,
            "police-iom",
            iom.clone(),
            ContactScope::RequestedByMe
        )
        .await[0]
            .status(),
        ContactStatus::Open,
        "without its row the answer is not seen"
    );

    let gateway = gateway.crash_and_restart().await;
    let again = verify(&gateway).await;
    assert!(again.valid, "restored from the log: {}", again.problem);
    let listed = requested(&gateway, "police-iom", iom, ContactScope::RequestedByMe).await;
    assert_eq!(listed[0].request_id, request_id);
    assert_eq!(listed[0].status(), ContactStatus::Answered);
    // Restored once: another start finds nothing to restore.
    assert_eq!(gateway.contacts.restore_logged().await.expect("looked"), 0);
    drop(case);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateway_processes_on_one_database_escalate_an_overdue_request_once() {
    let (first, _case) = with_case().await;
    let second = first.another_on_the_same_database().await;
    let gp = as_practitioner("GP-0001", Role::Gp);
    let answer = query_dean(&first, "gp-practice", gp.clone())
        .await
        .expect("the GP is answered");
    let (record, _, _) = shown(&answer, "contact_arrangement", Level::Indicator);
    contacts(&first, "gp-practice")
        .await
        .request_contact(RequestContactRequest {
            context: Some(gp),
            ..asking(
                &answer.disclosure_entry_id,
                &record,
                ContactUrgency::Routine,
            )
        })
        .await
        .expect("requested");

    // Both processes sweep at once, on a clock past the deadline, several times over.
    let late = time::OffsetDateTime::now_utc() + time::Duration::days(4);
    let mut escalated = 0;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            first.contacts.escalate_overdue(late),
            second.contacts.escalate_overdue(late)
        );
        escalated += a.expect("first swept").len() + b.expect("second swept").len();
    }
    assert_eq!(escalated, 1, "escalated exactly once across both processes");
    let steps = scalar(
        &first,
        "SELECT CAST(COUNT(*) AS TEXT) FROM contact_step WHERE kind = 'escalated'",
    )
    .await;
    assert_eq!(steps, "1");
    // In the log: the request and one escalation.
    let logged = scalar(
        &first,
        "SELECT CAST(COUNT(*) AS TEXT) FROM disclosure_log \
         WHERE kind = 'contact' AND decision = 'recorded'",
    )
    .await;
    assert_eq!(logged, "2");
    let verified = verify(&first).await;
    assert!(verified.valid, "{}", verified.problem);
}
