//! The disclosure log: every refusal has its entry, reads are for IG officers and are
//! themselves logged, nothing is answered when the log cannot be written, tampering is
//! detected and named, and proofs verify under an independent implementation.

use std::io::Write;
use std::process::{Command, Stdio};

use safegate::api::proto::{
    GetConsistencyProofRequest, GetInclusionProofRequest, ListEntriesRequest, LogEntry, Purpose,
    Role, VerifyLogRequest, WhoAmIRequest, identity_service_client::IdentityServiceClient,
};
use safegate::pki::Validity;
use tonic::Code;

use crate::helpers::{TestDatabase, TestGateway, auditor, context, spawn_gateway};
use crate::query::{asking, pnc, query, with_case};

/// Makes `n` refusals (a nursery asserting a police role), each one log entry.
async fn refusals(gateway: &TestGateway, n: usize) {
    let mut client = IdentityServiceClient::new(gateway.channel("nursery").await);
    for i in 0..n {
        let status = client
            .who_am_i(WhoAmIRequest {
                context: Some(context(&format!("DSL-{i}"), Role::IomOfficer)),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied);
    }
}

async fn list(gateway: &TestGateway, request: ListEntriesRequest) -> Vec<LogEntry> {
    gateway
        .audit()
        .await
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            ..request
        })
        .await
        .expect("list entries")
        .into_inner()
        .entries
}

async fn verify(gateway: &TestGateway) -> safegate::api::proto::VerifyLogResponse {
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

#[tokio::test]
async fn every_refusal_is_logged_with_who_why_and_which_rule() {
    let gateway = spawn_gateway().await;
    refusals(&gateway, 1).await;
    let stranger = gateway
        .pki
        .ca
        .issue_client("pop-up-clinic", Validity::days(30))
        .expect("cert");
    let status =
        IdentityServiceClient::new(gateway.channel_as(Some(&stranger)).await.expect("tls"))
            .who_am_i(WhoAmIRequest::default())
            .await
            .expect_err("unregistered");
    assert_eq!(status.code(), Code::Unauthenticated);

    let entries = list(
        &gateway,
        ListEntriesRequest {
            kind: "refusal".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(entries.len(), 2);
    let role = &entries[0];
    assert_eq!(role.decision, "refused");
    assert_eq!(role.rpc, "safegate.v1.IdentityService/WhoAmI");
    assert_eq!(role.agency, "education");
    assert_eq!(role.system_id, "nursery");
    assert_eq!(role.practitioner_id, "DSL-0");
    assert_eq!(role.role, "iom_officer");
    assert_eq!(role.rule_ids, ["registry.role_not_assertable"]);
    assert!(
        role.reason.contains("may not assert role `iom_officer`"),
        "{}",
        role.reason
    );
    assert_eq!(role.certificate_sha256.len(), 64);
    assert!(!role.trace_id.is_empty());
    assert!(!role.recorded_at.is_empty());
    let unregistered = &entries[1];
    assert_eq!(unregistered.rule_ids, ["registry.unregistered_certificate"]);
    assert!(
        unregistered.reason.contains("not registered"),
        "{}",
        unregistered.reason
    );
    assert!(unregistered.system_id.is_empty());
    // The fingerprint is in its own field, not only in the reason text.
    assert_eq!(unregistered.certificate_sha256.len(), 64);
    assert!(
        unregistered
            .reason
            .contains(&unregistered.certificate_sha256),
        "the field and the reason name the same certificate"
    );
}

#[tokio::test]
async fn only_ig_officers_read_the_log_and_each_read_is_itself_logged() {
    let gateway = spawn_gateway().await;
    refusals(&gateway, 3).await;
    // Police may not read the log: refused, and the refusal is logged.
    let mut police = safegate::api::proto::audit_service_client::AuditServiceClient::new(
        gateway.channel("police-iom").await,
    );
    let status = police
        .list_entries(ListEntriesRequest {
            context: Some(context("IOM-0001", Role::IomOfficer)),
            ..Default::default()
        })
        .await
        .expect_err("not for police");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("audit.ig_officer_only"));

    // Paging: one entry a page, following the token.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = gateway
            .audit()
            .await
            .list_entries(ListEntriesRequest {
                context: Some(auditor()),
                kind: "refusal".into(),
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.entries.into_iter().map(|e| e.seq));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen.len(),
        4,
        "three nursery refusals and the police refusal"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    let reads = list(
        &gateway,
        ListEntriesRequest {
            kind: "log_read".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(reads.len() >= 4, "every page read was logged");
    assert!(
        reads
            .iter()
            .all(|r| r.system_id == "ig-office" && r.role == "ig_officer" && r.purpose == "audit")
    );
    let by_nursery = list(
        &gateway,
        ListEntriesRequest {
            system_id: "nursery".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_nursery.len(), 3);
}

#[tokio::test]
async fn nothing_is_answered_when_the_log_cannot_be_written() {
    let gateway = spawn_gateway().await;
    refusals(&gateway, 1).await;
    let mut audit = gateway.audit().await;
    let mut identity = IdentityServiceClient::new(gateway.channel("nursery").await);
    gateway.database.make_gone().await;
    if let TestDatabase::Sqlite { .. } = gateway.database {
        // An unlinked SQLite file still accepts writes through open handles; closing the
        // pool is how the embedded database goes away under a running gateway.
        gateway.close_database().await;
    }
    let status = identity
        .who_am_i(WhoAmIRequest {
            context: Some(context("DSL-1", Role::IomOfficer)),
        })
        .await
        .expect_err("no answer without a log entry");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = audit
        .list_entries(ListEntriesRequest {
            context: Some(auditor()),
            ..Default::default()
        })
        .await
        .expect_err("no entries without a log entry");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn proofs_verify_under_an_independent_implementation() {
    let gateway = spawn_gateway().await;
    refusals(&gateway, 11).await;
    let entries = list(
        &gateway,
        ListEntriesRequest {
            kind: "refusal".into(),
            ..Default::default()
        },
    )
    .await;
    let target = &entries[4];
    let mut audit = gateway.audit().await;
    let inclusion = audit
        .get_inclusion_proof(GetInclusionProofRequest {
            context: Some(auditor()),
            entry_id: target.entry_id.clone(),
            tree_size: 0,
        })
        .await
        .expect("inclusion")
        .into_inner();
    let consistency = audit
        .get_consistency_proof(GetConsistencyProofRequest {
            context: Some(auditor()),
            old_tree_size: 6,
            tree_size: inclusion.tree_size,
        })
        .await
        .expect("consistency")
        .into_inner();
    assert_eq!(inclusion.leaf_index, target.seq - 1);
    assert_eq!(consistency.root_hash, inclusion.root_hash);
    let question = serde_json::json!({
        "canonical": target.canonical,
        "leaf_hash": hex::encode(&inclusion.leaf_hash),
        "leaf_index": inclusion.leaf_index,
        "tree_size": inclusion.tree_size,
        "audit_path": inclusion.audit_path.iter().map(hex::encode).collect::<Vec<_>>(),
        "root_hash": hex::encode(&inclusion.root_hash),
        "old_tree_size": consistency.old_tree_size,
        "old_root_hash": hex::encode(&consistency.old_root_hash),
        "consistency": consistency.proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "consistency_root": hex::encode(&consistency.root_hash),
    });
    let checker = |question: &serde_json::Value| {
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/check_proofs.py"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the checker");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(question.to_string().as_bytes())
            .expect("write question");
        let output = child.wait_with_output().expect("checker output");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, said) = checker(&question);
    assert!(ok, "independent checker refused a genuine proof: {said}");
    assert!(
        said.contains("inclusion ok") && said.contains("consistency ok"),
        "{said}"
    );

    // The checker is not a rubber stamp: a proof for another entry fails.
    let mut forged = question.clone();
    forged["leaf_index"] = serde_json::json!(inclusion.leaf_index + 1);
    let (ok, said) = checker(&forged);
    assert!(
        !ok,
        "checker accepted a proof for the wrong position: {said}"
    );
}

/// Runs raw SQL against the gateway's database with the append-only triggers off.
async fn tamper(gateway: &TestGateway, statements: &[&str]) {
    let pool = gateway.database_pool().await;
    let (off, on): (Vec<&str>, Vec<&str>) = match gateway.database {
        TestDatabase::Postgres { .. } => (
            vec![
                "ALTER TABLE disclosure_log DISABLE TRIGGER ALL",
                "ALTER TABLE checkpoint DISABLE TRIGGER ALL",
            ],
            vec![
                "ALTER TABLE disclosure_log ENABLE TRIGGER ALL",
                "ALTER TABLE checkpoint ENABLE TRIGGER ALL",
            ],
        ),
        TestDatabase::Sqlite { .. } => (
            vec![
                "DROP TRIGGER disclosure_log_no_update",
                "DROP TRIGGER disclosure_log_no_delete",
                "DROP TRIGGER checkpoint_no_delete",
            ],
            vec![],
        ),
    };
    for sql in off.iter().chain(statements).chain(on.iter()) {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;
}

async fn tampered_log_names(statements: &[&str]) -> (u64, String, String) {
    let gateway = spawn_gateway().await;
    refusals(&gateway, 8).await;
    let before = verify(&gateway).await;
    assert!(
        before.valid,
        "untouched log must verify: {}",
        before.problem
    );
    assert_eq!(before.entries, 8);
    tamper(&gateway, statements).await;
    let after = verify(&gateway).await;
    assert!(!after.valid, "tampering went unnoticed");
    (after.first_bad_seq, after.first_bad_entry_id, after.problem)
}

#[tokio::test]
async fn an_edited_field_is_detected_and_named() {
    let (seq, id, problem) = tampered_log_names(&[
        "UPDATE disclosure_log SET practitioner_id = 'SOMEONE-ELSE' WHERE seq = 3",
    ])
    .await;
    assert_eq!(seq, 3, "{problem}");
    assert!(!id.is_empty());
    assert!(problem.contains("practitioner_id"), "{problem}");

    let (seq, _, problem) = tampered_log_names(&[
        "UPDATE disclosure_log SET entry = REPLACE(entry, 'DSL-4', 'DSL-9') WHERE seq = 5",
    ])
    .await;
    assert_eq!(seq, 5, "{problem}");
}

#[tokio::test]
async fn a_separator_smuggled_into_a_filter_column_is_detected() {
    // The verifier reads the filter columns joined by the unit separator; a value edited to
    // contain one must not shift the other columns into place.
    let (seq, _, problem) = tampered_log_names(&[
        "UPDATE disclosure_log SET system_id = system_id || '\u{1f}' WHERE seq = 2",
    ])
    .await;
    assert_eq!(seq, 2, "{problem}");
    assert!(problem.contains("separator"), "{problem}");
}

#[tokio::test]
async fn a_log_whose_checkpoints_were_deleted_does_not_verify() {
    let (seq, _, problem) = tampered_log_names(&["DELETE FROM checkpoint"]).await;
    // Eight refusals and the entry recording the first verification: all now unsigned.
    assert_eq!(seq, 9, "{problem}");
    assert!(problem.contains("no signed checkpoint"), "{problem}");
}

#[tokio::test]
async fn a_deleted_entry_is_detected_and_named() {
    let (seq, _, problem) = tampered_log_names(&["DELETE FROM disclosure_log WHERE seq = 4"]).await;
    assert_eq!(seq, 4, "{problem}");
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn two_swapped_entries_are_detected_and_named() {
    let (seq, _, problem) = tampered_log_names(&[
        "UPDATE disclosure_log SET seq = 1000 WHERE seq = 5",
        "UPDATE disclosure_log SET seq = 5 WHERE seq = 6",
        "UPDATE disclosure_log SET seq = 6 WHERE seq = 1000",
    ])
    .await;
    assert_eq!(seq, 5, "{problem}");
    assert!(problem.contains("chain"), "{problem}");
}

#[tokio::test]
async fn a_truncated_tail_is_detected_and_named() {
    let (seq, _, problem) = tampered_log_names(&["DELETE FROM disclosure_log WHERE seq > 6"]).await;
    assert_eq!(seq, 7, "{problem}");
    assert!(problem.contains("tail"), "{problem}");
}

/// A Query's entry lists every fact it released, so it passes PostgreSQL's 2 kB TOAST
/// threshold and is compressed on insert: with lz4 where the server has it (pglz cost more
/// CPU than the rest of the append), pglz otherwise. On either backend the entry is stored
/// whole and the log verifies.
#[tokio::test]
async fn a_large_query_entry_is_stored_whole_and_the_log_verifies() {
    let (gateway, _case) = with_case().await;
    let answer = query(
        &gateway,
        "police-iom",
        asking("IOM-0001", Role::IomOfficer, Purpose::OffenderManagement),
        pnc(safegate::demo::case::DEAN_PNC),
    )
    .await
    .expect("the IOM officer may ask about Dean");

    let pool = gateway.database_pool().await;
    let stored: String = sqlx::query_scalar("SELECT entry FROM disclosure_log WHERE entry_id = $1")
        .bind(&answer.disclosure_entry_id)
        .fetch_one(&pool)
        .await
        .expect("the Query's entry is in the log");
    assert!(
        stored.len() > 4096,
        "a Query about Dean and his family should log several kB, not {} bytes",
        stored.len()
    );
    let entry: serde_json::Value = serde_json::from_str(&stored).expect("the entry is JSON");
    assert_eq!(entry["entry_id"], answer.disclosure_entry_id.as_str());
    if let TestDatabase::Postgres { .. } = gateway.database {
        let lz4: bool = sqlx::query_scalar(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings \
             WHERE name = 'default_toast_compression'",
        )
        .fetch_one(&pool)
        .await
        .expect("the server's compression methods");
        let method: Option<String> = sqlx::query_scalar(
            "SELECT pg_column_compression(entry) FROM disclosure_log WHERE entry_id = $1",
        )
        .bind(&answer.disclosure_entry_id)
        .fetch_one(&pool)
        .await
        .expect("the entry's compression");
        assert_eq!(method.as_deref(), Some(if lz4 { "lz4" } else { "pglz" }));
    }
    pool.close().await;

    let verified = verify(&gateway).await;
    assert!(verified.valid, "{}", verified.problem);
}

/// Past one tile of 256 entries, and across a restart (which forgets the in-memory tip),
/// the tree is rebuilt from the kept hashes alone: only level-8 nodes are stored, every
/// inclusion and consistency proof checks against the signed root, and the log verifies.
#[tokio::test]
async fn proofs_past_a_tile_come_from_the_kept_hashes_alone() {
    use safegate::domain::ledger::merkle::{verify_consistency, verify_inclusion};

    let gateway = spawn_gateway().await;
    refusals(&gateway, 300).await;
    // A new process does not remember where the log ended: it reads the frontier back
    // from the kept hashes before its first append.
    let gateway = gateway.crash_and_restart().await;
    refusals(&gateway, 230).await;
    let report = verify(&gateway).await;
    assert!(report.valid, "{}", report.problem);
    let size = report.entries;
    assert!(size >= 530, "{size} entries");

    // One stored node per 256 leaves, all at level 8; nothing else in merkle_node.
    let pool = gateway.database_pool().await;
    let levels: Vec<(i64, i64)> = sqlx::query_as("SELECT level, idx FROM merkle_node ORDER BY idx")
        .fetch_all(&pool)
        .await
        .expect("kept nodes");
    let expected: Vec<(i64, i64)> = (0..(size / 256) as i64).map(|i| (8, i)).collect();
    assert_eq!(expected.len(), 2);
    assert_eq!(levels, expected);

    let mut audit = gateway.audit().await;
    for seq in [1_i64, 128, 256, 257, 300, 301, 512, 513, 530] {
        let (entry_id, leaf): (String, String) =
            sqlx::query_as("SELECT entry_id, leaf_hash FROM disclosure_log WHERE seq = $1")
                .bind(seq)
                .fetch_one(&pool)
                .await
                .expect("entry at seq");
        let proof = audit
            .get_inclusion_proof(GetInclusionProofRequest {
                context: Some(auditor()),
                entry_id,
                tree_size: 0,
            })
            .await
            .expect("inclusion")
            .into_inner();
        let leaf: [u8; 32] = hex::decode(leaf)
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let root: [u8; 32] = proof.root_hash.clone().try_into().expect("32 bytes");
        let path: Vec<[u8; 32]> = proof
            .audit_path
            .iter()
            .map(|h| h.clone().try_into().expect("32 bytes"))
            .collect();
        assert_eq!(proof.leaf_index, seq as u64 - 1);
        assert!(
            verify_inclusion(&leaf, proof.leaf_index, proof.tree_size, &path, &root),
            "inclusion of seq {seq} in {}",
            proof.tree_size
        );
        // The wrong position does not verify: the check can fail.
        assert!(!verify_inclusion(
            &leaf,
            proof.leaf_index ^ 1,
            proof.tree_size,
            &path,
            &root
        ));
    }
    for old in [1_u64, 255, 256, 257, 300, 512] {
        let proof = audit
            .get_consistency_proof(GetConsistencyProofRequest {
                context: Some(auditor()),
                old_tree_size: old,
                tree_size: 0,
            })
            .await
            .expect("consistency")
            .into_inner();
        let hashes: Vec<[u8; 32]> = proof
            .proof
            .iter()
            .map(|h| h.clone().try_into().expect("32 bytes"))
            .collect();
        let old_root: [u8; 32] = proof.old_root_hash.clone().try_into().expect("32 bytes");
        let root: [u8; 32] = proof.root_hash.clone().try_into().expect("32 bytes");
        assert!(
            verify_consistency(old, proof.tree_size, &old_root, &root, &hashes),
            "consistency {old} -> {}",
            proof.tree_size
        );
    }
    pool.close().await;
}
