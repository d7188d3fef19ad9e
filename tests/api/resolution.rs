//! Identity across agencies: persons published by different agencies under their own
//! identifiers are joined on demographics when the rules are sure, raised for a steward
//! when they are not, never joined when identifiers conflict, and every decision is in
//! the disclosure log with the rules' version. Queries follow the resolved person.

use safegate::api::proto::{
    self, ConfirmMatchRequest, Fact, GetEntryRequest, HealthInvolvement, HealthRole, Identifier,
    IdentifierScheme, Involvement, LegalStatus, Link, LinkType, ListEntriesRequest,
    ListIdentityLinksRequest, ListNoticesRequest, ListReviewTasksRequest, PersonDetails, PersonRef,
    PublishRequest, Purpose, QueryRequest, QueryResponse, RejectMatchRequest, Role, Sex,
    SplitLinkRequest, SubjectAccessReportRequest, SubjectSearch, UpdateFactRequest, fact::Category,
    identity_resolution_service_client::IdentityResolutionServiceClient,
    notification_service_client::NotificationServiceClient,
    query_service_client::QueryServiceClient,
};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::helpers::{TestGateway, acting, auditor, spawn_gateway};
use crate::ig_support::{safegate as safegate_cli, stderr, stdout};
use crate::query::asking;

const CHLOE_NHS: &str = "9990000034";
const TWIN_A_NHS: &str = "9990000050";
const TWIN_B_NHS: &str = "9990000069";

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

fn local(namespace: &str, value: &str) -> Identifier {
    Identifier {
        scheme: IdentifierScheme::Local.into(),
        value: value.into(),
        namespace: namespace.into(),
    }
}

fn by(identifier: &Identifier) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(identifier.clone())),
    })
}

/// Who someone is, as one agency records them.
#[derive(Clone)]
struct Known {
    identifiers: Vec<Identifier>,
    given: &'static str,
    family: &'static str,
    born: &'static str,
    sex: Sex,
    postcode: &'static str,
    line: &'static str,
}

fn details(person: &Known) -> Option<Fact> {
    Some(Fact {
        category: Some(Category::Person(PersonDetails {
            identifiers: person.identifiers.clone(),
            given_name: person.given.into(),
            family_name: person.family.into(),
            date_of_birth: person.born.into(),
            sex: person.sex.into(),
            postcode: person.postcode.into(),
            address_lines: vec![person.line.into(), "Exampletown".into()],
            ..Default::default()
        })),
    })
}

async fn publish(gateway: &TestGateway, system: &str, id: &str, fact: Option<Fact>) -> String {
    let receipt = gateway
        .records(system)
        .await
        .publish(PublishRequest {
            context: Some(acting(system)),
            client_request_id: id.into(),
            fact,
        })
        .await
        .unwrap_or_else(|status| panic!("{system} publish {id}: {status:?}"))
        .into_inner()
        .receipt
        .expect("receipt");
    receipt.person_ids.first().cloned().unwrap_or_default()
}

async fn publish_person(gateway: &TestGateway, system: &str, person: &Known) -> String {
    let first = person
        .identifiers
        .first()
        .map(|i| i.value.as_str())
        .unwrap_or_default();
    let id = format!("person-{system}-{}-{}-{first}", person.given, person.born);
    publish(gateway, system, &id, details(person)).await
}

/// An open involvement of `system` with the person, so its questions are legitimate.
async fn involve(gateway: &TestGateway, system: &str, who: &Identifier) {
    let fact = Fact {
        category: Some(Category::Involvement(Involvement {
            person: by(who),
            team: format!("{system} team"),
            contact_route: format!("{system}@example.test"),
            start_date: "2024-01-01".into(),
            ..Default::default()
        })),
    };
    publish(
        gateway,
        system,
        &format!("involve-{system}-{}", who.value),
        Some(fact),
    )
    .await;
}

fn steward() -> proto::PractitionerContext {
    acting("mash")
}

async fn resolution(
    gateway: &TestGateway,
) -> IdentityResolutionServiceClient<tonic::transport::Channel> {
    IdentityResolutionServiceClient::new(gateway.channel("mash").await)
}

async fn ask(
    gateway: &TestGateway,
    system: &str,
    role: Role,
    subject: &Identifier,
) -> Result<QueryResponse, tonic::Status> {
    QueryServiceClient::new(gateway.channel(system).await)
        .query(QueryRequest {
            context: Some(asking("Q-0001", role, Purpose::ChildSafeguarding)),
            subject: by(subject),
            search: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn categories(answer: &QueryResponse) -> Vec<String> {
    let mut found: Vec<String> = answer
        .subject
        .iter()
        .flat_map(|s| s.facts.iter().map(|f| f.category.clone()))
        .collect();
    found.sort();
    found
}

fn rules_version() -> String {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/matching.toml"
    ))
    .expect("rules file");
    hex::encode(Sha256::digest(text))
}

/// Every identity entry of the log, oldest first.
async fn identity_entries(gateway: &TestGateway) -> Vec<proto::LogEntry> {
    gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            kind: "identity".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .entries
}

/// Chloe as health knows her: by NHS number, with a health visitor.
fn chloe_health() -> Known {
    Known {
        identifiers: vec![nhs(CHLOE_NHS)],
        given: "Chloe",
        family: "Carter",
        born: "1995-08-23",
        sex: Sex::Female,
        postcode: "SO22 5PL",
        line: "3 Willow Row",
    }
}

/// Chloe as Children's Services know her: their own case id, the same details.
fn chloe_csc() -> Known {
    Known {
        identifiers: vec![local("mosaic", "CSC-C-0001")],
        postcode: "so225pl",
        line: "3, Willow Row",
        ..chloe_health()
    }
}

/// Dean as the police know him, and as Children's Services wrote him down: another
/// spelling, an older address.
fn dean_police() -> Known {
    Known {
        identifiers: vec![pnc("18/0012345R")],
        given: "Dean",
        family: "Mills",
        born: "1990-04-12",
        sex: Sex::Male,
        postcode: "SO23 8UJ",
        line: "14 Synthetic Close",
    }
}

fn dean_csc() -> Known {
    Known {
        identifiers: vec![local("mosaic", "CSC-D-0419")],
        family: "Milles",
        postcode: "SO22 6RT",
        line: "Flat 2, 88 Station Road",
        ..dean_police()
    }
}

async fn health_visitor_for(gateway: &TestGateway, who: &Identifier) {
    let fact = Fact {
        category: Some(Category::HealthInvolvement(HealthInvolvement {
            person: by(who),
            role: HealthRole::HealthVisitor.into(),
            team: "Health visiting team West".into(),
            contact_route: "hv.west@nhs.example.test".into(),
            start_date: "2024-02-01".into(),
            ..Default::default()
        })),
    };
    publish(
        gateway,
        "health-visiting",
        &format!("hv-{}", who.value),
        Some(fact),
    )
    .await;
}

#[tokio::test]
async fn the_same_nhs_number_is_the_same_person_whoever_publishes_it() {
    let gateway = spawn_gateway().await;
    let health = publish_person(&gateway, "health-visiting", &chloe_health()).await;
    let csc_known = Known {
        identifiers: vec![nhs(CHLOE_NHS), local("mosaic", "CSC-C-0001")],
        given: "Chloë",
        ..chloe_health()
    };
    let csc = publish_person(&gateway, "childrens-services", &csc_known).await;
    assert_eq!(health, csc, "one NHS number names one person");
    assert_eq!(
        gateway.count("identity_decision").await,
        0,
        "no matching needed"
    );
}

#[tokio::test]
async fn a_sure_match_on_demographics_is_linked_and_queries_follow_it() {
    let gateway = spawn_gateway().await;
    let health = publish_person(&gateway, "health-visiting", &chloe_health()).await;
    health_visitor_for(&gateway, &nhs(CHLOE_NHS)).await;
    let csc = publish_person(&gateway, "childrens-services", &chloe_csc()).await;
    assert_ne!(health, csc, "each agency's record keeps its own person");
    let csc_id = local("mosaic", "CSC-C-0001");
    involve(&gateway, "childrens-services", &csc_id).await;

    // Children's Services ask by their own id and see what health published.
    let answer = ask(&gateway, "childrens-services", Role::SocialWorker, &csc_id)
        .await
        .expect("answered");
    let subject = answer.subject.as_ref().expect("subject");
    assert_eq!(
        subject.person_id, health,
        "the resolved person is the earlier record"
    );
    assert!(categories(&answer).contains(&"health_involvement".to_owned()));
    assert_eq!(
        subject.identity_links.len(),
        1,
        "{:?}",
        subject.identity_links
    );
    let link = &subject.identity_links[0];
    assert_eq!(link.method, proto::LinkMethod::Automatic as i32);
    assert!(link.probability >= 0.95, "{}", link.probability);
    assert_eq!(link.rules_version, rules_version());

    // The answer's log entry records the link it rested on.
    let entry = gateway
        .audit()
        .await
        .get_entry(GetEntryRequest {
            context: Some(auditor()),
            entry_id: answer.disclosure_entry_id.clone(),
        })
        .await
        .expect("entry")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(entry.identity_links.len(), 1);
    assert_eq!(entry.identity_links[0].link_id, link.link_id);
    assert_eq!(entry.identity_links[0].method, "automatic");

    // The subject-access report follows the resolved person: asked about either
    // agency's record, it lists the answer.
    for person_id in [&health, &csc] {
        let report = gateway
            .audit()
            .await
            .subject_access_report(SubjectAccessReportRequest {
                context: Some(auditor()),
                person_id: person_id.clone(),
            })
            .await
            .expect("report")
            .into_inner();
        assert!(
            report
                .disclosures
                .iter()
                .any(|d| d.entry_id == answer.disclosure_entry_id),
            "the report on {person_id} lists the answer"
        );
    }

    // The decision itself is in the log, with the rules' version.
    let decisions = identity_entries(&gateway).await;
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].rule_ids, ["identity.auto_link"]);
    assert_eq!(decisions[0].decision, "recorded");
    assert_eq!(
        decisions[0].identity_links[0].rules_version,
        rules_version()
    );
    assert!(
        !decisions[0].canonical.contains("Chloe") && !decisions[0].canonical.contains("Carter"),
        "no names in the log: {}",
        decisions[0].canonical
    );
}

#[tokio::test]
async fn a_potential_match_is_reviewed_and_a_confirmed_match_joins_the_pieces() {
    let gateway = spawn_gateway().await;
    let police = publish_person(&gateway, "police-iom", &dean_police()).await;
    let csc = publish_person(&gateway, "childrens-services", &dean_csc()).await;
    assert_ne!(police, csc);
    let pnc_id = pnc("18/0012345R");
    involve(&gateway, "police-iom", &pnc_id).await;
    involve(
        &gateway,
        "childrens-services",
        &local("mosaic", "CSC-D-0419"),
    )
    .await;

    // Before review the police see only their own record's facts.
    let before = ask(&gateway, "police-iom", Role::IomOfficer, &pnc_id)
        .await
        .expect("answered");
    let involvements = |answer: &QueryResponse| {
        categories(answer)
            .iter()
            .filter(|c| *c == "involvement")
            .count()
    };
    assert_eq!(involvements(&before), 1);

    let mut client = resolution(&gateway).await;
    let tasks = client
        .list_review_tasks(ListReviewTasksRequest {
            context: Some(steward()),
            include_closed: false,
        })
        .await
        .expect("tasks")
        .into_inner();
    assert_eq!(tasks.tasks.len(), 1, "one potential match");
    let task = &tasks.tasks[0];
    assert!(!task.reasons.is_empty(), "the reasons are given in words");
    assert!(!task.explanation.is_empty());
    assert!(task.probability >= 0.5, "{}", task.probability);
    assert!(
        task.reasons.iter().any(|r| r.contains("districts")),
        "a move across districts is for a person to judge: {:?}",
        task.reasons
    );
    let card = |c: &Option<proto::IdentityCard>| {
        c.as_ref()
            .and_then(|c| c.records.first())
            .and_then(|r| r.details.as_ref())
            .map(|d| d.family_name.clone())
            .unwrap_or_default()
    };
    assert_eq!(card(&task.person), "Milles");
    assert_eq!(card(&task.candidate), "Mills");

    client
        .confirm_match(ConfirmMatchRequest {
            context: Some(steward()),
            task_id: task.task_id.clone(),
            note: "same man: date of birth and PNC record agree".into(),
        })
        .await
        .expect("confirmed");
    let after = ask(&gateway, "police-iom", Role::IomOfficer, &pnc_id)
        .await
        .expect("answered");
    assert_eq!(
        involvements(&after),
        2,
        "Children's Services' facts follow Dean"
    );
    let links = &after.subject.as_ref().expect("subject").identity_links;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].method, proto::LinkMethod::Steward as i32);

    // A closed task cannot be decided twice.
    let again = client
        .reject_match(RejectMatchRequest {
            context: Some(steward()),
            task_id: task.task_id.clone(),
            note: "changed my mind about this".into(),
        })
        .await
        .expect_err("closed");
    assert_eq!(again.code(), Code::FailedPrecondition);

    let rules: Vec<String> = identity_entries(&gateway)
        .await
        .iter()
        .flat_map(|e| e.rule_ids.clone())
        .collect();
    for rule in [
        "identity.review_raised",
        "identity.steward_view",
        "identity.confirmed",
    ] {
        assert!(rules.iter().any(|r| r == rule), "{rule} in {rules:?}");
    }
}

#[tokio::test]
async fn a_rejected_match_is_never_proposed_again() {
    let gateway = spawn_gateway().await;
    publish_person(&gateway, "police-iom", &dean_police()).await;
    publish_person(&gateway, "childrens-services", &dean_csc()).await;
    let mut client = resolution(&gateway).await;
    let open = |client: &mut IdentityResolutionServiceClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            client
                .list_review_tasks(ListReviewTasksRequest {
                    context: Some(steward()),
                    include_closed: false,
                })
                .await
                .expect("tasks")
                .into_inner()
                .tasks
        }
    };
    let tasks = open(&mut client).await;
    assert_eq!(tasks.len(), 1);
    client
        .reject_match(RejectMatchRequest {
            context: Some(steward()),
            task_id: tasks[0].task_id.clone(),
            note: "different men: MASH checked both records".into(),
        })
        .await
        .expect("rejected");

    // Children's Services correct their record; the pair is matched again, and skipped.
    let mut corrected = dean_csc();
    corrected.line = "Flat 3, 88 Station Road";
    let record_id = {
        let pool = gateway.database_pool().await;
        let id: String = sqlx::query_scalar(
            "SELECT d.record_id FROM person_demographics d \
             JOIN record r ON r.record_id = d.record_id WHERE r.owner_system = 'childrens-services'",
        )
        .fetch_one(&pool)
        .await
        .expect("record");
        pool.close().await;
        id
    };
    gateway
        .records("childrens-services")
        .await
        .update_fact(UpdateFactRequest {
            context: Some(acting("childrens-services")),
            client_request_id: "dean-csc-correction".into(),
            record_id,
            fact: details(&corrected),
        })
        .await
        .expect("updated");
    assert!(open(&mut client).await.is_empty(), "not proposed again");
}

#[tokio::test]
async fn a_wrong_link_is_split_and_the_steward_sees_what_crossed_it() {
    let gateway = spawn_gateway().await;
    publish_person(&gateway, "health-visiting", &chloe_health()).await;
    health_visitor_for(&gateway, &nhs(CHLOE_NHS)).await;
    publish_person(&gateway, "childrens-services", &chloe_csc()).await;
    let csc_id = local("mosaic", "CSC-C-0001");
    involve(&gateway, "childrens-services", &csc_id).await;
    let crossing = ask(&gateway, "childrens-services", Role::SocialWorker, &csc_id)
        .await
        .expect("answered");
    assert!(categories(&crossing).contains(&"health_involvement".to_owned()));

    let mut client = resolution(&gateway).await;
    let links = client
        .list_identity_links(ListIdentityLinksRequest {
            context: Some(steward()),
            person: by(&csc_id),
        })
        .await
        .expect("links")
        .into_inner()
        .links;
    assert_eq!(links.len(), 1);
    let split = client
        .split_link(SplitLinkRequest {
            context: Some(steward()),
            link_id: links[0].link_id.clone(),
            note: "two women: the NHS trace found another Chloe".into(),
        })
        .await
        .expect("split")
        .into_inner();
    assert!(!split.link.as_ref().expect("link").active);
    let crossed: Vec<&str> = split.crossed.iter().map(|c| c.entry_id.as_str()).collect();
    assert_eq!(crossed, [crossing.disclosure_entry_id.as_str()]);
    assert_eq!(split.crossed[0].kind, "query");

    let after = ask(&gateway, "childrens-services", Role::SocialWorker, &csc_id)
        .await
        .expect("answered");
    assert!(
        !categories(&after).contains(&"health_involvement".to_owned()),
        "health's facts no longer show: {:?}",
        categories(&after)
    );
    assert!(after.subject.expect("subject").identity_links.is_empty());
    // A split link cannot be split again, and the split is in the log.
    let again = client
        .split_link(SplitLinkRequest {
            context: Some(steward()),
            link_id: links[0].link_id.clone(),
            note: "once more for luck".into(),
        })
        .await
        .expect_err("already split");
    assert_eq!(again.code(), Code::FailedPrecondition);
    let rules: Vec<String> = identity_entries(&gateway)
        .await
        .iter()
        .flat_map(|e| e.rule_ids.clone())
        .collect();
    assert!(rules.iter().any(|r| r == "identity.split"), "{rules:?}");
}

#[tokio::test]
async fn conflicting_nhs_numbers_never_merge_however_alike() {
    let gateway = spawn_gateway().await;
    let first = publish_person(&gateway, "health-visiting", &chloe_health()).await;
    let other = Known {
        identifiers: vec![nhs(TWIN_A_NHS)],
        ..chloe_health()
    };
    let second = publish_person(&gateway, "gp-practice", &other).await;
    assert_ne!(first, second);
    assert_eq!(
        gateway.count("identity_decision").await,
        0,
        "neither linked nor proposed"
    );
}

#[tokio::test]
async fn twins_are_never_merged_automatically() {
    let gateway = spawn_gateway().await;
    let twin = |given: &'static str, identifiers: Vec<Identifier>| Known {
        identifiers,
        given,
        family: "Okafor",
        born: "2019-03-02",
        sex: Sex::Male,
        postcode: "SO23 9AB",
        line: "7 Meadow Way",
    };
    publish_person(
        &gateway,
        "health-visiting",
        &twin("Samuel", vec![nhs(TWIN_A_NHS)]),
    )
    .await;
    publish_person(
        &gateway,
        "health-visiting",
        &twin("Daniel", vec![nhs(TWIN_B_NHS)]),
    )
    .await;
    // A nursery knows only its own ids for both boys.
    publish_person(
        &gateway,
        "nursery",
        &twin("Daniel", vec![local("acorns", "N-77")]),
    )
    .await;
    let pool = gateway.database_pool().await;
    let auto: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM identity_decision WHERE kind = 'auto_link'")
            .fetch_one(&pool)
            .await
            .expect("count");
    let wrong: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM person_resolution r JOIN person_identifier a \
         ON a.person_id = r.person_id JOIN person_identifier b ON b.person_id = r.resolved_id \
         WHERE a.identifier_key = $1 AND b.identifier_key = $2",
    )
    .bind(format!("nhs:{TWIN_A_NHS}"))
    .bind(format!("nhs:{TWIN_B_NHS}"))
    .fetch_one(&pool)
    .await
    .expect("count");
    pool.close().await;
    assert_eq!(wrong, 0, "the twins stay two people");
    assert!(auto <= 1, "at most the nursery's Daniel links to Daniel");
}

#[tokio::test]
async fn a_common_name_with_the_same_birthday_elsewhere_is_not_merged() {
    let gateway = spawn_gateway().await;
    let smith = |identifiers: Vec<Identifier>, postcode: &'static str, line: &'static str| Known {
        identifiers,
        given: "Jack",
        family: "Smith",
        born: "2015-06-01",
        sex: Sex::Male,
        postcode,
        line,
    };
    // Many Smiths on record make the name count for little.
    for (i, (given, nhs_number)) in [
        ("Oliver", "9990000077"),
        ("Harry", "9990000085"),
        ("George", "9990000093"),
    ]
    .into_iter()
    .enumerate()
    {
        let other = Known {
            given,
            born: ["2012-01-01", "2013-02-02", "2014-03-03"][i],
            ..smith(vec![nhs(nhs_number)], "M1 1AE", "1 Mill Lane")
        };
        publish_person(&gateway, "gp-practice", &other).await;
    }
    let north = publish_person(
        &gateway,
        "gp-practice",
        &smith(vec![nhs("9990000107")], "LS1 4AP", "22 Park Row"),
    )
    .await;
    let south = publish_person(
        &gateway,
        "nursery",
        &smith(vec![local("acorns", "N-12")], "PO1 2DX", "5 Harbour Street"),
    )
    .await;
    let pool = gateway.database_pool().await;
    let resolved: String =
        sqlx::query_scalar("SELECT resolved_id FROM person_resolution WHERE person_id = $1")
            .bind(&south)
            .fetch_one(&pool)
            .await
            .expect("resolution");
    pool.close().await;
    assert_ne!(resolved, north, "not linked automatically");
}

#[tokio::test]
async fn asking_by_name_and_date_of_birth_answers_only_a_unique_match() {
    let gateway = spawn_gateway().await;
    publish_person(&gateway, "police-iom", &dean_police()).await;
    involve(&gateway, "police-iom", &pnc("18/0012345R")).await;
    let search = |given: &str, family: &str, born: &str| SubjectSearch {
        given_name: given.into(),
        family_name: family.into(),
        date_of_birth: born.into(),
        postcode: String::new(),
    };
    let mut queries = QueryServiceClient::new(gateway.channel("police-iom").await);
    let found = queries
        .query(QueryRequest {
            context: Some(asking(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: None,
            search: Some(search("Dean", "Mills", "1990-04-12")),
        })
        .await
        .expect("a unique match is answered")
        .into_inner();
    assert!(categories(&found).contains(&"involvement".to_owned()));

    // A second Dean Mills born the same day (another PNC id, another town): the search
    // is no longer unique and says nothing about either.
    let namesake = Known {
        identifiers: vec![pnc("19/0054321H")],
        postcode: "LS1 4AP",
        line: "2 Park Row",
        ..dean_police()
    };
    publish_person(&gateway, "police-iom", &namesake).await;
    let refused = queries
        .query(QueryRequest {
            context: Some(asking(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: None,
            search: Some(search("Dean", "Mills", "1990-04-12")),
        })
        .await
        .expect_err("not unique");
    let nobody = queries
        .query(QueryRequest {
            context: Some(asking(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: None,
            search: Some(search("Nobody", "Known", "1970-01-01")),
        })
        .await
        .expect_err("no candidate");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(
        (refused.code(), refused.message()),
        (nobody.code(), nobody.message()),
        "several candidates and none look the same"
    );
    assert!(!refused.message().contains("Mills"));

    // The refusal's log entry names every candidate the search considered.
    let refusals = gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            kind: "refusal".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .entries;
    let searched: Vec<&proto::LogEntry> = refusals
        .iter()
        .filter(|e| e.rule_ids.iter().any(|r| r == "query.search_not_unique"))
        .collect();
    assert_eq!(searched.len(), 2, "one refusal entry per refused search");
    assert_eq!(searched[0].search_candidates.len(), 2);
    assert!(searched[1].search_candidates.is_empty());

    // Both fields at once, or a search without a date of birth, is a caller's mistake.
    let both = queries
        .query(QueryRequest {
            context: Some(asking(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: by(&pnc("18/0012345R")),
            search: Some(search("Dean", "Mills", "1990-04-12")),
        })
        .await
        .expect_err("both");
    assert_eq!(both.code(), Code::InvalidArgument);
    let undated = queries
        .query(QueryRequest {
            context: Some(asking(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: None,
            search: Some(search("Dean", "Mills", "")),
        })
        .await
        .expect_err("no date");
    assert_eq!(undated.code(), Code::InvalidArgument);
    assert!(undated.message().contains("search.date_of_birth"));
}

#[tokio::test]
async fn only_a_steward_reviews_identities_and_a_steward_sees_no_case_facts() {
    let gateway = spawn_gateway().await;
    publish_person(&gateway, "health-visiting", &chloe_health()).await;
    let refused = IdentityResolutionServiceClient::new(gateway.channel("childrens-services").await)
        .list_review_tasks(ListReviewTasksRequest {
            context: Some(acting("childrens-services")),
            include_closed: true,
        })
        .await
        .expect_err("not a steward");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("identity.steward_only"));

    let case_facts = QueryServiceClient::new(gateway.channel("mash").await)
        .query(QueryRequest {
            context: Some(asking(
                "MASH-0001",
                Role::IdentitySteward,
                Purpose::ChildSafeguarding,
            )),
            subject: by(&nhs(CHLOE_NHS)),
            search: None,
        })
        .await
        .expect_err("stewards ask no case questions");
    assert_eq!(case_facts.code(), Code::PermissionDenied);

    let short_note = resolution(&gateway)
        .await
        .confirm_match(ConfirmMatchRequest {
            context: Some(steward()),
            task_id: "no-such-task".into(),
            note: "ok".into(),
        })
        .await
        .expect_err("no reason given");
    assert_eq!(short_note.code(), Code::InvalidArgument);
    assert!(short_note.message().contains("note"));
}

#[tokio::test]
async fn a_split_shows_the_notices_that_crossed_the_link() {
    let gateway = spawn_gateway().await;
    // Health know Chloe and visit her; Children's Services know her by their own id.
    publish_person(&gateway, "health-visiting", &chloe_health()).await;
    health_visitor_for(&gateway, &nhs(CHLOE_NHS)).await;
    publish_person(&gateway, "childrens-services", &chloe_csc()).await;
    let chloe = local("mosaic", "CSC-C-0001");
    let amy = Known {
        identifiers: vec![nhs("9990000018"), local("mosaic", "CSC-A-0002")],
        given: "Amy",
        born: "2024-09-14",
        ..chloe_csc()
    };
    publish_person(&gateway, "childrens-services", &amy).await;
    let link = Fact {
        category: Some(Category::Link(Link {
            from: by(&chloe),
            to: by(&amy.identifiers[0]),
            r#type: LinkType::ParentOf.into(),
        })),
    };
    publish(
        &gateway,
        "childrens-services",
        "chloe-parent-of-amy",
        Some(link),
    )
    .await;
    // A care order placed at home with Chloe: her health visitor, known only through the
    // link on demographics, is told.
    let order = Fact {
        category: Some(Category::LegalStatus(LegalStatus {
            child: by(&amy.identifiers[0]),
            r#type: proto::LegalStatusType::LookedAfter.into(),
            looked_after_basis: proto::LookedAfterBasis::CareOrder.into(),
            placement: proto::PlacementType::PlacedWithParent.into(),
            placed_with: by(&chloe),
            start_date: "2025-03-08".into(),
            ..Default::default()
        })),
    };
    publish(
        &gateway,
        "childrens-services",
        "amy-care-order",
        Some(order),
    )
    .await;
    let delivered = NotificationServiceClient::new(gateway.channel("health-visiting").await)
        .list_notices(ListNoticesRequest {
            context: Some(acting("health-visiting")),
            after_cursor: 0,
            limit: 100,
        })
        .await
        .expect("notices")
        .into_inner()
        .notices;
    assert!(!delivered.is_empty(), "the health visitor is told");

    let mut client = resolution(&gateway).await;
    let links = client
        .list_identity_links(ListIdentityLinksRequest {
            context: Some(steward()),
            person: by(&chloe),
        })
        .await
        .expect("links")
        .into_inner()
        .links;
    let split = client
        .split_link(SplitLinkRequest {
            context: Some(steward()),
            link_id: links[0].link_id.clone(),
            note: "two women: the NHS trace found another Chloe".into(),
        })
        .await
        .expect("split")
        .into_inner();
    let notices: Vec<&proto::CrossedDisclosure> = split
        .crossed
        .iter()
        .filter(|c| c.kind == "notification")
        .collect();
    assert_eq!(notices.len(), delivered.len(), "{:?}", split.crossed);
    assert!(
        notices
            .iter()
            .all(|c| c.recipient_system == "health-visiting")
    );
}

// The CLI blocks its thread while it calls the in-process gateway: that needs a second
// runtime thread to serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_steward_works_from_the_command_line() {
    let gateway = spawn_gateway().await;
    publish_person(&gateway, "police-iom", &dean_police()).await;
    publish_person(&gateway, "childrens-services", &dean_csc()).await;
    let pki = gateway.pki.dir.display().to_string();
    let addr = gateway.addr.to_string();
    let steward = |args: &[&str]| {
        let mut all = vec!["identity"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--pki-dir", &pki, "--addr", &addr]);
        safegate_cli(&all)
    };
    let tasks = steward(&["tasks"]);
    assert!(tasks.status.success(), "{}", stderr(&tasks));
    let text = stdout(&tasks);
    assert!(
        text.contains("(open)") && text.contains("not linked automatically"),
        "{text}"
    );
    assert!(
        text.contains("Milles") && text.contains("Mills"),
        "both sides shown: {text}"
    );
    let task_id = text
        .split_whitespace()
        .skip_while(|word| *word != "task")
        .nth(1)
        .expect("a task id")
        .to_owned();
    let confirmed = steward(&["confirm", &task_id, "--note", "same man, MASH checked"]);
    assert!(confirmed.status.success(), "{}", stderr(&confirmed));
    assert!(stdout(&confirmed).starts_with("Confirmed"));
    let links = steward(&["links", "--by", "pnc", "18/0012345R"]);
    assert!(
        stdout(&links).contains("(steward, probability"),
        "{}",
        stdout(&links)
    );
    let refused = steward(&["confirm", &task_id, "--note", "second time round"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("identity.task_closed"),
        "{}",
        stderr(&refused)
    );

    // Re-estimating the rules reads the database and writes rules for review.
    let out = crate::helpers::temp_dir("estimate").join("matching.toml");
    let url = gateway.database.url();
    let estimated = safegate_cli(&[
        "identity",
        "estimate",
        "--out",
        out.to_str().expect("utf-8"),
        "--database-url",
        &url,
    ]);
    assert!(estimated.status.success(), "{}", stderr(&estimated));
    let text = std::fs::read_to_string(&out).expect("written");
    let rules = safegate::domain::identity::MatchRules::parse(&text).expect("parses");
    assert_ne!(rules.version(), rules_version(), "new weights, new version");
}
