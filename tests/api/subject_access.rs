//! Subject-access reports: every disclosure about one person, with entries recording a
//! disclosure to police held back (and counted) until an IG officer releases them; the
//! report and each release are logged.

use safegate::api::proto::{
    self, Identifier, IdentifierScheme, PersonRef, Purpose, ReleaseForSubjectAccessRequest, Role,
    SubjectAccessReportRequest, SubjectAccessReportResponse,
    audit_service_client::AuditServiceClient,
};
use tonic::Code;

use crate::helpers::{TestGateway, auditor, context};
use crate::ig_support::{break_glass_query, get, police_query, with_case};

async fn report(gateway: &TestGateway, person_id: &str) -> SubjectAccessReportResponse {
    gateway
        .audit()
        .await
        .subject_access_report(SubjectAccessReportRequest {
            context: Some(auditor()),
            person_id: person_id.into(),
        })
        .await
        .expect("report")
        .into_inner()
}

fn release(entry_id: &str, note: &str) -> ReleaseForSubjectAccessRequest {
    ReleaseForSubjectAccessRequest {
        context: Some(auditor()),
        entry_id: entry_id.into(),
        note: note.into(),
    }
}

#[tokio::test]
async fn police_entries_are_held_back_and_counted_until_released() {
    let (gateway, case) = with_case().await;
    let dean = &case.persons["Dean"];
    let police = police_query(&gateway).await;
    let school = break_glass_query(&gateway).await;

    let first = report(&gateway, dean).await;
    let reported: Vec<&str> = first
        .disclosures
        .iter()
        .map(|d| d.entry_id.as_str())
        .collect();
    assert!(reported.contains(&school.as_str()), "{reported:?}");
    assert!(
        !reported.contains(&police.as_str()),
        "the police entry is held back"
    );
    assert_eq!(first.withheld_count, 1, "held back, but counted");
    assert!(first.disclosures.iter().all(|d| d.agency != "police"));
    let school_item = first
        .disclosures
        .iter()
        .find(|d| d.entry_id == school)
        .expect("school disclosure");
    assert_eq!(school_item.system_id, "primary-school");
    assert_eq!(school_item.purpose, "child_safeguarding");
    assert!(school_item.break_glass);
    assert!(
        school_item
            .released
            .iter()
            .chain(&school_item.withheld)
            .all(|fact| &fact.person_id == dean),
        "only facts about Dean, never about third parties"
    );
    // The IG's own reads of the log are not disclosures about Dean.
    assert!(
        first
            .disclosures
            .iter()
            .all(|d| d.kind != "log_read" && d.kind != "review"),
        "{:?}",
        first.disclosures
    );

    // The report is logged, naming what it held back.
    let logged = get(&gateway, &first.report_entry_id).await;
    assert_eq!(logged.kind, "log_read");
    assert_eq!(logged.rule_ids, ["audit.subject_access_report"]);
    assert_eq!(&logged.subject_person_id, dean);
    assert_eq!(
        logged
            .withheld
            .iter()
            .map(|w| w.record_id.as_str())
            .collect::<Vec<_>>(),
        [police.as_str()]
    );

    // Only held-back entries can be released.
    let mut audit = gateway.audit().await;
    let status = audit
        .release_for_subject_access(release(&school, "Not needed"))
        .await
        .expect_err("the school entry was never held back");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("audit.release_not_withheld"),
        "{}",
        status.message()
    );
    let mut police_client = AuditServiceClient::new(gateway.channel("police-iom").await);
    let status = police_client
        .release_for_subject_access(ReleaseForSubjectAccessRequest {
            context: Some(context("IOM-0001", Role::IomOfficer)),
            ..release(&police, "Releasing our own entry")
        })
        .await
        .expect_err("not an IG officer");
    assert_eq!(status.code(), Code::PermissionDenied);

    let released = audit
        .release_for_subject_access(release(
            &police,
            "Police confirmed disclosure would not prejudice an investigation",
        ))
        .await
        .expect("released")
        .into_inner()
        .release
        .expect("release");
    assert_eq!(released.entry_id, police);
    assert_eq!(released.released_by_practitioner_id, "IG-0001");
    let release_entry = get(&gateway, &released.release_entry_id).await;
    assert_eq!(release_entry.kind, "review");
    assert_eq!(release_entry.rule_ids, ["audit.subject_access_release"]);
    assert!(release_entry.justification.contains("prejudice"));

    let second = report(&gateway, dean).await;
    assert_eq!(second.withheld_count, 0);
    let police_item = second
        .disclosures
        .iter()
        .find(|d| d.entry_id == police)
        .expect("released police entry is reported");
    assert!(police_item.released_for_subject_access);
    assert_eq!(police_item.agency, "police");
    assert_eq!(police_item.purpose, "offender_management");
    assert!(
        second
            .disclosures
            .iter()
            .any(|d| d.entry_id == school && !d.released_for_subject_access)
    );
    assert_eq!(gateway.count("subject_access_release").await, 1);
}

#[tokio::test]
async fn a_report_needs_a_person() {
    let (gateway, _case) = with_case().await;
    let status = gateway
        .audit()
        .await
        .subject_access_report(SubjectAccessReportRequest {
            context: Some(auditor()),
            person_id: " ".into(),
        })
        .await
        .expect_err("no person");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("person_id"),
        "{}",
        status.message()
    );
    let nobody = report(&gateway, "no-such-person").await;
    assert!(nobody.disclosures.is_empty());
    assert_eq!(nobody.withheld_count, 0);
}

#[tokio::test]
async fn refusals_name_their_subject_and_the_report_lists_them() {
    let (gateway, case) = with_case().await;
    let dean = &case.persons["Dean"];
    // A school with no involvement asks about Dean by his PNC id: refused.
    let refused = crate::query::query(
        &gateway,
        "primary-school",
        crate::query::asking("DSL-0900", Role::SchoolDsl, Purpose::ChildSafeguarding),
        crate::query::pnc(safegate::demo::case::DEAN_PNC),
    )
    .await
    .expect_err("no legitimate relationship");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // And about someone nobody knows, by an NHS number.
    let unknown = crate::query::query(
        &gateway,
        "primary-school",
        crate::query::asking("DSL-0900", Role::SchoolDsl, Purpose::ChildSafeguarding),
        Some(PersonRef {
            r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
                scheme: IdentifierScheme::NhsNumber.into(),
                value: "9990000115".into(),
                namespace: String::new(),
            })),
        }),
    )
    .await
    .expect_err("unknown");
    assert_eq!(unknown.code(), Code::PermissionDenied, "the same refusal");

    let refusals = crate::ig_support::refusal_entries(&gateway).await;
    let about_dean = refusals
        .iter()
        .find(|e| e.subject_person_id == *dean)
        .expect("the refusal names Dean's resolved person");
    assert_eq!(about_dean.rule_ids, ["query.no_legitimate_relationship"]);
    assert!(
        about_dean.linked_person_ids.contains(&case.persons["Amy"]),
        "the persons in scope: {:?}",
        about_dean.linked_person_ids
    );
    let about_nobody = refusals
        .iter()
        .find(|e| e.subject_asked == "nhs:9990000115")
        .expect("the reference as asked");
    assert!(about_nobody.subject_person_id.is_empty());

    let reported = report(&gateway, dean).await;
    assert!(
        reported
            .disclosures
            .iter()
            .any(|d| d.entry_id == about_dean.entry_id && d.decision == "refused"),
        "the subject-access report lists the refusal"
    );
}
