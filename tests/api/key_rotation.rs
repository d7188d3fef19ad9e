//! Checkpoint key rotation: the change is a log entry under the old key; from it on the
//! new key signs; every older checkpoint still verifies with its own key; a verifier holding
//! only the old key follows the recorded change.

use safegate::api::proto::VerifyLogRequest;
use safegate::domain::ledger::CheckpointSigner;
use safegate::domain::ledger::checkpoint::generate_key_pem;
use safegate::domain::ledger::note::Vkey;

use crate::helpers::{auditor, spawn_gateway};
use crate::ig_support::{public_key, refusals, safegate, stderr, stdout};

#[tokio::test]
async fn a_new_key_signs_from_the_recorded_change_and_older_checkpoints_keep_their_key() {
    let gateway = spawn_gateway().await;
    refusals(&gateway, 3).await;
    let old_key = gateway.pki.dir.join("checkpoint.key");
    let old = CheckpointSigner::load(&old_key)
        .expect("old key")
        .public_key();
    let new_key = gateway.pki.dir.join("checkpoint-next.key");
    std::fs::write(&new_key, generate_key_pem().expect("key").0).expect("write key");
    let new = CheckpointSigner::load(&new_key)
        .expect("new key")
        .public_key();
    let rotation = [
        ("checkpoint_key", new_key.display().to_string()),
        ("checkpoint_key_previous", old_key.display().to_string()),
    ];
    let gateway = gateway.restart_with(&rotation).await;
    refusals(&gateway, 2).await;

    // The change is one entry, naming the new key.
    let pool = gateway.database_pool().await;
    let changes: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, entry FROM disclosure_log WHERE kind = 'key_change'")
            .fetch_all(&pool)
            .await
            .expect("read");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let (changed_at, entry) = (changes[0].0 as u64, &changes[0].1);
    let entry: serde_json::Value = serde_json::from_str(entry).expect("json");
    let named =
        Vkey::parse(entry["key_change"]["new_key"].as_str().expect("new key")).expect("a vkey");
    assert_eq!(named.public_key, new);
    let sizes: Vec<i64> = sqlx::query_scalar("SELECT tree_size FROM checkpoint ORDER BY tree_size")
        .fetch_all(&pool)
        .await
        .expect("read");
    pool.close().await;

    // Every checkpoint verifies with the key that signed it, and not with the other.
    let (mut before, mut after) = (0, 0);
    for size in sizes {
        let size = size as u64;
        let checkpoint = gateway
            .store()
            .checkpoint_at(size)
            .await
            .expect("read")
            .expect("stored");
        let (own, other) = if size <= changed_at {
            before += 1;
            (&old, &new)
        } else {
            after += 1;
            (&new, &old)
        };
        assert!(checkpoint.verify(own), "checkpoint {size} with its own key");
        assert!(
            !checkpoint.verify(other),
            "checkpoint {size} with the other key"
        );
    }
    assert!(before >= 3 && after >= 2, "{before} before, {after} after");

    // The gateway (new key) verifies the log, and so does one holding only the old key.
    let verified = gateway
        .audit()
        .await
        .verify_log(VerifyLogRequest {
            context: Some(auditor()),
        })
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.valid, "{}", verified.problem);
    let url = gateway.database.url();
    let old_public = public_key(&gateway);
    let output = safegate(&[
        "audit",
        "verify",
        "--public-key",
        &old_public,
        "--database-url",
        &url,
        "--checkpoint-key",
        &new_key.display().to_string(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );

    // Starting again with the same settings records no second change.
    let gateway = gateway.restart_with(&[]).await;
    refusals(&gateway, 1).await;
    let pool = gateway.database_pool().await;
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM disclosure_log WHERE kind = 'key_change'")
            .fetch_one(&pool)
            .await
            .expect("read");
    pool.close().await;
    assert_eq!(count, 1);
}

/// A log whose checkpoints were signed over the v1 text before checkpoints became C2SP
/// notes still verifies, and goes on with C2SP checkpoints after it.
#[tokio::test]
async fn a_checkpoint_signed_over_the_v1_text_still_verifies() {
    use base64::Engine;
    use safegate::domain::ledger::checkpoint::CheckpointForm;

    let gateway = spawn_gateway().await;
    refusals(&gateway, 3).await;
    let signer =
        CheckpointSigner::load(&gateway.pki.dir.join("checkpoint.key")).expect("the log's key");
    let latest = gateway
        .store()
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("a checkpoint");
    // As the gateway signed it before: the v1 text, key_id the hex SHA-256 of the key.
    let v1 = signer.sign_v1(latest.tree_size, latest.root, latest.signed_at.clone());
    let pool = gateway.database_pool().await;
    let off: &[&str] = match gateway.database {
        crate::helpers::TestDatabase::Postgres { .. } => {
            &["ALTER TABLE checkpoint DISABLE TRIGGER ALL"]
        }
        crate::helpers::TestDatabase::Sqlite { .. } => &["DROP TRIGGER checkpoint_no_update"],
    };
    for sql in off {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    sqlx::query("UPDATE checkpoint SET signature = $1, key_id = $2 WHERE tree_size = $3")
        .bind(base64::engine::general_purpose::STANDARD.encode(&v1.signature))
        .bind(&v1.key_id)
        .bind(latest.tree_size as i64)
        .execute(&pool)
        .await
        .expect("store the v1 checkpoint");
    pool.close().await;

    let stored = gateway
        .store()
        .checkpoint_at(latest.tree_size)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.form(), CheckpointForm::SafegateV1);
    assert!(stored.note().is_none());
    assert!(stored.verify(&signer.public_key()));
    let verify = || async {
        gateway
            .audit()
            .await
            .verify_log(VerifyLogRequest {
                context: Some(auditor()),
            })
            .await
            .expect("verify")
            .into_inner()
    };
    let before = verify().await;
    assert!(before.valid, "{}", before.problem);
    assert!(
        before
            .checkpoint
            .expect("checkpoint")
            .signed_text
            .starts_with("safegate disclosure log v1\n")
    );
    // New checkpoints are C2SP notes, and the log still verifies.
    refusals(&gateway, 1).await;
    let after = verify().await;
    assert!(after.valid, "{}", after.problem);
    let checkpoint = after.checkpoint.expect("checkpoint");
    assert!(
        checkpoint
            .note
            .starts_with("safegate.local/disclosure-log\n")
    );
}
