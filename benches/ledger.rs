//! Disclosure-ledger benchmark, both parts in one run:
//!
//! **(a) appends**: durable audited appends per second through `Ledger::append` (group
//! commit: concurrent appends share one transaction that also writes the Merkle nodes and
//! a signed checkpoint) by C concurrent tasks, against plain one-row `INSERT` transactions
//! on the same database by C concurrent tasks over a pool of C connections
//! (`BEGIN; INSERT one row of the same width; COMMIT` each). Goal: ratio at least 1.0x.
//!
//! **(b) verify**: a log of N entries (default 1,000,000) built in batches through
//! `Store::append_entries` (the committer's own code path, one transaction a batch), then
//! `audit verify` timed against `sha256sum` over the same bytes, run as an external
//! process: in-process `verify_store` and the CLI's online `safegate audit verify` against
//! the stored entry texts, and the CLI's offline `safegate audit verify --export` against
//! the JSON-lines export file it checks. Goal: at most 3x.
//!
//! ```sh
//! cargo bench --bench ledger                        # SQLite files in a temp dir
//! SAFEGATE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench --bench ledger                      # fresh databases on that server
//! ```
//!
//! Settings (environment): `SAFEGATE_BENCH_CONCURRENCY` (C, default 64),
//! `SAFEGATE_BENCH_APPENDS` (appends per side per round, default 10,000),
//! `SAFEGATE_BENCH_ROUNDS` (default 3; rounds alternate ledger then plain, so drift on a
//! busy machine hits both alike), `SAFEGATE_BENCH_VERIFY_ENTRIES` (N, default 1,000,000),
//! `SAFEGATE_BENCH_BUILD_LIMIT_SECS` (longest the N-entry log may take to build, default
//! 1800), `SAFEGATE_BENCH_PARTS` (`appends`, `verify` or `all`, the default). With
//! PostgreSQL, databases `safegate_bench_<uuid>` are created and dropped at the end.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{BenchDatabase, durability, load_average, thousands};
use safegate::domain::ledger::audit::verify_store;
use safegate::domain::ledger::{CheckpointSigner, Decision, Disclosed, Entry, EntryKind, Ledger};
use safegate::store::Store;
use sqlx::{AnyPool, Executor};

const SAFEGATE: &str = env!("CARGO_BIN_EXE_safegate");
/// Entries per transaction while building the verify log.
const BUILD_BATCH: usize = 10_000;
/// Rows read per page when writing the entry texts out for sha256sum.
const READ_PAGE: u32 = 10_000;
/// Timed sha256sum runs (after one warm-up run); the median is compared.
const SHA_RUNS: usize = 3;

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run())
}

struct Settings {
    concurrency: usize,
    appends: usize,
    rounds: usize,
    verify_entries: usize,
    build_limit: Duration,
    appends_part: bool,
    verify_part: bool,
}

fn number(var: &str, default: usize, range: std::ops::RangeInclusive<usize>) -> Result<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .with_context(|| {
                format!(
                    "{var} must be a number from {} to {}",
                    range.start(),
                    range.end()
                )
            }),
        Err(_) => Ok(default),
    }
}

fn settings() -> Result<Settings> {
    let (appends_part, verify_part) = match std::env::var("SAFEGATE_BENCH_PARTS").as_deref() {
        Ok("appends") => (true, false),
        Ok("verify") => (false, true),
        Ok("all") | Err(_) => (true, true),
        Ok(other) => bail!("SAFEGATE_BENCH_PARTS must be appends, verify or all, not {other:?}"),
    };
    Ok(Settings {
        concurrency: number("SAFEGATE_BENCH_CONCURRENCY", 64, 1..=90)?,
        appends: number("SAFEGATE_BENCH_APPENDS", 10_000, 100..=1_000_000)?,
        rounds: number("SAFEGATE_BENCH_ROUNDS", 3, 1..=20)?,
        verify_entries: number("SAFEGATE_BENCH_VERIFY_ENTRIES", 1_000_000, 1..=50_000_000)?,
        build_limit: Duration::from_secs(number(
            "SAFEGATE_BENCH_BUILD_LIMIT_SECS",
            1800,
            1..=86_400,
        )? as u64),
        appends_part,
        verify_part,
    })
}

/// Synthetic entries shaped like the gateway's: three in four a Query that released three
/// facts about a child and two linked adults and withheld one, one in four a WhoAmI
/// refusal. Person ids repeat over a small population, as in a real partnership.
struct Synthetic {
    persons: Vec<String>,
    records: Vec<String>,
    certificates: [String; 2],
    policy_version: String,
}

impl Synthetic {
    fn new() -> Self {
        let id = || uuid::Uuid::new_v4().to_string();
        let hex64 = || {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        };
        Synthetic {
            persons: (0..997).map(|_| id()).collect(),
            records: (0..4001).map(|_| id()).collect(),
            certificates: [hex64(), hex64()],
            policy_version: hex64(),
        }
    }

    fn entry(&self, i: usize) -> Entry {
        if i % 4 == 3 {
            return self.refusal(i);
        }
        let person = |k: usize| self.persons[(i * 3 + k) % self.persons.len()].clone();
        let fact = |k: usize, person_id: String, category: &str, level: &str| Disclosed {
            person_id,
            record_id: self.records[(i * 4 + k) % self.records.len()].clone(),
            category: category.into(),
            level: level.into(),
            rule_id: format!("matrix.social_worker.{category}"),
        };
        let mut entry = Entry::new(EntryKind::Query, Decision::Released);
        entry.rpc = "safegate.v1.QueryService/Query".into();
        entry.agency = "childrens_services".into();
        entry.system_id = "childrens-services".into();
        entry.certificate_sha256 = self.certificates[0].clone();
        entry.practitioner_id = format!("SW-{:04}", i % 250);
        entry.role = "social_worker".into();
        entry.purpose = "child_protection".into();
        entry.lawful_basis =
            "UK GDPR Art 6(1)(e), Art 9(2)(g); DPA 2018 Sch 1 para 18 (safeguarding)".into();
        entry.justification =
            "Strategy discussion under s47 Children Act 1989 following a referral".into();
        entry.subject_person_id = person(0);
        entry.linked_person_ids = vec![person(1), person(2)];
        entry.released = vec![
            fact(0, person(0), "legal_status", "detail"),
            fact(1, person(1), "police_event", "indicator"),
            fact(2, person(2), "probation_supervision", "indicator"),
        ];
        entry.withheld = vec![fact(3, person(1), "health_involvement", "nothing")];
        entry.rule_ids = vec![
            "purpose.social_worker.child_protection".into(),
            "matrix.social_worker.legal_status".into(),
            "matrix.social_worker.police_event".into(),
            "matrix.social_worker.probation_supervision".into(),
            "matrix.social_worker.health_involvement".into(),
        ];
        entry.policy_version = self.policy_version.clone();
        entry.trace_id = uuid::Uuid::new_v4().simple().to_string();
        entry
    }

    fn refusal(&self, i: usize) -> Entry {
        let mut entry = Entry::new(EntryKind::Refusal, Decision::Refused);
        entry.rpc = "safegate.v1.IdentityService/WhoAmI".into();
        entry.agency = "education".into();
        entry.system_id = "nursery".into();
        entry.certificate_sha256 = self.certificates[1].clone();
        entry.practitioner_id = format!("DSL-{:04}", i % 100);
        entry.role = "iom_officer".into();
        entry.purpose = "unspecified".into();
        entry.rule_ids = vec!["registry.role_not_assertable".into()];
        entry.reason = "permission denied by rule registry.role_not_assertable: system \
                        `nursery` may not assert role `iom_officer`"
            .into();
        entry.trace_id = uuid::Uuid::new_v4().simple().to_string();
        entry
    }
}

/// The same columns as `disclosure_log`, keyed by the entry id (a plain insert has no
/// sequence to take), without the log's secondary indexes.
const PLAIN_TABLE: &str = "CREATE TABLE bench_plain_insert (\
     entry_id          TEXT PRIMARY KEY NOT NULL, \
     recorded_at       TEXT NOT NULL, \
     kind              TEXT NOT NULL, \
     decision          TEXT NOT NULL, \
     agency            TEXT NOT NULL, \
     system_id         TEXT NOT NULL, \
     practitioner_id   TEXT NOT NULL, \
     purpose           TEXT NOT NULL, \
     break_glass       BIGINT NOT NULL, \
     subject_person_id TEXT NOT NULL, \
     entry             TEXT NOT NULL, \
     leaf_hash         TEXT NOT NULL, \
     chain_hash        TEXT NOT NULL)";

/// Splits `items` into `parts` nearly equal runs, in order.
fn split<T>(items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..parts).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        out[i % parts].push(item);
    }
    out
}

/// Throughput and per-operation latency of one measured run.
struct Run {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Transactions that failed busy and were run again.
    retries: usize,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[index]
    }
}

/// `entries` appended by `concurrency` tasks through the ledger, each awaiting its commit.
async fn ledger_appends(ledger: &Ledger, entries: Vec<Entry>, concurrency: usize) -> Result<Run> {
    let started = Instant::now();
    let tasks: Vec<_> = split(entries, concurrency)
        .into_iter()
        .map(|entries| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(entries.len());
                for entry in entries {
                    let one = Instant::now();
                    ledger.append(entry).await?;
                    latencies.push(one.elapsed());
                }
                Ok::<_, safegate::error::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(
            task.await
                .context("append task")?
                .context("ledger append")?,
        );
    }
    Ok(Run {
        elapsed: started.elapsed(),
        latencies,
        retries: 0,
    })
}

/// The row a plain insert writes for `entry`: the log's columns, the same texts.
fn plain_row(entry: &Entry) -> [String; 13] {
    let text = String::from_utf8(entry.canonical()).unwrap_or_default();
    let hash = |salt: &str| {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(format!("{salt}{text}")))
    };
    [
        entry.entry_id.clone(),
        entry.recorded_at.clone(),
        entry.kind.as_str().to_owned(),
        entry.decision.as_str().to_owned(),
        entry.agency.clone(),
        entry.system_id.clone(),
        entry.practitioner_id.clone(),
        entry.purpose.clone(),
        String::from(if entry.break_glass { "1" } else { "0" }),
        entry.subject_person_id.clone(),
        hash("leaf"),
        hash("chain"),
        text,
    ]
}

/// Whether a SQLite error is "busy": the write lock stayed taken past `busy_timeout`.
fn busy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().is_some_and(|code| matches!(code.parse::<u32>().map(|c| c & 0xff), Ok(5 | 6))))
}

/// One row in its own transaction.
async fn insert_one(pool: &AnyPool, row: &[String; 13], sqlite: bool) -> Result<(), sqlx::Error> {
    // On SQLite take the write lock up front, as the store does: a deferred transaction
    // that upgrades can fail with SQLITE_BUSY instead of waiting.
    let mut tx = if sqlite {
        pool.begin_with("BEGIN IMMEDIATE").await?
    } else {
        pool.begin().await?
    };
    sqlx::query(
        "INSERT INTO bench_plain_insert (entry_id, recorded_at, kind, decision, agency, \
         system_id, practitioner_id, purpose, break_glass, subject_person_id, leaf_hash, \
         chain_hash, entry) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&row[0])
    .bind(&row[1])
    .bind(&row[2])
    .bind(&row[3])
    .bind(&row[4])
    .bind(&row[5])
    .bind(&row[6])
    .bind(&row[7])
    .bind(row[8].parse::<i64>().unwrap_or_default())
    .bind(&row[9])
    .bind(&row[10])
    .bind(&row[11])
    .bind(&row[12])
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// `rows` inserted by `concurrency` tasks, each row its own transaction. On SQLite a
/// transaction that waited out `busy_timeout` (5 s, as the store's) is retried until it
/// commits; its latency runs from the first attempt, and the retries are counted.
async fn plain_inserts(
    pool: &AnyPool,
    rows: Vec<[String; 13]>,
    concurrency: usize,
    sqlite: bool,
) -> Result<Run> {
    let started = Instant::now();
    let tasks: Vec<_> = split(rows, concurrency)
        .into_iter()
        .map(|rows| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(rows.len());
                let mut retries = 0;
                for row in rows {
                    let one = Instant::now();
                    loop {
                        match insert_one(&pool, &row, sqlite).await {
                            Ok(()) => break,
                            Err(error) if sqlite && busy(&error) && retries < 1000 => retries += 1,
                            Err(error) => return Err(error),
                        }
                    }
                    latencies.push(one.elapsed());
                }
                Ok::<_, sqlx::Error>((latencies, retries))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut retries = 0;
    for task in tasks {
        let (done, retried) = task.await.context("insert task")?.context("plain insert")?;
        latencies.extend(done);
        retries += retried;
    }
    Ok(Run {
        elapsed: started.elapsed(),
        latencies,
        retries,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn average_bytes(entries: &[Entry]) -> f64 {
    let total: usize = entries.iter().map(|e| e.canonical().len()).sum();
    total as f64 / entries.len().max(1) as f64
}

async fn run() -> Result<()> {
    let settings = settings()?;
    let work = std::env::temp_dir().join(format!("safegate-bench-ledger-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();
    println!("safegate disclosure-ledger benchmark");
    println!("  command   : {}", common::command("ledger"));
    println!(
        "  machine   : {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    // The work directory (databases, the PKI, multi-gigabyte text and export files) goes
    // whatever happens.
    let summary = parts(&settings, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    let summary = summary?;
    println!();
    println!("== summary ==");
    for line in summary {
        println!("{line}");
    }
    println!();
    println!(
        "whole run: {:.1} s; load average now {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    println!("command: {}", common::command("ledger"));
    Ok(())
}

/// Runs the parts asked for, each on its own fresh database (dropped afterwards).
async fn parts(settings: &Settings, work: &Path) -> Result<Vec<String>> {
    let mut summary = Vec::new();
    if settings.appends_part {
        let database = BenchDatabase::create(work, "appends").await?;
        let outcome = appends(settings, work, &database).await;
        let dropped = database.drop_database().await;
        summary.push(outcome?);
        dropped?;
    }
    if settings.verify_part {
        let database = BenchDatabase::create(work, "verify").await?;
        let outcome = verify(settings, work, &database).await;
        let dropped = database.drop_database().await;
        summary.extend(outcome?);
        dropped?;
    }
    Ok(summary)
}

/// Part (a). Returns the summary line.
async fn appends(settings: &Settings, work: &Path, database: &BenchDatabase) -> Result<String> {
    let c = settings.concurrency;
    let n = settings.appends;
    let pki = work.join("appends-pki");
    std::fs::create_dir_all(&pki)?;
    safegate::pki::write_checkpoint_key(&pki).context("writing a checkpoint key")?;
    let signer = CheckpointSigner::load(&pki.join("checkpoint.key"))?;
    let store = Store::connect(&database.url(), 8)
        .await
        .context("opening the store")?;
    store.migrate().await.context("migrating")?;
    let ledger = Ledger::start(
        store.clone(),
        signer,
        safegate::startup::bound_tables(&store),
    );
    let sqlite = database.is_sqlite();
    let pool = common::plain_pool(&database.url(), sqlite, c as u32).await?;
    pool.execute(PLAIN_TABLE)
        .await
        .context("creating bench_plain_insert")?;
    let durability = durability(&pool, sqlite).await?;
    let synthetic = Synthetic::new();
    let sample: Vec<Entry> = (0..1000).map(|i| synthetic.entry(i)).collect();

    println!();
    println!("== (a) durable audited appends vs plain one-row INSERT transactions ==");
    println!("  database  : {}, {durability}", database.describe());
    println!(
        "  ledger    : {c} tasks, each `Ledger::append(entry).await` in turn (answered after \
         its group-commit transaction commits); store pool 8"
    );
    println!(
        "  plain     : {c} tasks over a pool of {c} connections, each row \
         `{}; INSERT INTO bench_plain_insert (13 columns, as disclosure_log); COMMIT`",
        if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" }
    );
    println!(
        "  entries   : 3/4 Query (3 released, 1 withheld, 2 linked persons), 1/4 WhoAmI \
         refusal; canonical encoding {:.0} bytes on average; plain rows carry the same text",
        average_bytes(&sample)
    );
    println!(
        "  rounds    : {} x ({} ledger appends, then {} plain inserts), after a warm-up of {} each",
        settings.rounds,
        thousands(n as f64),
        thousands(n as f64),
        4 * c
    );

    let mut next = 0usize;
    let mut batch = |count: usize| -> Vec<Entry> {
        let entries = (next..next + count).map(|i| synthetic.entry(i)).collect();
        next += count;
        entries
    };
    let warm = batch(4 * c);
    let warm_rows = warm.iter().map(plain_row).collect();
    ledger_appends(&ledger, warm, c)
        .await
        .context("warm-up appends")?;
    plain_inserts(&pool, warm_rows, c, sqlite)
        .await
        .context("warm-up inserts")?;
    let checkpoints_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkpoint")
        .fetch_one(&pool)
        .await?;

    println!();
    println!(
        "{:<6} {:<34} {:>9} {:>11} {:>9} {:>9} {:>9} {:>12}",
        "round",
        "measurement",
        "seconds",
        "per second",
        "p50 ms",
        "p99 ms",
        "max ms",
        "busy retries"
    );
    let (mut ledger_rates, mut plain_rates) = (Vec::new(), Vec::new());
    for round in 1..=settings.rounds {
        let entries = batch(n);
        let rows: Vec<[String; 13]> = entries.iter().map(plain_row).collect();
        let ledger_run = ledger_appends(&ledger, entries, c)
            .await
            .with_context(|| format!("round {round}: ledger appends"))?;
        let plain_run = plain_inserts(&pool, rows, c, sqlite)
            .await
            .with_context(|| format!("round {round}: plain inserts"))?;
        for (label, run) in [
            ("ledger: Ledger::append", &ledger_run),
            ("plain: one-row transactions", &plain_run),
        ] {
            println!(
                "{round:<6} {label:<34} {:>9.3} {:>11} {:>9} {:>9} {:>9} {:>12}",
                run.elapsed.as_secs_f64(),
                thousands(run.rate()),
                ms(run.percentile(0.5)),
                ms(run.percentile(0.99)),
                ms(run.percentile(1.0)),
                run.retries,
            );
        }
        ledger_rates.push(ledger_run.rate());
        plain_rates.push(plain_run.rate());
    }

    // Everything really was written, and the log it made verifies.
    let expected = (4 * c + settings.rounds * n) as i64;
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM disclosure_log")
        .fetch_one(&pool)
        .await?;
    let plain_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bench_plain_insert")
        .fetch_one(&pool)
        .await?;
    let checkpoints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkpoint")
        .fetch_one(&pool)
        .await?;
    ensure!(
        logged == expected && plain_rows == expected,
        "stored {logged} log entries and {plain_rows} plain rows, expected {expected} of each"
    );
    let (verified, _) = verify_store(&store, ledger.public_key(), ledger.bound_tables()).await?;
    let verified = verified.map_err(|m| anyhow::anyhow!("the benchmark's log fails: {m}"))?;
    ensure!(
        verified.entries == expected as u64,
        "verified {} entries",
        verified.entries
    );
    let measured_batches = (checkpoints - checkpoints_before).max(1);
    println!();
    println!(
        "  stored {logged} log entries in {checkpoints} group-commit transactions (measured \
         rounds: {:.1} entries per transaction on average) and {plain_rows} plain rows; the log \
         verifies",
        (settings.rounds * n) as f64 / measured_batches as f64
    );
    pool.close().await;
    drop(ledger);
    store.close().await;

    let (lm, pm) = (median(&ledger_rates), median(&plain_rates));
    let table = format!(
        "| backend | C | ledger appends/s median (best) | plain 1-row tx/s median (best) | ratio median (best) | goal |\n\
         |---|---:|---:|---:|---:|---|\n\
         | {} | {c} | {} ({}) | {} ({}) | {:.2}x ({:.2}x) | >= 1.0x: {} |",
        database.backend(),
        thousands(lm),
        thousands(best(&ledger_rates)),
        thousands(pm),
        thousands(best(&plain_rates)),
        lm / pm,
        best(&ledger_rates) / best(&plain_rates),
        if lm / pm >= 1.0 { "met" } else { "NOT met" }
    );
    println!();
    println!("{table}");
    Ok(table)
}

/// Runs an external command, timing it from spawn to exit; fails unless it succeeds.
fn timed(command: &mut Command) -> Result<(Duration, String)> {
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let elapsed = started.elapsed();
    ensure!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// `sha256sum FILE` once to warm the page cache, then `SHA_RUNS` timed runs.
fn sha256sum(file: &Path) -> Result<(Vec<Duration>, String)> {
    let (_, digest) = timed(Command::new("sha256sum").arg(file))?;
    let mut runs = Vec::new();
    for _ in 0..SHA_RUNS {
        runs.push(timed(Command::new("sha256sum").arg(file))?.0);
    }
    let digest = digest
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((runs, digest))
}

fn median_duration(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn secs(runs: &[Duration]) -> String {
    runs.iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `safegate` CLI with only the settings given here.
fn safegate() -> Command {
    let mut command = Command::new(SAFEGATE);
    for (key, _) in std::env::vars() {
        if key.starts_with("SAFEGATE_") || key == "OTEL_EXPORTER_OTLP_ENDPOINT" {
            command.env_remove(key);
        }
    }
    command.env("SAFEGATE_LOG_FILTER", "warn");
    command
}

/// Part (b). Returns the summary lines.
async fn verify(settings: &Settings, work: &Path, database: &BenchDatabase) -> Result<Vec<String>> {
    let n = settings.verify_entries;
    let pki = work.join("verify-pki");
    std::fs::create_dir_all(&pki)?;
    safegate::pki::write_checkpoint_key(&pki).context("writing a checkpoint key")?;
    let signer = CheckpointSigner::load(&pki.join("checkpoint.key"))?;
    let public_key = signer.public_key();
    let store = Store::connect(&database.url(), 2)
        .await
        .context("opening the store")?;
    store.migrate().await.context("migrating")?;
    let synthetic = Synthetic::new();

    println!();
    println!(
        "== (b) audit verify over {} entries vs sha256sum over the same bytes ==",
        thousands(n as f64)
    );
    println!("  database  : {}", database.describe());
    println!(
        "  building  : {} entries through Store::append_entries in transactions of {} \
         (the group-committer's path: rows, person index, Merkle nodes, signed checkpoint); \
         limit {} s",
        thousands(n as f64),
        thousands(BUILD_BATCH.min(n) as f64),
        settings.build_limit.as_secs()
    );
    let build_started = Instant::now();
    let mut built = 0usize;
    let mut canonical_bytes = 0usize;
    let mut next_report = 100_000;
    while built < n {
        let count = BUILD_BATCH.min(n - built);
        let entries: Vec<Entry> = (built..built + count).map(|i| synthetic.entry(i)).collect();
        canonical_bytes += entries.iter().map(|e| e.canonical().len()).sum::<usize>();
        store
            .append_entries(&entries, &signer)
            .await
            .with_context(|| format!("appending entries {}..{}", built + 1, built + count))?;
        built += count;
        let elapsed = build_started.elapsed();
        if built >= next_report || built == n {
            let rate = built as f64 / elapsed.as_secs_f64();
            println!(
                "    {:>11} entries, {:>7.1} s, {:>8} entries/s, about {:.0} s to go",
                thousands(built as f64),
                elapsed.as_secs_f64(),
                thousands(rate),
                (n - built) as f64 / rate
            );
            next_report += 100_000;
        }
        if elapsed > settings.build_limit && built < n {
            bail!(
                "building the log passed SAFEGATE_BENCH_BUILD_LIMIT_SECS ({} s) at {built} of {n} \
                 entries; set a smaller SAFEGATE_BENCH_VERIFY_ENTRIES or a larger limit",
                settings.build_limit.as_secs()
            );
        }
    }
    let build_time = build_started.elapsed();
    println!(
        "  built {} entries ({:.0} bytes of canonical encoding each on average) in {:.1} s: {} entries/s",
        thousands(n as f64),
        canonical_bytes as f64 / n as f64,
        build_time.as_secs_f64(),
        thousands(n as f64 / build_time.as_secs_f64())
    );

    // The stored entry texts, one per line, as the bytes sha256sum hashes.
    let texts = work.join("entries.txt");
    let read_started = Instant::now();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&texts)?);
        let mut after = 0;
        loop {
            let page = store.raw_log_page(after, n as u64, READ_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for row in &page {
                out.write_all(row.entry.as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
    }
    let read_only = read_started.elapsed();
    let texts_bytes = std::fs::metadata(&texts)?.len();

    println!();
    println!(
        "{:<62} {:>10} {:>15} {:>10}",
        "measurement", "entries", "bytes", "seconds"
    );
    let row = |label: &str, entries: u64, bytes: u64, elapsed: Duration| {
        println!(
            "{label:<62} {:>10} {:>15} {:>10.3}",
            thousands(entries as f64),
            thousands(bytes as f64),
            elapsed.as_secs_f64()
        );
    };

    row(
        "read only: raw_log_page pages, texts to a file (not compared)",
        n as u64,
        texts_bytes,
        read_only,
    );

    // 1. In-process verify_store: recomputes everything against the signed checkpoint.
    let one = Instant::now();
    let (outcome, _) = verify_store(
        &store,
        &public_key,
        &safegate::startup::bound_tables(&store),
    )
    .await?;
    let in_process = one.elapsed();
    let verified = outcome.map_err(|m| anyhow::anyhow!("the built log fails verification: {m}"))?;
    ensure!(
        verified.entries == n as u64,
        "verified {} of {n} entries",
        verified.entries
    );
    row(
        "verify_store (in process, from the database)",
        n as u64,
        texts_bytes,
        in_process,
    );

    // 2. The CLI, online: `safegate audit verify` (process start, verify, its own entry).
    let (online, said) = timed(
        safegate()
            .args(["audit", "verify", "--database-url"])
            .arg(database.url())
            .arg("--pki-dir")
            .arg(&pki),
    )?;
    ensure!(
        said.starts_with(&format!("OK: {n} entries verified")),
        "`safegate audit verify` said: {said}"
    );
    row(
        "safegate audit verify (CLI, from the database)",
        n as u64,
        texts_bytes,
        online,
    );

    let (sha_texts, _) = sha256sum(&texts)?;
    let sha_texts_median = median_duration(&sha_texts);
    row(
        "sha256sum of the stored entry texts (median)",
        n as u64,
        texts_bytes,
        sha_texts_median,
    );

    // 3. Offline: export as JSON lines with the CLI, verify the file with the public key.
    let export = work.join("export.jsonl");
    let (export_time, _) = timed(
        safegate()
            .args(["audit", "export", "--format", "jsonl", "--out"])
            .arg(&export)
            .arg("--database-url")
            .arg(database.url())
            .arg("--pki-dir")
            .arg(&pki),
    )?;
    let export_bytes = std::fs::metadata(&export)?.len();
    // The export and the online verify each added their own entry.
    let exported = n as u64 + 2;
    row(
        "safegate audit export --format jsonl (not compared)",
        exported,
        export_bytes,
        export_time,
    );
    let (offline, said) = timed(
        safegate()
            .args(["audit", "verify", "--export"])
            .arg(&export)
            .arg("--public-key")
            .arg(pki.join("checkpoint.pub")),
    )?;
    ensure!(
        said.starts_with(&format!("OK: {exported} entries verified")),
        "`safegate audit verify --export` said: {said}"
    );
    row(
        "safegate audit verify --export (CLI, offline, key only)",
        exported,
        export_bytes,
        offline,
    );
    let (sha_export, _) = sha256sum(&export)?;
    let sha_export_median = median_duration(&sha_export);
    row(
        "sha256sum of the export file (median)",
        exported,
        export_bytes,
        sha_export_median,
    );
    store.close().await;

    println!();
    println!(
        "  sha256sum runs (s): entry texts [{}]; export [{}] (each after one untimed warm-up)",
        secs(&sha_texts),
        secs(&sha_export)
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let goal = |r: f64| if r <= 3.0 { "met" } else { "NOT met" };
    let backend = database.backend();
    let lines = vec![
        String::new(),
        format!(
            "| backend | verify path | entries | bytes | verify s | sha256sum s (same bytes) | ratio | goal <= 3x |\n\
             |---|---|---:|---:|---:|---:|---:|---|"
        ),
        format!(
            "| {backend} | verify_store, in process | {} | {} | {:.2} | {:.2} | {:.2}x | {} |",
            thousands(n as f64),
            thousands(texts_bytes as f64),
            in_process.as_secs_f64(),
            sha_texts_median.as_secs_f64(),
            ratio(in_process, sha_texts_median),
            goal(ratio(in_process, sha_texts_median))
        ),
        format!(
            "| {backend} | `safegate audit verify` (CLI, database) | {} | {} | {:.2} | {:.2} | {:.2}x | {} |",
            thousands(n as f64),
            thousands(texts_bytes as f64),
            online.as_secs_f64(),
            sha_texts_median.as_secs_f64(),
            ratio(online, sha_texts_median),
            goal(ratio(online, sha_texts_median))
        ),
        format!(
            "| {backend} | `safegate audit verify --export` (CLI, offline) | {} | {} | {:.2} | {:.2} | {:.2}x | {} |",
            thousands(exported as f64),
            thousands(export_bytes as f64),
            offline.as_secs_f64(),
            sha_export_median.as_secs_f64(),
            ratio(offline, sha_export_median),
            goal(ratio(offline, sha_export_median))
        ),
        format!(
            "building the {}-entry log took {:.1} s ({} entries/s, transactions of {})",
            thousands(n as f64),
            build_time.as_secs_f64(),
            thousands(n as f64 / build_time.as_secs_f64()),
            thousands(BUILD_BATCH as f64)
        ),
    ];
    for line in &lines {
        println!("{line}");
    }
    Ok(lines)
}
