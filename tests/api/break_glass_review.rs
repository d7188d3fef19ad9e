//! Break-glass review: IG officers find each break-glass use appropriate or not, with a
//! note; reviews are append-only records that are themselves logged; only break-glass
//! entries are reviewed; unreviewed ones can be listed.

use safegate::api::proto::{
    ListEntriesRequest, ReviewBreakGlassRequest, ReviewOutcome, Role, VerifyLogRequest,
    audit_service_client::AuditServiceClient,
};
use tonic::Code;

use crate::helpers::{TestDatabase, auditor, context};
use crate::ig_support::{break_glass_query, get, list, police_query, with_case};

fn review(entry_id: &str, outcome: ReviewOutcome, note: &str) -> ReviewBreakGlassRequest {
    ReviewBreakGlassRequest {
        context: Some(auditor()),
        entry_id: entry_id.into(),
        outcome: outcome.into(),
        note: note.into(),
    }
}

#[tokio::test]
async fn a_break_glass_entry_is_reviewed_and_a_later_review_supersedes_without_overwriting() {
    let (gateway, _case) = with_case().await;
    let entry_id = break_glass_query(&gateway).await;
    police_query(&gateway).await;

    // IG finds the unreviewed break-glass use, and only that.
    let unreviewed = list(
        &gateway,
        ListEntriesRequest {
            break_glass_unreviewed: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        unreviewed.iter().map(|e| &e.entry_id).collect::<Vec<_>>(),
        [&entry_id]
    );
    assert!(unreviewed[0].latest_review.is_none());

    let mut audit = gateway.audit().await;
    let first = audit
        .review_break_glass(review(
            &entry_id,
            ReviewOutcome::Inappropriate,
            "No immediate risk recorded; the school should have called the MASH",
        ))
        .await
        .expect("reviewed")
        .into_inner()
        .review
        .expect("review");
    assert_eq!(first.entry_id, entry_id);
    assert_eq!(first.outcome(), ReviewOutcome::Inappropriate);
    assert_eq!(first.reviewer_system_id, "ig-office");
    assert_eq!(first.reviewer_practitioner_id, "IG-0001");
    assert!(!first.reviewed_at.is_empty());

    let reviewed = get(&gateway, &entry_id).await;
    let latest = reviewed.latest_review.expect("the entry shows its review");
    assert_eq!(latest.outcome(), ReviewOutcome::Inappropriate);
    assert!(latest.note.contains("MASH"));
    assert!(
        list(
            &gateway,
            ListEntriesRequest {
                break_glass_unreviewed: true,
                ..Default::default()
            },
        )
        .await
        .is_empty(),
        "a reviewed entry is no longer unreviewed"
    );

    let second = audit
        .review_break_glass(review(
            &entry_id,
            ReviewOutcome::Appropriate,
            "DSL confirmed the disclosure by phone; override was justified",
        ))
        .await
        .expect("reviewed again")
        .into_inner()
        .review
        .expect("review");
    assert_ne!(second.review_id, first.review_id);
    let latest = get(&gateway, &entry_id)
        .await
        .latest_review
        .expect("latest review");
    assert_eq!(latest.review_id, second.review_id, "the later review wins");
    assert_eq!(latest.outcome(), ReviewOutcome::Appropriate);
    assert_eq!(
        gateway.count("break_glass_review").await,
        2,
        "the earlier review is kept, not overwritten"
    );

    // Each review is itself a log entry carrying the finding and the note.
    let logged = list(
        &gateway,
        ListEntriesRequest {
            kind: "review".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[0].entry_id, first.review_entry_id);
    assert_eq!(logged[1].entry_id, second.review_entry_id);
    assert_eq!(logged[0].rule_ids, ["audit.break_glass_review"]);
    assert!(
        logged[0].reason.contains("inappropriate"),
        "{}",
        logged[0].reason
    );
    assert!(logged[0].justification.contains("MASH"));
    assert_eq!(logged[0].released[0].record_id, entry_id);
    assert_eq!(logged[0].system_id, "ig-office");

    let verified = audit
        .verify_log(VerifyLogRequest {
            context: Some(auditor()),
        })
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.valid, "{}", verified.problem);
}

#[tokio::test]
async fn only_break_glass_entries_are_reviewed_and_only_by_ig_officers() {
    let (gateway, _case) = with_case().await;
    let ordinary = police_query(&gateway).await;
    let break_glass = break_glass_query(&gateway).await;
    let mut audit = gateway.audit().await;

    let status = audit
        .review_break_glass(review(&ordinary, ReviewOutcome::Appropriate, "Looks fine"))
        .await
        .expect_err("not a break-glass entry");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("audit.review_needs_break_glass"),
        "{}",
        status.message()
    );

    let status = audit
        .review_break_glass(review(&break_glass, ReviewOutcome::Unspecified, "Hmm"))
        .await
        .expect_err("no outcome");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = audit
        .review_break_glass(review(&break_glass, ReviewOutcome::Appropriate, "  "))
        .await
        .expect_err("no note");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("note"), "{}", status.message());

    let mut police = AuditServiceClient::new(gateway.channel("police-iom").await);
    let status = police
        .review_break_glass(ReviewBreakGlassRequest {
            context: Some(context("IOM-0001", Role::IomOfficer)),
            ..review(
                &break_glass,
                ReviewOutcome::Appropriate,
                "Marking my own homework",
            )
        })
        .await
        .expect_err("not an IG officer");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(gateway.count("break_glass_review").await, 0);

    // Each refusal is in the log.
    let refusals = list(
        &gateway,
        ListEntriesRequest {
            kind: "refusal".into(),
            ..Default::default()
        },
    )
    .await;
    let rules: Vec<&str> = refusals
        .iter()
        .filter(|e| e.rpc == "safegate.v1.AuditService/ReviewBreakGlass")
        .flat_map(|e| e.rule_ids.iter().map(String::as_str))
        .collect();
    assert_eq!(
        rules,
        [
            "audit.review_needs_break_glass",
            "request.invalid_argument",
            "request.invalid_argument",
            "audit.ig_officer_only",
        ]
    );
}

#[tokio::test]
async fn reviews_cannot_be_changed_or_removed_in_the_database() {
    let (gateway, _case) = with_case().await;
    let entry_id = break_glass_query(&gateway).await;
    gateway
        .audit()
        .await
        .review_break_glass(review(&entry_id, ReviewOutcome::Appropriate, "Justified"))
        .await
        .expect("reviewed");
    let pool = gateway.database_pool().await;
    for sql in [
        "UPDATE break_glass_review SET outcome = 'inappropriate'",
        "DELETE FROM break_glass_review",
    ] {
        let refused = sqlx::query(sql).execute(&pool).await;
        assert!(refused.is_err(), "{sql} was allowed");
    }
    if let TestDatabase::Postgres { .. } = gateway.database {
        assert!(
            sqlx::query("TRUNCATE break_glass_review")
                .execute(&pool)
                .await
                .is_err(),
            "TRUNCATE was allowed"
        );
    }
    pool.close().await;
    assert_eq!(
        get(&gateway, &entry_id)
            .await
            .latest_review
            .expect("review")
            .outcome(),
        ReviewOutcome::Appropriate
    );
}
