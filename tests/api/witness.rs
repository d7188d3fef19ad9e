//! Witnessed checkpoints: two witnesses (`safegate witness`, served in-process on
//! 127.0.0.1:0, each on its own database) and a quorum of two. The gateway sends each new
//! checkpoint with a consistency proof and keeps their cosignatures; a stale submitter is
//! told the size and catches up; a forged proof or a fork is refused; a restarted witness
//! keeps its state; a witness that is down delays no disclosure but raises the lag warning
//! and a notice to the IG office; and a log cut short, its later checkpoints deleted, fails
//! verification against what the witnesses hold.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use safegate::domain::ledger::checkpoint::{CheckpointSigner, generate_key_pem, load_key};
use safegate::domain::ledger::note::Vkey;
use safegate::domain::ledger::witnessing::{
    PolicyWitness, WitnessPolicy, add_checkpoint_body, http_request, submit,
};
use safegate::store::WitnessStore;
use safegate::witness::{Witness, WitnessKey, http};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{TestDatabase, TestGateway, TestPki, spawn_witnessed_gateway, temp_dir};
use crate::ig_support::{refusals, safegate, stdout};

/// Generous: the suite runs many gateways at once on a small machine.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A witness served in-process.
struct TestWitness {
    name: String,
    addr: SocketAddr,
    vkey: Vkey,
    key_file: PathBuf,
    database: String,
    log: Vkey,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestWitness {
    /// A new witness named `name`, with its own key and database, trusting `log`.
    async fn spawn(name: &str, log: &Vkey) -> TestWitness {
        let dir = temp_dir("witness");
        let key_file = dir.join("witness.key");
        std::fs::write(&key_file, generate_key_pem().expect("key").0).expect("write key");
        let database = TestDatabase::create(&dir).await.url();
        Self::serve(
            name,
            log,
            key_file,
            database,
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
    }

    async fn serve(
        name: &str,
        log: &Vkey,
        key_file: PathBuf,
        database: String,
        addr: SocketAddr,
    ) -> TestWitness {
        let key = WitnessKey {
            name: name.to_owned(),
            key: load_key(&key_file).expect("witness key"),
            logs: vec![log.clone()],
        };
        let vkey = key.vkey();
        let store = WitnessStore::open(&database)
            .await
            .expect("witness database");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(http::serve(listener, Witness::new(key, store), async {
            let _ = rx.await;
        }));
        TestWitness {
            name: name.to_owned(),
            addr,
            vkey,
            key_file,
            database,
            log: log.clone(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving; its database stays.
    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    /// Stopped and started again on the same port, key and database.
    async fn restart(mut self) -> TestWitness {
        self.stop().await;
        Self::serve(
            &self.name,
            &self.log,
            self.key_file.clone(),
            self.database.clone(),
            self.addr,
        )
        .await
    }

    fn policy_witness(&self) -> PolicyWitness {
        PolicyWitness {
            name: self.name.clone(),
            url: self.url(),
            vkey: self.vkey.clone(),
        }
    }

    /// POSTs a raw `add-checkpoint` body: status and body.
    async fn post(&self, body: String) -> (u16, String) {
        http_request(&self.url(), "/add-checkpoint", Some(body), TIMEOUT)
            .await
            .expect("the witness answers")
    }
}

/// The log key of `pki`, as witnesses are configured with it.
fn log_vkey(pki: &TestPki) -> Vkey {
    CheckpointSigner::load(&pki.dir.join("checkpoint.key"))
        .expect("checkpoint key")
        .vkey()
}

/// A witness policy file: `witnesses` (name, url, vkey), a quorum, a lag bound.
fn policy_file(
    witnesses: &[(String, String, String)],
    quorum: usize,
    max_lag_secs: u64,
    timeout_ms: u64,
) -> PathBuf {
    let mut text = format!(
        "quorum = {quorum}\nmax_lag_secs = {max_lag_secs}\ninterval_ms = 100\n\
         timeout_ms = {timeout_ms}\n"
    );
    for (name, url, vkey) in witnesses {
        text.push_str(&format!(
            "\n[[witness]]\nname = \"{name}\"\nurl = \"{url}\"\nvkey = \"{vkey}\"\n"
        ));
    }
    let path = temp_dir("witness-policy").join("witnesses.toml");
    std::fs::write(&path, text).expect("write policy");
    WitnessPolicy::load(&path).expect("the policy parses");
    path
}

fn entry(witness: &TestWitness) -> (String, String, String) {
    (witness.name.clone(), witness.url(), witness.vkey.render())
}

/// A gateway and two witnesses, a quorum of two.
async fn witnessed() -> (TestGateway, TestWitness, TestWitness, PathBuf) {
    let pki = TestPki::new();
    let log = log_vkey(&pki);
    let police = TestWitness::spawn("police.example/witness", &log).await;
    let health = TestWitness::spawn("nhs.example/witness", &log).await;
    let policy = policy_file(&[entry(&police), entry(&health)], 2, 60, 5000);
    let gateway = spawn_witnessed_gateway(pki, policy.clone()).await;
    (gateway, police, health, policy)
}

/// The size of the gateway's latest checkpoint.
async fn log_size(gateway: &TestGateway) -> u64 {
    gateway
        .store()
        .latest_checkpoint()
        .await
        .expect("read")
        .map_or(0, |c| c.tree_size)
}

/// Waits until `witness` has cosigned at least `size` (as the gateway's table records).
async fn cosigned(gateway: &TestGateway, witness: &TestWitness, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sizes = gateway.store().cosigned_sizes().await.expect("read");
        if sizes
            .iter()
            .any(|(name, s)| *name == witness.name && *s >= size)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not cosign size {size}: {sizes:?}",
            witness.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `safegate audit verify` on `database` with the checkpoint key `key` and, if given,
/// `config` as its config file; run off the test's runtime, which serves the witnesses
/// the command asks.
async fn verify_cli(
    database: &TestDatabase,
    key: &Path,
    config: Option<&Path>,
) -> std::process::Output {
    let mut args: Vec<String> = Vec::new();
    if let Some(config) = config {
        args.extend(["--config".into(), config.display().to_string()]);
    }
    args.extend([
        "audit".into(),
        "verify".into(),
        "--database-url".into(),
        database.url(),
        "--checkpoint-key".into(),
        key.display().to_string(),
    ]);
    tokio::task::spawn_blocking(move || {
        safegate(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("the command ran")
}

fn config_with_policy(policy: &Path) -> PathBuf {
    let path = temp_dir("config").join("safegate.toml");
    std::fs::write(
        &path,
        format!("witness_policy = \"{}\"\n", policy.display()),
    )
    .expect("write config");
    path
}

#[tokio::test]
async fn both_witnesses_cosign_and_verify_reports_the_size_the_quorum_cosigned() {
    let (gateway, police, health, policy) = witnessed().await;
    refusals(&gateway, 4).await;
    let size = log_size(&gateway).await;
    cosigned(&gateway, &police, size).await;
    cosigned(&gateway, &health, size).await;

    // The cosignatures kept verify under each witness's key, over the C2SP checkpoint.
    let kept = gateway.store().cosignatures_at(size).await.expect("read");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|c| c.cosignature.starts_with('\u{2014}')));

    let key = gateway.pki.dir.join("checkpoint.key");
    let output = verify_cli(&gateway.database, &key, Some(&config_with_policy(&policy))).await;
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("witnessed: "), "{said}");
    let reported: u64 = said
        .split("witnessed: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a witnessed size");
    assert!(reported >= size, "{said}");
    assert!(
        said.contains(&police.name) && said.contains(&health.name),
        "{said}"
    );

    // The IG service reports the same.
    let verified = gateway
        .audit()
        .await
        .verify_log(safegate::api::proto::VerifyLogRequest {
            context: Some(crate::helpers::auditor()),
        })
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.valid, "{}", verified.problem);
    assert!(verified.witnessed_size >= size, "{verified:?}");
    assert_eq!((verified.witness_quorum, verified.witnesses_seen), (2, 2));
}

#[tokio::test]
async fn a_stale_submitter_gets_409_with_the_size_and_catches_up() {
    let (gateway, police, _health, _policy) = witnessed().await;
    refusals(&gateway, 3).await;
    let size = log_size(&gateway).await;
    cosigned(&gateway, &police, size).await;
    let checkpoint = gateway
        .store()
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("a checkpoint");
    let held = http_request(
        &police.url(),
        &format!(
            "/{}/checkpoint",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                police.log.name.as_bytes()
            ))
        ),
        None,
        TIMEOUT,
    )
    .await
    .expect("the witness answers");
    assert_eq!(held.0, 200, "{}", held.1);
    let held_size: u64 = held
        .1
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("size");

    // A submitter that believes the witness has seen nothing.
    let (status, body) = police
        .post(add_checkpoint_body(
            0,
            &[],
            &checkpoint.note().expect("note"),
        ))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body, format!("{held_size}\n"));
    let raw = content_type_of_a_409(&police).await;
    assert_eq!(
        raw.as_deref(),
        Some(safegate::witness::http::SIZE_CONTENT_TYPE)
    );

    // More entries; a submitter starting from size 0 is told the size and retries from it.
    refusals(&gateway, 2).await;
    let newer = gateway
        .store()
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("a checkpoint");
    let holds = submit(
        gateway.store(),
        &police.policy_witness(),
        &newer,
        0,
        TIMEOUT,
    )
    .await
    .expect("caught up and cosigned");
    assert_eq!(holds, newer.tree_size);
    let kept = gateway
        .store()
        .cosignatures_at(newer.tree_size)
        .await
        .expect("read");
    assert!(kept.iter().any(|c| c.witness == police.name), "{kept:?}");
}

/// The Content-Type of a 409 answer, read with a raw HTTP/1.1 exchange.
async fn content_type_of_a_409(witness: &TestWitness) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(witness.addr).await.ok()?;
    // A stale but well-formed submission: the witness's own latest note, from size 0.
    let held = http_request(
        &witness.url(),
        &format!(
            "/{}/checkpoint",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                witness.log.name.as_bytes()
            ))
        ),
        None,
        TIMEOUT,
    )
    .await
    .ok()?
    .1;
    // Its own cosignature line is not a log key's, so the witness ignores it.
    let request = add_checkpoint_body(0, &[], &held);
    let head = format!(
        "POST /add-checkpoint HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        witness.addr,
        request.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    answer
        .lines()
        .find_map(|line| line.strip_prefix("content-type: "))
        .map(str::to_owned)
}

#[tokio::test]
async fn forged_proofs_forks_and_strangers_are_refused_with_the_specs_status() {
    let (gateway, police, _health, _policy) = witnessed().await;
    refusals(&gateway, 3).await;
    let old = log_size(&gateway).await;
    refusals(&gateway, 3).await;
    let new = log_size(&gateway).await;
    let store = gateway.store();
    let old_checkpoint = store.checkpoint_at(old).await.expect("read").expect("old");
    let new_checkpoint = store.checkpoint_at(new).await.expect("read").expect("new");
    // A third witness the gateway does not send to, so its state is the test's alone.
    let third = TestWitness::spawn("probation.example/witness", &police.log).await;
    let (status, body) = third
        .post(add_checkpoint_body(
            0,
            &[],
            &old_checkpoint.note().expect("note"),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("\u{2014} probation.example/witness "),
        "{body}"
    );

    let proof = store.consistency_proof(old, new).await.expect("proof");
    let mut forged = proof.clone();
    forged[0][0] ^= 1;
    let new_note = new_checkpoint.note().expect("note");
    // A fork at the same size: another root, signed with the log's own key.
    let signer = CheckpointSigner::load(&gateway.pki.dir.join("checkpoint.key")).expect("key");
    let fork = signer
        .sign(old, [7; 32], String::new())
        .note()
        .expect("note");
    let stranger = {
        let dir = temp_dir("stranger");
        std::fs::write(dir.join("k"), generate_key_pem().expect("key").0).expect("write");
        CheckpointSigner::load(&dir.join("k"))
            .expect("key")
            .sign(new, new_checkpoint.root, String::new())
            .note()
            .expect("note")
    };
    let other_log = CheckpointSigner::load(&gateway.pki.dir.join("checkpoint.key"))
        .expect("key")
        .with_origin("elsewhere.example/log")
        .expect("origin")
        .sign(new, new_checkpoint.root, String::new())
        .note()
        .expect("note");
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "forged consistency proof",
            add_checkpoint_body(old, &forged, &new_note),
            422,
        ),
        (
            "same size, another root",
            add_checkpoint_body(old, &[], &fork),
            422,
        ),
        (
            "proof from size zero",
            add_checkpoint_body(0, &proof, &new_note),
            409,
        ),
        (
            "not signed by the log's key",
            add_checkpoint_body(old, &proof, &stranger),
            403,
        ),
        (
            "a log it does not witness",
            add_checkpoint_body(old, &proof, &other_log),
            404,
        ),
        (
            "old size beyond the checkpoint",
            add_checkpoint_body(new + 1, &[], &new_note),
            400,
        ),
        ("malformed", "old 01\n\nnonsense\n".into(), 400),
        (
            "the honest proof",
            add_checkpoint_body(old, &proof, &new_note),
            200,
        ),
        (
            "the same checkpoint again",
            add_checkpoint_body(new, &[], &new_note),
            200,
        ),
    ];
    for (case, body, expected) in cases {
        let (status, said) = third.post(body).await;
        assert_eq!(status, expected, "{case}: {said}");
    }
}

#[tokio::test]
async fn a_restarted_witness_keeps_its_state_and_goes_on_cosigning() {
    let (gateway, police, _health, _policy) = witnessed().await;
    refusals(&gateway, 3).await;
    let size = log_size(&gateway).await;
    cosigned(&gateway, &police, size).await;
    let police = police.restart().await;
    // It still holds what it cosigned: a submitter from zero is told that size.
    let checkpoint = gateway
        .store()
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("a checkpoint");
    let (status, body) = police
        .post(add_checkpoint_body(
            0,
            &[],
            &checkpoint.note().expect("note"),
        ))
        .await;
    assert_eq!(status, 409, "{body}");
    let held: u64 = body.trim_end().parse().expect("a size");
    assert!(held >= size, "{held} < {size}");
    // And the gateway's next checkpoints are cosigned from there.
    refusals(&gateway, 2).await;
    let newer = log_size(&gateway).await;
    cosigned(&gateway, &police, newer).await;
}

#[tokio::test]
async fn a_witness_that_is_down_delays_no_disclosure_and_raises_the_lag_warning() {
    let pki = TestPki::new();
    let log = log_vkey(&pki);
    let police = TestWitness::spawn("police.example/witness", &log).await;
    // A witness that accepts connections and never answers: the worst kind of down.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hung_url = format!("http://{}", hung.local_addr().expect("addr"));
    let hung_key = {
        let dir = temp_dir("hung");
        std::fs::write(dir.join("k"), generate_key_pem().expect("key").0).expect("write");
        WitnessKey {
            name: "nhs.example/witness".into(),
            key: load_key(&dir.join("k")).expect("key"),
            logs: Vec::new(),
        }
        .vkey()
    };
    let policy = policy_file(
        &[
            entry(&police),
            ("nhs.example/witness".into(), hung_url, hung_key.render()),
        ],
        2,
        1,
        // A disclosure that waited for the hung witness would take this long.
        30_000,
    );
    let gateway = spawn_witnessed_gateway(pki, policy).await;

    // Each refusal is answered (and logged) at once, whatever the witnesses do.
    for _ in 0..5 {
        let started = Instant::now();
        refusals(&gateway, 1).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a disclosure waited {:?} for a witness",
            started.elapsed()
        );
    }
    let health = gateway.witness_health.clone().expect("witness health");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !health.lagging() {
        assert!(
            Instant::now() < deadline,
            "the lag warning was never raised"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The quorum (two) is not met: only the police witness cosigned.
    assert!(health.quorum_size() < log_size(&gateway).await);
    cosigned(&gateway, &police, 1).await;
    // The IG office is told, with no person named.
    let pool = gateway.database_pool().await;
    let notices: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient_system, payload FROM notice WHERE rule = 'witness_lag'")
            .fetch_all(&pool)
            .await
            .expect("read notices");
    pool.close().await;
    assert!(
        notices.iter().any(|(system, _)| system == "ig-office"),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .all(|(_, payload)| payload.contains("nhs.example/witness"))
    );
    drop(hung);
}

#[tokio::test]
async fn a_truncated_tail_with_its_checkpoints_deleted_is_caught_by_the_witnessed_size() {
    let (gateway, police, health, policy) = witnessed().await;
    refusals(&gateway, 9).await;
    let size = log_size(&gateway).await;
    assert!(size >= 9);
    cosigned(&gateway, &police, size).await;
    cosigned(&gateway, &health, size).await;
    let database = gateway.database.clone();
    let pki_key = gateway.pki.dir.join("checkpoint.key");
    gateway.stop().await.expect("gateway stops");

    // The database's owner cuts the tail and deletes the checkpoints that covered it, and
    // the cosignatures the gateway kept: the log's own checkpoints now agree with it.
    let pool = {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&database.url())
            .await
            .expect("connect")
    };
    let statements: Vec<String> = match database {
        TestDatabase::Postgres { .. } => vec![
            "ALTER TABLE disclosure_log DISABLE TRIGGER ALL".into(),
            "ALTER TABLE checkpoint DISABLE TRIGGER ALL".into(),
            "ALTER TABLE checkpoint_cosignature DISABLE TRIGGER ALL".into(),
            "ALTER TABLE merkle_node DISABLE TRIGGER ALL".into(),
        ],
        TestDatabase::Sqlite { .. } => vec![
            "DROP TRIGGER disclosure_log_no_delete".into(),
            "DROP TRIGGER checkpoint_no_delete".into(),
            "DROP TRIGGER checkpoint_cosignature_no_delete".into(),
            "DROP TRIGGER merkle_node_no_delete".into(),
        ],
    }
    .into_iter()
    .chain([
        "DELETE FROM disclosure_log WHERE seq > 6".into(),
        "DELETE FROM checkpoint WHERE tree_size > 6".into(),
        "DELETE FROM checkpoint_cosignature".into(),
        // The tree's nodes over the removed leaves, so the log takes new entries again.
        "DELETE FROM merkle_node WHERE ((idx + 1) << CAST(level AS INTEGER)) > 6".into(),
    ])
    .collect();
    for sql in &statements {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;

    // Without witnesses the shortened log verifies: its own checkpoints were cut with it.
    let alone = verify_cli(&database, &pki_key, None).await;
    assert_eq!(
        alone.status.code(),
        Some(0),
        "{}{}",
        stdout(&alone),
        crate::ig_support::stderr(&alone)
    );
    // With them, it is caught and named.
    let config = config_with_policy(&policy);
    let witnessed = verify_cli(&database, &pki_key, Some(&config)).await;
    let said = stdout(&witnessed);
    assert_eq!(witnessed.status.code(), Some(3), "{said}");
    assert!(said.contains("tail was removed"), "{said}");
    assert!(said.contains(&format!("{size} entries")), "{said}");
}

#[tokio::test]
async fn witness_keygen_writes_a_key_and_prints_its_cosignature_vkey() {
    let dir = temp_dir("keygen");
    let key = dir.join("witness.key");
    let path = key.display().to_string();
    let output = safegate(&[
        "witness",
        "keygen",
        "--key",
        &path,
        "--name",
        "la.example/w1",
    ]);
    assert!(
        output.status.success(),
        "{}",
        crate::ig_support::stderr(&output)
    );
    let vkey = Vkey::parse(stdout(&output).trim()).expect("a vkey is printed");
    assert_eq!(vkey.name, "la.example/w1");
    assert_eq!(
        vkey.signature_type,
        safegate::domain::ledger::note::COSIGNATURE_TYPE
    );
    // A key is never replaced.
    let again = safegate(&["witness", "keygen", "--key", &path]);
    assert!(!again.status.success());
}

#[tokio::test]
async fn two_submissions_from_the_same_size_never_both_pass_the_check() {
    let (gateway, police, _health, _policy) = witnessed().await;
    refusals(&gateway, 2).await;
    let old = log_size(&gateway).await;
    refusals(&gateway, 2).await;
    let middle = log_size(&gateway).await;
    refusals(&gateway, 2).await;
    let new = log_size(&gateway).await;
    let store = gateway.store();
    let note = |size| async move {
        store
            .checkpoint_at(size)
            .await
            .expect("read")
            .expect("stored")
            .note()
            .expect("note")
    };
    let third = TestWitness::spawn("probation.example/witness", &police.log).await;
    let (status, body) = third
        .post(add_checkpoint_body(0, &[], &note(old).await))
        .await;
    assert_eq!(status, 200, "{body}");
    let to_middle = add_checkpoint_body(
        old,
        &store.consistency_proof(old, middle).await.expect("proof"),
        &note(middle).await,
    );
    let to_new = add_checkpoint_body(
        old,
        &store.consistency_proof(old, new).await.expect("proof"),
        &note(new).await,
    );
    // Both check against size `old`; the one stored second must be told it is stale.
    let (a, b) = tokio::join!(third.post(to_middle), third.post(to_new));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
}
