//! Privacy alerts end to end: the gateway's own rules over its own log, on both databases.
//! Real traffic (queries, refusals, break-glass, involvements published and ended) goes
//! through the public API; patterns that need days or hours of history are planted through
//! the gateway's own append path with chosen times, and deadlines are checked "as at" a
//! chosen time, so nothing waits on the wall clock.

use std::path::{Path, PathBuf};

use safegate::api::proto::{
    self, AlertOutcome, AlertState, AssignAlertRequest, CloseAlertRequest, Fact, GetAlertRequest,
    Identifier, IdentifierScheme, ListAlertsRequest, ListNoticesRequest, PersonRef,
    PractitionerContext, PrivacyAlert, PublishRequest, Purpose, Role,
    alert_service_client::AlertServiceClient,
    notification_service_client::NotificationServiceClient,
};
use safegate::demo::case::{self, DEAN_PNC, LoadedCase};
use safegate::domain::alerts::clock::parse_utc;
use safegate::domain::ledger::{Decision, Entry, EntryKind};
use sha2::{Digest, Sha256};

use crate::bound_tables::{caught, verify};
use crate::helpers::{TestGateway, acting, auditor, spawn_gateway_with_policy, temp_dir};
use crate::ig_support::{
    audit_cli, break_glass_query, query_dean, refusal_entries, refused_school_query, stdout,
};

const REPO_POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// The reviewed policies, with the alert rules edited by `edit`, in a directory of their own.
fn policies(edit: impl Fn(String) -> String) -> PathBuf {
    let dir = temp_dir("alert-policies");
    for file in std::fs::read_dir(REPO_POLICIES).expect("policies dir") {
        let path = file.expect("policy file").path();
        std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy policy");
    }
    let rules = std::fs::read_to_string(dir.join("alerts.toml")).expect("alerts.toml");
    std::fs::write(dir.join("alerts.toml"), edit(rules)).expect("write alerts.toml");
    dir
}

/// The reviewed rules with working hours that cover the whole day, so that real traffic
/// at whatever time the tests run is never out of hours.
fn all_day(rules: String) -> String {
    rules
        .replace("start = \"07:00\"", "start = \"00:00\"")
        .replace("end = \"20:00\"", "end = \"24:00\"")
        .replace("weekdays_only = true", "weekdays_only = false")
}

fn version(dir: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(dir.join("alerts.toml")).expect("read rules"),
    ))
}

async fn with_case_on(dir: &Path) -> (TestGateway, LoadedCase) {
    let gateway = spawn_gateway_with_policy(dir).await;
    let loaded = case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    (gateway, loaded)
}

async fn client(gateway: &TestGateway) -> AlertServiceClient<tonic::transport::Channel> {
    AlertServiceClient::new(gateway.channel("ig-office").await)
}

/// Evaluates everything committed so far as this gateway (which must be the evaluator).
async fn evaluate(gateway: &TestGateway, as_at: Option<i64>) {
    assert!(
        gateway.alerts.sync(as_at).await.expect("evaluation runs"),
        "this gateway evaluates the rules"
    );
}

async fn alerts(gateway: &TestGateway) -> Vec<PrivacyAlert> {
    client(gateway)
        .await
        .list_alerts(ListAlertsRequest {
            context: Some(auditor()),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("list alerts")
        .into_inner()
        .alerts
}

fn of_rule<'a>(alerts: &'a [PrivacyAlert], rule: &str) -> Vec<&'a PrivacyAlert> {
    alerts.iter().filter(|a| a.rule_id == rule).collect()
}

/// A question entry as the gateway would write it, at a chosen time.
fn planted(at: &str, system: &str, agency: &str, practitioner: &str, role: &str) -> Entry {
    let mut entry = Entry::new(EntryKind::Query, Decision::Released);
    entry.recorded_at = at.into();
    entry.rpc = "safegate.v1.QueryService/Query".into();
    entry.agency = agency.into();
    entry.system_id = system.into();
    entry.practitioner_id = practitioner.into();
    entry.role = role.into();
    entry.purpose = "child_safeguarding".into();
    entry.subject_person_id = format!("p-planted-{}", uuid::Uuid::new_v4().simple());
    entry
}

async fn plant(gateway: &TestGateway, entry: Entry) -> String {
    gateway
        .ledger
        .append(entry)
        .await
        .expect("planted entry committed")
        .entry_id
}

fn dean() -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
            scheme: IdentifierScheme::PncId.into(),
            value: DEAN_PNC.into(),
            namespace: String::new(),
        })),
    })
}

fn school_dsl() -> PractitionerContext {
    PractitionerContext {
        practitioner_id: "DSL-0900".into(),
        role: Role::SchoolDsl.into(),
        purpose: Purpose::ChildSafeguarding.into(),
        ..Default::default()
    }
}

/// The primary school records an involvement with Dean; returns its record id.
async fn school_involvement(gateway: &TestGateway, label: &str) -> String {
    gateway
        .records("primary-school")
        .await
        .publish(PublishRequest {
            context: Some(acting("primary-school")),
            client_request_id: label.into(),
            fact: Some(Fact {
                category: Some(proto::fact::Category::Involvement(proto::Involvement {
                    person: dean(),
                    team: "Designated safeguarding lead".into(),
                    contact_route: "dsl@primary.example.test".into(),
                    practitioner_id: String::new(),
                    start_date: "2024-01-10".into(),
                    end_date: String::new(),
                })),
            }),
        })
        .await
        .expect("involvement published")
        .into_inner()
        .receipt
        .expect("receipt")
        .record_id
}

#[tokio::test]
async fn a_burst_of_refusals_is_one_alert_that_ig_is_told_of_and_works_to_closed() {
    let dir = policies(all_day);
    let (gateway, _case) = with_case_on(&dir).await;
    // Ordinary traffic: the case's own publishing, a police question, four refusals.
    crate::ig_support::police_query(&gateway).await;
    for _ in 0..4 {
        refused_school_query(&gateway).await;
    }
    evaluate(&gateway, None).await;
    assert!(
        alerts(&gateway).await.is_empty(),
        "four refusals are ordinary"
    );

    refused_school_query(&gateway).await;
    evaluate(&gateway, None).await;
    let raised = alerts(&gateway).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let alert = raised[0].clone();
    assert_eq!(alert.rule_id, "alerts.repeated_refusals");
    assert_eq!(alert.rules_version, version(&dir));
    assert_eq!(alert.state(), AlertState::Open);
    assert_eq!(
        (alert.system_id.as_str(), alert.practitioner_id.as_str()),
        ("primary-school", "DSL-0900")
    );
    assert!(
        alert.summary.contains("was refused 5 times"),
        "{}",
        alert.summary
    );
    assert!(
        alert.summary.contains("probing"),
        "the rule's words: {}",
        alert.summary
    );
    let refusals: Vec<String> = refusal_entries(&gateway)
        .await
        .into_iter()
        .filter(|e| e.practitioner_id == "DSL-0900")
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(
        alert.entry_ids, refusals,
        "the alert links the five refusals"
    );
    // Evaluating again raises nothing twice.
    evaluate(&gateway, None).await;
    assert_eq!(alerts(&gateway).await.len(), 1);

    // The IG office was told, on its notification stream.
    let notices = NotificationServiceClient::new(gateway.channel("ig-office").await)
        .list_notices(ListNoticesRequest {
            context: Some(acting("ig-office")),
            after_cursor: 0,
            limit: 500,
        })
        .await
        .expect("IG notices")
        .into_inner()
        .notices;
    let told: Vec<_> = notices
        .iter()
        .filter(|n| n.rule == "privacy_alert")
        .collect();
    assert_eq!(told.len(), 1, "{notices:?}");
    assert!(
        told[0].headline.contains(&alert.alert_id),
        "{}",
        told[0].headline
    );

    // Reading the alert shows its entries, and is itself logged.
    let mut ig = client(&gateway).await;
    let got = ig
        .get_alert(GetAlertRequest {
            context: Some(auditor()),
            alert_id: alert.alert_id.clone(),
        })
        .await
        .expect("get alert")
        .into_inner();
    let shown: Vec<String> = got.entries.iter().map(|e| e.entry_id.clone()).collect();
    assert_eq!(shown, alert.entry_ids);
    let reads = crate::ig_support::list(
        &gateway,
        proto::ListEntriesRequest {
            kind: "log_read".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        reads
            .iter()
            .any(|r| r.rule_ids == vec!["audit.alert_read".to_owned()]
                && r.released.iter().any(|d| d.record_id == alert.alert_id)
                && r.released
                    .iter()
                    .filter(|d| d.category == "disclosure_log")
                    .count()
                    == 5),
        "GetAlert wrote its own log entry naming the alert and the entries shown"
    );

    // The case: it cannot close before it is assigned...
    let close = |outcome: AlertOutcome, note: &str| CloseAlertRequest {
        context: Some(auditor()),
        alert_id: alert.alert_id.clone(),
        outcome: outcome.into(),
        note: note.into(),
    };
    let early = ig
        .close_alert(close(AlertOutcome::Explained, "looked fine"))
        .await
        .expect_err("not assigned yet");
    assert_eq!(early.code(), tonic::Code::FailedPrecondition);
    assert!(
        early.message().contains("alerts.case_not_assigned"),
        "{}",
        early.message()
    );
    // ...is assigned...
    let assigned = ig
        .assign_alert(AssignAlertRequest {
            context: Some(auditor()),
            alert_id: alert.alert_id.clone(),
            assignee: "IG-0002".into(),
            note: String::new(),
        })
        .await
        .expect("assigned")
        .into_inner()
        .alert
        .expect("alert");
    assert_eq!(assigned.state(), AlertState::Assigned);
    assert_eq!(assigned.assignee, "IG-0002");
    // ...needs a note and an outcome to close...
    let unexplained = ig
        .close_alert(close(AlertOutcome::Breach, "  "))
        .await
        .expect_err("a note is needed");
    assert_eq!(unexplained.code(), tonic::Code::InvalidArgument);
    assert!(
        unexplained.message().contains("note"),
        "{}",
        unexplained.message()
    );
    let no_outcome = ig
        .close_alert(close(
            AlertOutcome::Unspecified,
            "the DSL probed five names",
        ))
        .await
        .expect_err("an outcome is needed");
    assert_eq!(no_outcome.code(), tonic::Code::InvalidArgument);
    assert!(
        no_outcome.message().contains("outcome"),
        "{}",
        no_outcome.message()
    );
    // ...closes with them, and stays closed.
    let closed = ig
        .close_alert(close(
            AlertOutcome::Breach,
            "The DSL asked about five people the school has no involvement with; referred to the DPO",
        ))
        .await
        .expect("closed")
        .into_inner()
        .alert
        .expect("alert");
    assert_eq!(closed.state(), AlertState::Closed);
    assert_eq!(closed.outcome(), AlertOutcome::Breach);
    assert_eq!(
        closed
            .history
            .iter()
            .map(|s| s.action.as_str())
            .collect::<Vec<_>>(),
        ["assigned", "closed"]
    );
    let again = ig
        .close_alert(close(AlertOutcome::Explained, "second thoughts"))
        .await
        .expect_err("closed stays closed");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let reassign = ig
        .assign_alert(AssignAlertRequest {
            context: Some(auditor()),
            alert_id: alert.alert_id.clone(),
            assignee: "IG-0003".into(),
            note: String::new(),
        })
        .await
        .expect_err("a closed case is never reopened");
    assert_eq!(reassign.code(), tonic::Code::FailedPrecondition);
    let closed_list = client(&gateway)
        .await
        .list_alerts(ListAlertsRequest {
            context: Some(auditor()),
            state: AlertState::Closed.into(),
            ..Default::default()
        })
        .await
        .expect("filter by state")
        .into_inner()
        .alerts;
    assert_eq!(closed_list.len(), 1);
    let open_list = client(&gateway)
        .await
        .list_alerts(ListAlertsRequest {
            context: Some(auditor()),
            state: AlertState::Open.into(),
            ..Default::default()
        })
        .await
        .expect("filter by state")
        .into_inner()
        .alerts;
    assert!(open_list.is_empty());

    // Every row is proven by the log: tampering with the alert or its history is caught.
    let untouched = verify(&gateway).await;
    assert!(untouched.valid, "{}", untouched.problem);
    let edited = caught(
        &gateway,
        "privacy_alert",
        &["UPDATE privacy_alert SET summary = 'nothing to see'".into()],
    )
    .await;
    assert!(
        edited.problem.contains("privacy_alert"),
        "{}",
        edited.problem
    );
    assert!(edited.problem.contains("summary"), "{}", edited.problem);
    let softened = caught(
        &gateway,
        "privacy_alert_event",
        &[
            "UPDATE privacy_alert_event SET outcome = 'false_positive' WHERE action = 'closed'"
                .into(),
        ],
    )
    .await;
    assert!(
        softened.problem.contains("privacy_alert_event"),
        "{}",
        softened.problem
    );
    assert!(softened.problem.contains("outcome"), "{}", softened.problem);
    let erased = caught(
        &gateway,
        "privacy_alert_event",
        &["DELETE FROM privacy_alert_event WHERE action = 'closed'".into()],
    )
    .await;
    assert!(erased.problem.contains("no row"), "{}", erased.problem);
}

#[tokio::test]
async fn only_ig_officers_work_alerts_and_bad_requests_name_the_field() {
    let gateway = spawn_gateway_with_policy(&policies(all_day)).await;
    let police = AlertServiceClient::new(gateway.channel("police-iom").await)
        .list_alerts(ListAlertsRequest {
            context: Some(PractitionerContext {
                practitioner_id: "IOM-0001".into(),
                role: Role::IomOfficer.into(),
                purpose: Purpose::OffenderManagement.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("not an IG officer");
    assert_eq!(police.code(), tonic::Code::PermissionDenied);
    assert!(
        police.message().contains("audit.ig_officer_only"),
        "{}",
        police.message()
    );
    let no_purpose = client(&gateway)
        .await
        .list_alerts(ListAlertsRequest {
            context: Some(PractitionerContext {
                purpose: Purpose::ChildSafeguarding.into(),
                ..auditor()
            }),
            ..Default::default()
        })
        .await
        .expect_err("the purpose must be audit");
    assert_eq!(no_purpose.code(), tonic::Code::PermissionDenied);
    assert!(
        no_purpose.message().contains("audit.purpose_audit"),
        "{}",
        no_purpose.message()
    );
    let mut ig = client(&gateway).await;
    let page = ig
        .list_alerts(ListAlertsRequest {
            context: Some(auditor()),
            page_size: 501,
            ..Default::default()
        })
        .await
        .expect_err("page too large");
    assert_eq!(page.code(), tonic::Code::InvalidArgument);
    assert!(page.message().contains("page_size"), "{}", page.message());
    let malformed = ig
        .get_alert(GetAlertRequest {
            context: Some(auditor()),
            alert_id: "not-an-id".into(),
        })
        .await
        .expect_err("malformed id");
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);
    assert!(
        malformed.message().contains("alert_id"),
        "{}",
        malformed.message()
    );
    let unknown = ig
        .get_alert(GetAlertRequest {
            context: Some(auditor()),
            alert_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("no such alert");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    // The refusals were logged like any other.
    let refused = refusal_entries(&gateway).await;
    assert!(
        refused
            .iter()
            .any(|e| e.rpc == "safegate.v1.AlertService/ListAlerts" && e.system_id == "police-iom"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn break_glass_needs_an_involvement_from_the_same_system_by_its_deadline() {
    let (gateway, _case) = with_case_on(&policies(all_day)).await;
    // A real break-glass, after which the school records that it works with Dean.
    let explained = break_glass_query(&gateway).await;
    school_involvement(&gateway, "school-dean-1").await;
    // A planted break-glass from another school, about a person it never records.
    let mut glass = planted(
        &Entry::new(EntryKind::Query, Decision::Released).recorded_at,
        "nursery",
        "education",
        "DSL-0001",
        "school_dsl",
    );
    glass.break_glass = true;
    let unexplained = plant(&gateway, glass.clone()).await;
    let at = parse_utc(&glass.recorded_at).expect("time");
    evaluate(&gateway, Some(at + 71 * 3_600)).await;
    assert!(
        of_rule(
            &alerts(&gateway).await,
            "alerts.break_glass_without_involvement"
        )
        .is_empty(),
        "not before the 72-hour deadline"
    );
    evaluate(&gateway, Some(at + 73 * 3_600)).await;
    let raised = alerts(&gateway).await;
    let found = of_rule(&raised, "alerts.break_glass_without_involvement");
    assert_eq!(found.len(), 1, "{raised:?}");
    assert_eq!(found[0].entry_ids, vec![unexplained.clone()]);
    assert!(!found[0].entry_ids.contains(&explained));
    assert!(
        found[0].summary.contains("within 72 hours"),
        "{}",
        found[0].summary
    );
}

#[tokio::test]
async fn an_involvement_recorded_for_one_question_and_ended_after_it_is_an_alert() {
    let (gateway, _case) = with_case_on(&policies(all_day)).await;
    // The school records an involvement, asks about Dean, and ends it.
    let involvement = school_involvement(&gateway, "school-dean-2").await;
    let answer = query_dean(&gateway, "primary-school", school_dsl())
        .await
        .expect("legitimate now");
    assert!(!answer.break_glass);
    evaluate(&gateway, None).await;
    assert!(
        of_rule(&alerts(&gateway).await, "alerts.involvement_window").is_empty(),
        "an open involvement is ordinary"
    );
    gateway
        .records("primary-school")
        .await
        .end_fact(proto::EndFactRequest {
            context: Some(acting("primary-school")),
            client_request_id: "school-dean-2-end".into(),
            record_id: involvement.clone(),
            end_date: "2024-01-11".into(),
            reason: proto::EndReason::Closed.into(),
        })
        .await
        .expect("ended");
    evaluate(&gateway, None).await;
    let raised = alerts(&gateway).await;
    let found = of_rule(&raised, "alerts.involvement_window");
    assert_eq!(found.len(), 1, "{raised:?}");
    assert_eq!(found[0].entry_ids, vec![answer.disclosure_entry_id.clone()]);
    assert!(
        found[0].summary.contains(&involvement),
        "{}",
        found[0].summary
    );
    // The police's involvements in the case were recorded and never ended: no alert.
    assert!(found.iter().all(|a| a.system_id == "primary-school"));
}

#[tokio::test]
async fn volume_above_a_practitioners_own_usual_and_out_of_hours_fire_on_planted_history() {
    // The reviewed rules, as they stand.
    let dir = policies(|rules| rules);
    let gateway = spawn_gateway_with_policy(&dir).await;
    let day = |d: u32, hh: u32, mm: u32| format!("2025-01-{d:02}T{hh:02}:{mm:02}:00.000000Z");
    // Two practitioners, ten questions a working day each for two weeks (09:00-14:00 GMT).
    for d in [6, 7, 8, 9, 10, 13, 14, 15, 16, 17] {
        for i in 0..10 {
            for who in ["HV-0500", "HV-0501"] {
                plant(
                    &gateway,
                    planted(
                        &day(d, 9 + i / 2, 0),
                        "health-visiting",
                        "health",
                        who,
                        "health_visitor",
                    ),
                )
                .await;
            }
        }
    }
    // Monday: HV-0500 asks 31 questions, HV-0501 their usual ten.
    for i in 0..31 {
        plant(
            &gateway,
            planted(
                &day(20, 9 + i / 6, i % 6 * 10),
                "health-visiting",
                "health",
                "HV-0500",
                "health_visitor",
            ),
        )
        .await;
    }
    for i in 0..10 {
        plant(
            &gateway,
            planted(
                &day(20, 9 + i / 2, 0),
                "health-visiting",
                "health",
                "HV-0501",
                "health_visitor",
            ),
        )
        .await;
    }
    // Out of hours: 06:30 GMT in January (out), 06:30 UTC in July = 07:30 BST (in).
    plant(
        &gateway,
        planted(
            "2025-01-21T06:30:00.000000Z",
            "gp-practice",
            "health",
            "GP-0501",
            "gp",
        ),
    )
    .await;
    plant(
        &gateway,
        planted(
            "2025-07-14T06:30:00.000000Z",
            "gp-practice",
            "health",
            "GP-0502",
            "gp",
        ),
    )
    .await;
    // Police at night: not an office-hours role.
    plant(
        &gateway,
        planted(
            "2025-01-21T02:00:00.000000Z",
            "police-iom",
            "police",
            "IOM-0501",
            "iom_officer",
        ),
    )
    .await;
    evaluate(&gateway, None).await;

    let raised = alerts(&gateway).await;
    let volume = of_rule(&raised, "alerts.volume_above_usual");
    assert_eq!(volume.len(), 1, "{raised:?}");
    assert_eq!(volume[0].practitioner_id, "HV-0500");
    assert!(
        volume[0].summary.contains("on 2025-01-20"),
        "{}",
        volume[0].summary
    );
    assert!(
        volume[0].summary.contains("their own usual of 10.0"),
        "{}",
        volume[0].summary
    );
    let night = of_rule(&raised, "alerts.out_of_hours");
    assert_eq!(night.len(), 1, "{raised:?}");
    assert_eq!(night[0].practitioner_id, "GP-0501");
    assert!(
        night[0].summary.contains("06:30 UK time on 2025-01-21"),
        "{}",
        night[0].summary
    );
    assert_eq!(raised.len(), 2, "nothing else: {raised:?}");
    assert_eq!(raised[0].rules_version, version(&dir));
}

#[tokio::test]
async fn one_process_evaluates_a_shared_database_and_another_takes_over() {
    let dir = policies(all_day);
    let (first, _case) = with_case_on(&dir).await;
    let second = first.another_on_the_same_database().await;
    evaluate(&first, None).await;
    assert!(
        !second.alerts.sync(None).await.expect("runs"),
        "the second process stands by while the first holds the lease"
    );
    // Refusals through the second process are evaluated by the first.
    for _ in 0..5 {
        let status = query_dean(&second, "primary-school", school_dsl())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
    evaluate(&first, None).await;
    assert_eq!(alerts(&first).await.len(), 1);
    // The first stops; the second takes over, rebuilds from the log, raises nothing twice.
    first.stop().await.expect("first stops");
    evaluate(&second, None).await;
    assert_eq!(alerts(&second).await.len(), 1);
    for _ in 0..5 {
        refused_school_query(&second).await;
    }
    evaluate(&second, None).await;
    let raised = alerts(&second).await;
    assert_eq!(raised.len(), 2, "{raised:?}");
    assert!(
        raised
            .iter()
            .all(|a| a.rule_id == "alerts.repeated_refusals")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_shows_assigns_and_closes_alerts() {
    let (gateway, _case) = with_case_on(&policies(all_day)).await;
    for _ in 0..5 {
        refused_school_query(&gateway).await;
    }
    evaluate(&gateway, None).await;
    let alert = alerts(&gateway).await.pop().expect("an alert");

    let listed = audit_cli(&gateway, &["alerts", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        crate::ig_support::stderr(&listed)
    );
    let text = stdout(&listed);
    assert!(
        text.contains(&alert.alert_id) && text.contains("alerts.repeated_refusals"),
        "{text}"
    );
    assert!(text.contains("\topen\t"), "{text}");

    let shown = audit_cli(&gateway, &["alerts", "show", &alert.alert_id]);
    assert!(
        shown.status.success(),
        "{}",
        crate::ig_support::stderr(&shown)
    );
    let text = stdout(&shown);
    assert!(text.contains("was refused 5 times"), "{text}");
    for entry in &alert.entry_ids {
        assert!(text.contains(entry), "{text}");
    }

    let assigned = audit_cli(
        &gateway,
        &["alerts", "assign", &alert.alert_id, "--to", "IG-0002"],
    );
    assert!(
        assigned.status.success(),
        "{}",
        crate::ig_support::stderr(&assigned)
    );
    let early = audit_cli(
        &gateway,
        &["alerts", "close", &alert.alert_id, "--outcome", "explained"],
    );
    assert!(!early.status.success(), "a close needs a note");
    assert!(
        crate::ig_support::stderr(&early).contains("note"),
        "{}",
        crate::ig_support::stderr(&early)
    );
    let closed = audit_cli(
        &gateway,
        &[
            "alerts",
            "close",
            &alert.alert_id,
            "--outcome",
            "false-positive",
            "--note",
            "The DSL was testing the school's new case system with the supplier",
        ],
    );
    assert!(
        closed.status.success(),
        "{}",
        crate::ig_support::stderr(&closed)
    );
    let after = alerts(&gateway).await.pop().expect("the alert");
    assert_eq!(after.state(), AlertState::Closed);
    assert_eq!(after.outcome(), AlertOutcome::FalsePositive);
    assert_eq!(after.history[0].by_system, "cli");
    let verified = verify(&gateway).await;
    assert!(verified.valid, "{}", verified.problem);
}
