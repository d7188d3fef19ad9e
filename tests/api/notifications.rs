//! Notifications: each rule fires with exactly the right recipients and levels, an
//! offline subscriber catches up in order, a crash after commit loses nothing, and every
//! delivery is in the disclosure log.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use safegate::api::proto::{
    self, AcknowledgeNoticesRequest, ListEntriesRequest, ListNoticesRequest, Notice,
    PractitionerContext, PublishRequest, Purpose, QueryRequest, SubscribeRequest,
    notification_service_client::NotificationServiceClient,
    query_service_client::QueryServiceClient,
};
use safegate::demo::case::{self, BEN_NHS, CHLOE_NHS, DEAN_PNC, LoadedCase};
use tokio_stream::StreamExt;

use crate::helpers::{TestGateway, acting, auditor, spawn_gateway};

async fn with_case() -> (TestGateway, LoadedCase) {
    let gateway = spawn_gateway().await;
    let loaded = case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    (gateway, loaded)
}

/// Every notice waiting for `system`, from the start, without acknowledging.
async fn notices(gateway: &TestGateway, system: &str) -> Vec<Notice> {
    NotificationServiceClient::new(gateway.channel(system).await)
        .list_notices(ListNoticesRequest {
            context: Some(acting(system)),
            after_cursor: 0,
            limit: 500,
        })
        .await
        .expect("list notices")
        .into_inner()
        .notices
}

fn name(case: &LoadedCase, person: &str) -> String {
    case.persons
        .iter()
        .find(|(_, id)| id.as_str() == person)
        .map(|(n, _)| (*n).to_owned())
        .unwrap_or_else(|| "someone else".into())
}

/// rule -> subjects (by first name) for one system's notices.
fn by_rule(case: &LoadedCase, notices: &[Notice]) -> BTreeMap<String, BTreeSet<String>> {
    let mut rules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for notice in notices {
        rules
            .entry(notice.rule.clone())
            .or_default()
            .insert(name(case, &notice.subject_person_id));
    }
    rules
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test]
async fn each_rule_reaches_exactly_the_agencies_that_need_to_know() {
    let (gateway, case) = with_case().await;
    let mut seen = BTreeMap::new();
    for system in safegate::pki::DEMO_SYSTEMS {
        seen.insert(*system, by_rule(&case, &notices(&gateway, system).await));
    }
    // Rules 1 and 2: the care orders at home reach each child's health visitor and GP,
    // Ben's nursery, and the IOM and probation leads of the linked adult (Dean).
    let care = |system: &str| {
        seen[system]
            .get("care_order_at_home")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(care("health-visiting"), set(&["Amy", "Ben"]));
    assert_eq!(care("gp-practice"), set(&["Amy", "Ben"]));
    assert_eq!(care("nursery"), set(&["Ben"]));
    assert_eq!(care("police-iom"), set(&["Amy", "Ben"]));
    assert_eq!(care("probation"), set(&["Amy", "Ben"]));
    assert!(
        care("childrens-services").is_empty(),
        "the publisher is not told its own news"
    );
    assert!(care("primary-school").is_empty());
    // Rule 3: the order and its two breaches reach each child's social worker, health
    // visitor and Ben's nursery (Operation Encompass).
    for rule in ["court_order", "police_event"] {
        let reached = |system: &str| seen[system].get(rule).cloned().unwrap_or_default();
        assert_eq!(
            reached("childrens-services"),
            set(&["Amy", "Ben"]),
            "{rule}"
        );
        assert_eq!(reached("health-visiting"), set(&["Amy", "Ben"]), "{rule}");
        assert_eq!(reached("nursery"), set(&["Ben"]), "{rule}");
        assert!(reached("gp-practice").is_empty(), "{rule}");
        assert!(reached("primary-school").is_empty(), "{rule}");
    }
    // Rule 4: Dean entering the IOM cohort tells the children's social worker, and the
    // IOM lead which children are linked.
    assert_eq!(
        seen["childrens-services"]["iom_cohort"],
        set(&["Amy", "Ben"])
    );
    assert_eq!(seen["police-iom"]["iom_cohort"], set(&["Dean"]));
    assert!(!seen["nursery"].contains_key("iom_cohort"));
    // Nobody is told anything under break-glass yet, and the uninvolved school nothing.
    assert!(
        seen.values()
            .all(|rules| !rules.contains_key("break_glass"))
    );
    assert!(seen["primary-school"].is_empty());
}

#[tokio::test]
async fn notices_are_shaped_by_the_recipients_policy() {
    let (gateway, case) = with_case().await;
    let nursery = notices(&gateway, "nursery").await;
    // The nursery DSL sees a breach only as an indicator: whom to ask, not what happened.
    let breach = nursery
        .iter()
        .find(|n| n.rule == "police_event")
        .expect("breach notice");
    let fact = &breach.facts[0];
    assert_eq!(fact.level(), proto::Level::Indicator);
    assert!(fact.fact.is_none());
    let indicator = fact.indicator.as_ref().expect("indicator");
    assert_eq!(indicator.owner_agency(), proto::Agency::Police);
    assert!(!indicator.contact_route.is_empty());
    // The GP sees the care order in detail, and is told the CP plan was replaced.
    let gp = notices(&gateway, "gp-practice").await;
    let order = gp
        .iter()
        .find(|n| n.rule == "care_order_at_home" && name(&case, &n.subject_person_id) == "Amy")
        .expect("Amy's care order");
    assert_eq!(order.recipient_role(), proto::Role::Gp);
    assert_eq!(order.facts[0].level(), proto::Level::Detail);
    assert!(
        order.headline.contains("replaced by this care order"),
        "{}",
        order.headline
    );
    assert!(
        order.headline.contains("remains at risk"),
        "{}",
        order.headline
    );
    assert!(!order.headline.to_lowercase().contains("de-escalat"));
    // The social worker sees the breach in detail.
    let csc = notices(&gateway, "childrens-services").await;
    let breach = csc
        .iter()
        .find(|n| n.rule == "police_event")
        .expect("breach");
    assert_eq!(breach.facts[0].level(), proto::Level::Detail);
    // Headlines carry no names.
    for notice in nursery.iter().chain(&gp).chain(&csc) {
        for person in ["Amy", "Ben", "Chloe", "Dean", "Carter", "Mills"] {
            assert!(!notice.headline.contains(person), "{}", notice.headline);
        }
    }
}

#[tokio::test]
async fn break_glass_access_notifies_information_governance() {
    let (gateway, _case) = with_case().await;
    let mut context = PractitionerContext {
        practitioner_id: "DSL-0900".into(),
        role: proto::Role::SchoolDsl.into(),
        purpose: Purpose::ChildSafeguarding.into(),
        break_glass: true,
        justification: "Ben disclosed at breakfast club that his father visits at night".into(),
    };
    let answer = QueryServiceClient::new(gateway.channel("primary-school").await)
        .query(QueryRequest {
            context: Some(context.clone()),
            subject: Some(proto::PersonRef {
                r#ref: Some(proto::person_ref::Ref::Identifier(proto::Identifier {
                    scheme: proto::IdentifierScheme::PncId.into(),
                    value: DEAN_PNC.into(),
                    namespace: String::new(),
                })),
            }),
            search: None,
        })
        .await
        .expect("break-glass query")
        .into_inner();
    let ig = notices(&gateway, "ig-office").await;
    let flagged: Vec<&Notice> = ig.iter().filter(|n| n.rule == "break_glass").collect();
    assert_eq!(flagged.len(), 1);
    assert!(
        flagged[0].headline.contains(&answer.disclosure_entry_id),
        "{}",
        flagged[0].headline
    );
    assert!(flagged[0].headline.contains("primary-school"));
    context.break_glass = false;
    let _ = context;
}

async fn publish_breach(gateway: &TestGateway, case: &LoadedCase, label: &str) {
    gateway
        .records("police-iom")
        .await
        .publish(PublishRequest {
            context: Some(acting("police-iom")),
            client_request_id: label.into(),
            fact: Some(proto::Fact {
                category: Some(proto::fact::Category::PoliceEvent(proto::PoliceEvent {
                    r#type: proto::PoliceEventType::DomesticAbuseIncident.into(),
                    occurred_date: "2019-05-01".into(),
                    persons: vec![
                        proto::PersonRef {
                            r#ref: Some(proto::person_ref::Ref::PersonId(
                                case.persons["Dean"].clone(),
                            )),
                        },
                        proto::PersonRef {
                            r#ref: Some(proto::person_ref::Ref::Identifier(proto::Identifier {
                                scheme: proto::IdentifierScheme::NhsNumber.into(),
                                value: CHLOE_NHS.into(),
                                namespace: String::new(),
                            })),
                        },
                    ],
                    court_order_record_id: String::new(),
                    summary: "Neighbours reported shouting".into(),
                })),
            }),
        })
        .await
        .expect("publish incident");
}

#[tokio::test]
async fn an_offline_subscriber_gets_what_it_missed_in_order() {
    let (gateway, case) = with_case().await;
    let system = "nursery";
    let mut client = NotificationServiceClient::new(gateway.channel(system).await);
    let backlog = notices(&gateway, system).await;
    assert!(!backlog.is_empty());

    // Subscribe, receive the backlog, acknowledge it, then go away.
    let mut stream = client
        .subscribe(SubscribeRequest {
            context: Some(acting(system)),
            after_cursor: 0,
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut received = Vec::new();
    while received.len() < backlog.len() {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("backlog arrives")
            .expect("stream open")
            .expect("notice");
        received.push(next.notice.expect("notice"));
    }
    let cursors: Vec<u64> = received.iter().map(|n| n.cursor).collect();
    assert_eq!(
        cursors,
        backlog.iter().map(|n| n.cursor).collect::<Vec<_>>()
    );
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    let last = *cursors.last().expect("cursor");
    client
        .acknowledge_notices(AcknowledgeNoticesRequest {
            context: Some(acting(system)),
            cursor: last,
        })
        .await
        .expect("ack");
    // A live subscriber gets a new notice as it is made.
    publish_breach(&gateway, &case, "incident-1").await;
    let live = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("live notice arrives")
        .expect("open")
        .expect("notice")
        .notice
        .expect("notice");
    assert!(live.cursor > last);
    assert_eq!(live.rule, "police_event");
    drop(stream);

    // While offline, two more incidents happen.
    publish_breach(&gateway, &case, "incident-2").await;
    publish_breach(&gateway, &case, "incident-3").await;
    // Reconnecting from the last acknowledgement replays the unacknowledged live notice
    // (at-least-once) and then what was missed, in order.
    let mut stream = client
        .subscribe(SubscribeRequest {
            context: Some(acting(system)),
            after_cursor: 0,
        })
        .await
        .expect("resubscribe")
        .into_inner();
    let mut missed = Vec::new();
    while missed.len() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("missed notices arrive")
            .expect("open")
            .expect("notice");
        missed.push(next.notice.expect("notice"));
    }
    assert_eq!(missed[0].cursor, live.cursor);
    assert!(missed.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert!(
        missed
            .iter()
            .all(|n| n.subject_person_id == case.persons["Ben"])
    );
    let _ = BEN_NHS;
}

#[tokio::test]
async fn a_gateway_killed_after_commit_still_delivers_after_restart() {
    let (gateway, case) = with_case().await;
    let before = notices(&gateway, "health-visiting").await.len();
    publish_breach(&gateway, &case, "incident-before-crash").await;
    // Nothing was delivered for the new incident before the crash.
    let gateway = gateway.crash_and_restart().await;
    let after = notices(&gateway, "health-visiting").await;
    assert_eq!(
        after.len(),
        before + 2,
        "one notice per child (Amy and Ben)"
    );
    assert!(after.iter().rev().take(2).all(|n| n.rule == "police_event"));
}

#[tokio::test]
async fn every_delivery_has_its_disclosure_log_entry() {
    let (gateway, _case) = with_case().await;
    let delivered = notices(&gateway, "gp-practice").await;
    assert!(!delivered.is_empty());
    let entries = gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            kind: "notification".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    for notice in &delivered {
        let entry = entries
            .iter()
            .find(|e| e.entry_id == notice.disclosure_entry_id)
            .unwrap_or_else(|| panic!("no log entry for notice {}", notice.notice_id));
        assert_eq!(entry.recipient_system, "gp-practice");
        assert_eq!(entry.subject_person_id, notice.subject_person_id);
        assert_eq!(entry.decision, "released");
        assert!(entry.rule_ids.contains(&format!("notify.{}", notice.rule)));
        assert_eq!(entry.released.len(), notice.facts.len());
    }
}
