//! Gateway throughput and latency under concurrent load, in one run: a bare tonic echo
//! over the gateway's own mutual-TLS setup, then the real gateway answering Explain and
//! the full audited Query as `police-iom` about Dean, with the goals of issue 14 checked
//! against the echo and an insert floor measured in the same run.
//!
//! ```sh
//! cargo bench --bench gateway                      # SQLite file in a temp dir
//! SAFEGATE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench --bench gateway                    # a fresh database on that server
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SAFEGATE_BENCH_CONCURRENCY` | 32 | concurrent callers, each looping one call at a time |
//! | `SAFEGATE_BENCH_CONNECTIONS` | = concurrency | mutual-TLS connections the callers share round-robin |
//! | `SAFEGATE_BENCH_SECONDS` | 5 | measured seconds per scenario |
//! | `SAFEGATE_BENCH_WARMUP_SECONDS` | 1 | unmeasured seconds before each scenario's window |
//! | `SAFEGATE_BENCH_DATABASE_URL` | unset (SQLite) | a `postgres://` server: a database `safegate_bench_<uuid>` is created there and dropped at the end |
//!
//! **The echo.** A second tonic server in the same process serves
//! `safegate.v1.IdentityService/WhoAmI` from a bare handler: no caller layer, registry,
//! policy, database or ledger. It is built like the gateway's (same `Server::builder()`
//! defaults, a `ServerTlsConfig` from the same server certificate and the same client-CA
//! bundle from the agency registry, a `TcpIncoming` on 127.0.0.1:0 with the gateway's
//! accepted-socket options: TCP_NODELAY, keepalive) and the callers reach
//! it through the same `safegate::api::client::channel` with the same client certificate. It
//! answers with the real gateway's WhoAmI response for `police-iom`, captured at start,
//! with the request's practitioner context echoed back, so its messages are as large as
//! the gateway's WhoAmI and of the same order as Explain's request. It is the floor that
//! mutual TLS, HTTP/2 and tonic's codec put under every gateway call.
//!
//! **The callers.** By default each caller has its own connection, as many agency
//! systems each holding their own mutual-TLS connection would (all present the
//! `police-iom` certificate, since the Query must be legitimate). Connections are opened
//! before the warm-up, so handshakes are not measured. A call's latency is taken by the
//! caller from just before the call to its answer; every call that completes inside the
//! measured window is counted and its latency kept.
//!
//! **Size control.** The same echo, padded to answer as many bytes as the Query (about
//! 8.8 KB against WhoAmI's 188), runs as a control, so the transport's cost for an answer
//! that large is visible; the goals are taken against the plain echo, as the issue asks.
//!
//! **Floors.** The echo and the padded echo again, each first appending one entry through
//! the gateway's own ledger and waiting for its commit before answering: the entry the
//! gateway wrote for the probe Explain, and one shaped like the Query's. No policy, no
//! records, no answer building: only transport and the fail-closed log. Explain and
//! Query do all of that and more, so they cannot beat their floors: a goal above its
//! floor is out of reach until the ledger itself gets cheaper.
//!
//! **Where the time goes.** Three extra scenarios split the gateway's cost: WhoAmI on
//! the gateway (transport plus the caller layer and its span: no database, no ledger);
//! the reads the Query's neighbourhood makes, straight on the gateway's `Store` (find the
//! subject, then the current facts naming the subject and each linked person); and the
//! ledger's group-commit append alone, with an entry shaped like the Query's. Those two
//! run in process on the server runtime, without gRPC. The gateway and the echo run on
//! one Tokio runtime (`sg-server` threads), the load generator on another (`sg-client`),
//! so CPU time per call is split by thread from `/proc`: server runtime, SQLite worker
//! threads, PostgreSQL server processes, load generator; and the whole machine's busy
//! share is printed too, so load from other processes shows.
//!
//! **The append's floor.** Group-committed one-row inserts of the Query entry's bytes
//! into a table with one index, on the same database (`common::floor`): the ledger's
//! append, measured alone in the same run, is held to at most 2x its CPU per entry
//! (committing runtime plus database). Afterwards 2,000 entries of each shape (Query,
//! Explain) are appended through the ledger and the database's growth per entry printed.
//!
//! Ratios are taken against the stricter of the two echo runs (first and last): the
//! higher echo throughput and the lower echo p99.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use common::floor::{InsertFloor, bytes_on_disk};
use common::{BenchDatabase, load_average, thousands};
use prost::Message;
use safegate::api::proto::{
    self, ExplainRequest, ExplainResponse, Identifier, IdentifierScheme, PersonRef,
    PractitionerContext, Purpose, QueryRequest, QueryResponse, Role, WhoAmIRequest, WhoAmIResponse,
    identity_service_client::IdentityServiceClient,
    identity_service_server::{IdentityService, IdentityServiceServer},
    query_service_client::QueryServiceClient,
};
use safegate::config::{Layers, Settings};
use safegate::domain::ledger::{Decision, Disclosed, Entry, EntryKind, Ledger};
use safegate::pki::DEMO_SYSTEMS;
use safegate::registry::Registry;
use safegate::startup::Application;
use safegate::store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, Identity, Server, ServerTlsConfig};

/// The agency system every caller presents, and its practitioner.
const SYSTEM: &str = "police-iom";
const PRACTITIONER: &str = "IOM-0001";
/// No single call may take longer than this; one that does counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds on setup steps (connecting, loading the case, stopping).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Goals from issue 14 (restating issue 4's against floors that can be met).
const GOAL_EXPLAIN_THROUGHPUT: f64 = 0.3;
const GOAL_QUERY_THROUGHPUT: f64 = 0.2;
const GOAL_QUERY_P99: f64 = 4.0;
/// The append's CPU per entry against the independent insert floor's.
const GOAL_APPEND_CPU: f64 = 2.0;
/// Entries of each shape appended to measure bytes on disk per entry.
const BYTES_SAMPLE: usize = 2_000;

fn main() -> Result<()> {
    let settings = BenchSettings::from_env()?;
    common::on_split_runtimes("gw", async |work, database, server| {
        measure(&settings, work, database, server).await
    })
}

/// What the environment asks for.
struct BenchSettings {
    concurrency: usize,
    connections: usize,
    seconds: f64,
    warm_up: f64,
}

impl BenchSettings {
    fn from_env() -> Result<Self> {
        fn var<T: std::str::FromStr>(
            name: &str,
            default: T,
            valid: impl Fn(&T) -> bool,
            expected: &str,
        ) -> Result<T> {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse::<T>()
                    .ok()
                    .filter(&valid)
                    .with_context(|| format!("{name} must be {expected}, not {text:?}")),
                Err(_) => Ok(default),
            }
        }
        let concurrency = var(
            "SAFEGATE_BENCH_CONCURRENCY",
            32usize,
            |n| (1..=1024).contains(n),
            "a number from 1 to 1024",
        )?;
        let connections = var(
            "SAFEGATE_BENCH_CONNECTIONS",
            concurrency,
            |n| (1..=concurrency).contains(n),
            "a number from 1 to the concurrency",
        )?;
        let seconds = var(
            "SAFEGATE_BENCH_SECONDS",
            5.0f64,
            |s| (0.5..=60.0).contains(s),
            "seconds from 0.5 to 60",
        )?;
        let warm_up = var(
            "SAFEGATE_BENCH_WARMUP_SECONDS",
            1.0f64,
            |s| (0.0..=10.0).contains(s),
            "seconds from 0 to 10",
        )?;
        Ok(BenchSettings {
            concurrency,
            connections,
            seconds,
            warm_up,
        })
    }
}

/// The bare echo: the gateway's WhoAmI answer for `police-iom`, with the request's
/// practitioner context echoed back, and nothing else; or, as a floor, the same echo
/// that first appends one entry through the gateway's ledger and waits for its commit.
#[derive(Clone)]
struct BareIdentity {
    template: Arc<WhoAmIResponse>,
    logged: Option<(Ledger, Arc<Entry>)>,
}

#[tonic::async_trait]
impl IdentityService for BareIdentity {
    async fn who_am_i(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<WhoAmIResponse>, tonic::Status> {
        if let Some((ledger, shape)) = &self.logged {
            ledger
                .append(restamped(shape))
                .await
                .map_err(tonic::Status::from)?;
        }
        let mut response = WhoAmIResponse::clone(&self.template);
        response.context = request.into_inner().context;
        Ok(tonic::Response::new(response))
    }
}

/// `shape` with a fresh id, time and trace id, as each real call's entry has.
fn restamped(shape: &Entry) -> Entry {
    let fresh = Entry::new(shape.kind, shape.decision);
    Entry {
        entry_id: fresh.entry_id,
        recorded_at: fresh.recorded_at,
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
        ..shape.clone()
    }
}

/// A running server and the way to stop it.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    async fn stop(self, what: &str) -> Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(STEP_TIMEOUT, self.task)
            .await
            .with_context(|| format!("{what} did not stop"))?
            .with_context(|| format!("{what} task"))?
    }
}

/// The accepted-socket options of the gateway, as `incoming` in `src/startup.rs` sets
/// them (`Server::tcp_nodelay` and `tcp_keepalive` do not apply to
/// `serve_with_incoming*`). Keep in step with `startup.rs`.
fn incoming_like_gateway(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// Starts an echo on `runtime` with the gateway's TLS material and socket options, the
/// way `Application::build` and `run_until_stopped` configure the gateway's server.
async fn start_echo(
    settings: &Settings,
    template: WhoAmIResponse,
    logged: Option<(Ledger, Arc<Entry>)>,
    runtime: &tokio::runtime::Handle,
) -> Result<Running> {
    let registry = Registry::load(&settings.registry, Some(&settings.pki_dir))
        .context("loading the agency registry for the echo's client CA")?;
    let cert = std::fs::read(&settings.tls_cert)?;
    let key = std::fs::read(&settings.tls_key)?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(registry.client_ca_pem()));
    let (stop, stopped) = oneshot::channel::<()>();
    let service = IdentityServiceServer::new(BareIdentity {
        template: Arc::new(template),
        logged,
    });
    let (bound_tx, bound_rx) = oneshot::channel();
    let task = runtime.spawn(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let _ = bound_tx.send(listener.local_addr()?);
        Server::builder()
            .tls_config(tls)?
            .add_service(service)
            .serve_with_incoming_shutdown(incoming_like_gateway(listener), async {
                let _ = stopped.await;
            })
            .await
            .context("serving the echo")
    });
    let addr = tokio::time::timeout(STEP_TIMEOUT, bound_rx)
        .await
        .context("the echo did not bind")?
        .context("the echo failed to bind")?;
    Ok(Running { addr, stop, task })
}

fn context() -> Option<PractitionerContext> {
    Some(PractitionerContext {
        practitioner_id: PRACTITIONER.into(),
        role: Role::IomOfficer.into(),
        purpose: Purpose::OffenderManagement.into(),
        ..Default::default()
    })
}

fn dean() -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
            scheme: IdentifierScheme::PncId.into(),
            value: safegate::demo::case::DEAN_PNC.into(),
            namespace: String::new(),
        })),
    })
}

/// What the callers send.
struct Requests {
    who_am_i: WhoAmIRequest,
    explain: ExplainRequest,
    query: QueryRequest,
    /// For the ledger-only scenario: a Query-shaped entry, re-stamped per append.
    entry: Entry,
    /// For the reads-only scenario: the subject as the store looks it up.
    subject: safegate::domain::records::PersonRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    /// The bare echo padded to the Query's response size (size control).
    EchoSized,
    /// Floor of a fail-closed Explain: the bare echo that first commits one
    /// Explain-shaped entry through the gateway's ledger.
    EchoLogged,
    /// Floor of a fail-closed Query: the Query-sized echo that first commits one
    /// Query-shaped entry through the gateway's ledger.
    EchoSizedLogged,
    GatewayWhoAmI,
    Explain,
    Query,
    Reads,
    LedgerAppend,
    /// The append's independent floor: group-committed one-row inserts of the Query
    /// entry's bytes into a table with one index (`common::floor`).
    InsertFloor,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Echo => "echo: bare WhoAmI",
            Kind::EchoSized => "echo, Query-sized answer",
            Kind::EchoLogged => "floor: echo + Explain's log entry",
            Kind::EchoSizedLogged => "floor: sized echo + Query's log entry",
            Kind::GatewayWhoAmI => "gateway WhoAmI (no db, no ledger)",
            Kind::Explain => "gateway Explain",
            Kind::Query => "gateway Query (audited)",
            Kind::Reads => "Query's reads only (store, no gRPC)",
            Kind::LedgerAppend => "ledger append only (no gRPC)",
            Kind::InsertFloor => "floor: grouped 1-row insert, 1 index",
        }
    }
}

/// One caller's handle on what it calls.
#[derive(Clone)]
enum Target {
    Identity(IdentityServiceClient<Channel>),
    Query(QueryServiceClient<Channel>),
    Ledger(Ledger),
    Store(Store, Arc<Vec<String>>),
    Floor(InsertFloor),
}

async fn call_once(target: &mut Target, kind: Kind, requests: &Requests) -> Result<(), String> {
    let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
    match (target, kind) {
        (
            Target::Identity(client),
            Kind::Echo
            | Kind::EchoSized
            | Kind::EchoLogged
            | Kind::EchoSizedLogged
            | Kind::GatewayWhoAmI,
        ) => {
            let response = client
                .who_am_i(requests.who_am_i.clone())
                .await
                .map_err(status)?;
            if response.get_ref().system_id != SYSTEM {
                return Err("WhoAmI named another system".into());
            }
        }
        (Target::Query(client), Kind::Explain) => {
            let response = client
                .explain(requests.explain.clone())
                .await
                .map_err(status)?;
            if !response.get_ref().would_answer || response.get_ref().disclosure_entry_id.is_empty()
            {
                return Err("Explain said the query would be refused".into());
            }
        }
        (Target::Query(client), Kind::Query) => {
            let response = client.query(requests.query.clone()).await.map_err(status)?;
            if response.get_ref().disclosure_entry_id.is_empty() {
                return Err("Query answered without a disclosure-log entry".into());
            }
        }
        (Target::Ledger(ledger), Kind::LedgerAppend) => {
            ledger
                .append(restamped(&requests.entry))
                .await
                .map_err(|e| format!("append: {e}"))?;
        }
        (Target::Floor(floor), Kind::InsertFloor) => floor.insert().await?,
        (Target::Store(store, linked), Kind::Reads) => {
            // What `Queries::neighbourhood` reads for this Query: the records' generation,
            // the subject by PNC, then the current facts naming the subject and each
            // linked person (from memory while the records are unchanged).
            let records = store
                .records_now()
                .await
                .map_err(|e| format!("records_now: {e}"))?;
            let subject = store
                .find_person(&requests.subject)
                .await
                .map_err(|e| format!("find_person: {e}"))?
                .ok_or("Dean not found")?;
            records
                .facts_naming(&subject)
                .await
                .map_err(|e| format!("facts_naming: {e}"))?;
            for person in linked.iter() {
                records
                    .facts_naming(person)
                    .await
                    .map_err(|e| format!("facts_naming: {e}"))?;
            }
        }
        _ => return Err("caller wired to the wrong target".into()),
    }
    Ok(())
}

/// What one caller saw inside the measured window.
#[derive(Default)]
struct CallerResult {
    latencies_ns: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
}

async fn caller(
    mut target: Target,
    kind: Kind,
    requests: Arc<Requests>,
    window_start: Instant,
    window_end: Instant,
) -> CallerResult {
    let mut result = CallerResult {
        latencies_ns: Vec::with_capacity(8192),
        ..Default::default()
    };
    loop {
        let started = Instant::now();
        if started >= window_end {
            break;
        }
        let outcome = tokio::time::timeout(CALL_TIMEOUT, call_once(&mut target, kind, &requests))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {CALL_TIMEOUT:?}")));
        let finished = Instant::now();
        if finished < window_start || finished > window_end {
            continue;
        }
        match outcome {
            Ok(()) => result
                .latencies_ns
                .push(finished.duration_since(started).as_nanos() as u64),
            Err(error) => {
                result.errors += 1;
                result.first_error.get_or_insert(error);
            }
        }
    }
    result
}

/// CPU seconds spent, split by who spent them.
#[derive(Debug, Default, Clone, Copy)]
struct CpuSplit {
    server: f64,
    sqlite: f64,
    postgres: f64,
    client: f64,
    other: f64,
    /// Share of all the machine's CPU time that was busy, whoever used it.
    host_busy: f64,
}

impl CpuSplit {
    fn total(&self) -> f64 {
        self.server + self.sqlite + self.postgres + self.client + self.other
    }
}

/// Per-thread CPU ticks of this process, per-process ticks of PostgreSQL, and the
/// machine's (busy, total) ticks over all CPUs.
struct CpuSnapshot {
    threads: HashMap<u32, (String, u64)>,
    postgres: HashMap<u32, u64>,
    host: (u64, u64),
}

/// `(busy, total)` ticks from the first line of `/proc/stat`; idle and iowait are not busy.
fn host_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// `(comm, utime + stime)` from a `/proc/.../stat` file.
fn stat_ticks(path: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn numbered_entries(dir: &Path) -> Vec<(u32, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let id = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((id, e.path().join("stat")))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn snapshot(database: Option<&str>) -> CpuSnapshot {
    let threads = numbered_entries(Path::new("/proc/self/task"))
        .into_iter()
        .filter_map(|(tid, stat)| Some((tid, stat_ticks(&stat)?)))
        .collect();
    // The PostgreSQL backends serving the bench's own database (their process title
    // names it), so other clients of the same server are not counted.
    let postgres = match database {
        Some(name) => numbered_entries(Path::new("/proc"))
            .into_iter()
            .filter_map(|(pid, stat)| match stat_ticks(&stat) {
                Some((comm, ticks)) if comm == "postgres" => {
                    let title = std::fs::read(stat.with_file_name("cmdline")).ok()?;
                    String::from_utf8_lossy(&title)
                        .contains(name)
                        .then_some((pid, ticks))
                }
                _ => None,
            })
            .collect(),
        None => HashMap::new(),
    };
    CpuSnapshot {
        threads,
        postgres,
        host: host_ticks(),
    }
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn cpu_between(before: &CpuSnapshot, after: &CpuSnapshot, ticks: f64) -> CpuSplit {
    let mut split = CpuSplit::default();
    for (tid, (comm, end)) in &after.threads {
        let start = before.threads.get(tid).map_or(0, |(_, t)| *t);
        let seconds = end.saturating_sub(start) as f64 / ticks;
        if comm.starts_with("sg-server") {
            split.server += seconds;
        } else if comm.starts_with("sg-client") {
            split.client += seconds;
        } else if comm.starts_with("sqlx-sqlite") {
            split.sqlite += seconds;
        } else {
            split.other += seconds;
        }
    }
    for (pid, end) in &after.postgres {
        let start = before.postgres.get(pid).copied().unwrap_or(0);
        split.postgres += end.saturating_sub(start) as f64 / ticks;
    }
    let busy = after.host.0.saturating_sub(before.host.0) as f64;
    let total = after.host.1.saturating_sub(before.host.1) as f64;
    split.host_busy = if total > 0.0 { busy / total } else { 0.0 };
    split
}

/// One scenario's figures.
struct Outcome {
    kind: Kind,
    calls: usize,
    window: Duration,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    errors: usize,
    first_error: Option<String>,
    cpu: CpuSplit,
}

impl Outcome {
    fn throughput(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Runs `concurrency` callers over `targets` (round-robin) for warm-up + window.
async fn run_scenario(
    kind: Kind,
    runtime: &tokio::runtime::Handle,
    targets: &[Target],
    requests: &Arc<Requests>,
    settings: &BenchSettings,
    ticks: f64,
    postgres_database: Option<&str>,
) -> Result<Outcome> {
    ensure!(!targets.is_empty(), "no targets");
    let begin = Instant::now() + Duration::from_millis(20);
    let window_start = begin + Duration::from_secs_f64(settings.warm_up);
    let window = Duration::from_secs_f64(settings.seconds);
    let window_end = window_start + window;
    let callers: Vec<JoinHandle<CallerResult>> = (0..settings.concurrency)
        .map(|i| {
            runtime.spawn(caller(
                targets[i % targets.len()].clone(),
                kind,
                Arc::clone(requests),
                window_start,
                window_end,
            ))
        })
        .collect();
    tokio::time::sleep_until(tokio::time::Instant::from_std(window_start)).await;
    let before = snapshot(postgres_database);
    tokio::time::sleep_until(tokio::time::Instant::from_std(window_end)).await;
    let after = snapshot(postgres_database);
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    let joined = tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(5), futures_join(callers))
        .await
        .with_context(|| format!("{}: callers did not finish", kind.label()))?;
    for result in joined {
        let result = result.with_context(|| format!("{}: caller task", kind.label()))?;
        latencies.extend(result.latencies_ns);
        errors += result.errors;
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    latencies.sort_unstable();
    Ok(Outcome {
        kind,
        calls: latencies.len(),
        window,
        p50: percentile(&latencies, 50.0),
        p90: percentile(&latencies, 90.0),
        p99: percentile(&latencies, 99.0),
        max: Duration::from_nanos(latencies.last().copied().unwrap_or(0)),
        errors,
        first_error,
        cpu: cpu_between(&before, &after, ticks),
    })
}

/// Awaits every handle in order.
async fn futures_join<T>(handles: Vec<JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await);
    }
    results
}

async fn channels(addr: SocketAddr, pki: &Path, n: usize) -> Result<Vec<Channel>> {
    let mut opened = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = tokio::time::timeout(
            STEP_TIMEOUT,
            safegate::api::client::channel(addr, pki, SYSTEM),
        )
        .await
        .context("connecting timed out")??;
        opened.push(channel);
    }
    Ok(opened)
}

/// A handle on the identity service at `addr` for each of `n` new mutual-TLS connections.
async fn identity_targets(addr: SocketAddr, pki: &Path, n: usize) -> Result<Vec<Target>> {
    Ok(channels(addr, pki, n)
        .await?
        .into_iter()
        .map(|c| Target::Identity(IdentityServiceClient::new(c)))
        .collect())
}

fn level_word(level: proto::Level) -> &'static str {
    match level {
        proto::Level::Detail => "detail",
        proto::Level::Indicator => "indicator",
        _ => "nothing",
    }
}

/// A ledger entry shaped like the one the gateway writes for this Query: the persons
/// and facts released come from the answer (what was withheld is not visible to a client,
/// so that list stays empty).
fn query_shaped_entry(answer: &QueryResponse, who: &WhoAmIResponse) -> Entry {
    let mut entry = Entry::new(EntryKind::Query, Decision::Released);
    entry.rpc = "safegate.v1.QueryService/Query".into();
    entry.agency = "police".into();
    entry.system_id = SYSTEM.into();
    entry.certificate_sha256 = who.certificate_sha256.clone();
    entry.practitioner_id = PRACTITIONER.into();
    entry.role = "iom_officer".into();
    entry.purpose = "offender_management".into();
    entry.lawful_basis = answer.lawful_basis.clone();
    entry.policy_version = answer.policy_version.clone();
    let views: Vec<&proto::PersonView> = answer
        .subject
        .iter()
        .chain(answer.linked.iter().filter_map(|l| l.person.as_ref()))
        .collect();
    if let Some(subject) = answer.subject.as_ref() {
        entry.subject_person_id = subject.person_id.clone();
    }
    entry.linked_person_ids = answer
        .linked
        .iter()
        .filter_map(|l| l.person.as_ref().map(|p| p.person_id.clone()))
        .collect();
    let mut rules = BTreeSet::new();
    for view in views {
        for fact in &view.facts {
            rules.insert(fact.rule_id.clone());
            entry.released.push(Disclosed {
                person_id: view.person_id.clone(),
                record_id: fact.record_id.clone(),
                category: fact.category.clone(),
                level: level_word(fact.level()).into(),
                rule_id: fact.rule_id.clone(),
            });
        }
    }
    entry.rule_ids = rules.into_iter().collect();
    entry
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

async fn measure(
    settings: &BenchSettings,
    work: &Path,
    database: &BenchDatabase,
    server_runtime: &tokio::runtime::Handle,
) -> Result<()> {
    let pki = work.join("pki");
    safegate::pki::init(&pki, DEMO_SYSTEMS, false).context("writing the dev PKI")?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gateway_settings = Layers::defaults()
        .flag("listen_addr", Some("127.0.0.1:0".into()))
        .flag("data_dir", Some(work.display().to_string()))
        .flag("database_url", Some(database.url()))
        .flag(
            "registry",
            Some(repo.join("policies/registry.toml").display().to_string()),
        )
        .flag(
            "policy_dir",
            Some(repo.join("policies").display().to_string()),
        )
        .flag("pki_dir", Some(pki.display().to_string()))
        .flag("shutdown_grace_secs", Some("5".into()))
        .resolve()?;
    let pool_size = gateway_settings.database_max_connections;

    // The gateway, built and served on the server runtime (its ledger committer too).
    let app = server_runtime
        .spawn(Application::build(gateway_settings.clone()))
        .await
        .context("gateway build task")?
        .context("building the gateway")?;
    let gateway_addr = app.local_addr();
    let ledger = app.ledger().clone();
    let store = app.store().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let gateway = Running {
        addr: gateway_addr,
        stop,
        task: server_runtime.spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        })),
    };

    let started = Instant::now();
    let case = tokio::time::timeout(STEP_TIMEOUT, safegate::demo::case::load(gateway.addr, &pki))
        .await
        .context("loading the case timed out")?
        .context("loading the case")?;
    let case_time = started.elapsed();
    let published: usize = case.published_by.iter().map(|(_, n)| n).sum();
    let dean_id = case
        .persons
        .get("Dean")
        .cloned()
        .context("the case has no Dean")?;

    // One call of each kind, checked, to size the messages and shape the echo and entry.
    let probe = safegate::api::client::channel(gateway.addr, &pki, SYSTEM).await?;
    let requests = Requests {
        who_am_i: WhoAmIRequest { context: context() },
        explain: ExplainRequest {
            context: context(),
            subject: dean(),
            search: None,
        },
        query: QueryRequest {
            context: context(),
            subject: dean(),
            search: None,
        },
        entry: Entry::new(EntryKind::Query, Decision::Released),
        subject: safegate::domain::records::PersonRef::Identifier(
            safegate::domain::records::Identifier::pnc_id(
                safegate::demo::case::DEAN_PNC,
                "subject",
            )
            .map_err(|v| anyhow::anyhow!("Dean's PNC id: {v:?}"))?,
        ),
    };
    let who = IdentityServiceClient::new(probe.clone())
        .who_am_i(requests.who_am_i.clone())
        .await
        .context("WhoAmI on the gateway")?
        .into_inner();
    ensure!(who.system_id == SYSTEM, "WhoAmI named {}", who.system_id);
    let mut query_client = QueryServiceClient::new(probe);
    let explained: ExplainResponse = query_client
        .explain(requests.explain.clone())
        .await
        .context("Explain as police-iom about Dean")?
        .into_inner();
    ensure!(
        explained.would_answer,
        "Explain says the query would be refused: {} {}",
        explained.refusal_rule_id,
        explained.refusal_reason
    );
    let answered: QueryResponse = query_client
        .query(requests.query.clone())
        .await
        .context("Query as police-iom about Dean")?
        .into_inner();
    let subject = answered
        .subject
        .as_ref()
        .context("Query answered no subject")?;
    ensure!(
        subject.person_id == dean_id,
        "Query answered about someone else"
    );
    let facts_shown = subject.facts.len()
        + answered
            .linked
            .iter()
            .filter_map(|l| l.person.as_ref())
            .map(|p| p.facts.len())
            .sum::<usize>();
    let requests = Arc::new(Requests {
        entry: query_shaped_entry(&answered, &who),
        ..requests
    });
    // The entry the gateway wrote for the probe Explain, as the Explain floor's shape.
    let explain_entry = store
        .entry(&explained.disclosure_entry_id)
        .await
        .context("reading the probe Explain's log entry")?
        .context("the probe Explain left no log entry")?
        .entry;
    let echo = start_echo(&gateway_settings, who.clone(), None, server_runtime).await?;
    // The size control: the same echo answering as many bytes as the Query does.
    let mut padded = who.clone();
    padded.system_name = "x".repeat(
        (answered.encoded_len() + who.system_name.len()).saturating_sub(who.encoded_len() + 3),
    );
    let echo_sized = start_echo(&gateway_settings, padded.clone(), None, server_runtime).await?;
    // The floors: the same echoes, each first committing the matching entry through the
    // gateway's own ledger (same database, same committer).
    let echo_logged = start_echo(
        &gateway_settings,
        who.clone(),
        Some((ledger.clone(), Arc::new(explain_entry.clone()))),
        server_runtime,
    )
    .await?;
    let echo_sized_logged = start_echo(
        &gateway_settings,
        padded,
        Some((ledger.clone(), Arc::new(requests.entry.clone()))),
        server_runtime,
    )
    .await?;
    let sized_answer = IdentityServiceClient::new(
        safegate::api::client::channel(echo_sized.addr, &pki, SYSTEM).await?,
    )
    .who_am_i(requests.who_am_i.clone())
    .await
    .context("WhoAmI on the sized echo")?
    .into_inner();
    let echo_answer =
        IdentityServiceClient::new(safegate::api::client::channel(echo.addr, &pki, SYSTEM).await?)
            .who_am_i(requests.who_am_i.clone())
            .await
            .context("WhoAmI on the echo")?
            .into_inner();

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!();
    println!("safegate gateway benchmark");
    println!("  command   : {}", common::command("gateway"));
    println!("  database  : {}, pool {pool_size}", database.describe());
    println!(
        "  load      : {} concurrent callers over {} mutual-TLS connection(s) as {SYSTEM} \
         ({}), each looping one call at a time; {:.1} s warm-up + {:.1} s measured per scenario",
        settings.concurrency,
        settings.connections,
        if settings.connections == settings.concurrency {
            "one connection per caller, as many agency systems".to_owned()
        } else {
            format!(
                "{:.1} callers per connection",
                settings.concurrency as f64 / settings.connections as f64
            )
        },
        settings.warm_up,
        settings.seconds
    );
    println!(
        "  servers   : gateway {} and echoes {}, {} on one Tokio runtime (sg-server \
         threads); load generator on another (sg-client)",
        gateway.addr, echo.addr, echo_sized.addr
    );
    println!(
        "  echo      : bare safegate.v1.IdentityService/WhoAmI (the gateway's police-iom answer, \
         context echoed), same server cert, client CA, client cert, Server settings and \
         accepted-socket options (TCP_NODELAY, keepalive 60 s) as the gateway"
    );
    println!(
        "  control   : the same echo padded to the Query's response size (not a goal baseline)"
    );
    println!(
        "  floors    : the echo and the padded echo, each first appending the entry the gateway \
         writes for Explain / Query through the gateway's own ledger and waiting for its \
         commit (fail closed), with no policy, records or answer building"
    );
    println!(
        "  case      : {published} facts published through the API in {:.2} s; \
         Query about Dean shows {} persons, {facts_shown} facts",
        case_time.as_secs_f64(),
        1 + answered.linked.len()
    );
    println!(
        "  machine   : {cpus} CPUs, load average {} before the run",
        load_average()
    );
    println!();
    println!("  message sizes (protobuf bytes, request / response):");
    println!(
        "    echo WhoAmI           {:>5} / {:>5}",
        requests.who_am_i.encoded_len(),
        echo_answer.encoded_len()
    );
    println!(
        "    echo, Query-sized     {:>5} / {:>5}",
        requests.who_am_i.encoded_len(),
        sized_answer.encoded_len()
    );
    println!(
        "    gateway WhoAmI        {:>5} / {:>5}",
        requests.who_am_i.encoded_len(),
        who.encoded_len()
    );
    println!(
        "    Explain               {:>5} / {:>5}",
        requests.explain.encoded_len(),
        explained.encoded_len()
    );
    println!(
        "    Query                 {:>5} / {:>5}",
        requests.query.encoded_len(),
        answered.encoded_len()
    );
    println!(
        "    Explain's log entry   {:>5} bytes canonical, {} persons indexed",
        explain_entry.canonical().len(),
        explain_entry.persons().len()
    );
    println!(
        "    Query's log entry     {:>5} bytes canonical, {} persons indexed",
        requests.entry.canonical().len(),
        requests.entry.persons().len()
    );

    // The scenarios, in order; the echo runs first and last to show drift.
    let ticks = clock_ticks_per_second();
    let echo_targets = identity_targets(echo.addr, &pki, settings.connections).await?;
    let sized_targets = identity_targets(echo_sized.addr, &pki, settings.connections).await?;
    let logged_targets = identity_targets(echo_logged.addr, &pki, settings.connections).await?;
    let sized_logged_targets =
        identity_targets(echo_sized_logged.addr, &pki, settings.connections).await?;
    let gateway_channels = channels(gateway.addr, &pki, settings.connections).await?;
    let identity_targets: Vec<Target> = gateway_channels
        .iter()
        .cloned()
        .map(|c| Target::Identity(IdentityServiceClient::new(c)))
        .collect();
    let query_targets: Vec<Target> = gateway_channels
        .into_iter()
        .map(|c| Target::Query(QueryServiceClient::new(c)))
        .collect();
    let ledger_targets = vec![Target::Ledger(ledger.clone())];
    let floor = InsertFloor::start(
        &database.url(),
        database.is_sqlite(),
        String::from_utf8(requests.entry.canonical()).context("the entry's canonical text")?,
        server_runtime,
    )
    .await?;
    let floor_targets = vec![Target::Floor(floor)];
    let linked_ids: Vec<String> = answered
        .linked
        .iter()
        .filter_map(|l| l.person.as_ref().map(|p| p.person_id.clone()))
        .collect();
    let store_targets = vec![Target::Store(store, Arc::new(linked_ids))];

    let postgres_database = match database {
        BenchDatabase::Postgres { name, .. } => Some(name.as_str()),
        BenchDatabase::Sqlite { .. } => None,
    };
    // gRPC callers run on the load generator's runtime; the in-process breakdowns run on
    // the server runtime, where the gateway's handlers would run them.
    let client_runtime = tokio::runtime::Handle::current();
    let plan: [(Kind, &tokio::runtime::Handle, &[Target]); 11] = [
        (Kind::Echo, &client_runtime, &echo_targets),
        (Kind::EchoSized, &client_runtime, &sized_targets),
        (Kind::GatewayWhoAmI, &client_runtime, &identity_targets),
        (Kind::EchoLogged, &client_runtime, &logged_targets),
        (Kind::Explain, &client_runtime, &query_targets),
        (
            Kind::EchoSizedLogged,
            &client_runtime,
            &sized_logged_targets,
        ),
        (Kind::Query, &client_runtime, &query_targets),
        (Kind::Reads, server_runtime, &store_targets),
        (Kind::LedgerAppend, server_runtime, &ledger_targets),
        (Kind::InsertFloor, server_runtime, &floor_targets),
        (Kind::Echo, &client_runtime, &echo_targets),
    ];
    println!();
    println!(
        "  {:<40} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>6} | {:>24} {:>7} {:>7} {:>6} {:>6} | {:>5} {:>5}",
        "scenario",
        "calls",
        "calls/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "CPU us/call: server rt",
        "sqlite",
        "postgr",
        "client",
        "other",
        "ours",
        "host"
    );
    let mut outcomes = Vec::new();
    for (i, (kind, runtime, targets)) in plan.iter().enumerate() {
        let outcome = run_scenario(
            *kind,
            runtime,
            targets,
            &requests,
            settings,
            ticks,
            postgres_database,
        )
        .await?;
        let per_call = |seconds: f64| {
            if outcome.calls == 0 {
                "-".to_owned()
            } else {
                format!("{:.0}", seconds * 1e6 / outcome.calls as f64)
            }
        };
        println!(
            "  {:<40} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>6} | {:>24} {:>7} {:>7} {:>6} {:>6} | {:>4.0}% {:>4.0}%",
            format!("{}. {}", i + 1, kind.label()),
            thousands(outcome.calls as f64),
            thousands(outcome.throughput()),
            ms(outcome.p50),
            ms(outcome.p90),
            ms(outcome.p99),
            ms(outcome.max),
            outcome.errors,
            per_call(outcome.cpu.server),
            per_call(outcome.cpu.sqlite),
            per_call(outcome.cpu.postgres),
            per_call(outcome.cpu.client),
            per_call(outcome.cpu.other),
            100.0 * outcome.cpu.total() / (outcome.window.as_secs_f64() * cpus as f64),
            100.0 * outcome.cpu.host_busy
        );
        if let Some(error) = &outcome.first_error {
            println!("      first error: {error}");
        }
        outcomes.push(outcome);
    }
    println!(
        "  (CPU us/call: per completed call, by thread from /proc at {ticks:.0} ticks/s: server rt = \
         gateway/echo runtime, sqlite = sqlx's SQLite worker threads, postgr = the PostgreSQL \
         backends serving the bench's database, client = load generator; ours = those / ({cpus} CPUs x window); host = the \
         whole machine's busy share in the window, other processes included)"
    );

    // Bytes on disk per entry: the database's growth over a sample of each shape,
    // appended through the gateway's own ledger by concurrent callers.
    let sizer = common::plain_pool(&database.url(), database.is_sqlite(), 1).await?;
    let mut bytes_per_entry = Vec::new();
    for (shape, entry) in [("Query", &requests.entry), ("Explain", &explain_entry)] {
        let before = bytes_on_disk(&sizer, database.is_sqlite()).await?;
        append_sample(server_runtime, &ledger, entry, settings.concurrency).await?;
        let after = bytes_on_disk(&sizer, database.is_sqlite()).await?;
        bytes_per_entry.push((
            shape,
            entry.canonical().len(),
            (after - before) as f64 / BYTES_SAMPLE as f64,
        ));
    }
    sizer.close().await;
    drop(floor_targets);
    drop(echo_targets);
    drop(sized_targets);
    drop(logged_targets);
    drop(sized_logged_targets);
    drop(identity_targets);
    drop(query_targets);
    drop(ledger_targets);
    drop(store_targets);
    echo.stop("the echo").await?;
    echo_sized.stop("the sized echo").await?;
    echo_logged.stop("the logged echo").await?;
    echo_sized_logged.stop("the logged sized echo").await?;
    gateway.stop("the gateway").await?;

    // Goals, against the stricter echo run.
    let of = |kind: Kind| outcomes.iter().filter(move |o| o.kind == kind);
    let echo_throughput = of(Kind::Echo).map(Outcome::throughput).fold(0.0, f64::max);
    let echo_p99 = of(Kind::Echo).map(|o| o.p99).min().context("no echo run")?;
    let explain = of(Kind::Explain).next().context("no Explain run")?;
    let query = of(Kind::Query).next().context("no Query run")?;
    let clean = |o: &Outcome| o.errors == 0 && o.calls > 0;
    let echo_clean = of(Kind::Echo).all(clean);
    let appended = of(Kind::LedgerAppend).next().context("no append run")?;
    let floor = of(Kind::InsertFloor).next().context("no floor run")?;
    // The database's share and the committing runtime's: the work of a durable write.
    let cpu_per_entry =
        |o: &Outcome| (o.cpu.server + o.cpu.sqlite + o.cpu.postgres) * 1e6 / o.calls.max(1) as f64;
    let goals = [
        (
            "Explain throughput / echo throughput",
            explain.throughput() / echo_throughput,
            ">=",
            GOAL_EXPLAIN_THROUGHPUT,
            clean(explain),
        ),
        (
            "Query throughput / echo throughput",
            query.throughput() / echo_throughput,
            ">=",
            GOAL_QUERY_THROUGHPUT,
            clean(query),
        ),
        (
            "Query p99 / echo p99",
            query.p99.as_secs_f64() / echo_p99.as_secs_f64(),
            "<=",
            GOAL_QUERY_P99,
            clean(query),
        ),
        (
            "append CPU per entry / floor's",
            cpu_per_entry(appended) / cpu_per_entry(floor),
            "<=",
            GOAL_APPEND_CPU,
            clean(appended) && clean(floor),
        ),
    ];
    println!();
    println!(
        "  goals (issue 14), against echo {} calls/s and echo p99 {} ms (the stricter of its two runs):",
        thousands(echo_throughput),
        ms(echo_p99)
    );
    let mut summary = Vec::new();
    for (name, ratio, op, goal, ok_run) in goals {
        let met = ok_run
            && echo_clean
            && if op == ">=" {
                ratio >= goal
            } else {
                ratio <= goal
            };
        let verdict = match (met, ok_run && echo_clean) {
            (true, _) => "MET".to_owned(),
            (false, true) => "NOT MET".to_owned(),
            (false, false) => "NOT MET (calls failed)".to_owned(),
        };
        println!("    {name:<38} {ratio:>6.2}x  (goal {op} {goal}x)  {verdict}");
        summary.push(format!(
            "{ratio:.2}x {}",
            if met { "met" } else { "NOT met" }
        ));
    }
    println!(
        "    (append CPU: {:.0} us per entry by the committing runtime and the database, \
         against the floor's {:.0} us per row, both at {} concurrent callers)",
        cpu_per_entry(appended),
        cpu_per_entry(floor),
        settings.concurrency
    );
    println!();
    println!("  bytes on disk per entry (database growth over {BYTES_SAMPLE} appends of each):");
    for (shape, canonical, bytes) in &bytes_per_entry {
        println!(
            "    {shape:<8} entry: {bytes:>8.0} bytes on disk for {canonical} bytes canonical ({:.2}x)",
            bytes / *canonical as f64
        );
    }
    let sized = of(Kind::EchoSized).next().context("no sized echo run")?;
    println!();
    println!(
        "  size control (not a goal): the bare echo answering {} bytes, the Query's size: {} \
         calls/s, p50 {} ms, p99 {} ms; Query against it: throughput {:.2}x, p99 {:.2}x",
        sized_answer.encoded_len(),
        thousands(sized.throughput()),
        ms(sized.p50),
        ms(sized.p99),
        query.throughput() / sized.throughput(),
        query.p99.as_secs_f64() / sized.p99.as_secs_f64()
    );
    // The most Explain and Query can reach on this ledger and transport: the echo that
    // only commits their entry. A goal above its floor cannot be met by the gateway.
    let floor_explain = of(Kind::EchoLogged)
        .next()
        .context("no Explain floor run")?;
    let floor_query = of(Kind::EchoSizedLogged)
        .next()
        .context("no Query floor run")?;
    println!();
    println!(
        "  floors (not goals): an echo that only commits Explain's entry reaches {} calls/s, \
         {:.2}x the echo (Explain is {:.2}x of this floor); a Query-sized echo that only \
         commits Query's entry reaches {} calls/s, {:.2}x the echo, p99 {} ms = {:.2}x the \
         echo's (Query is {:.2}x of this floor)",
        thousands(floor_explain.throughput()),
        floor_explain.throughput() / echo_throughput,
        explain.throughput() / floor_explain.throughput(),
        thousands(floor_query.throughput()),
        floor_query.throughput() / echo_throughput,
        ms(floor_query.p99),
        floor_query.p99.as_secs_f64() / echo_p99.as_secs_f64(),
        query.throughput() / floor_query.throughput()
    );
    println!();
    println!(
        "| backend | concurrency | echo calls/s | echo p99 ms | Explain calls/s | Query calls/s | Query p99 ms \
         | Explain/echo (≥0.3) | Query/echo (≥0.2) | Query p99/echo p99 (≤4) | append CPU/floor (≤2) \
         | bytes/Query entry | bytes/Explain entry |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
        database.backend(),
        settings.concurrency,
        thousands(echo_throughput),
        ms(echo_p99),
        thousands(explain.throughput()),
        thousands(query.throughput()),
        ms(query.p99),
        summary[0],
        summary[1],
        summary[2],
        summary[3],
        bytes_per_entry[0].2,
        bytes_per_entry[1].2
    );
    println!();
    println!("  load average now {}", load_average());
    println!("  command: {}", common::command("gateway"));
    Ok(())
}

/// Appends `BYTES_SAMPLE` re-stamped copies of `shape` through the ledger, `concurrency`
/// at a time, on the server runtime as the gateway's handlers would.
async fn append_sample(
    runtime: &tokio::runtime::Handle,
    ledger: &Ledger,
    shape: &Entry,
    concurrency: usize,
) -> Result<()> {
    let per_task = BYTES_SAMPLE.div_ceil(concurrency.max(1));
    let tasks: Vec<JoinHandle<Result<usize>>> = (0..concurrency.max(1))
        .map(|t| {
            let (ledger, shape) = (ledger.clone(), shape.clone());
            let count = per_task.min(BYTES_SAMPLE.saturating_sub(t * per_task));
            runtime.spawn(async move {
                for _ in 0..count {
                    ledger
                        .append(restamped(&shape))
                        .await
                        .map_err(|e| anyhow::anyhow!("append: {e}"))?;
                }
                Ok(count)
            })
        })
        .collect();
    let mut total = 0;
    for task in futures_join(tasks).await {
        total += task.context("append task")??;
    }
    ensure!(total == BYTES_SAMPLE, "appended {total} of {BYTES_SAMPLE}");
    Ok(())
}
