//! Policy-enforced queries over the synthetic case of DOMAIN.md: each question of the
//! narrative returns exactly the expected persons, facts and levels.

use std::collections::BTreeMap;

use prost::Message;
use safegate::api::proto::{
    self, EndFactRequest, EndReason, ExplainRequest, Fact, Identifier, IdentifierScheme, LinkType,
    ListEntriesRequest, PersonRef, PractitionerContext, PublishRequest, Purpose, QueryRequest,
    QueryResponse, ReloadPolicyRequest, Role, fact::Category,
    query_service_client::QueryServiceClient,
};
use safegate::demo::case::{self, AMY_NHS, BEN_NHS, DEAN_PNC, LoadedCase};
use tonic::Code;

use safegate::store::Store;
use sqlx::Connection;

use crate::helpers::{
    TestDatabase, TestGateway, acting, auditor, spawn_gateway, spawn_gateway_with_policy, temp_dir,
};

fn nhs(value: &str) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
            scheme: IdentifierScheme::NhsNumber.into(),
            value: value.into(),
            namespace: String::new(),
        })),
    })
}

pub(crate) fn pnc(value: &str) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
            scheme: IdentifierScheme::PncId.into(),
            value: value.into(),
            namespace: String::new(),
        })),
    })
}

pub(crate) fn asking(id: &str, role: Role, purpose: Purpose) -> PractitionerContext {
    PractitionerContext {
        practitioner_id: id.into(),
        role: role.into(),
        purpose: purpose.into(),
        ..Default::default()
    }
}

pub(crate) async fn with_case() -> (TestGateway, LoadedCase) {
    let gateway = spawn_gateway().await;
    let loaded = case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    (gateway, loaded)
}

pub(crate) async fn query(
    gateway: &TestGateway,
    system: &str,
    context: PractitionerContext,
    subject: Option<PersonRef>,
) -> Result<QueryResponse, tonic::Status> {
    QueryServiceClient::new(gateway.channel(system).await)
        .query(QueryRequest {
            context: Some(context),
            subject,
            search: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// (person name, category, level) for every fact in the answer, plus indicator contacts.
fn shape(answer: &QueryResponse, case: &LoadedCase) -> Vec<(String, String, proto::Level)> {
    let name = |id: &str| {
        case.persons
            .iter()
            .find(|(_, p)| p.as_str() == id)
            .map(|(n, _)| (*n).to_owned())
            .unwrap_or_else(|| format!("unknown {id}"))
    };
    let views = std::iter::once(answer.subject.as_ref().expect("subject"))
        .chain(answer.linked.iter().filter_map(|l| l.person.as_ref()));
    let mut shape = Vec::new();
    for view in views {
        for fact in &view.facts {
            shape.push((name(&view.person_id), fact.category.clone(), fact.level()));
        }
    }
    shape.sort();
    shape
}

fn count(
    shape: &[(String, String, proto::Level)],
) -> BTreeMap<(String, String, proto::Level), usize> {
    let mut counts = BTreeMap::new();
    for key in shape {
        *counts.entry(key.clone()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn the_iom_officer_asking_about_dean_sees_the_children_on_care_orders_at_home() {
    let (gateway, case) = with_case().await;
    let answer = query(
        &gateway,
        "police-iom",
        asking("IOM-0001", Role::IomOfficer, Purpose::OffenderManagement),
        pnc(DEAN_PNC),
    )
    .await
    .expect("IOM officer answered");
    assert_eq!(
        answer.subject.as_ref().expect("subject").person_id,
        case.persons["Dean"]
    );
    let mut linked: Vec<(String, LinkType, bool)> = answer
        .linked
        .iter()
        .map(|l| {
            let id = &l.person.as_ref().expect("person").person_id;
            let name = case
                .persons
                .iter()
                .find(|(_, p)| *p == id)
                .map(|(n, _)| n.to_string())
                .expect("known");
            (name, l.link_type(), l.subject_is_from)
        })
        .collect();
    linked.sort();
    assert_eq!(
        linked,
        [
            ("Amy".into(), LinkType::ParentOf, true),
            ("Ben".into(), LinkType::ParentOf, true),
            ("Chloe".into(), LinkType::ExPartnerOf, false),
        ]
    );
    let counts = count(&shape(&answer, &case));
    use proto::Level::{Detail, Indicator};
    let expect = |name: &str, category: &str, level, n: usize| {
        assert_eq!(
            counts
                .get(&(name.to_owned(), category.to_owned(), level))
                .copied()
                .unwrap_or(0),
            n,
            "{name} {category} {level:?}: {counts:#?}"
        );
    };
    // The order he is respondent to, its breaches, his IOM cohort: detail.
    expect("Dean", "court_order", Detail, 1);
    let events: Vec<_> = counts
        .iter()
        .filter(|((_, c, _), _)| c == "police_event")
        .collect();
    assert_eq!(
        events.iter().map(|(_, n)| **n).sum::<usize>(),
        2,
        "{counts:#?}"
    );
    assert!(events.iter().all(|((_, _, level), _)| *level == Detail));
    expect("Dean", "iom", Detail, 1);
    // Both children on care orders at home with Chloe, contact supervised only: detail.
    expect("Amy", "legal_status", Detail, 1);
    expect("Ben", "legal_status", Detail, 1);
    expect("Amy", "contact_arrangement", Detail, 1);
    expect("Ben", "contact_arrangement", Detail, 1);
    // The health visitor's involvement: an indicator with the team's contact route.
    expect("Amy", "health_involvement", Indicator, 2);
    expect("Ben", "education", Indicator, 1);
    for linked in &answer.linked {
        let view = linked.person.as_ref().expect("person");
        if view.person_id == case.persons["Amy"] {
            let status = view.safeguarding_status.as_ref().expect("Amy's status");
            assert_eq!(
                status.level(),
                proto::ConcernLevel::LookedAfterPlacedWithParent
            );
            assert!(
                status.summary.contains("placed at home with parent"),
                "{}",
                status.summary
            );
            let hv = view
                .facts
                .iter()
                .find(|f| {
                    f.category == "health_involvement"
                        && f.indicator
                            .as_ref()
                            .is_some_and(|i| i.owner_system == "health-visiting")
                })
                .expect("health visitor indicator");
            assert!(hv.fact.is_none(), "an indicator must carry no content");
            let indicator = hv.indicator.as_ref().expect("indicator");
            assert_eq!(indicator.owner_agency(), proto::Agency::Health);
            assert_eq!(indicator.team, "Health visiting team West");
            assert_eq!(indicator.contact_route, "hv.west@nhs.example.test");
        }
    }
    let order = answer
        .subject
        .as_ref()
        .expect("subject")
        .facts
        .iter()
        .find(|f| f.category == "court_order")
        .expect("order");
    let Some(Category::CourtOrder(order)) = order.fact.as_ref().and_then(|f| f.category.as_ref())
    else {
        panic!("court order in detail");
    };
    assert_eq!(
        order.respondent.as_ref().and_then(|r| r.r#ref.clone()),
        Some(proto::person_ref::Ref::PersonId(
            case.persons["Dean"].clone()
        ))
    );
    assert!(
        answer
            .notes
            .iter()
            .any(|n| n.starts_with("Health involvement") && n.contains("indicator")),
        "{:?}",
        answer.notes
    );
    assert!(!answer.break_glass);
    assert!(!answer.disclosure_entry_id.is_empty());
}

#[tokio::test]
async fn the_health_visitor_asking_about_amy_sees_the_care_order_the_iom_indicator_and_the_order() {
    let (gateway, case) = with_case().await;
    let answer = query(
        &gateway,
        "health-visiting",
        asking("HV-0001", Role::HealthVisitor, Purpose::ChildSafeguarding),
        nhs(AMY_NHS),
    )
    .await
    .expect("health visitor answered");
    let subject = answer.subject.as_ref().expect("subject");
    let status = subject.safeguarding_status.as_ref().expect("Amy's status");
    assert_eq!(
        status.level(),
        proto::ConcernLevel::LookedAfterPlacedWithParent
    );
    assert!(
        status
            .summary
            .starts_with("Looked after (care order), placed at home with parent"),
        "{}",
        status.summary
    );
    let counts = count(&shape(&answer, &case));
    use proto::Level::{Detail, Indicator};
    assert_eq!(
        counts.get(&("Amy".into(), "legal_status".into(), Detail)),
        Some(&1)
    );
    assert_eq!(
        counts.get(&("Amy".into(), "contact_arrangement".into(), Detail)),
        Some(&1)
    );
    assert_eq!(
        counts.get(&("Dean".into(), "court_order".into(), Detail)),
        Some(&1)
    );
    assert_eq!(
        counts.get(&("Dean".into(), "iom".into(), Indicator)),
        Some(&1)
    );
    assert_eq!(
        counts.get(&("Dean".into(), "probation_supervision".into(), Indicator)),
        Some(&1)
    );
    let events: Vec<_> = counts
        .iter()
        .filter(|((_, c, _), _)| c == "police_event")
        .collect();
    assert_eq!(
        events.iter().map(|(_, n)| **n).sum::<usize>(),
        2,
        "{counts:#?}"
    );
    assert!(events.iter().all(|((_, _, level), _)| *level == Indicator));
    let dean = answer
        .linked
        .iter()
        .filter_map(|l| l.person.as_ref())
        .find(|p| p.person_id == case.persons["Dean"])
        .expect("Dean linked");
    let iom = dean
        .facts
        .iter()
        .find(|f| f.category == "iom")
        .expect("IOM indicator");
    let indicator = iom.indicator.as_ref().expect("indicator");
    assert!(iom.fact.is_none());
    assert_eq!(indicator.owner_agency(), proto::Agency::Police);
    assert_eq!(indicator.contact_route, "iom.team@police.example.test");
    assert!(
        answer
            .notes
            .iter()
            .any(|n| n.contains("Integrated Offender Management")),
        "{:?}",
        answer.notes
    );
}

#[tokio::test]
async fn nothing_level_facts_leave_no_trace() {
    let (gateway, case) = with_case().await;
    // The nursery is involved with Ben; its DSL sees nothing of Dean's IOM cohort or
    // probation supervision, not even that they exist.
    let answer = query(
        &gateway,
        "nursery",
        asking("DSL-0001", Role::SchoolDsl, Purpose::ChildSafeguarding),
        nhs(BEN_NHS),
    )
    .await
    .expect("nursery answered");
    let shape = shape(&answer, &case);
    assert!(
        shape
            .iter()
            .all(|(_, c, _)| c != "iom" && c != "probation_supervision"),
        "{shape:#?}"
    );
    let bytes = answer.encode_to_vec();
    for hidden in ["iom-dean", "probation-dean"] {
        let record = case.records[hidden].as_bytes();
        assert!(
            !bytes.windows(record.len()).any(|w| w == record),
            "{hidden} leaked into the answer"
        );
    }
    let words = answer.notes.join(" ").to_lowercase();
    assert!(
        !words.contains("offender") && !words.contains("probation"),
        "{words}"
    );
    // Withheld facts are in the disclosure log, for IG, not in the answer.
    let entries = gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            kind: "query".into(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let entry = entries
        .iter()
        .find(|e| e.entry_id == answer.disclosure_entry_id)
        .expect("logged");
    assert!(
        entry
            .withheld
            .iter()
            .any(|w| w.record_id == case.records["iom-dean"] && w.level == "nothing")
    );
    assert!(
        entry
            .released
            .iter()
            .all(|r| r.record_id != case.records["iom-dean"])
    );
}

#[tokio::test]
async fn a_school_with_no_involvement_is_refused_and_the_refusal_logged() {
    let (gateway, _case) = with_case().await;
    let status = query(
        &gateway,
        "primary-school",
        asking("DSL-0900", Role::SchoolDsl, Purpose::ChildSafeguarding),
        pnc(DEAN_PNC),
    )
    .await
    .expect_err("no legitimate relationship");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("query.no_legitimate_relationship"),
        "{}",
        status.message()
    );
    let refusals = gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            system_id: "primary-school".into(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].kind, "refusal");
    assert_eq!(refusals[0].rule_ids, ["query.no_legitimate_relationship"]);
    assert_eq!(refusals[0].purpose, "child_safeguarding");
    // An unknown person gets the same refusal: the answer does not reveal who is on record.
    let unknown = query(
        &gateway,
        "primary-school",
        asking("DSL-0900", Role::SchoolDsl, Purpose::ChildSafeguarding),
        nhs("9990000077"),
    )
    .await
    .expect_err("unknown person");
    assert_eq!(unknown.code(), Code::PermissionDenied);
    assert_eq!(unknown.message(), status.message());
}

#[tokio::test]
async fn a_purpose_the_role_may_not_use_is_refused_naming_it() {
    let (gateway, _case) = with_case().await;
    let status = query(
        &gateway,
        "health-visiting",
        asking("HV-0001", Role::HealthVisitor, Purpose::OffenderManagement),
        nhs(AMY_NHS),
    )
    .await
    .expect_err("wrong purpose");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("policy.purpose_not_permitted"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("offender_management"),
        "{}",
        status.message()
    );
    let status = query(
        &gateway,
        "health-visiting",
        asking("HV-0001", Role::HealthVisitor, Purpose::Unspecified),
        nhs(AMY_NHS),
    )
    .await
    .expect_err("no purpose");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn break_glass_needs_a_justification_and_is_flagged() {
    let (gateway, _case) = with_case().await;
    let mut context = asking("DSL-0900", Role::SchoolDsl, Purpose::ChildSafeguarding);
    context.break_glass = true;
    let status = query(&gateway, "primary-school", context.clone(), pnc(DEAN_PNC))
        .await
        .expect_err("break-glass without justification");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("break_glass.justification_required"),
        "{}",
        status.message()
    );

    context.justification =
        "Ben disclosed at breakfast club that his father visits the home at night".into();
    let answer = query(&gateway, "primary-school", context, pnc(DEAN_PNC))
        .await
        .expect("break-glass answered");
    assert!(answer.break_glass);
    assert!(
        answer.notes.iter().any(|n| n.contains("break-glass")),
        "{:?}",
        answer.notes
    );
    let flagged = gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            break_glass: Some(true),
            kind: "query".into(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].entry_id, answer.disclosure_entry_id);
    assert!(flagged[0].justification.contains("breakfast club"));
}

#[tokio::test]
async fn explain_says_what_would_be_released_without_releasing_it() {
    let (gateway, _case) = with_case().await;
    let explanation = QueryServiceClient::new(gateway.channel("gp-practice").await)
        .explain(ExplainRequest {
            context: Some(asking("GP-0001", Role::Gp, Purpose::ChildSafeguarding)),
            subject: nhs(AMY_NHS),
            search: None,
        })
        .await
        .expect("explain")
        .into_inner();
    assert!(explanation.would_answer);
    assert_eq!(explanation.purpose_rule_id, "purpose.gp.child_safeguarding");
    let levels: BTreeMap<String, (proto::Level, String)> = explanation
        .categories
        .iter()
        .map(|c| (c.category.clone(), (c.level(), c.rule_id.clone())))
        .collect();
    assert_eq!(
        levels["court_order"],
        (proto::Level::Indicator, "matrix.gp.court_order".into())
    );
    assert_eq!(
        levels["legal_status"],
        (proto::Level::Detail, "matrix.gp.legal_status".into())
    );
    assert_eq!(levels.len(), 11);
    let refused = QueryServiceClient::new(gateway.channel("primary-school").await)
        .explain(ExplainRequest {
            context: Some(asking(
                "DSL-0900",
                Role::SchoolDsl,
                Purpose::ChildSafeguarding,
            )),
            subject: nhs(AMY_NHS),
            search: None,
        })
        .await
        .expect("explain")
        .into_inner();
    assert!(!refused.would_answer);
    assert_eq!(refused.refusal_rule_id, "query.no_legitimate_relationship");
}

#[tokio::test]
async fn a_broken_policy_reload_keeps_the_old_policy_in_force() {
    let policy_dir = temp_dir("policy");
    for file in [
        "sharing.conf",
        "sharing.csv",
        "matching.toml",
        "contact.toml",
        "alerts.toml",
    ] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies")
                .join(file),
            policy_dir.join(file),
        )
        .expect("copy policy");
    }
    let gateway = spawn_gateway_with_policy(&policy_dir).await;
    let case = case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case");
    let mut admin =
        proto::admin_service_client::AdminServiceClient::new(gateway.channel("ig-office").await);
    let reload =
        |admin: &mut proto::admin_service_client::AdminServiceClient<tonic::transport::Channel>| {
            let mut admin = admin.clone();
            async move {
                admin
                    .reload_policy(ReloadPolicyRequest {
                        context: Some(auditor()),
                    })
                    .await
                    .expect("reload call")
                    .into_inner()
            }
        };
    let before = reload(&mut admin).await;
    assert!(before.reloaded);

    let csv = policy_dir.join("sharing.csv");
    let original = std::fs::read_to_string(&csv).expect("read");
    std::fs::write(
        &csv,
        format!("{original}\np, matrix.gp.bogus, *, gp, bogus_category, detail\n"),
    )
    .expect("break");
    let broken = reload(&mut admin).await;
    assert!(!broken.reloaded);
    assert_eq!(broken.policy_version, before.policy_version);
    assert!(broken.error.contains("bogus_category"), "{}", broken.error);
    let still = query(
        &gateway,
        "gp-practice",
        asking("GP-0001", Role::Gp, Purpose::ChildSafeguarding),
        nhs(AMY_NHS),
    )
    .await
    .expect("old policy still answers");
    assert_eq!(still.policy_version, before.policy_version);

    // A valid change takes effect, with a new version.
    let changed_policy: String = original
        .lines()
        .map(|line| {
            if line.starts_with("p, matrix.gp.court_order,") {
                line.replace("indicator", "detail")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(
        changed_policy.trim(),
        original.trim(),
        "the test must change a cell"
    );
    std::fs::write(&csv, changed_policy + "\n").expect("change");
    let changed = reload(&mut admin).await;
    assert!(changed.reloaded, "{}", changed.error);
    assert_ne!(changed.policy_version, before.policy_version);
    let _ = case;

    // Only admin systems may reload.
    let status =
        proto::admin_service_client::AdminServiceClient::new(gateway.channel("gp-practice").await)
            .reload_policy(ReloadPolicyRequest {
                context: Some(asking("GP-0001", Role::Gp, Purpose::ChildSafeguarding)),
            })
            .await
            .expect_err("not an admin system");
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// Record ids of the facts shown under the answer's subject.
fn subject_records(answer: &QueryResponse) -> Vec<String> {
    answer
        .subject
        .as_ref()
        .expect("subject")
        .facts
        .iter()
        .map(|f| f.record_id.clone())
        .collect()
}

#[tokio::test]
async fn a_change_made_through_another_gateway_process_shows_in_the_next_answer() {
    // A gateway answers from the facts it read while the records stay unchanged; a fact
    // published or ended through another process on the same database must show in the
    // very next answer, not whenever a cache happens to expire.
    let (a, case) = with_case().await;
    let b = a.another_on_the_same_database().await;
    let iom = || asking("IOM-0001", Role::IomOfficer, Purpose::OffenderManagement);
    let ask = || query(&a, "police-iom", iom(), pnc(DEAN_PNC));
    let first = ask().await.expect("answered");
    let again = ask().await.expect("answered");
    assert_eq!(subject_records(&first), subject_records(&again));

    let dean = case.persons["Dean"].clone();
    let event = b
        .records("police-iom")
        .await
        .publish(PublishRequest {
            context: Some(acting("police-iom")),
            client_request_id: "through-b-1".into(),
            fact: Some(Fact {
                category: Some(proto::fact::Category::PoliceEvent(proto::PoliceEvent {
                    r#type: proto::PoliceEventType::DomesticAbuseIncident.into(),
                    occurred_date: "2024-03-01".into(),
                    persons: vec![PersonRef {
                        r#ref: Some(proto::person_ref::Ref::PersonId(dean.clone())),
                    }],
                    court_order_record_id: String::new(),
                    summary: "Reported through the second gateway process".into(),
                })),
            }),
        })
        .await
        .expect("published through b")
        .into_inner()
        .receipt
        .expect("receipt")
        .record_id;
    assert!(!subject_records(&first).contains(&event));
    let published = ask().await.expect("answered");
    assert!(
        subject_records(&published).contains(&event),
        "the fact published through the other process is missing from the next answer"
    );

    b.records("police-iom")
        .await
        .end_fact(EndFactRequest {
            context: Some(acting("police-iom")),
            client_request_id: "through-b-2".into(),
            record_id: event.clone(),
            end_date: "2024-03-02".into(),
            reason: EndReason::EnteredInError.into(),
        })
        .await
        .expect("ended through b");
    let ended = ask().await.expect("answered");
    assert!(
        !subject_records(&ended).contains(&event),
        "the fact ended through the other process is still in the next answer"
    );
    assert_eq!(subject_records(&ended), subject_records(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_never_shares_a_generation_read_that_started_before_it_arrived() {
    // Concurrent queries share reads of the records' generation. A query must wait for a
    // read that starts after it arrives: one already under way may have read the counter
    // before a change this query must see. Readers keep reads under way all the time here,
    // while another connection (as another process would) changes the generation and a
    // query starting right after each change must see it.
    let dir = temp_dir("generation-reads");
    let database = TestDatabase::create(&dir).await;
    let store = Store::connect(&database.url(), 4).await.expect("store");
    store.migrate().await.expect("migrate");
    sqlx::any::install_default_drivers();
    let mut other = sqlx::AnyConnection::connect(&database.url())
        .await
        .expect("second connection");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.records_now().await.expect("read");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for _ in 0..300 {
        let changed: i64 = sqlx::query_scalar(
            "UPDATE records_generation SET generation = generation + 1 WHERE id = 1 \
             RETURNING generation",
        )
        .fetch_one(&mut other)
        .await
        .expect("change the generation");
        let seen = store.records_now().await.expect("read").generation();
        assert!(
            seen >= changed,
            "a query that started after generation {changed} was committed read {seen}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.expect("reader") > 0);
    }
    store.close().await;
    drop(other);
    database.make_gone().await;
}
