//! Agency records: every category round-trips, ownership is enforced, history is kept,
//! the CP plan -> care order at home transition never reads as a downgrade, publishes are
//! idempotent and all-or-nothing, and bad input names its field.

use safegate::api::proto::{
    self, ConcernLevel, CpCategory, EndFactRequest, EndReason, Fact, GetFactHistoryRequest,
    GetSafeguardingStatusRequest, Identifier, IdentifierScheme, PersonDetails, PersonRef,
    PublishBatchRequest, PublishRequest, UpdateFactRequest, fact::Category,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestGateway, acting, spawn_gateway};

fn nhs(value: &str) -> Identifier {
    Identifier {
        scheme: IdentifierScheme::NhsNumber.into(),
        value: value.into(),
        namespace: String::new(),
    }
}

fn pnc(value: &str) -> Identifier {
    Identifier {
        scheme: IdentifierScheme::PncId.into(),
        value: value.into(),
        namespace: String::new(),
    }
}

fn by_id(person_id: &str) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::PersonId(person_id.into())),
    })
}

fn by_identifier(identifier: Identifier) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(identifier)),
    })
}

fn fact(category: Category) -> Option<Fact> {
    Some(Fact {
        category: Some(category),
    })
}

fn person(identifiers: Vec<Identifier>, given: &str) -> Option<Fact> {
    fact(Category::Person(PersonDetails {
        identifiers,
        given_name: given.into(),
        family_name: "Synthetic".into(),
        date_of_birth: "2017-09-01".into(),
        address: "1 Example Row".into(),
        ..Default::default()
    }))
}

/// Publishes as `system` and returns the receipt, panicking with the status on refusal.
async fn publish(
    gateway: &TestGateway,
    system: &str,
    request_id: &str,
    fact: Option<Fact>,
) -> proto::FactReceipt {
    try_publish(gateway, system, request_id, fact)
        .await
        .unwrap_or_else(|status| panic!("{system} publish refused: {status:?}"))
}

async fn try_publish(
    gateway: &TestGateway,
    system: &str,
    request_id: &str,
    fact: Option<Fact>,
) -> Result<proto::FactReceipt, tonic::Status> {
    gateway
        .records(system)
        .await
        .publish(PublishRequest {
            context: Some(acting(system)),
            client_request_id: request_id.into(),
            fact,
        })
        .await
        .map(|r| r.into_inner().receipt.expect("receipt"))
}

async fn history(
    gateway: &TestGateway,
    system: &str,
    record_id: &str,
) -> Result<proto::GetFactHistoryResponse, tonic::Status> {
    gateway
        .records(system)
        .await
        .get_fact_history(GetFactHistoryRequest {
            context: Some(acting(system)),
            record_id: record_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Publishes a child (valid NHS number) and an adult (PNC id); returns their person ids.
async fn child_and_adult(gateway: &TestGateway) -> (String, String) {
    let child = publish(
        gateway,
        "childrens-services",
        "p-child",
        person(vec![nhs("9990000018")], "Amy"),
    )
    .await;
    let adult = publish(
        gateway,
        "police-iom",
        "p-adult",
        person(vec![pnc("19/1234567J")], "Dean"),
    )
    .await;
    (child.person_ids[0].clone(), adult.person_ids[0].clone())
}

fn cp_plan(child: &str) -> Option<Fact> {
    fact(Category::LegalStatus(proto::LegalStatus {
        child: by_id(child),
        r#type: proto::LegalStatusType::ChildProtectionPlan.into(),
        cp_categories: vec![CpCategory::Neglect.into()],
        start_date: "2017-06-01".into(),
        ..Default::default()
    }))
}

fn care_order_at_home(child: &str, parent: &str, replaces: &str) -> Option<Fact> {
    fact(Category::LegalStatus(proto::LegalStatus {
        child: by_id(child),
        r#type: proto::LegalStatusType::LookedAfter.into(),
        looked_after_basis: proto::LookedAfterBasis::CareOrder.into(),
        placement: proto::PlacementType::PlacedWithParent.into(),
        placed_with: by_id(parent),
        start_date: "2018-03-01".into(),
        replaces_record_id: replaces.into(),
        ..Default::default()
    }))
}

#[tokio::test]
async fn every_category_round_trips_through_its_owner() {
    let gateway = spawn_gateway().await;
    let (child, adult) = child_and_adult(&gateway).await;
    let order = publish(
        &gateway,
        "police-iom",
        "order",
        fact(Category::CourtOrder(proto::CourtOrder {
            r#type: proto::CourtOrderType::NonMolestationOrder.into(),
            respondent: by_id(&adult),
            protected_persons: vec![by_id(&child).expect("ref")],
            conditions: "Not to contact the protected person directly or indirectly".into(),
            made_date: "2018-01-10".into(),
            served_date: "2018-01-12".into(),
            expires_date: "2027-01-10".into(),
            status: proto::CourtOrderStatus::InForce.into(),
        })),
    )
    .await;
    let cases: Vec<(&str, Option<Fact>)> = vec![
        (
            "childrens-services",
            fact(Category::Link(proto::Link {
                from: by_id(&adult),
                to: by_id(&child),
                r#type: proto::LinkType::ParentOf.into(),
            })),
        ),
        (
            "health-visiting",
            fact(Category::Involvement(proto::Involvement {
                person: by_id(&child),
                team: "Health visiting team West".into(),
                contact_route: "hv.west@example.nhs.test".into(),
                practitioner_id: "HV-0001".into(),
                start_date: "2018-02-01".into(),
                end_date: String::new(),
            })),
        ),
        (
            "police-iom",
            fact(Category::Iom(proto::IomMembership {
                person: by_id(&adult),
                cohort: proto::IomCohort::DomesticAbusePerpetrator.into(),
                lead_officer: "PC 1234".into(),
                offender_manager: "OM-0001".into(),
                contact_route: "iom.north@police.test".into(),
                start_date: "2019-01-07".into(),
                end_date: String::new(),
            })),
        ),
        (
            "police-iom",
            fact(Category::PoliceEvent(proto::PoliceEvent {
                r#type: proto::PoliceEventType::BreachOfOrder.into(),
                occurred_date: "2019-02-14".into(),
                persons: vec![by_id(&adult).expect("ref")],
                court_order_record_id: order.record_id.clone(),
                summary: "Attended the protected person's address".into(),
            })),
        ),
        ("childrens-services", cp_plan(&child)),
        (
            "childrens-services",
            fact(Category::ContactArrangement(proto::ContactArrangement {
                child: by_id(&child),
                with_person: by_id(&adult),
                supervision: proto::ContactSupervision::SupervisedOnly.into(),
                conditions: "Father's contact with the children supervised only".into(),
                start_date: "2018-03-01".into(),
                end_date: String::new(),
            })),
        ),
        (
            "probation",
            fact(Category::ProbationSupervision(
                proto::ProbationSupervision {
                    person: by_id(&adult),
                    r#type: proto::SupervisionType::CommunityOrder.into(),
                    conditions: "Building Better Relationships programme".into(),
                    offender_manager: "OM-0001".into(),
                    contact_route: "north@probation.test".into(),
                    start_date: "2019-01-01".into(),
                    end_date: "2020-01-01".into(),
                },
            )),
        ),
        (
            "health-visiting",
            fact(Category::HealthInvolvement(proto::HealthInvolvement {
                person: by_id(&child),
                role: proto::HealthRole::HealthVisitor.into(),
                team: "Health visiting team West".into(),
                contact_route: "hv.west@example.nhs.test".into(),
                start_date: "2017-09-10".into(),
                end_date: String::new(),
            })),
        ),
        (
            "nursery",
            fact(Category::Education(proto::Education {
                child: by_id(&child),
                setting_type: proto::SettingType::EarlyYears.into(),
                setting_name: "Little Acorns Nursery".into(),
                dsl_contact_route: "dsl@acorns.test".into(),
                start_date: "2019-01-07".into(),
                end_date: String::new(),
            })),
        ),
    ];
    // The court order and the person details round-trip too.
    let order_history = history(&gateway, "police-iom", &order.record_id)
        .await
        .expect("history");
    assert!(matches!(
        order_history.versions[0].fact.as_ref().and_then(|f| f.category.as_ref()),
        Some(Category::CourtOrder(o)) if o.conditions.starts_with("Not to contact") && o.expires_date == "2027-01-10"
    ));
    for (i, (system, sent)) in cases.into_iter().enumerate() {
        let receipt = publish(&gateway, system, &format!("case-{i}"), sent.clone()).await;
        assert_eq!(receipt.version, 1);
        let stored = history(&gateway, system, &receipt.record_id)
            .await
            .expect("history");
        assert_eq!(stored.versions.len(), 1);
        assert_eq!(stored.versions[0].recorded_by_system, system);
        assert_eq!(
            stored.versions[0].fact, sent,
            "{system} fact {i} changed in storage"
        );
    }
    assert_eq!(gateway.count("record").await, 12);
}

#[tokio::test]
async fn the_same_identifier_always_resolves_to_the_same_person_and_clashes_are_refused() {
    let gateway = spawn_gateway().await;
    let (child, adult) = child_and_adult(&gateway).await;
    let again = publish(
        &gateway,
        "health-visiting",
        "hv-child",
        person(vec![nhs("999 000 0018")], "Amy"),
    )
    .await;
    assert_eq!(again.person_ids, [child.as_str()]);

    let status = try_publish(
        &gateway,
        "police-iom",
        "clash",
        person(vec![nhs("9990000018"), pnc("19/1234567J")], "Merged"),
    )
    .await
    .expect_err("clash refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("records.identifier_clash"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("identifiers[1]"),
        "{}",
        status.message()
    );
    assert!(
        !status.message().contains("9990000018"),
        "identifier value leaked: {}",
        status.message()
    );
    assert_eq!(gateway.count("person").await, 2);
    assert_ne!(child, adult);
}

#[tokio::test]
async fn agencies_publish_and_change_only_what_they_own() {
    let gateway = spawn_gateway().await;
    let (child, _) = child_and_adult(&gateway).await;
    let before = gateway.count("record").await;
    let status = try_publish(&gateway, "health-visiting", "not-ours", cp_plan(&child))
        .await
        .expect_err("health may not publish legal status");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.get_details_error_info().expect("info").reason,
        "records.category_owner"
    );
    assert_eq!(gateway.count("record").await, before);

    let plan = publish(&gateway, "childrens-services", "plan", cp_plan(&child)).await;
    let status = gateway
        .records("police-iom")
        .await
        .end_fact(EndFactRequest {
            context: Some(acting("police-iom")),
            client_request_id: "end-theirs".into(),
            record_id: plan.record_id.clone(),
            end_date: "2018-01-01".into(),
            reason: EndReason::Closed.into(),
        })
        .await
        .expect_err("police may not end a CSC fact");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("records.only_owner_changes"));
    let status = history(&gateway, "police-iom", &plan.record_id)
        .await
        .expect_err("history is the owner's");
    assert_eq!(status.code(), Code::PermissionDenied);
    let untouched = history(&gateway, "childrens-services", &plan.record_id)
        .await
        .expect("history");
    assert_eq!(untouched.versions.len(), 1);

    let status = try_publish(
        &gateway,
        "ig-office",
        "ig",
        person(vec![nhs("9990000026")], "X"),
    )
    .await
    .expect_err("IG publishes nothing");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("records.ig_officer_reads_log_only")
    );
}

#[tokio::test]
async fn a_change_supersedes_and_the_old_version_stays_readable() {
    let gateway = spawn_gateway().await;
    let (child, adult) = child_and_adult(&gateway).await;
    let arrangement = |supervision: proto::ContactSupervision, words: &str| {
        fact(Category::ContactArrangement(proto::ContactArrangement {
            child: by_id(&child),
            with_person: by_id(&adult),
            supervision: supervision.into(),
            conditions: words.into(),
            start_date: "2018-03-01".into(),
            end_date: String::new(),
        }))
    };
    let first = publish(
        &gateway,
        "childrens-services",
        "contact-1",
        arrangement(proto::ContactSupervision::Unsupervised, "Weekly contact"),
    )
    .await;
    let updated = gateway
        .records("childrens-services")
        .await
        .update_fact(UpdateFactRequest {
            context: Some(acting("childrens-services")),
            client_request_id: "contact-2".into(),
            record_id: first.record_id.clone(),
            fact: arrangement(proto::ContactSupervision::SupervisedOnly, "Supervised only"),
        })
        .await
        .expect("update")
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(updated.version, 2);
    let history = history(&gateway, "childrens-services", &first.record_id)
        .await
        .expect("history");
    assert_eq!(history.versions.len(), 2);
    let (old, new) = (&history.versions[0], &history.versions[1]);
    assert_eq!(old.change(), proto::ChangeKind::Published);
    assert_eq!(new.change(), proto::ChangeKind::Updated);
    assert_eq!(old.valid_to, new.valid_from);
    assert!(new.valid_to.is_empty());
    assert_eq!(
        old.fact,
        arrangement(proto::ContactSupervision::Unsupervised, "Weekly contact")
    );
    assert_eq!(
        new.fact,
        arrangement(proto::ContactSupervision::SupervisedOnly, "Supervised only")
    );

    // The change trail records who changed what, separate from the disclosure log.
    let pool = gateway.database_pool().await;
    let trail: Vec<(String, String, String, i64, String)> = sqlx::query_as(
        "SELECT system_id, practitioner_id, change_kind, version, changed_fields \
         FROM change_trail WHERE record_id = $1 ORDER BY seq",
    )
    .bind(&first.record_id)
    .fetch_all(&pool)
    .await
    .expect("trail");
    assert_eq!(
        trail,
        [
            (
                "childrens-services".into(),
                "SW-0001".into(),
                "published".into(),
                1,
                "*".into()
            ),
            (
                "childrens-services".into(),
                "SW-0001".into(),
                "updated".into(),
                2,
                "conditions,supervision".into()
            ),
        ]
    );
    // History cannot be rewritten underneath: the versions table refuses updates.
    let rewrite = sqlx::query("UPDATE record_version SET payload = '{}' WHERE record_id = $1")
        .bind(&first.record_id)
        .execute(&pool)
        .await;
    assert!(rewrite.is_err(), "record_version accepted an UPDATE");
}

#[tokio::test]
async fn a_care_order_at_home_replacing_a_cp_plan_carries_the_risk_over() {
    let gateway = spawn_gateway().await;
    let (child, _) = child_and_adult(&gateway).await;
    let mother = publish(
        &gateway,
        "childrens-services",
        "mum",
        person(vec![nhs("9990000034")], "Chloe"),
    )
    .await
    .person_ids[0]
        .clone();
    let plan = publish(&gateway, "childrens-services", "plan", cp_plan(&child)).await;
    let status = |label: &'static str| {
        let gateway = &gateway;
        let child = child.clone();
        async move {
            gateway
                .records("childrens-services")
                .await
                .get_safeguarding_status(GetSafeguardingStatusRequest {
                    context: Some(acting("childrens-services")),
                    child: by_id(&child),
                })
                .await
                .unwrap_or_else(|s| panic!("{label}: {s:?}"))
                .into_inner()
                .status
                .expect("status")
        }
    };
    let before = status("before").await;
    assert_eq!(before.level(), ConcernLevel::ChildProtectionPlan);

    let order = publish(
        &gateway,
        "childrens-services",
        "order",
        care_order_at_home(&child, &mother, &plan.record_id),
    )
    .await;
    let after = status("after").await;
    assert_eq!(after.level(), ConcernLevel::LookedAfterPlacedWithParent);
    assert!(
        after.level > before.level,
        "a care order at home must not rank below a CP plan"
    );
    assert_eq!(
        after.carried_over_risk().collect::<Vec<_>>(),
        [CpCategory::Neglect]
    );
    assert_eq!(after.current_record_ids, [order.record_id.as_str()]);
    assert!(
        after
            .summary
            .starts_with("Looked after (care order), placed at home with parent"),
        "{}",
        after.summary
    );
    assert!(
        after.summary.contains("remains at risk"),
        "{}",
        after.summary
    );
    let lowered = after.summary.to_lowercase();
    assert!(
        !lowered.contains("no cp plan") && !lowered.contains("de-escalat"),
        "{}",
        after.summary
    );

    // The plan ended in the same transaction, saying why.
    let plan_history = history(&gateway, "childrens-services", &plan.record_id)
        .await
        .expect("history");
    let last = plan_history.versions.last().expect("versions");
    assert_eq!(last.change(), proto::ChangeKind::Ended);
    assert_eq!(last.end_reason(), EndReason::ReplacedByCareOrder);
    assert_eq!(last.end_date, "2018-03-01");

    // Replacing the same plan twice is refused: it is no longer current.
    let status = try_publish(
        &gateway,
        "childrens-services",
        "order-2",
        care_order_at_home(&child, &mother, &plan.record_id),
    )
    .await
    .expect_err("plan already replaced");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_retry_returns_the_first_result_and_stores_nothing_twice() {
    let gateway = spawn_gateway().await;
    let first = publish(
        &gateway,
        "police-iom",
        "retry-me",
        person(vec![pnc("20/7654321T")], "Dean"),
    )
    .await;
    let records = gateway.count("record").await;
    let second = publish(
        &gateway,
        "police-iom",
        "retry-me",
        person(vec![pnc("20/7654321T")], "Dean"),
    )
    .await;
    assert_eq!(first, second);
    assert_eq!(gateway.count("record").await, records);
    assert_eq!(gateway.count("change_trail").await, records);

    // The same id from another system is that system's own request.
    let other = publish(
        &gateway,
        "probation",
        "retry-me",
        person(vec![pnc("20/7654321T")], "Dean"),
    )
    .await;
    assert_ne!(other.record_id, first.record_id);
    assert_eq!(other.person_ids, first.person_ids);

    let status = try_publish(
        &gateway,
        "police-iom",
        "retry-me",
        person(vec![pnc("20/7654321T")], "Someone else"),
    )
    .await
    .expect_err("reuse with other content");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("records.client_request_id_reused")
    );
}

#[tokio::test]
async fn nhs_numbers_are_checked_by_their_check_digit() {
    let gateway = spawn_gateway().await;
    publish(
        &gateway,
        "gp-practice",
        "valid",
        person(vec![nhs("943 476 5919")], "Valid"),
    )
    .await;
    let status = try_publish(
        &gateway,
        "gp-practice",
        "invalid",
        person(vec![nhs("9434765918")], "Invalid"),
    )
    .await
    .expect_err("bad check digit");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status
        .get_details_bad_request()
        .expect("bad request")
        .field_violations[0];
    assert_eq!(violation.field, "fact.person.identifiers[0].value");
    assert!(violation.description.contains("check digit"));
    assert!(
        !status.message().contains("9434765918"),
        "identifier value leaked"
    );
    assert_eq!(gateway.count("person").await, 1);
}

#[tokio::test]
async fn pnc_ids_are_checked_by_their_check_letter() {
    let gateway = spawn_gateway().await;
    publish(
        &gateway,
        "police-iom",
        "valid",
        person(vec![pnc("18/12345R")], "Valid"),
    )
    .await;
    let status = try_publish(
        &gateway,
        "police-iom",
        "invalid",
        person(vec![pnc("18/0012346R")], "Invalid"),
    )
    .await
    .expect_err("bad check letter");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status
        .get_details_bad_request()
        .expect("bad request")
        .field_violations[0];
    assert_eq!(violation.field, "fact.person.identifiers[0].value");
    assert!(
        violation.description.contains("check letter"),
        "{}",
        violation.description
    );
    assert!(
        !status.message().contains("0012346"),
        "identifier value leaked"
    );
    assert_eq!(gateway.count("person").await, 1);
}

#[tokio::test]
async fn a_batch_with_one_bad_fact_stores_nothing() {
    let gateway = spawn_gateway().await;
    let good = person(vec![nhs("9990000042")], "Ben");
    let link_to_nobody = fact(Category::Link(proto::Link {
        from: by_identifier(nhs("9990000042")),
        to: by_identifier(nhs("9990000050")),
        r#type: proto::LinkType::SiblingOf.into(),
    }));
    let mut client = gateway.records("childrens-services").await;
    let status = client
        .publish_batch(PublishBatchRequest {
            context: Some(acting("childrens-services")),
            client_request_id: "batch-1".into(),
            facts: vec![good.clone().expect("fact"), link_to_nobody.expect("fact")],
        })
        .await
        .expect_err("second fact names an unknown person");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("facts[1].link.to"),
        "{}",
        status.message()
    );

    let future = person(vec![nhs("9990000069")], "Later");
    let Some(Category::Person(mut details)) = future.and_then(|f| f.category) else {
        unreachable!()
    };
    details.date_of_birth = "2999-01-01".into();
    let status = client
        .publish_batch(PublishBatchRequest {
            context: Some(acting("childrens-services")),
            client_request_id: "batch-2".into(),
            facts: vec![
                good.clone().expect("fact"),
                fact(Category::Person(details)).expect("fact"),
            ],
        })
        .await
        .expect_err("future date of birth");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("bad request")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["facts[1].person.date_of_birth"]);
    for table in [
        "person",
        "person_identifier",
        "record",
        "record_version",
        "change_trail",
        "client_request",
    ] {
        assert_eq!(
            gateway.count(table).await,
            0,
            "{table} kept part of a failed batch"
        );
    }

    // A good batch may refer to persons created earlier in the same batch.
    let receipts = client
        .publish_batch(PublishBatchRequest {
            context: Some(acting("childrens-services")),
            client_request_id: "batch-3".into(),
            facts: vec![
                good.expect("fact"),
                person(vec![nhs("9990000050")], "Sib").expect("fact"),
                fact(Category::Link(proto::Link {
                    from: by_identifier(nhs("9990000042")),
                    to: by_identifier(nhs("9990000050")),
                    r#type: proto::LinkType::SiblingOf.into(),
                }))
                .expect("fact"),
            ],
        })
        .await
        .expect("batch")
        .into_inner()
        .receipts;
    assert_eq!(receipts.len(), 3);
    assert_eq!(
        receipts[2].person_ids,
        [
            receipts[0].person_ids[0].clone(),
            receipts[1].person_ids[0].clone()
        ]
    );
}

#[tokio::test]
async fn each_bad_input_is_invalid_argument_naming_the_field() {
    let gateway = spawn_gateway().await;
    let (child, adult) = child_and_adult(&gateway).await;
    let involvement = |start: &str, end: &str| {
        fact(Category::Involvement(proto::Involvement {
            person: by_id(&child),
            team: "Team".into(),
            contact_route: "route".into(),
            practitioner_id: String::new(),
            start_date: start.into(),
            end_date: end.into(),
        }))
    };
    let cases: Vec<(&str, PublishRequest, &str)> = vec![
        (
            "no context",
            PublishRequest {
                context: None,
                client_request_id: "a".into(),
                fact: involvement("2019-01-01", ""),
            },
            "context",
        ),
        (
            "no request id",
            PublishRequest {
                context: Some(acting("health-visiting")),
                client_request_id: " ".into(),
                fact: involvement("2019-01-01", ""),
            },
            "client_request_id",
        ),
        (
            "no category",
            PublishRequest {
                context: Some(acting("health-visiting")),
                client_request_id: "c".into(),
                fact: Some(Fact { category: None }),
            },
            "fact",
        ),
        (
            "future start",
            PublishRequest {
                context: Some(acting("health-visiting")),
                client_request_id: "d".into(),
                fact: involvement("2999-01-01", ""),
            },
            "fact.involvement.start_date",
        ),
        (
            "end before start",
            PublishRequest {
                context: Some(acting("health-visiting")),
                client_request_id: "e".into(),
                fact: involvement("2019-01-01", "2018-01-01"),
            },
            "fact.involvement.end_date",
        ),
        (
            "malformed date",
            PublishRequest {
                context: Some(acting("health-visiting")),
                client_request_id: "f".into(),
                fact: involvement("01/02/2019", ""),
            },
            "fact.involvement.start_date",
        ),
        (
            "unknown enum",
            PublishRequest {
                context: Some(acting("health-visiting")),
                client_request_id: "g".into(),
                fact: fact(Category::Link(proto::Link {
                    from: by_id(&adult),
                    to: by_id(&child),
                    r#type: 42,
                })),
            },
            "fact.link.type",
        ),
        (
            "bad PNC id",
            PublishRequest {
                context: Some(acting("police-iom")),
                client_request_id: "h".into(),
                fact: person(vec![pnc("2019-1")], "X"),
            },
            "fact.person.identifiers[0].value",
        ),
        (
            "no protected person",
            PublishRequest {
                context: Some(acting("police-iom")),
                client_request_id: "i".into(),
                fact: fact(Category::CourtOrder(proto::CourtOrder {
                    r#type: proto::CourtOrderType::RestrainingOrder.into(),
                    respondent: by_id(&adult),
                    conditions: "No contact".into(),
                    made_date: "2019-01-01".into(),
                    status: proto::CourtOrderStatus::InForce.into(),
                    ..Default::default()
                })),
            },
            "fact.court_order.protected_persons",
        ),
        (
            "CP plan without categories",
            PublishRequest {
                context: Some(acting("childrens-services")),
                client_request_id: "j".into(),
                fact: fact(Category::LegalStatus(proto::LegalStatus {
                    child: by_id(&child),
                    r#type: proto::LegalStatusType::ChildProtectionPlan.into(),
                    start_date: "2019-01-01".into(),
                    ..Default::default()
                })),
            },
            "fact.legal_status.cp_categories",
        ),
    ];
    let before = gateway.count("record").await;
    for (label, request, field) in cases {
        let system = match request.context.as_ref().map(|c| c.role()) {
            Some(proto::Role::IomOfficer) => "police-iom",
            Some(proto::Role::SocialWorker) => "childrens-services",
            _ => "health-visiting",
        };
        let status = gateway
            .records(system)
            .await
            .publish(request)
            .await
            .expect_err(label);
        assert_eq!(status.code(), Code::InvalidArgument, "{label}: {status:?}");
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("bad request")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, [field], "{label}");
    }
    assert_eq!(gateway.count("record").await, before);
}

#[tokio::test]
async fn an_end_date_before_the_start_is_refused_naming_end_date_and_nothing_is_stored() {
    let gateway = spawn_gateway().await;
    let (child, _) = child_and_adult(&gateway).await;
    let involvement = publish(
        &gateway,
        "health-visiting",
        "hv-involvement",
        fact(Category::Involvement(proto::Involvement {
            person: by_id(&child),
            team: "Health visiting".into(),
            contact_route: "duty line".into(),
            practitioner_id: String::new(),
            start_date: "2019-01-01".into(),
            end_date: String::new(),
        })),
    )
    .await;
    let (versions, trail, requests) = (
        gateway.count("record_version").await,
        gateway.count("change_trail").await,
        gateway.count("client_request").await,
    );
    let mut client = gateway.records("health-visiting").await;
    let end = |request_id: &str, end_date: &str| EndFactRequest {
        context: Some(acting("health-visiting")),
        client_request_id: request_id.into(),
        record_id: involvement.record_id.clone(),
        end_date: end_date.into(),
        reason: EndReason::Closed.into(),
    };
    let status = client
        .end_fact(end("end-early", "2018-12-31"))
        .await
        .expect_err("an end before the start");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status
        .get_details_bad_request()
        .expect("bad request")
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "end_date");
    assert!(
        violations[0].description.contains("start_date"),
        "{}",
        violations[0].description
    );
    assert_eq!(gateway.count("record_version").await, versions);
    assert_eq!(gateway.count("change_trail").await, trail);
    assert_eq!(gateway.count("client_request").await, requests);
    let kept = history(&gateway, "health-visiting", &involvement.record_id)
        .await
        .expect("history");
    assert_eq!(kept.versions.len(), 1);

    // The same day as the start is a period of one day, and is accepted.
    let ended = client
        .end_fact(end("end-same-day", "2019-01-01"))
        .await
        .expect("an end on the start day")
        .into_inner()
        .receipt
        .expect("receipt");
    assert_eq!(ended.version, 2);
}
