//! Durability of the disclosure log with the real `safegate` binary: killing the process
//! (SIGKILL) during load loses no acknowledged entry, and two gateway processes writing to
//! one database keep one valid log. On SQLite by default (two processes then share one
//! WAL-mode file), on a fresh PostgreSQL database when `SAFEGATE_TEST_DATABASE_URL` is set.
//!
//! The load is WhoAmI refusals (a nursery asserting a police role): the gateway answers
//! PERMISSION_DENIED only after the refusal's entry is committed, so every refusal the
//! client sees is an acknowledged entry, identified by its unique practitioner id.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use safegate::api::proto::audit_service_client::AuditServiceClient;
use safegate::api::proto::identity_service_client::IdentityServiceClient;
use safegate::api::proto::{
    ListEntriesRequest, LogEntry, Role, VerifyLogRequest, VerifyLogResponse, WhoAmIRequest,
};
use sqlx::Connection;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::helpers::{TestDatabase, auditor, context, temp_dir};

const SAFEGATE: &str = env!("CARGO_BIN_EXE_safegate");
/// Longest wait for a freshly started process to report SERVING.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest any whole test may run.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A PKI written by `safegate pki init` and a database, shared by the processes a test runs.
struct Deployment {
    dir: PathBuf,
    pki: PathBuf,
    database: TestDatabase,
}

impl Deployment {
    async fn new(label: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = temp_dir(label);
        let pki = dir.join("pki");
        let output = Command::new(SAFEGATE)
            .args(["pki", "init", "--dir"])
            .arg(&pki)
            .env_clear()
            .output()
            .expect("run `safegate pki init`");
        assert!(
            output.status.success(),
            "`safegate pki init` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let database = TestDatabase::create(&dir).await;
        Deployment { dir, pki, database }
    }

    /// Starts `safegate serve` on a free port and waits until it reports SERVING.
    async fn serve(&self, name: &str) -> Process {
        let mut last_log = String::new();
        for attempt in 1..=3 {
            let mut process = self.start(name, attempt);
            match process.wait_until_serving().await {
                Ok(()) => return process,
                Err(exited) => {
                    last_log = exited;
                    // Another process may have taken the port between probe and bind.
                    if !last_log.contains("binding `listen_addr`") {
                        break;
                    }
                }
            }
        }
        panic!("`safegate serve` ({name}) did not start:\n{last_log}");
    }

    /// Starts `safegate serve` on a free port without waiting for it.
    fn start(&self, name: &str, attempt: u32) -> Process {
        let addr = free_port();
        let log = self.dir.join(format!("{name}-{attempt}.log"));
        let stderr = File::create(&log).expect("create the process log");
        let mut command = Command::new(SAFEGATE);
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--database-url")
            .arg(self.database.url())
            .arg("--registry")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/policies/registry.toml"
            ))
            .arg("--policy-dir")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
            .arg("--pki-dir")
            .arg(&self.pki)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        for (key, _) in std::env::vars() {
            if key.starts_with("SAFEGATE_") || key == "OTEL_EXPORTER_OTLP_ENDPOINT" {
                command.env_remove(key);
            }
        }
        command
            .env("SAFEGATE_LOG_FORMAT", "json")
            .env("SAFEGATE_LOG_FILTER", "info")
            .env("SAFEGATE_HEALTH_INTERVAL_MS", "100")
            .env("SAFEGATE_SHUTDOWN_GRACE_SECS", "2");
        let child = command.spawn().expect("spawn `safegate serve`");
        Process {
            name: name.to_owned(),
            child,
            addr,
            log,
            pki: self.pki.clone(),
        }
    }
}

/// Picks a port nobody listens on right now.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    listener.local_addr().expect("probe port address")
}

/// A running `safegate serve`; killed when dropped.
struct Process {
    name: String,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    pki: PathBuf,
}

impl Process {
    /// Waits for SERVING; if the process exits first, returns its log.
    async fn wait_until_serving(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Err(format!("exited with {status}; log:\n{}", self.log_text()));
            }
            if let Ok(channel) = channel(self.addr, &self.pki, "ig-office").await {
                let serving = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
                if serving {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "not SERVING within {START_TIMEOUT:?}; log:\n{}",
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process answers SERVING now.
    async fn serving(&self) -> bool {
        match channel(self.addr, &self.pki, "ig-office").await {
            Ok(channel) => HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32),
            Err(_) => false,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no drain, no shutdown hook, no flush.
    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the gateway");
        let status = self.child.wait().expect("reap the gateway");
        assert!(
            !status.success(),
            "{} exited normally instead of being killed",
            self.name
        );
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll the child") {
            panic!(
                "{} exited ({status}) during the test; log:\n{}",
                self.name,
                self.log_text()
            );
        }
    }

    async fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(
            channel(self.addr, &self.pki, "ig-office")
                .await
                .expect("connect as ig-office"),
        )
    }

    /// Every entry of `kind`, oldest first, read as the IG officer a page at a time.
    async fn list_all(&self, kind: &str) -> Vec<LogEntry> {
        let mut audit = self.audit().await;
        let mut entries = Vec::new();
        let mut token = String::new();
        loop {
            let page = audit
                .list_entries(ListEntriesRequest {
                    context: Some(auditor()),
                    kind: kind.into(),
                    page_size: 1000,
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .expect("list entries as the IG officer")
                .into_inner();
            entries.extend(page.entries);
            if page.next_page_token.is_empty() {
                return entries;
            }
            token = page.next_page_token;
        }
    }

    async fn verify(&self) -> VerifyLogResponse {
        self.audit()
            .await
            .verify_log(VerifyLogRequest {
                context: Some(auditor()),
            })
            .await
            .expect("VerifyLog as the IG officer")
            .into_inner()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mutual-TLS channel to `addr` as a demo system whose certificate is in `pki`.
async fn channel(
    addr: SocketAddr,
    pki: &Path,
    system: &str,
) -> Result<Channel, tonic::transport::Error> {
    let read = |file: String| std::fs::read_to_string(pki.join(file)).expect("read PKI file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())))
        .domain_name("localhost")
        .identity(Identity::from_pem(
            read(format!("{system}.pem")),
            read(format!("{system}.key")),
        ));
    Channel::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .connect()
        .await
}

/// A call that did not end in an acknowledged refusal.
#[derive(Debug)]
struct Failure {
    practitioner_id: String,
    /// Whether the gateway had already been killed when the call ended.
    after_kill: bool,
    code: Code,
    message: String,
}

/// Concurrent WhoAmI refusals against one gateway, each task on its own connection.
struct Load {
    tasks: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<Failure>>>,
}

/// What a load achieved.
struct LoadOutcome {
    /// Practitioner ids whose refusal the gateway acknowledged.
    acknowledged: Vec<String>,
    failures: Vec<Failure>,
}

impl Load {
    /// Starts `tasks` tasks; each makes `per_task` calls (`None`: until stopped) with
    /// practitioner ids `{prefix}-{task}-{call}`, and ends at its first failure.
    fn start(
        process: &Process,
        prefix: &str,
        tasks: usize,
        per_task: Option<usize>,
        killed: &Arc<AtomicBool>,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..tasks)
            .map(|task| {
                let (addr, pki) = (process.addr, process.pki.clone());
                let prefix = prefix.to_owned();
                let (stop, killed) = (Arc::clone(&stop), Arc::clone(killed));
                let (acknowledged, count, failures) = (
                    Arc::clone(&acknowledged),
                    Arc::clone(&count),
                    Arc::clone(&failures),
                );
                tokio::spawn(async move {
                    let fail = |id: String, code: Code, message: String| {
                        failures.lock().expect("failures").push(Failure {
                            practitioner_id: id,
                            after_kill: killed.load(Ordering::SeqCst),
                            code,
                            message,
                        });
                    };
                    let mut client = match channel(addr, &pki, "nursery").await {
                        Ok(channel) => IdentityServiceClient::new(channel),
                        Err(error) => {
                            return fail(
                                format!("{prefix}-{task}"),
                                Code::Unknown,
                                error.to_string(),
                            );
                        }
                    };
                    let mut call = 0;
                    while !stop.load(Ordering::SeqCst) && per_task.is_none_or(|n| call < n) {
                        let id = format!("{prefix}-{task}-{call}");
                        call += 1;
                        let outcome = client
                            .who_am_i(WhoAmIRequest {
                                context: Some(context(&id, Role::IomOfficer)),
                            })
                            .await;
                        match outcome {
                            Err(status) if status.code() == Code::PermissionDenied => {
                                acknowledged.lock().expect("acknowledged").push(id);
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(status) => {
                                return fail(id, status.code(), status.message().to_owned());
                            }
                            Ok(_) => {
                                return fail(id, Code::Ok, "a refusal was answered".into());
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            tasks: handles,
            stop,
            acknowledged,
            count,
            failures,
        }
    }

    fn acknowledged_so_far(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Tells the tasks to stop after the call each is in.
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the tasks to end (their calls made, stopped, or failed) and gathers
    /// the outcome.
    async fn finish(self) -> LoadOutcome {
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a load task did not finish within 60 s")
                .expect("load task panicked");
        }
        LoadOutcome {
            acknowledged: std::mem::take(&mut *self.acknowledged.lock().expect("acknowledged")),
            failures: std::mem::take(&mut *self.failures.lock().expect("failures")),
        }
    }
}

/// Practitioner id -> how many refusal entries carry it.
fn by_practitioner(entries: &[LogEntry]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for entry in entries {
        *counts.entry(entry.practitioner_id.as_str()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_gateway_during_load_loses_no_acknowledged_entry() {
    tokio::time::timeout(TEST_TIMEOUT, kill_during_load())
        .await
        .expect("the kill test did not finish within its time bound");
}

async fn kill_during_load() {
    const TASKS: usize = 16;
    const BEFORE_KILL: usize = 1000;
    let deployment = Deployment::new("kill").await;
    let mut gateway = deployment.serve("first").await;
    let killed = Arc::new(AtomicBool::new(false));
    let load = Load::start(&gateway, "K", TASKS, None, &killed);

    let deadline = Instant::now() + Duration::from_secs(120);
    while load.acknowledged_so_far() < BEFORE_KILL {
        gateway.assert_running();
        assert!(
            Instant::now() < deadline,
            "only {} refusals acknowledged in 120 s",
            load.acknowledged_so_far()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    gateway.kill_9();
    load.stop();
    let outcome = load.finish().await;

    let before: Vec<&Failure> = outcome.failures.iter().filter(|f| !f.after_kill).collect();
    assert!(
        before.is_empty(),
        "calls failed before the kill (the gateway was healthy): {before:#?}"
    );
    // The kill cut calls short: the load really was under way.
    let interrupted = outcome.failures.len();
    assert!(
        interrupted > 0,
        "no call was in flight when the gateway was killed"
    );
    let acknowledged = &outcome.acknowledged;
    let mut how: BTreeMap<String, usize> = BTreeMap::new();
    for failure in &outcome.failures {
        let first_words: String = failure
            .message
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
        *how.entry(format!("{:?}: {first_words}", failure.code))
            .or_insert(0) += 1;
    }
    eprintln!(
        "kill test ({}): {} refusals acknowledged before SIGKILL, {interrupted} calls cut short: {how:?}",
        backend(&deployment.database),
        acknowledged.len()
    );

    let restarted = deployment.serve("restarted").await;
    let logged = restarted.list_all("refusal").await;
    let counts = by_practitioner(&logged);
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged refusals are missing from the log after the restart: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(20)]
    );
    let twice: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "refusals logged more than once: {twice:?}"
    );
    // Entries beyond the acknowledged ones can only be calls cut short by the kill: they
    // were committed but their answer never arrived.
    let acknowledged_ids: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let unacknowledged: Vec<&str> = counts
        .keys()
        .copied()
        .filter(|id| !acknowledged_ids.contains(id))
        .collect();
    let cut_short: HashSet<&str> = outcome
        .failures
        .iter()
        .map(|f| f.practitioner_id.as_str())
        .collect();
    assert!(
        unacknowledged.iter().all(|id| cut_short.contains(id)),
        "entries for calls that were never made or never cut short: {unacknowledged:?}"
    );
    eprintln!(
        "kill test: after the restart the log holds {} refusals: the {} acknowledged and {} \
         committed whose answer the kill cut off",
        logged.len(),
        acknowledged.len(),
        unacknowledged.len()
    );
    let seqs: Vec<u64> = logged.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=logged.len() as u64).collect::<Vec<_>>(),
        "the refusals written before the kill are not entries 1..N"
    );

    let verified = restarted.verify().await;
    assert!(
        verified.valid,
        "the log does not verify after the kill: entry {} ({}): {}",
        verified.first_bad_seq, verified.first_bad_entry_id, verified.problem
    );
    assert!(
        verified.entries >= logged.len() as u64,
        "the verified log holds {} entries, fewer than the {} refusals listed",
        verified.entries,
        logged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateway_processes_on_one_database_keep_one_valid_log() {
    tokio::time::timeout(TEST_TIMEOUT, two_processes())
        .await
        .expect("the two-process test did not finish within its time bound");
}

async fn two_processes() {
    const TASKS: usize = 8;
    const PER_TASK: usize = 60;
    let deployment = Deployment::new("two").await;
    // The second process joins a running one (for both starting at once, see below).
    let mut a = deployment.serve("a").await;
    let mut b = deployment.serve("b").await;
    let never_killed = Arc::new(AtomicBool::new(false));
    let load_a = Load::start(&a, "A", TASKS, Some(PER_TASK), &never_killed);
    let load_b = Load::start(&b, "B", TASKS, Some(PER_TASK), &never_killed);
    let (done_a, done_b) = tokio::join!(load_a.finish(), load_b.finish());
    a.assert_running();
    b.assert_running();
    let failures: Vec<&Failure> = done_a.failures.iter().chain(&done_b.failures).collect();
    assert!(
        failures.is_empty(),
        "calls failed with two processes on one {} database: {failures:#?}\n\
         process a log:\n{}\nprocess b log:\n{}",
        backend(&deployment.database),
        a.log_text(),
        b.log_text()
    );
    let acknowledged: Vec<&String> = done_a
        .acknowledged
        .iter()
        .chain(&done_b.acknowledged)
        .collect();
    let n = acknowledged.len() as u64;
    assert_eq!(n, 2 * (TASKS * PER_TASK) as u64);

    // VerifyLog reads the checkpoint before it logs its own read: exactly the refusals.
    let verified = a.verify().await;
    assert!(
        verified.valid,
        "the log two processes wrote does not verify: entry {} ({}): {}",
        verified.first_bad_seq, verified.first_bad_entry_id, verified.problem
    );
    assert_eq!(
        verified.entries, n,
        "the log holds {} entries for {n} acknowledged refusals",
        verified.entries
    );

    // Read back through the other process: one log, entries 1..N, each refusal once.
    let logged = b.list_all("refusal").await;
    let seqs: Vec<u64> = logged.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "the refusals are not entries 1..N"
    );
    let counts = by_practitioner(&logged);
    assert!(
        acknowledged
            .iter()
            .all(|id| counts.get(id.as_str()) == Some(&1)),
        "not every acknowledged refusal is in the log exactly once"
    );
    // Both processes' batches interleave in the one log.
    let span = |prefix: &str| {
        let seqs: Vec<u64> = logged
            .iter()
            .filter(|e| e.practitioner_id.starts_with(prefix))
            .map(|e| e.seq)
            .collect();
        (
            seqs.iter().copied().min().unwrap_or(0),
            seqs.iter().copied().max().unwrap_or(0),
        )
    };
    let ((a_first, a_last), (b_first, b_last)) = (span("A-"), span("B-"));
    assert!(
        a_first < b_last && b_first < a_last,
        "the two processes' entries do not interleave (a: {a_first}..{a_last}, \
         b: {b_first}..{b_last}): the load was not concurrent"
    );
    // Once more after the reads: still valid, as seen from the second process.
    let again = b.verify().await;
    assert!(again.valid, "{}", again.problem);
    assert!(again.entries > n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateway_processes_started_at_once_both_migrate_and_serve() {
    tokio::time::timeout(TEST_TIMEOUT, started_at_once())
        .await
        .expect("the simultaneous-start test did not finish within its time bound");
}

/// Two replicas of one deployment start together on a new database: both migrate it, and
/// neither may fail because the other got there first.
async fn started_at_once() {
    let deployment = Deployment::new("at-once").await;
    let (mut a, mut b) = tokio::join!(deployment.serve("a"), deployment.serve("b"));
    let never_killed = Arc::new(AtomicBool::new(false));
    let load_a = Load::start(&a, "A", 2, Some(10), &never_killed);
    let load_b = Load::start(&b, "B", 2, Some(10), &never_killed);
    let (done_a, done_b) = tokio::join!(load_a.finish(), load_b.finish());
    a.assert_running();
    b.assert_running();
    let failures: Vec<&Failure> = done_a.failures.iter().chain(&done_b.failures).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let verified = b.verify().await;
    assert!(verified.valid, "{}", verified.problem);
    assert_eq!(verified.entries, 40);
}

/// While another process migrates (holds the migration lock), a starting gateway waits:
/// it applies nothing and does not serve; once the lock is released it migrates and serves.
/// On SQLite the lock is `<db>.migrate.lock`, on PostgreSQL sqlx's advisory lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_gateway_waits_while_another_process_migrates() {
    tokio::time::timeout(TEST_TIMEOUT, waits_for_the_migration_lock())
        .await
        .expect("the migration-lock test did not finish within its time bound");
}

async fn waits_for_the_migration_lock() {
    let deployment = Deployment::new("migrate-lock").await;
    let held = MigrationLockHeld::take(&deployment.database).await;
    let mut waiting = deployment.start("waiting", 1);
    let held_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < held_until {
        waiting.assert_running();
        assert!(
            !waiting.serving().await,
            "the gateway served while another process held the migration lock; log:\n{}",
            waiting.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::any::install_default_drivers();
    let mut database = sqlx::AnyConnection::connect(&deployment.database.url())
        .await
        .expect("connect to the test database");
    let applied = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut database)
        .await;
    assert!(
        applied.is_err(),
        "migrations were applied while another process held the lock: {applied:?}"
    );
    database.close().await.expect("close");
    held.release().await;
    waiting
        .wait_until_serving()
        .await
        .expect("the gateway migrates and serves once the lock is released");
}

/// The lock a migrating gateway holds, held by the test as another migrator would.
enum MigrationLockHeld {
    Sqlite(File),
    Postgres(sqlx::PgConnection),
}

impl MigrationLockHeld {
    async fn take(database: &TestDatabase) -> Self {
        match database {
            TestDatabase::Sqlite { file } => {
                let mut name = file.as_os_str().to_owned();
                name.push(".migrate.lock");
                let lock = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(name)
                    .expect("open the migration lock file");
                lock.lock().expect("lock the migration lock file");
                MigrationLockHeld::Sqlite(lock)
            }
            TestDatabase::Postgres { name, .. } => {
                let mut connection = sqlx::PgConnection::connect(&database.url())
                    .await
                    .expect("connect to the test database");
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(sqlx_migration_lock_id(name))
                    .execute(&mut connection)
                    .await
                    .expect("take the migration advisory lock");
                MigrationLockHeld::Postgres(connection)
            }
        }
    }

    async fn release(self) {
        match self {
            MigrationLockHeld::Sqlite(lock) => drop(lock),
            // A session's advisory locks end with the session.
            MigrationLockHeld::Postgres(connection) => {
                connection.close().await.expect("close the lock's session");
            }
        }
    }
}

/// The advisory lock id sqlx 0.8's PostgreSQL migrator takes for `database`:
/// 0x3d32ad9e times the CRC-32 (ISO-HDLC) of the database name.
fn sqlx_migration_lock_id(database: &str) -> i64 {
    let mut crc: u32 = 0xffff_ffff;
    for byte in database.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    0x3d32_ad9e * i64::from(!crc)
}

fn backend(database: &TestDatabase) -> &'static str {
    match database {
        TestDatabase::Sqlite { .. } => "SQLite",
        TestDatabase::Postgres { .. } => "PostgreSQL",
    }
}
