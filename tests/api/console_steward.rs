//! The identity steward's pages of the console, with the MASH steward's personal
//! certificate: a near match published through the API is a task on the queue, its page
//! shows both records (logged), a confirmation links the persons and is in the log, a
//! decision without a note is refused naming the field with nothing stored, a link is
//! split with a reason; and each role is refused on the other's pages, logged.

use safegate::api::proto::{
    self, ConfirmMatchRequest, Fact, Identifier, IdentifierScheme, ListIdentityLinksRequest,
    PersonDetails, PersonRef, PublishRequest, Sex, fact::Category,
    identity_resolution_service_client::IdentityResolutionServiceClient,
};
use safegate::domain::identity::ReviewState;

use crate::helpers::{ConsolePage, TestGateway, acting, spawn_gateway_with_console};

const STEWARD: &str = "mash-0001";
const IG_OFFICER: &str = "ig-0001";
const SAME_ORIGIN: &[(&str, &str)] = &[("sec-fetch-site", "same-origin")];
const POLICE_PNC: &str = "18/0012345R";
const CSC_CASE: &str = "CSC-D-0419";

/// One person's details as an agency publishes them.
fn details(identifier: Identifier, family: &str, postcode: &str, line: &str) -> Option<Fact> {
    Some(Fact {
        category: Some(Category::Person(PersonDetails {
            identifiers: vec![identifier],
            given_name: "Dean".into(),
            family_name: family.into(),
            date_of_birth: "1990-04-12".into(),
            sex: Sex::Male.into(),
            postcode: postcode.into(),
            address_lines: vec![line.into(), "Exampletown".into()],
            ..Default::default()
        })),
    })
}

async fn publish(gateway: &TestGateway, system: &str, id: &str, fact: Option<Fact>) -> String {
    gateway
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
        .expect("receipt")
        .person_ids
        .first()
        .cloned()
        .expect("the person's id")
}

/// The police's record of a man and Children's Services' record of him under another
/// spelling and an older address: a potential match for a steward, not a link. Returns
/// the two person ids (police, Children's Services).
async fn near_match(gateway: &TestGateway) -> (String, String) {
    let police = publish(
        gateway,
        "police-iom",
        "steward-police",
        details(
            Identifier {
                scheme: IdentifierScheme::PncId.into(),
                value: POLICE_PNC.into(),
                namespace: String::new(),
            },
            "Mills",
            "SO23 8UJ",
            "14 Synthetic Close",
        ),
    )
    .await;
    let csc = publish(
        gateway,
        "childrens-services",
        "steward-csc",
        details(
            Identifier {
                scheme: IdentifierScheme::Local.into(),
                value: CSC_CASE.into(),
                namespace: "mosaic".into(),
            },
            "Milles",
            "SO22 6RT",
            "Flat 2, 88 Station Road",
        ),
    )
    .await;
    assert_ne!(police, csc, "not linked automatically");
    (police, csc)
}

/// The one open review task.
async fn open_task(gateway: &TestGateway) -> safegate::domain::identity::ReviewTask {
    let mut tasks = gateway.store().review_tasks(false).await.expect("tasks");
    assert_eq!(tasks.len(), 1, "one potential match: {tasks:?}");
    tasks.remove(0)
}

/// Every entry of the log, oldest first (read through the store, so it adds none).
async fn log(gateway: &TestGateway) -> Vec<safegate::domain::ledger::Entry> {
    gateway
        .store()
        .entries(&safegate::domain::ledger::EntryFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_iter()
        .map(|stored| stored.entry)
        .collect()
}

async fn get(gateway: &TestGateway, officer: &str, path: &str) -> ConsolePage {
    gateway.console_get(officer, path).await
}

/// Posts `form` with the token of the officer's own page at `page`.
async fn post(
    gateway: &TestGateway,
    officer: &str,
    page: &str,
    path: &str,
    form: &[(&str, &str)],
) -> ConsolePage {
    gateway.console_post(officer, page, path, form).await
}

fn location(page: &ConsolePage) -> &str {
    page.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Text as askama escapes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

#[tokio::test]
async fn a_near_match_is_a_task_the_steward_confirms_and_the_persons_are_linked_and_logged() {
    let gateway = spawn_gateway_with_console().await;
    let (police, csc) = near_match(&gateway).await;
    let task = open_task(&gateway).await;
    assert!(!task.reasons.is_empty());

    // The console's front door sends the steward to the queue.
    let home = get(&gateway, STEWARD, "/").await;
    assert_eq!(home.status, 303);
    assert_eq!(location(&home), "/identity/tasks");

    let queue = get(&gateway, STEWARD, "/identity/tasks").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    let link = format!("href=\"/identity/tasks/{}\"", task.task_id);
    assert!(queue.body.contains(&link), "{}", queue.body);
    for reason in &task.reasons {
        assert!(queue.body.contains(&escaped(reason)), "{reason}");
    }
    let probability = format!("{:.1}%", task.probability.expect("scored") * 100.0);
    assert!(queue.body.contains(&probability), "{probability}");
    assert!(
        queue.body.contains("Review tasks"),
        "the steward's navigation"
    );
    assert!(!queue.body.contains("Search the log"), "no IG navigation");
    let viewed = log(&gateway).await.pop().expect("the view is logged");
    assert_eq!(viewed.rule_ids, ["identity.steward_view"]);
    assert_eq!(viewed.rpc, "console GET /identity/tasks");
    assert_eq!(viewed.practitioner_id, "MASH-0001");
    assert_eq!(viewed.system_id, "mash");
    assert_eq!(viewed.role, "identity_steward");
    assert!(
        !viewed.released.is_empty(),
        "both records' details released"
    );

    let path = format!("/identity/tasks/{}", task.task_id);
    let page = get(&gateway, STEWARD, &path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "Milles", "Mills", "SO22 6RT", "SO23 8UJ", POLICE_PNC, CSC_CASE,
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        page.body.contains("<title>Review task – "),
        "no name in the title"
    );
    let viewed = log(&gateway).await.pop().expect("the view is logged");
    assert_eq!(viewed.rule_ids, ["identity.steward_view"]);
    assert_eq!(viewed.rpc, "console GET /identity/tasks/{task_id}");
    assert_eq!(viewed.subject_person_id, task.person_id);
    let records: Vec<&str> = viewed
        .released
        .iter()
        .map(|d| d.person_id.as_str())
        .collect();
    assert!(records.contains(&police.as_str()) && records.contains(&csc.as_str()));

    let note = "MASH checked both records: same man, same date of birth";
    let done = post(
        &gateway,
        STEWARD,
        &path,
        &format!("{path}/decision"),
        &[("decision", "confirm"), ("note", note)],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(location(&done), "/identity/tasks?done=confirmed");

    // The persons are one now, through the domain and through the steward's API.
    let store = gateway.store();
    assert_eq!(
        store.resolved_person(&police).await.expect("resolved"),
        store.resolved_person(&csc).await.expect("resolved")
    );
    let links = IdentityResolutionServiceClient::new(gateway.channel("mash").await)
        .list_identity_links(ListIdentityLinksRequest {
            context: Some(acting("mash")),
            person: Some(PersonRef {
                r#ref: Some(proto::person_ref::Ref::PersonId(police.clone())),
            }),
        })
        .await
        .expect("links")
        .into_inner()
        .links;
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].method, proto::LinkMethod::Steward as i32);
    assert!(links[0].active);
    assert_eq!(links[0].decided_by_system, "mash");
    let closed = store
        .review_task(&task.task_id)
        .await
        .expect("read")
        .expect("task");
    assert_eq!(closed.state, ReviewState::Confirmed);

    let confirmed = log(&gateway)
        .await
        .into_iter()
        .find(|e| e.rule_ids == ["identity.confirmed"])
        .expect("the confirmation is in the log");
    assert_eq!(confirmed.practitioner_id, "MASH-0001");
    assert_eq!(confirmed.system_id, "mash");
    assert_eq!(
        confirmed.rpc,
        "console POST /identity/tasks/{task_id}/decision"
    );
    assert_eq!(confirmed.justification, note);
    assert!(
        confirmed.reason.contains(&task.task_id),
        "{}",
        confirmed.reason
    );

    let queue = get(&gateway, STEWARD, "/identity/tasks?done=confirmed").await;
    assert!(
        queue.body.contains("The match is confirmed"),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("No review task is waiting"));
    // A closed task shows its state and no form.
    let page = get(&gateway, STEWARD, &path).await;
    assert!(page.body.contains("already confirmed"), "{}", page.body);
    assert!(!page.body.contains("/decision\""));
}

#[tokio::test]
async fn a_decision_without_a_note_or_a_choice_is_refused_naming_the_field_and_nothing_is_stored() {
    let gateway = spawn_gateway_with_console().await;
    near_match(&gateway).await;
    let task = open_task(&gateway).await;
    let path = format!("/identity/tasks/{}", task.task_id);
    let decisions = gateway.count("identity_decision").await;

    for (form, field, words) in [
        (
            vec![("decision", "reject"), ("note", "")],
            "note",
            "Enter a note saying why you decided this",
        ),
        (
            vec![("decision", "reject"), ("note", "different")],
            "note",
            "at least three words",
        ),
        (
            vec![("note", "not the same man")],
            "decision",
            "Select whether the two records are the same person",
        ),
    ] {
        let page = post(&gateway, STEWARD, &path, &format!("{path}/decision"), &form).await;
        assert_eq!(page.status, 400, "{form:?}: {}", page.body);
        assert!(page.body.contains("There is a problem"), "{}", page.body);
        assert!(
            page.body.contains(&format!("href=\"#{field}\"")),
            "the summary links to {field}: {}",
            page.body
        );
        assert!(page.body.contains(words), "{words}: {}", page.body);
        assert!(page.body.contains("<title>Error: "), "{}", page.body);
    }
    assert_eq!(
        gateway.count("identity_decision").await,
        decisions,
        "no decision stored"
    );
    let still = gateway
        .store()
        .review_task(&task.task_id)
        .await
        .expect("read")
        .expect("task");
    assert_eq!(still.state, ReviewState::Open);
    assert!(
        !log(&gateway)
            .await
            .iter()
            .any(|e| e.rule_ids == ["identity.rejected"] || e.rule_ids == ["identity.confirmed"]),
        "no decision in the log"
    );

    // With a note the rejection is recorded, and the pair is off the queue.
    let done = post(
        &gateway,
        STEWARD,
        &path,
        &format!("{path}/decision"),
        &[
            ("decision", "reject"),
            ("note", "different men: checked with police"),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(location(&done), "/identity/tasks?done=rejected");
    let rejected = gateway
        .store()
        .review_task(&task.task_id)
        .await
        .expect("read")
        .expect("task");
    assert_eq!(rejected.state, ReviewState::Rejected);
    assert!(
        log(&gateway)
            .await
            .iter()
            .any(|e| e.rule_ids == ["identity.rejected"] && e.practitioner_id == "MASH-0001")
    );
}

#[tokio::test]
async fn a_link_is_split_from_the_links_page_only_with_a_reason() {
    let gateway = spawn_gateway_with_console().await;
    let (police, csc) = near_match(&gateway).await;
    let task = open_task(&gateway).await;
    IdentityResolutionServiceClient::new(gateway.channel("mash").await)
        .confirm_match(ConfirmMatchRequest {
            context: Some(acting("mash")),
            task_id: task.task_id.clone(),
            note: "same man on both records".into(),
        })
        .await
        .expect("confirmed");
    let link = gateway
        .store()
        .identity_links(&police)
        .await
        .expect("links")
        .pop()
        .expect("the link");

    let page = get(&gateway, STEWARD, "/identity/links").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Mills") && page.body.contains("Milles"));
    assert!(page.body.contains("steward (review task confirmed)"));
    let split = format!("/identity/links/{}/split", link.link_id);
    assert!(page.body.contains(&split), "{}", page.body);
    let viewed = log(&gateway).await.pop().expect("the view is logged");
    assert_eq!(viewed.rule_ids, ["identity.steward_view"]);
    assert_eq!(viewed.rpc, "console GET /identity/links");
    assert_eq!(viewed.identity_links.len(), 1);

    let decisions = gateway.count("identity_decision").await;
    let refused = post(
        &gateway,
        STEWARD,
        "/identity/links",
        &split,
        &[("reason", " ")],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(&format!("href=\"#reason-{}\"", link.link_id)),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Enter the reason the link is wrong"));
    assert_eq!(gateway.count("identity_decision").await, decisions);
    let store = gateway.store();
    assert_eq!(
        store.resolved_person(&police).await.expect("resolved"),
        store.resolved_person(&csc).await.expect("resolved"),
        "still linked"
    );

    let done = post(
        &gateway,
        STEWARD,
        "/identity/links",
        &split,
        &[("reason", "different men after all: police checked")],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(location(&done).starts_with("/identity/links?done=split"));
    assert_ne!(
        store.resolved_person(&police).await.expect("resolved"),
        store.resolved_person(&csc).await.expect("resolved"),
        "each its own person again"
    );
    let entry = log(&gateway)
        .await
        .into_iter()
        .find(|e| e.rule_ids == ["identity.split"])
        .expect("the split is in the log");
    assert_eq!(entry.practitioner_id, "MASH-0001");
    assert_eq!(entry.rpc, "console POST /identity/links/{link_id}/split");
    let page = get(&gateway, STEWARD, location(&done)).await;
    assert!(page.body.contains("The link is split"), "{}", page.body);
    assert!(!page.body.contains(&split), "a split link has no form");
}

#[tokio::test]
async fn each_role_is_refused_on_the_other_roles_pages_and_the_refusal_is_logged() {
    let gateway = spawn_gateway_with_console().await;
    near_match(&gateway).await;
    let task = open_task(&gateway).await;

    for path in [
        "/identity/tasks".to_owned(),
        format!("/identity/tasks/{}", task.task_id),
        "/identity/links".to_owned(),
    ] {
        let page = get(&gateway, IG_OFFICER, &path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("identity.steward_only"), "{}", page.body);
        assert!(page.body.contains("ig_officer"), "says why: {}", page.body);
        assert!(!page.body.contains("Milles"), "nothing shown");
        assert!(
            page.body.contains("Search the log"),
            "the officer's own pages"
        );
        assert!(
            !page.body.contains("/identity/links\""),
            "no steward navigation"
        );
        let refusal = log(&gateway).await.pop().expect("logged");
        assert_eq!(refusal.kind.as_str(), "refusal");
        assert_eq!(refusal.practitioner_id, "IG-0001");
        assert_eq!(refusal.rule_ids, ["identity.steward_only"]);
        assert!(refusal.released.is_empty());
    }
    let decisions = gateway.count("identity_decision").await;
    let page = post(
        &gateway,
        IG_OFFICER,
        "/",
        &format!("/identity/tasks/{}/decision", task.task_id),
        &[
            ("decision", "confirm"),
            ("note", "same man on both records"),
        ],
    )
    .await;
    assert_eq!(page.status, 403);
    assert_eq!(gateway.count("identity_decision").await, decisions);

    for path in ["/break-glass", "/subject-access", "/verify", "/charts"] {
        let page = get(&gateway, STEWARD, path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("audit.ig_officer_only"), "{}", page.body);
        assert!(
            page.body.contains("identity_steward"),
            "says why: {}",
            page.body
        );
        assert!(
            page.body.contains("Review tasks"),
            "the steward's own pages"
        );
        let refusal = log(&gateway).await.pop().expect("logged");
        assert_eq!(refusal.kind.as_str(), "refusal");
        assert_eq!(refusal.practitioner_id, "MASH-0001");
        assert_eq!(refusal.system_id, "mash");
        assert_eq!(refusal.rule_ids, ["audit.ig_officer_only"]);
        assert_eq!(refusal.rpc, format!("console GET {path}"));
    }
    let search = gateway
        .console(
            Some(&gateway.pki.officer(STEWARD)),
            "POST",
            "/search",
            Some(&[("person", "9990000042")]),
            SAME_ORIGIN,
        )
        .await
        .expect("answered");
    assert_eq!(search.status, 403);

    // Neither role: refused on the steward's pages too.
    let page = get(&gateway, "hv-0001", "/identity/tasks").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("identity.steward_only"));
    assert!(!page.body.contains("Review tasks"), "no navigation");
    let refusal = log(&gateway).await.pop().expect("logged");
    assert_eq!(refusal.practitioner_id, "HV-0001");
}
