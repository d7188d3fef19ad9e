//! The tables beside the disclosure log that IG answers from (the person index, break-glass
//! reviews, subject-access releases, the record of logged identity decisions) are proven by
//! the hashed entries: a row edited, deleted or inserted by someone who owns the database
//! and drops the append-only triggers first is caught by verify and named.

use safegate::api::proto::{
    ReleaseForSubjectAccessRequest, ReviewBreakGlassRequest, ReviewOutcome, VerifyLogRequest,
    VerifyLogResponse,
};

use crate::helpers::{TestDatabase, TestGateway, auditor};
use crate::ig_support::{audit_cli, break_glass_query, police_query, stdout, with_case};

pub(crate) async fn verify(gateway: &TestGateway) -> VerifyLogResponse {
    gateway
        .audit()
        .await
        .verify_log(VerifyLogRequest {
            context: Some(auditor()),
        })
        .await
        .expect("verify")
        .into_inner()
}

/// Runs `statements` as the database's owner could: the table's append-only triggers
/// (and, for inserts naming entries that do not exist, foreign keys) out of the way.
async fn as_owner(gateway: &TestGateway, table: &str, statements: &[String]) {
    let pool = gateway.database_pool().await;
    let off: Vec<String> = match gateway.database {
        TestDatabase::Postgres { .. } => vec![format!("ALTER TABLE {table} DISABLE TRIGGER ALL")],
        TestDatabase::Sqlite { .. } => vec![
            "PRAGMA foreign_keys = OFF".into(),
            format!("DROP TRIGGER IF EXISTS {table}_no_update"),
            format!("DROP TRIGGER IF EXISTS {table}_no_delete"),
        ],
    };
    for sql in off.iter().chain(statements) {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;
}

/// Tampers with `table`, returns what verify said, then puts the table back as it was and
/// checks that the log verifies again (so each case below is caught on its own).
pub(crate) async fn caught(
    gateway: &TestGateway,
    table: &str,
    tampering: &[String],
) -> VerifyLogResponse {
    let saved = format!("saved_{table}");
    let mut statements = vec![format!("CREATE TABLE {saved} AS SELECT * FROM {table}")];
    statements.extend_from_slice(tampering);
    as_owner(gateway, table, &statements).await;
    let said = verify(gateway).await;
    assert!(!said.valid, "tampering with {table} went unnoticed");
    as_owner(
        gateway,
        table,
        &[
            format!("DELETE FROM {table}"),
            format!("INSERT INTO {table} SELECT * FROM {saved}"),
            format!("DROP TABLE {saved}"),
        ],
    )
    .await;
    let again = verify(gateway).await;
    assert!(
        again.valid,
        "restored {table} must verify: {}",
        again.problem
    );
    said
}

async fn scalar(gateway: &TestGateway, sql: &str) -> String {
    let pool = gateway.database_pool().await;
    let value: String = sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
    value
}

async fn seq_of(gateway: &TestGateway, entry_id: &str) -> u64 {
    let pool = gateway.database_pool().await;
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM disclosure_log WHERE entry_id = $1")
        .bind(entry_id)
        .fetch_one(&pool)
        .await
        .expect("the entry is in the log");
    pool.close().await;
    seq as u64
}

#[tokio::test]
async fn the_person_index_is_recomputed_from_the_entries() {
    let (gateway, _case) = with_case().await;
    let entry_id = police_query(&gateway).await;
    let seq = seq_of(&gateway, &entry_id).await;
    let person = scalar(
        &gateway,
        &format!("SELECT MIN(person_id) FROM disclosure_person WHERE seq = {seq}"),
    )
    .await;
    let before = verify(&gateway).await;
    assert!(
        before.valid,
        "untouched log must verify: {}",
        before.problem
    );

    let edited = caught(
        &gateway,
        "disclosure_person",
        &[format!(
            "UPDATE disclosure_person SET person_id = 'p-nobody' \
             WHERE seq = {seq} AND person_id = '{person}'"
        )],
    )
    .await;
    assert_eq!(edited.first_bad_seq, seq, "{}", edited.problem);
    assert_eq!(edited.first_bad_entry_id, entry_id);
    assert!(
        edited.problem.contains("disclosure_person"),
        "{}",
        edited.problem
    );
    assert!(edited.problem.contains(&person), "{}", edited.problem);
    assert!(edited.problem.contains("p-nobody"), "{}", edited.problem);

    let deleted = caught(
        &gateway,
        "disclosure_person",
        &[format!(
            "DELETE FROM disclosure_person WHERE seq = {seq} AND person_id = '{person}'"
        )],
    )
    .await;
    assert_eq!(deleted.first_bad_seq, seq, "{}", deleted.problem);
    assert!(
        deleted.problem.contains(&person) && deleted.problem.contains("deleted"),
        "{}",
        deleted.problem
    );
    assert!(!deleted.problem.contains("p-nobody"), "{}", deleted.problem);

    let inserted = caught(
        &gateway,
        "disclosure_person",
        &[format!(
            "INSERT INTO disclosure_person (person_id, seq) VALUES ('p-stranger', {seq})"
        )],
    )
    .await;
    assert_eq!(inserted.first_bad_seq, seq, "{}", inserted.problem);
    assert!(
        inserted.problem.contains("p-stranger") && inserted.problem.contains("inserted"),
        "{}",
        inserted.problem
    );

    // A row naming an entry that does not exist (past the log's end) is caught too.
    let orphan = caught(
        &gateway,
        "disclosure_person",
        &["INSERT INTO disclosure_person (person_id, seq) VALUES ('p-stranger', 100000)".into()],
    )
    .await;
    assert_eq!(orphan.first_bad_seq, 100000, "{}", orphan.problem);
    assert!(
        orphan.problem.contains("does not exist"),
        "{}",
        orphan.problem
    );

    // The operator's command names it as the IG service does.
    as_owner(
        &gateway,
        "disclosure_person",
        &[format!(
            "DELETE FROM disclosure_person WHERE seq = {seq} AND person_id = '{person}'"
        )],
    )
    .await;
    let output = audit_cli(&gateway, &["verify"]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("disclosure_person") && stdout(&output).contains(&person),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn break_glass_reviews_are_bound_to_the_entries_that_record_them() {
    let (gateway, _case) = with_case().await;
    let reviewed = break_glass_query(&gateway).await;
    let other = police_query(&gateway).await;
    gateway
        .audit()
        .await
        .review_break_glass(ReviewBreakGlassRequest {
            context: Some(auditor()),
            entry_id: reviewed.clone(),
            outcome: ReviewOutcome::Inappropriate.into(),
            note: "No immediate risk recorded; the school should have called the MASH".into(),
        })
        .await
        .expect("reviewed");
    let review_id = scalar(&gateway, "SELECT review_id FROM break_glass_review").await;
    let recording = scalar(&gateway, "SELECT log_entry_id FROM break_glass_review").await;
    let recording_seq = seq_of(&gateway, &recording).await;
    let other_seq = seq_of(&gateway, &other).await;
    let before = verify(&gateway).await;
    assert!(
        before.valid,
        "untouched log must verify: {}",
        before.problem
    );

    // The finding quietly reversed.
    let edited = caught(
        &gateway,
        "break_glass_review",
        &["UPDATE break_glass_review SET outcome = 'appropriate'".into()],
    )
    .await;
    assert_eq!(edited.first_bad_seq, recording_seq, "{}", edited.problem);
    assert_eq!(edited.first_bad_entry_id, recording);
    assert!(
        edited.problem.contains("break_glass_review")
            && edited.problem.contains(&review_id)
            && edited.problem.contains("`outcome`"),
        "{}",
        edited.problem
    );

    let renamed = caught(
        &gateway,
        "break_glass_review",
        &["UPDATE break_glass_review SET review_id = 'another-id'".into()],
    )
    .await;
    assert!(
        renamed.problem.contains("`review_id`"),
        "{}",
        renamed.problem
    );

    let deleted = caught(
        &gateway,
        "break_glass_review",
        &["DELETE FROM break_glass_review".into()],
    )
    .await;
    assert_eq!(deleted.first_bad_seq, recording_seq, "{}", deleted.problem);
    assert!(
        deleted.problem.contains("break_glass_review") && deleted.problem.contains("deleted"),
        "{}",
        deleted.problem
    );

    // A review nobody made, said to be recorded by the police query's entry.
    let inserted = caught(
        &gateway,
        "break_glass_review",
        &[format!(
            "INSERT INTO break_glass_review (review_id, entry_id, outcome, note, \
             reviewer_system, reviewer_id, reviewed_at, log_entry_id) VALUES \
             ('forged-review', '{reviewed}', 'appropriate', 'fine', 'ig-office', 'IG-0001', \
             '2026-01-01T00:00:00.000000Z', '{other}')"
        )],
    )
    .await;
    assert_eq!(inserted.first_bad_seq, other_seq, "{}", inserted.problem);
    assert!(
        inserted.problem.contains("forged-review") && inserted.problem.contains("inserted"),
        "{}",
        inserted.problem
    );

    // And one said to be recorded by an entry that does not exist.
    let orphan = caught(
        &gateway,
        "break_glass_review",
        &[format!(
            "INSERT INTO break_glass_review (review_id, entry_id, outcome, note, \
             reviewer_system, reviewer_id, reviewed_at, log_entry_id) VALUES \
             ('forged-review', '{reviewed}', 'appropriate', 'fine', 'ig-office', 'IG-0001', \
             '2026-01-01T00:00:00.000000Z', 'no-such-entry')"
        )],
    )
    .await;
    assert!(
        orphan.problem.contains("forged-review") && orphan.problem.contains("does not exist"),
        "{}",
        orphan.problem
    );
}

#[tokio::test]
async fn subject_access_releases_are_bound_to_the_entries_that_record_them() {
    let (gateway, _case) = with_case().await;
    let police = police_query(&gateway).await;
    let other = break_glass_query(&gateway).await;
    let released = gateway
        .audit()
        .await
        .release_for_subject_access(ReleaseForSubjectAccessRequest {
            context: Some(auditor()),
            entry_id: police.clone(),
            note: "Police confirmed disclosure would not prejudice an investigation".into(),
        })
        .await
        .expect("released")
        .into_inner()
        .release
        .expect("release");
    let release_id = scalar(&gateway, "SELECT release_id FROM subject_access_release").await;
    let recording_seq = seq_of(&gateway, &released.release_entry_id).await;
    let other_seq = seq_of(&gateway, &other).await;
    let before = verify(&gateway).await;
    assert!(
        before.valid,
        "untouched log must verify: {}",
        before.problem
    );

    // The release moved to another entry, which the report would then show.
    let edited = caught(
        &gateway,
        "subject_access_release",
        &[format!(
            "UPDATE subject_access_release SET entry_id = '{other}'"
        )],
    )
    .await;
    assert_eq!(edited.first_bad_seq, recording_seq, "{}", edited.problem);
    assert!(
        edited.problem.contains(&release_id) && edited.problem.contains("`entry_id`"),
        "{}",
        edited.problem
    );

    let deleted = caught(
        &gateway,
        "subject_access_release",
        &["DELETE FROM subject_access_release".into()],
    )
    .await;
    assert_eq!(deleted.first_bad_seq, recording_seq, "{}", deleted.problem);
    assert!(
        deleted.problem.contains("subject_access_release") && deleted.problem.contains("deleted"),
        "{}",
        deleted.problem
    );

    let inserted = caught(
        &gateway,
        "subject_access_release",
        &[format!(
            "INSERT INTO subject_access_release (release_id, entry_id, note, \
             released_by_system, released_by_id, released_at, log_entry_id) VALUES \
             ('forged-release', '{police}', 'fine', 'ig-office', 'IG-0001', \
             '2026-01-01T00:00:00.000000Z', '{other}')"
        )],
    )
    .await;
    assert_eq!(inserted.first_bad_seq, other_seq, "{}", inserted.problem);
    assert!(
        inserted.problem.contains("forged-release") && inserted.problem.contains("inserted"),
        "{}",
        inserted.problem
    );
}

#[tokio::test]
async fn logged_identity_decisions_are_bound_to_their_entries() {
    let (gateway, _case) = with_case().await;
    let police = police_query(&gateway).await;
    let decision = scalar(
        &gateway,
        "SELECT MIN(decision_id) FROM identity_decision_logged",
    )
    .await;
    let logged_as = scalar(
        &gateway,
        &format!("SELECT entry_id FROM identity_decision_logged WHERE decision_id = '{decision}'"),
    )
    .await;
    let logged_seq = seq_of(&gateway, &logged_as).await;
    let police_seq = seq_of(&gateway, &police).await;
    let before = verify(&gateway).await;
    assert!(
        before.valid,
        "untouched log must verify: {}",
        before.problem
    );

    // Pointed at another entry: that entry logs no decision.
    let edited = caught(
        &gateway,
        "identity_decision_logged",
        &[format!(
            "UPDATE identity_decision_logged SET entry_id = '{police}' \
             WHERE decision_id = '{decision}'"
        )],
    )
    .await;
    assert_eq!(edited.first_bad_seq, police_seq, "{}", edited.problem);
    assert!(
        edited.problem.contains("identity_decision_logged") && edited.problem.contains(&decision),
        "{}",
        edited.problem
    );

    let deleted = caught(
        &gateway,
        "identity_decision_logged",
        &[format!(
            "DELETE FROM identity_decision_logged WHERE decision_id = '{decision}'"
        )],
    )
    .await;
    assert_eq!(deleted.first_bad_seq, logged_seq, "{}", deleted.problem);
    assert_eq!(deleted.first_bad_entry_id, logged_as);
    assert!(deleted.problem.contains("deleted"), "{}", deleted.problem);

    let inserted = caught(
        &gateway,
        "identity_decision_logged",
        &[format!(
            "INSERT INTO identity_decision_logged (decision_id, entry_id) \
             VALUES ('forged-decision', '{police}')"
        )],
    )
    .await;
    assert_eq!(inserted.first_bad_seq, police_seq, "{}", inserted.problem);
    assert!(
        inserted.problem.contains("forged-decision") && inserted.problem.contains("inserted"),
        "{}",
        inserted.problem
    );
}
