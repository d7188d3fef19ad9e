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
pub(crate) async fn as_owner(gateway: &TestGateway, table: &str, statements: &[String]) {
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

/// Tampers with `table` by `tampering` (see [`caught`]) and checks that verify names the
/// entry at `seq` (when given) and says every one of `words`; returns what it said.
pub(crate) async fn named(
    gateway: &TestGateway,
    table: &str,
    tampering: String,
    seq: Option<u64>,
    words: &[&str],
) -> VerifyLogResponse {
    let said = caught(gateway, table, &[tampering]).await;
    if let Some(seq) = seq {
        assert_eq!(said.first_bad_seq, seq, "{table}: {}", said.problem);
    }
    for word in words {
        assert!(
            said.problem.contains(word),
            "{table}: `{word}` is not in: {}",
            said.problem
        );
    }
    said
}

/// The log as it stands verifies.
pub(crate) async fn verifies(gateway: &TestGateway) {
    let said = verify(gateway).await;
    assert!(said.valid, "untouched log must verify: {}", said.problem);
}

pub(crate) async fn scalar(gateway: &TestGateway, sql: &str) -> String {
    let pool = gateway.database_pool().await;
    let value: String = sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
    value
}

pub(crate) async fn seq_of(gateway: &TestGateway, entry_id: &str) -> u64 {
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
    verifies(&gateway).await;
    let table = "disclosure_person";

    let edited = named(
        &gateway,
        table,
        format!(
            "UPDATE disclosure_person SET person_id = 'p-nobody' \
             WHERE seq = {seq} AND person_id = '{person}'"
        ),
        Some(seq),
        &[table, &person, "p-nobody"],
    )
    .await;
    assert_eq!(edited.first_bad_entry_id, entry_id);
    let delete =
        format!("DELETE FROM disclosure_person WHERE seq = {seq} AND person_id = '{person}'");
    let deleted = named(
        &gateway,
        table,
        delete.clone(),
        Some(seq),
        &[&person, "deleted"],
    )
    .await;
    assert!(!deleted.problem.contains("p-nobody"), "{}", deleted.problem);
    named(
        &gateway,
        table,
        format!("INSERT INTO disclosure_person (person_id, seq) VALUES ('p-stranger', {seq})"),
        Some(seq),
        &["p-stranger", "inserted"],
    )
    .await;
    // A row naming an entry that does not exist (past the log's end) is caught too.
    named(
        &gateway,
        table,
        "INSERT INTO disclosure_person (person_id, seq) VALUES ('p-stranger', 100000)".into(),
        Some(100000),
        &["does not exist"],
    )
    .await;

    // The operator's command names it as the IG service does.
    as_owner(&gateway, table, &[delete]).await;
    let output = audit_cli(&gateway, &["verify"]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(table) && stdout(&output).contains(&person),
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
    verifies(&gateway).await;
    let table = "break_glass_review";

    // The finding quietly reversed.
    let edited = named(
        &gateway,
        table,
        "UPDATE break_glass_review SET outcome = 'appropriate'".into(),
        Some(recording_seq),
        &[table, &review_id, "`outcome`"],
    )
    .await;
    assert_eq!(edited.first_bad_entry_id, recording);
    named(
        &gateway,
        table,
        "UPDATE break_glass_review SET review_id = 'another-id'".into(),
        None,
        &["`review_id`"],
    )
    .await;
    named(
        &gateway,
        table,
        "DELETE FROM break_glass_review".into(),
        Some(recording_seq),
        &[table, "deleted"],
    )
    .await;
    // A review nobody made, said to be recorded by `log_entry_id`.
    let forged = |log_entry_id: &str| {
        format!(
            "INSERT INTO break_glass_review (review_id, entry_id, outcome, note, \
             reviewer_system, reviewer_id, reviewed_at, log_entry_id) VALUES \
             ('forged-review', '{reviewed}', 'appropriate', 'fine', 'ig-office', 'IG-0001', \
             '2026-01-01T00:00:00.000000Z', '{log_entry_id}')"
        )
    };
    // By the police query's entry, and by an entry that does not exist.
    named(
        &gateway,
        table,
        forged(&other),
        Some(other_seq),
        &["forged-review", "inserted"],
    )
    .await;
    named(
        &gateway,
        table,
        forged("no-such-entry"),
        None,
        &["forged-review", "does not exist"],
    )
    .await;
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
    verifies(&gateway).await;
    let table = "subject_access_release";

    // The release moved to another entry, which the report would then show.
    named(
        &gateway,
        table,
        format!("UPDATE subject_access_release SET entry_id = '{other}'"),
        Some(recording_seq),
        &[&release_id, "`entry_id`"],
    )
    .await;
    named(
        &gateway,
        table,
        "DELETE FROM subject_access_release".into(),
        Some(recording_seq),
        &[table, "deleted"],
    )
    .await;
    named(
        &gateway,
        table,
        format!(
            "INSERT INTO subject_access_release (release_id, entry_id, note, \
             released_by_system, released_by_id, released_at, log_entry_id) VALUES \
             ('forged-release', '{police}', 'fine', 'ig-office', 'IG-0001', \
             '2026-01-01T00:00:00.000000Z', '{other}')"
        ),
        Some(other_seq),
        &["forged-release", "inserted"],
    )
    .await;
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
    verifies(&gateway).await;
    let table = "identity_decision_logged";

    // Pointed at another entry: that entry logs no decision.
    named(
        &gateway,
        table,
        format!(
            "UPDATE identity_decision_logged SET entry_id = '{police}' \
             WHERE decision_id = '{decision}'"
        ),
        Some(police_seq),
        &[table, &decision],
    )
    .await;
    let deleted = named(
        &gateway,
        table,
        format!("DELETE FROM identity_decision_logged WHERE decision_id = '{decision}'"),
        Some(logged_seq),
        &["deleted"],
    )
    .await;
    assert_eq!(deleted.first_bad_entry_id, logged_as);
    named(
        &gateway,
        table,
        format!(
            "INSERT INTO identity_decision_logged (decision_id, entry_id) \
             VALUES ('forged-decision', '{police}')"
        ),
        Some(police_seq),
        &["forged-decision", "inserted"],
    )
    .await;
}
