//! The synthetic case of DOMAIN.md, loaded through the public API as `safegate demo` does.

use safegate::api::proto::{ConcernLevel, CpCategory};
use safegate::domain::records::facts::LinkType;
use safegate::domain::records::{Fact, Part, PersonRef};
use safegate::store::Store;

use crate::helpers::spawn_gateway;

#[tokio::test]
async fn the_demo_case_loads_through_the_api_once_however_often_it_runs() {
    let gateway = spawn_gateway().await;
    let first = safegate::demo::case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    let records = gateway.count("record").await;
    assert_eq!(records, 45);
    // Eight agencies' records of four people: joined by shared identifiers, three links
    // made automatically, and Children's Services' Dean confirmed by the MASH.
    assert_eq!(gateway.count("person").await, 8);
    let pool = gateway.database_pool().await;
    let resolved: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT resolved_id) FROM person_resolution")
            .fetch_one(&pool)
            .await
            .expect("count");
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM identity_decision ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("decisions");
    pool.close().await;
    assert_eq!(resolved, 4);
    assert_eq!(
        kinds,
        [
            "auto_link",
            "auto_link",
            "auto_link",
            "review_raised",
            "confirmed"
        ]
    );
    assert_eq!(first.confirmed.len(), 1, "the MASH confirmed Dean");

    let again = safegate::demo::case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads again");
    assert_eq!(
        gateway.count("record").await,
        records,
        "a second load duplicated facts"
    );
    assert_eq!(again.persons, first.persons);
    assert!(again.confirmed.is_empty(), "nothing left to confirm");
    assert_eq!(
        gateway.count("identity_decision").await,
        5,
        "no decision twice"
    );
    assert_eq!(again.records, first.records);

    let amy = &first.amy_status;
    assert_eq!(amy.level(), ConcernLevel::LookedAfterPlacedWithParent);
    assert_eq!(
        amy.carried_over_risk().collect::<Vec<_>>(),
        [CpCategory::PhysicalAbuse, CpCategory::EmotionalAbuse]
    );
    assert_eq!(
        amy.current_record_ids,
        [first.records["amy-care-order"].as_str()]
    );
}

#[tokio::test]
async fn links_are_found_from_either_side() {
    let gateway = spawn_gateway().await;
    let case = safegate::demo::case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    let store = Store::connect(&gateway.database.url(), 2)
        .await
        .expect("store");
    let dean = &case.persons["Dean"];
    let amy = &case.persons["Amy"];
    let link = &case.records["link-dean-amy"];

    let from_amy = store
        .current_facts_naming(amy)
        .await
        .expect("facts about Amy");
    let seen_from_amy = from_amy
        .iter()
        .find(|f| &f.record_id == link)
        .expect("link from Amy's side");
    assert_eq!(seen_from_amy.parts, [Part::To]);
    let from_dean = store
        .current_facts_naming(dean)
        .await
        .expect("facts about Dean");
    let seen_from_dean = from_dean
        .iter()
        .find(|f| &f.record_id == link)
        .expect("link from Dean's side");
    assert_eq!(seen_from_dean.parts, [Part::From]);
    let Fact::Link(stored) = &seen_from_dean.fact else {
        panic!("not a link: {:?}", seen_from_dean.fact);
    };
    assert_eq!(stored.link_type, LinkType::ParentOf);
    assert_eq!(stored.from, PersonRef::PersonId(dean.clone()));
    assert_eq!(stored.to, PersonRef::PersonId(amy.clone()));

    // Ended facts are history, not current: Amy's CP plan was replaced by the care order.
    let plan = &case.records["amy-cp-plan"];
    assert!(from_amy.iter().all(|f| &f.record_id != plan));
    assert!(
        from_amy
            .iter()
            .any(|f| f.record_id == case.records["amy-care-order"])
    );
}
