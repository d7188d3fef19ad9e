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
