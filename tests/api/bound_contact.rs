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

use crate::bound_tables::{caught, scalar, seq_of, verify};
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
    let before = verify(&gateway).await;
    assert!(
        before.valid,
        "untouched log must verify: {}",
        before.problem
    );

    // The requester's reason, reworded in the stored payload.
    let edited = caught(
        &gateway,
        "contact_request",
        &[format!(
            "UPDATE contact_request SET payload = REPLACE(payload, 'supervised', 'unsupervised') \
             WHERE request_id = '{request_id}'"
        )],
    )
    .await;
    assert_eq!(edited.first_bad_seq, request_seq, "{}", edited.problem);
    assert_eq!(edited.first_bad_entry_id, request_entry);
    assert!(
        edited.problem.contains("contact_request")
            && edited.problem.contains(&request_id)
            && edited.problem.contains("`payload` (field `reason`)")
            && edited.problem.contains("edited"),
        "{}",
        edited.problem
    );

    // A deadline moved in its column.
    let moved = caught(
        &gateway,
        "contact_request",
        &[format!(
            "UPDATE contact_request SET due_at = '2099-01-01T00:00:00Z' \
             WHERE request_id = '{request_id}'"
        )],
    )
    .await;
    assert_eq!(moved.first_bad_seq, request_seq, "{}", moved.problem);
    assert!(moved.problem.contains("`due_at`"), "{}", moved.problem);

    let deleted = caught(
        &gateway,
        "contact_request",
        &[format!(
            "DELETE FROM contact_request WHERE request_id = '{request_id}'"
        )],
    )
    .await;
    assert_eq!(deleted.first_bad_seq, request_seq, "{}", deleted.problem);
    assert_eq!(deleted.first_bad_entry_id, request_entry);
    assert!(
        deleted.problem.contains("contact_request has no row")
            && deleted.problem.contains("deleted"),
        "{}",
        deleted.problem
    );

    // A forged request naming the police query's entry, which records no request.
    let inserted = caught(
        &gateway,
        "contact_request",
        &[format!(
            "INSERT INTO contact_request (request_id, requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, log_entry_id) \
             SELECT 'forged-request', requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, '{police}' \
             FROM contact_request WHERE request_id = '{request_id}'"
        )],
    )
    .await;
    assert_eq!(inserted.first_bad_seq, police_seq, "{}", inserted.problem);
    assert!(
        inserted.problem.contains("forged-request") && inserted.problem.contains("inserted"),
        "{}",
        inserted.problem
    );

    // A forged request naming an entry that does not exist.
    let nowhere = caught(
        &gateway,
        "contact_request",
        &[format!(
            "INSERT INTO contact_request (request_id, requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, log_entry_id) \
             SELECT 'forged-request', requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, 'no-such-entry' \
             FROM contact_request WHERE request_id = '{request_id}'"
        )],
    )
    .await;
    assert!(
        nowhere.problem.contains("forged-request")
            && nowhere
                .problem
                .contains("no-such-entry, which does not exist"),
        "{}",
        nowhere.problem
    );
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

    // "contacted" turned into "declined".
    let edited = caught(
        &gateway,
        "contact_step",
        &[format!(
            "UPDATE contact_step SET outcome = 'declined' WHERE step_id = '{step_id}'"
        )],
    )
    .await;
    assert_eq!(edited.first_bad_seq, answer_seq, "{}", edited.problem);
    assert_eq!(edited.first_bad_entry_id, answer_entry);
    assert!(
        edited.problem.contains("contact_step")
            && edited.problem.contains(&step_id)
            && edited.problem.contains("`outcome`")
            && edited.problem.contains("edited"),
        "{}",
        edited.problem
    );

    // The answer's words changed in the payload.
    let reworded = caught(
        &gateway,
        "contact_step",
        &[format!(
            "UPDATE contact_step SET payload = REPLACE(payload, 'Spoke to', 'Never spoke to') \
             WHERE step_id = '{step_id}'"
        )],
    )
    .await;
    assert!(
        reworded.problem.contains("`payload` (field `note`)"),
        "{}",
        reworded.problem
    );

    let deleted = caught(
        &gateway,
        "contact_step",
        &[format!(
            "DELETE FROM contact_step WHERE step_id = '{step_id}'"
        )],
    )
    .await;
    assert_eq!(deleted.first_bad_seq, answer_seq, "{}", deleted.problem);
    assert!(
        deleted.problem.contains("contact_step has no row") && deleted.problem.contains("deleted"),
        "{}",
        deleted.problem
    );

    // A forged escalation naming the police query's entry.
    let inserted = caught(
        &gateway,
        "contact_step",
        &[format!(
            "INSERT INTO contact_step (step_id, request_id, kind, outcome, to_system, payload, \
             recorded_at, log_entry_id) SELECT 'forged-step', request_id, 'escalated', '', '', \
             payload, recorded_at, '{police}' FROM contact_step WHERE step_id = '{step_id}'"
        )],
    )
    .await;
    assert_eq!(inserted.first_bad_seq, police_seq, "{}", inserted.problem);
    assert!(
        inserted.problem.contains("forged-step") && inserted.problem.contains("inserted"),
        "{}",
        inserted.problem
    );

    // A second answer naming the real answer's entry, which records only one.
    let twice = caught(
        &gateway,
        "contact_step",
        &[format!(
            "INSERT INTO contact_step (step_id, request_id, kind, outcome, to_system, payload, \
             recorded_at, log_entry_id) SELECT 'forged-step', request_id, kind, outcome, \
             to_system, payload, recorded_at, log_entry_id FROM contact_step \
             WHERE step_id = '{step_id}'"
        )],
    )
    .await;
    assert_eq!(twice.first_bad_seq, answer_seq, "{}", twice.problem);
    assert!(
        twice.problem.contains("forged-step") && twice.problem.contains("records only one"),
        "{}",
        twice.problem
    );
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
