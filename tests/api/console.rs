//! The IG console over HTTPS with officers' personal certificates: sign-in and refusal,
//! each page's own disclosure-log entry, CSRF, the break-glass outcome, the entry's
//! proof and the verification job, on the real gateway and database.

use std::time::Duration;

use safegate::api::proto::ListEntriesRequest;
use safegate::demo::case::{DEAN_NHS, DEAN_PNC};
use safegate::domain::ledger::audit::LOG_READ_LAWFUL_BASIS;
use safegate::pki::{CertificateAuthority, Validity};

use crate::helpers::{ConsolePage, TestGateway, eventually, spawn_gateway_with_console};
use crate::ig_support::{break_glass_query, list, police_query, refusals, refused_school_query};

/// Request headers, as (name, value).
type Headers<'a> = &'a [(&'a str, &'a str)];

const SAME_ORIGIN: Headers<'static> = &[("sec-fetch-site", "same-origin")];

async fn with_case_and_console() -> TestGateway {
    let gateway = spawn_gateway_with_console().await;
    safegate::demo::case::load(gateway.addr, &gateway.pki.dir)
        .await
        .expect("case loads");
    gateway
}

/// Every entry of the log, oldest first (read through the store, so it adds none).
async fn log(gateway: &TestGateway) -> Vec<safegate::domain::ledger::StoredEntry> {
    gateway
        .store()
        .entries(&safegate::domain::ledger::EntryFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .expect("entries")
}

async fn get(gateway: &TestGateway, officer: &str, path: &str) -> ConsolePage {
    gateway.console_get(officer, path).await
}

async fn post(
    gateway: &TestGateway,
    officer: &str,
    path: &str,
    form: &[(&str, &str)],
) -> ConsolePage {
    gateway.console_post(officer, "/", path, form).await
}

#[tokio::test]
async fn without_a_certificate_every_page_is_refused_and_nothing_is_shown_or_logged() {
    let gateway = spawn_gateway_with_console().await;
    refusals(&gateway, 1).await;
    let before = log(&gateway).await.len();
    for (method, path) in [("GET", "/"), ("GET", "/break-glass"), ("POST", "/search")] {
        let page = gateway
            .console(None, method, path, Some(&[]), &[])
            .await
            .expect("the handshake succeeds without a certificate");
        assert_eq!(page.status, 403, "{method} {path}");
        assert!(
            page.body.contains("Sign in with your personal certificate"),
            "{method} {path}: {}",
            page.body
        );
        assert!(!page.body.contains("csrf_token"), "no form is shown");
    }
    assert_eq!(log(&gateway).await.len(), before, "there is nobody to log");
}

#[tokio::test]
async fn a_practitioner_who_is_not_an_ig_officer_is_refused_and_the_refusal_is_logged() {
    let gateway = spawn_gateway_with_console().await;
    let page = get(&gateway, "hv-0001", "/break-glass").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("audit.ig_officer_only"), "{}", page.body);
    assert!(page.body.contains("health_visitor"), "{}", page.body);
    let entries = log(&gateway).await;
    let refusal = &entries.last().expect("the refusal is logged").entry;
    assert_eq!(refusal.kind.as_str(), "refusal");
    assert_eq!(refusal.practitioner_id, "HV-0001");
    assert_eq!(refusal.system_id, "health-visiting");
    assert_eq!(refusal.role, "health_visitor");
    assert_eq!(refusal.rule_ids, ["audit.ig_officer_only"]);
    assert_eq!(refusal.rpc, "console GET /break-glass");
    assert!(refusal.released.is_empty());
}

#[tokio::test]
async fn a_certificate_no_officer_holds_is_refused_naming_its_fingerprint() {
    let gateway = spawn_gateway_with_console().await;
    let ca = CertificateAuthority::load_named(&gateway.pki.dir, "officers-ca").expect("CA");
    let stranger = ca
        .issue_officer("ig-9999", Validity::days(1))
        .expect("certificate");
    let page = gateway
        .console(Some(&stranger), "GET", "/", None, &[])
        .await
        .expect("answered");
    assert_eq!(page.status, 403);
    let entries = log(&gateway).await;
    let refusal = &entries.last().expect("logged").entry;
    assert_eq!(refusal.rule_ids, ["registry.unregistered_certificate"]);
    assert_eq!(refusal.certificate_sha256.len(), 64);
    assert!(
        page.body.contains(&refusal.certificate_sha256),
        "the page quotes the fingerprint the log holds"
    );
    // A certificate from an authority that issues no officer's never gets that far.
    let system = gateway.pki.client("ig-office");
    let refused = gateway.console(Some(&system), "GET", "/", None, &[]).await;
    assert!(
        refused.is_err(),
        "a system certificate is refused at the handshake"
    );
}

#[tokio::test]
async fn an_ig_officer_signs_in_and_pages_without_log_contents_write_no_entry() {
    let gateway = spawn_gateway_with_console().await;
    refusals(&gateway, 1).await;
    let before = log(&gateway).await.len();
    for path in ["/", "/subject-access", "/exports", "/verify"] {
        let page = get(&gateway, "ig-0001", path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.body.contains("Signed in as Priya Shah (IG-0001)"),
            "{path}"
        );
        let csp = page.headers["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(page.headers["cache-control"], "no-store");
    }
    assert_eq!(log(&gateway).await.len(), before);
}

#[tokio::test]
async fn each_page_that_shows_the_log_writes_its_own_entry_as_the_grpc_api_does() {
    let gateway = with_case_and_console().await;
    let police = police_query(&gateway).await;
    let break_glass = break_glass_query(&gateway).await;

    // A search by person: one read, about the resolved person, naming each entry shown.
    let before = log(&gateway).await.len();
    let page = post(&gateway, "ig-0001", "/search", &[("person", DEAN_PNC)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("/entries/{police}")));
    assert!(page.body.contains(&format!("/entries/{break_glass}")));
    let entries = log(&gateway).await;
    assert_eq!(entries.len(), before + 1, "one entry for the page");
    let read = &entries.last().expect("read").entry;
    assert_eq!(read.kind.as_str(), "log_read");
    assert_eq!(read.rpc, "console POST /search");
    assert_eq!(read.practitioner_id, "IG-0001");
    assert_eq!(read.role, "ig_officer");
    assert_eq!(read.purpose, "audit");
    assert_eq!(read.system_id, "ig-office");
    assert_eq!(read.lawful_basis, LOG_READ_LAWFUL_BASIS);
    assert!(!read.subject_person_id.is_empty());
    let shown: Vec<&str> = read.released.iter().map(|d| d.record_id.as_str()).collect();
    assert!(shown.contains(&police.as_str()) && shown.contains(&break_glass.as_str()));
    // The same search over gRPC finds what the console showed.
    let over_grpc = list(
        &gateway,
        ListEntriesRequest {
            person_id: read.subject_person_id.clone(),
            ..Default::default()
        },
    )
    .await;
    for id in &shown {
        assert!(over_grpc.iter().any(|e| e.entry_id == *id), "{id}");
    }

    // The entry page, the queue, the report, the charts and an export: one entry each.
    let before = log(&gateway).await.len();
    let entry = get(&gateway, "ig-0001", &format!("/entries/{break_glass}")).await;
    assert_eq!(entry.status, 200);
    let queue = get(&gateway, "ig-0001", "/break-glass").await;
    assert!(queue.body.contains(&format!("/entries/{break_glass}")));
    let report = post(
        &gateway,
        "ig-0001",
        "/subject-access",
        &[("person", DEAN_NHS)],
    )
    .await;
    assert!(
        report.body.contains("Police entries held back"),
        "{}",
        report.body
    );
    let charts = get(&gateway, "ig-0001", "/charts").await;
    assert_eq!(charts.status, 200);
    let export = post(&gateway, "ig-0001", "/exports", &[("format", "jsonl")]).await;
    assert_eq!(export.status, 200);
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .expect("disposition")
            .starts_with("attachment")
    );
    let entries = log(&gateway).await;
    let written: Vec<(&str, &str)> = entries[before..]
        .iter()
        .map(|s| (s.entry.kind.as_str(), s.entry.rpc.as_str()))
        .collect();
    assert_eq!(
        written,
        [
            ("log_read", "console GET /entries/{entry_id}"),
            ("log_read", "console GET /break-glass"),
            ("log_read", "console POST /subject-access"),
            // The log's statistics, then the privacy alerts' counts by rule.
            ("log_read", "console GET /charts"),
            ("log_read", "console GET /charts"),
            ("export", "console POST /exports"),
        ]
    );
    let entry_read = &entries[before].entry;
    assert_eq!(entry_read.released.len(), 1);
    assert_eq!(entry_read.released[0].record_id, break_glass);
    assert_eq!(entries[before + 4].entry.rule_ids, ["audit.alert_read"]);
    assert_eq!(charts.body.matches("role=\"img\"").count(), 4);
    assert!(charts.body.contains("Privacy alerts by rule"));
    // The export streamed its own entry, logged before the first line left.
    assert!(export.body.contains(&entries[before + 5].entry.entry_id));
}

#[tokio::test]
async fn the_entry_page_shows_the_entry_in_full_with_its_proof_checked() {
    let gateway = with_case_and_console().await;
    let police = police_query(&gateway).await;
    let page = get(&gateway, "ig-0001", &format!("/entries/{police}")).await;
    assert_eq!(page.status, 200);
    for text in [
        "Proof checked",
        "Lawful basis",
        "Policy version",
        "Released, and at which level",
        "Withheld",
        "IOM-0001",
        "offender management",
        "Release for subject access",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    let missing = get(&gateway, "ig-0001", "/entries/no-such-entry").await;
    assert_eq!(missing.status, 404);
    let refusal = log(&gateway).await.last().expect("logged").entry.clone();
    assert_eq!(refusal.kind.as_str(), "refusal");
    assert_eq!(refusal.rule_ids, ["request.not_found"]);
}

#[tokio::test]
async fn forms_need_the_token_bound_to_the_officers_own_certificate_and_page() {
    let gateway = with_case_and_console().await;
    let break_glass = break_glass_query(&gateway).await;
    let reviews = gateway.count("break_glass_review").await;
    let path = format!("/entries/{break_glass}/review");
    let review = [
        ("outcome", "appropriate"),
        ("note", "Checked with the DSL."),
    ];
    let officer = gateway.pki.officer("ig-0001");
    let own = get(&gateway, "ig-0001", "/").await.csrf_token();
    let others = get(&gateway, "ig-0002", "/").await.csrf_token();
    assert_ne!(own, others);

    let attempts: [(&str, &str, Headers); 4] = [
        ("none", "", SAME_ORIGIN),
        ("another officer's", &others, SAME_ORIGIN),
        (
            "own, sent cross-site",
            &own,
            &[("sec-fetch-site", "cross-site")],
        ),
        (
            "own, from another origin",
            &own,
            &[("origin", "https://evil.example")],
        ),
    ];
    for (label, token, headers) in attempts {
        let mut form = vec![("csrf_token", token)];
        form.extend_from_slice(&review);
        let page = gateway
            .console(Some(&officer), "POST", &path, Some(&form), headers)
            .await
            .expect("answered");
        assert_eq!(page.status, 403, "{label} token");
        assert!(page.body.contains("console.csrf"), "{label}");
    }
    assert_eq!(
        gateway.count("break_glass_review").await,
        reviews,
        "nothing stored"
    );
    let refused = log(&gateway).await;
    assert_eq!(
        refused.last().expect("logged").entry.rule_ids,
        ["console.csrf"]
    );

    let mut form = vec![("csrf_token", own.as_str())];
    form.extend_from_slice(&review);
    let page = gateway
        .console(Some(&officer), "POST", &path, Some(&form), SAME_ORIGIN)
        .await
        .expect("answered");
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(gateway.count("break_glass_review").await, reviews + 1);
}

#[tokio::test]
async fn a_break_glass_outcome_and_note_are_recorded_and_supersede_without_overwriting() {
    let gateway = with_case_and_console().await;
    let break_glass = break_glass_query(&gateway).await;
    let path = format!("/entries/{break_glass}/review");

    let incomplete = post(&gateway, "ig-0001", &path, &[("outcome", "appropriate")]).await;
    assert_eq!(incomplete.status, 400);
    assert!(incomplete.body.contains("govuk-error-summary"));
    assert!(incomplete.body.contains("href=\"#note\""));
    assert_eq!(gateway.count("break_glass_review").await, 0);

    let done = post(
        &gateway,
        "ig-0001",
        &path,
        &[
            ("outcome", "appropriate"),
            ("note", "Disclosure at school."),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.headers["location"],
        format!("/entries/{break_glass}?done=reviewed").as_str()
    );
    let queue = get(&gateway, "ig-0001", "/break-glass").await;
    assert!(
        !queue.body.contains(&format!("/entries/{break_glass}")),
        "reviewed"
    );

    post(
        &gateway,
        "ig-0002",
        &path,
        &[
            ("outcome", "inappropriate"),
            ("note", "No disclosure found."),
        ],
    )
    .await;
    assert_eq!(gateway.count("break_glass_review").await, 2);
    let page = get(&gateway, "ig-0001", &format!("/entries/{break_glass}")).await;
    assert!(
        page.body
            .contains("Latest outcome: <strong>inappropriate</strong>")
    );
    assert!(page.body.contains("IG-0002 (ig-office)"));
    let entries = log(&gateway).await;
    let reviews: Vec<&str> = entries
        .iter()
        .filter(|s| s.entry.kind.as_str() == "review")
        .map(|s| s.entry.practitioner_id.as_str())
        .collect();
    assert_eq!(reviews, ["IG-0001", "IG-0002"]);

    // Only break-glass entries are reviewed: refused naming the rule.
    let police = police_query(&gateway).await;
    let refused = post(
        &gateway,
        "ig-0001",
        &format!("/entries/{police}/review"),
        &[("outcome", "appropriate"), ("note", "n/a")],
    )
    .await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("audit.review_needs_break_glass"));
}

#[tokio::test]
async fn a_police_entry_is_released_for_subject_access_from_its_page() {
    let gateway = with_case_and_console().await;
    let police = police_query(&gateway).await;
    let held = post(
        &gateway,
        "ig-0001",
        "/subject-access",
        &[("person", DEAN_NHS)],
    )
    .await;
    assert!(
        !held.body.contains(&format!("/entries/{police}\"")),
        "held back"
    );
    let released = post(
        &gateway,
        "ig-0001",
        &format!("/entries/{police}/release"),
        &[("release_note", "No prejudice to any investigation.")],
    )
    .await;
    assert_eq!(released.status, 303);
    // The report covers the log up to the latest checkpoint, which now includes it.
    let report = post(
        &gateway,
        "ig-0001",
        "/subject-access",
        &[("person", DEAN_NHS)],
    )
    .await;
    assert!(
        report.body.contains(&format!("/entries/{police}\"")),
        "released"
    );
}

#[tokio::test]
async fn the_whole_log_is_verified_by_a_job_whose_page_shows_its_progress() {
    let gateway = with_case_and_console().await;
    let started = post(&gateway, "ig-0001", "/verify", &[]).await;
    assert_eq!(started.status, 303);
    let job = started.headers["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(job.starts_with("/verify/"));
    let finished = eventually(Duration::from_secs(30), || async {
        get(&gateway, "ig-0001", &job)
            .await
            .body
            .contains("Verification finished")
    })
    .await;
    assert!(finished, "the verification finishes");
    let page = get(&gateway, "ig-0001", &job).await;
    assert!(page.body.contains("The log verifies"), "{}", page.body);
    assert!(
        !page.body.contains("http-equiv=\"refresh\""),
        "done: no refresh"
    );
    // Only the officer who started it sees it.
    assert_eq!(get(&gateway, "ig-0002", &job).await.status, 404);
    let verification = log(&gateway)
        .await
        .into_iter()
        .find(|s| s.entry.rpc == "console POST /verify")
        .expect("the verification is logged");
    assert_eq!(verification.entry.practitioner_id, "IG-0001");
}

#[tokio::test]
async fn a_search_by_name_and_date_of_birth_follows_identity_resolution() {
    let gateway = with_case_and_console().await;
    police_query(&gateway).await;
    let page = post(
        &gateway,
        "ig-0001",
        "/search",
        &[
            ("given_name", "Amy"),
            ("family_name", "Carter"),
            ("dob_day", "1"),
            ("dob_month", "1"),
            ("dob_year", "1900"),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No single person on record matches"));
    let read = log(&gateway).await.last().expect("logged").entry.clone();
    assert_eq!(read.kind.as_str(), "log_read");
    assert_eq!(read.subject_asked, "search by demographics");

    let found = post(
        &gateway,
        "ig-0001",
        "/search",
        &[
            ("given_name", "Amy"),
            ("family_name", "Carter"),
            ("dob_day", "14"),
            ("dob_month", "9"),
            ("dob_year", "2017"),
        ],
    )
    .await;
    assert!(found.body.contains("oldest first"), "{}", found.body);
    let read = log(&gateway).await.last().expect("logged").entry.clone();
    assert!(!read.subject_person_id.is_empty(), "Amy is found");
    assert!(read.search_candidates.contains(&read.subject_person_id));
    assert!(!read.released.is_empty(), "entries about Amy are listed");

    let bad = post(&gateway, "ig-0001", "/search", &[("person", "Amy Carter")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("href=\"#person\""));
}

/// Five refused queries by the school's DSL within the hour (policies/alerts.toml's
/// `repeated_refusals`), evaluated: the one alert they raise.
async fn refusals_alert(gateway: &TestGateway) -> safegate::domain::alerts::Alert {
    for _ in 0..5 {
        refused_school_query(gateway).await;
    }
    assert!(
        gateway.alerts.sync(None).await.expect("evaluation runs"),
        "this gateway evaluates the rules"
    );
    let found = gateway
        .store()
        .alerts(&safegate::domain::alerts::AlertFilter {
            rule_id: Some("alerts.repeated_refusals".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("alerts");
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().expect("one").1
}

/// The numbers (open or assigned, closed) of `rule`'s row in the charts' alerts table.
fn alert_counts(body: &str, rule: &str) -> Vec<u64> {
    let start = body
        .find(&format!("({rule})</span></th>"))
        .unwrap_or_else(|| panic!("a row for {rule}"));
    let row = &body[start..start + body[start..].find("</tr>").expect("row ends")];
    row.split("numeric\">")
        .skip(1)
        .map(|cell| {
            cell.split('<')
                .next()
                .expect("cell")
                .parse()
                .expect("a count")
        })
        .collect()
}

#[tokio::test]
async fn an_alert_raised_by_refusals_is_listed_and_its_case_page_is_a_logged_read() {
    let gateway = with_case_and_console().await;
    let alert = refusals_alert(&gateway).await;
    let case_link = format!("/alerts/{}", alert.alert_id);

    let before = log(&gateway).await.len();
    let list = get(&gateway, "ig-0001", "/alerts").await;
    assert_eq!(list.status, 200, "{}", list.body);
    for text in [
        "Repeated refusals",
        "DSL-0900 at primary-school",
        "open",
        &case_link,
    ] {
        assert!(list.body.contains(text), "{text}: {}", list.body);
    }
    assert!(list.body.contains("aria-current=\"page\"><strong class=\"govuk-service-navigation__active-fallback\">Privacy alerts"));
    let entries = log(&gateway).await;
    assert_eq!(entries.len(), before + 1, "one entry for the page");
    let read = &entries[before].entry;
    assert_eq!(read.kind.as_str(), "log_read");
    assert_eq!(read.rpc, "console GET /alerts");
    assert_eq!(read.practitioner_id, "IG-0001");
    assert_eq!(read.rule_ids, ["audit.alert_read"]);
    assert!(read.released.iter().any(|d| d.record_id == alert.alert_id));

    // The filters: another state or rule lists nothing; a state that is none is named.
    let closed = get(&gateway, "ig-0001", "/alerts?state=closed").await;
    assert!(!closed.body.contains(&case_link));
    assert!(closed.body.contains("No alert matches these filters"));
    let other_rule = get(
        &gateway,
        "ig-0001",
        "/alerts?state=all&rule=alerts.out_of_hours",
    )
    .await;
    assert!(!other_rule.body.contains(&case_link));
    let open = get(
        &gateway,
        "ig-0001",
        "/alerts?state=open&rule=alerts.repeated_refusals",
    )
    .await;
    assert!(open.body.contains(&case_link));
    let bad = get(&gateway, "ig-0001", "/alerts?state=reopened").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("govuk-error-summary"));
    assert!(bad.body.contains("href=\"#state\""));

    // The case: why, the rule and its version, each entry it rests on; one logged read.
    let before = log(&gateway).await.len();
    let case = get(&gateway, "ig-0001", &case_link).await;
    assert_eq!(case.status, 200, "{}", case.body);
    assert!(case.body.contains("was refused 5 times"), "{}", case.body);
    assert!(case.body.contains("alerts.repeated_refusals"));
    assert!(case.body.contains(&alert.rules_version));
    assert_eq!(alert.entry_ids.len(), 5);
    for entry_id in &alert.entry_ids {
        assert!(
            case.body.contains(&format!("/entries/{entry_id}")),
            "{entry_id}"
        );
    }
    assert!(
        case.body
            .contains(&format!("/entries/{}", alert.log_entry_id))
    );
    let entries = log(&gateway).await;
    assert_eq!(entries.len(), before + 1);
    let read = &entries[before].entry;
    assert_eq!(read.rpc, "console GET /alerts/{alert_id}");
    let shown: Vec<&str> = read.released.iter().map(|d| d.record_id.as_str()).collect();
    assert!(shown.contains(&alert.alert_id.as_str()));
    for entry_id in &alert.entry_ids {
        assert!(shown.contains(&entry_id.as_str()), "{entry_id}");
    }

    let missing = get(
        &gateway,
        "ig-0001",
        "/alerts/0190d9a2-1111-7000-8000-000000000001",
    )
    .await;
    assert_eq!(missing.status, 404);
    let not_an_id = get(&gateway, "ig-0001", "/alerts/not-an-id").await;
    assert_eq!(not_an_id.status, 400);
    assert!(not_an_id.body.contains("alert_id"));
}

#[tokio::test]
async fn an_alert_is_assigned_then_closed_and_bad_input_is_named_with_nothing_stored() {
    let gateway = with_case_and_console().await;
    let alert = refusals_alert(&gateway).await;
    let case_link = format!("/alerts/{}", alert.alert_id);
    let assign = format!("{case_link}/assign");
    let close = format!("{case_link}/close");
    let steps = || gateway.count("privacy_alert_event");

    // Not assignable to someone who is not a registered IG officer.
    for (assignee, why) in [
        ("", "Enter the practitioner id"),
        ("HV-0001", "registered IG officer"),
    ] {
        let refused = post(&gateway, "ig-0001", &assign, &[("assignee", assignee)]).await;
        assert_eq!(refused.status, 400, "{assignee}");
        assert!(refused.body.contains("href=\"#assignee\""), "{assignee}");
        assert!(refused.body.contains(why), "{assignee}");
    }
    // Not closed before it is assigned.
    let early = post(
        &gateway,
        "ig-0001",
        &close,
        &[("outcome", "explained"), ("close_note", "Too early.")],
    )
    .await;
    assert_eq!(early.status, 409);
    assert!(early.body.contains("href=\"#outcome\""));
    assert!(
        early
            .body
            .contains("Assign the case to an officer before closing it")
    );
    assert_eq!(steps().await, 0, "nothing stored");

    let assigned = post(
        &gateway,
        "ig-0001",
        &assign,
        &[
            ("assignee", "IG-0002"),
            ("assign_note", "Tom knows the school."),
        ],
    )
    .await;
    assert_eq!(assigned.status, 303, "{}", assigned.body);
    assert_eq!(
        assigned.headers["location"],
        format!("{case_link}?done=assigned").as_str()
    );
    assert_eq!(steps().await, 1);

    // A close without a note, or with an outcome that is none, is refused naming the field.
    let before = log(&gateway).await.len();
    let no_note = post(&gateway, "ig-0001", &close, &[("outcome", "explained")]).await;
    assert_eq!(no_note.status, 400);
    assert!(no_note.body.contains("govuk-error-summary"));
    assert!(no_note.body.contains("href=\"#close_note\""));
    assert!(no_note.body.starts_with("<!DOCTYPE html>"));
    assert!(no_note.body.contains("<title>Error: "));
    let unknown = post(
        &gateway,
        "ig-0001",
        &close,
        &[("outcome", "reopened"), ("close_note", "A note.")],
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("href=\"#outcome\""));
    assert_eq!(steps().await, 1, "nothing stored");
    assert!(
        log(&gateway).await[before..]
            .iter()
            .all(|s| s.entry.kind.as_str() != "review"),
        "no step was recorded"
    );

    let closed = post(
        &gateway,
        "ig-0002",
        &close,
        &[
            ("outcome", "false_positive"),
            ("close_note", "The DSL was testing the new system."),
        ],
    )
    .await;
    assert_eq!(closed.status, 303, "{}", closed.body);
    assert_eq!(steps().await, 2);

    let page = get(&gateway, "ig-0001", &format!("{case_link}?done=closed")).await;
    for text in [
        "The case is closed",
        "Assigned to IG-0002",
        "Tom knows the school.",
        "IG-0001 (ig-office)",
        "False positive",
        "IG-0002 (ig-office)",
        "The DSL was testing the new system.",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    assert!(
        !page.body.contains(&format!("action=\"{close}\"")),
        "no form on a closed case"
    );
    let reviews: Vec<(String, String, Vec<String>)> = log(&gateway)
        .await
        .into_iter()
        .filter(|s| s.entry.kind.as_str() == "review")
        .map(|s| (s.entry.practitioner_id, s.entry.rpc, s.entry.rule_ids))
        .collect();
    assert_eq!(
        reviews,
        [
            (
                "IG-0001".to_owned(),
                "console POST /alerts/{alert_id}/assign".to_owned(),
                vec!["audit.alert_assign".to_owned()]
            ),
            (
                "IG-0002".to_owned(),
                "console POST /alerts/{alert_id}/close".to_owned(),
                vec!["audit.alert_close".to_owned()]
            ),
        ]
    );
    let listed = get(&gateway, "ig-0001", "/alerts?state=closed").await;
    assert!(listed.body.contains(&case_link));
    // The charts count it as closed under its rule.
    let charts = get(&gateway, "ig-0001", "/charts").await;
    assert_eq!(
        alert_counts(&charts.body, "alerts.repeated_refusals"),
        [0, 1]
    );
    assert_eq!(alert_counts(&charts.body, "alerts.out_of_hours"), [0, 0]);

    // A closed case is not closed again, nor reassigned.
    let again = post(
        &gateway,
        "ig-0001",
        &close,
        &[("outcome", "breach"), ("close_note", "Second thoughts.")],
    )
    .await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("href=\"#outcome\""));
    assert!(again.body.contains("already closed"));
    let reassigned = post(&gateway, "ig-0001", &assign, &[("assignee", "IG-0001")]).await;
    assert_eq!(reassigned.status, 409);
    assert!(reassigned.body.contains("href=\"#assignee\""));
    assert_eq!(steps().await, 2, "nothing stored");
}

#[tokio::test]
async fn a_practitioner_who_is_not_an_ig_officer_cannot_see_or_work_alerts() {
    let gateway = with_case_and_console().await;
    let alert = refusals_alert(&gateway).await;
    let case_link = format!("/alerts/{}", alert.alert_id);
    for path in ["/alerts", case_link.as_str()] {
        let page = get(&gateway, "hv-0001", path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("audit.ig_officer_only"), "{path}");
        assert!(!page.body.contains("Repeated refusals"), "{path}");
        let refusal = log(&gateway).await.last().expect("logged").entry.clone();
        assert_eq!(refusal.kind.as_str(), "refusal");
        assert_eq!(refusal.practitioner_id, "HV-0001");
        assert!(refusal.released.is_empty());
    }
    let officer = gateway.pki.officer("hv-0001");
    let refused = gateway
        .console(
            Some(&officer),
            "POST",
            &format!("{case_link}/assign"),
            Some(&[("csrf_token", ""), ("assignee", "HV-0001")]),
            SAME_ORIGIN,
        )
        .await
        .expect("answered");
    assert_eq!(refused.status, 403);
    assert_eq!(
        gateway.count("privacy_alert_event").await,
        0,
        "nothing stored"
    );
}

/// The console's front page as the holder of `client`.
async fn sign_in(gateway: &TestGateway, client: &safegate::pki::IssuedCertificate) -> ConsolePage {
    gateway
        .console(Some(client), "GET", "/", None, &[])
        .await
        .expect("the console answers")
}

/// The page refuses a certificate the registry lists for no officer.
fn assert_unregistered(page: &ConsolePage) {
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("registry.unregistered_certificate"),
        "{}",
        page.body
    );
}

/// The registry's officers are reloaded with the rest of it: an officer added to the
/// file signs in after `ReloadPolicy`, and one removed from it is refused from then on,
/// without a restart (the officers' authority itself is the one in force at start).
#[tokio::test]
async fn officers_added_to_or_removed_from_the_registry_take_effect_at_the_reload() {
    use safegate::api::proto::ReloadPolicyRequest;
    use safegate::api::proto::admin_service_client::AdminServiceClient;

    let pki = crate::helpers::TestPki::new();
    let authority = CertificateAuthority::load_named(&pki.dir, "officers-ca").expect("officers CA");
    let newcomer = authority
        .issue_officer("ig-0003", Validity::days(30))
        .expect("a new officer's certificate");
    let dir = crate::helpers::temp_dir("console-registry");
    let registry = dir.join("registry.toml");
    let original = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/registry.toml"
    ))
    .expect("the demo registry");
    std::fs::write(&registry, &original).expect("write the registry");
    let gateway = crate::helpers::spawn_gateway_with_settings(
        pki,
        vec![
            ("registry".into(), registry.display().to_string()),
            ("console_listen_addr".into(), "127.0.0.1:0".into()),
        ],
    )
    .await;
    let refused = sign_in(&gateway, &newcomer).await;
    assert_unregistered(&refused);
    assert_eq!(
        sign_in(&gateway, &gateway.pki.officer("ig-0002"))
            .await
            .status,
        200
    );

    // IG-0003 joins; IG-0002 leaves.
    let tom = "[[officer]]\npractitioner_id = \"IG-0002\"";
    let start = original.find(tom).expect("IG-0002 in the demo registry");
    let end = original[start + 1..]
        .find("\n[[")
        .map_or(original.len(), |i| start + 1 + i + 1);
    let edited = format!(
        "{}{}\n[[officer]]\npractitioner_id = \"IG-0003\"\nname = \"Ada Quinn\"\nsystem = \"ig-office\"\n\
         role = \"ig_officer\"\nauthority = \"dev-officers-ca\"\nsan_uri = \"urn:safegate:officer:ig-0003\"\n",
        &original[..start],
        &original[end..]
    );
    std::fs::write(&registry, edited).expect("edit the registry");
    let reloaded = AdminServiceClient::new(gateway.channel("ig-office").await)
        .reload_policy(ReloadPolicyRequest {
            context: Some(crate::helpers::auditor()),
        })
        .await
        .expect("the reload call succeeds")
        .into_inner();
    assert!(reloaded.reloaded, "{}", reloaded.error);

    let welcomed = sign_in(&gateway, &newcomer).await;
    assert_eq!(welcomed.status, 200, "{}", welcomed.body);
    assert!(
        welcomed.body.contains("Ada Quinn (IG-0003)"),
        "{}",
        welcomed.body
    );
    let gone = sign_in(&gateway, &gateway.pki.officer("ig-0002")).await;
    assert_unregistered(&gone);
    assert_eq!(
        sign_in(&gateway, &gateway.pki.officer("ig-0001"))
            .await
            .status,
        200
    );
}
