//! Publish throughput: one `PublishBatch` of 10,000 facts through the real gateway
//! (mutual TLS, registry lookup, validation, ownership checks, one all-or-nothing
//! transaction) against plain one-row `INSERT` transactions on the same database, in the
//! same run.
//!
//! ```sh
//! cargo bench --bench publish                      # SQLite file in a temp dir
//! SAFEGATE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench --bench publish                    # a fresh database on that server
//! ```
//!
//! With PostgreSQL a database `safegate_bench_<uuid>` is created on the named server and
//! dropped at the end. `SAFEGATE_BENCH_ROUNDS` (default 3) sets the measured rounds;
//! `SAFEGATE_BENCH_WORKLOAD` picks `persons`, `mixed` or `all` (default). Rounds are
//! interleaved: in each, every workload's batch goes through the gateway, then 10,000
//! plain single-row transactions run, so drift on a busy machine hits both sides alike.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{BenchDatabase, NhsNumbers, durability, load_average, thousands};
use prost::Message;
use safegate::api::proto::{
    Fact, Identifier, IdentifierScheme, Link, LinkType, PersonDetails, PersonRef,
    PractitionerContext, PublishBatchRequest, Role, fact::Category, person_ref,
    records_service_client::RecordsServiceClient,
};
use safegate::config::Layers;
use safegate::pki::DEMO_SYSTEMS;
use safegate::startup::Application;
use sqlx::{AnyPool, Connection, Executor};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Facts per gateway batch, and plain transactions per baseline round (the issue's 10,000).
const FACTS: usize = 10_000;
/// Facts / rows in the uncounted warm-up before the measured rounds.
const WARM_UP: usize = 100;
/// tonic's default `max_decoding_message_size`, which the gateway does not raise.
const TONIC_DEFAULT_MAX_DECODE: usize = 4 * 1024 * 1024;
/// The system the batches are published as, and its practitioner.
const SYSTEM: &str = "childrens-services";
const PRACTITIONER: &str = "SW-0001";

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run())
}

/// The batch contents measured through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// 10,000 `PersonDetails`, each with its own NHS number.
    Persons,
    /// 5,000 `PersonDetails`, then 5,000 `Link`s between them by NHS number (each link
    /// resolves two persons created earlier in the same batch).
    Mixed,
}

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::Persons => "10,000 PersonDetails",
            Workload::Mixed => "5,000 PersonDetails + 5,000 Link",
        }
    }

    fn facts(self, numbers: &mut NhsNumbers, n: usize) -> Vec<Fact> {
        match self {
            Workload::Persons => (0..n).map(|i| person(numbers.next_valid(), i)).collect(),
            Workload::Mixed => {
                let persons = n / 2;
                let ids: Vec<String> = (0..persons).map(|_| numbers.next_valid()).collect();
                let mut facts: Vec<Fact> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, nhs)| person(nhs.clone(), i))
                    .collect();
                // A ring: person i is a sibling of person i+1, the last of the first.
                facts.extend((0..n - persons).map(|i| {
                    let from = &ids[i % persons];
                    let to = &ids[(i + 1) % persons];
                    link(from, to)
                }));
                facts
            }
        }
    }
}

fn nhs(value: &str) -> Identifier {
    Identifier {
        scheme: IdentifierScheme::NhsNumber.into(),
        value: value.to_owned(),
        namespace: String::new(),
    }
}

fn person(nhs_number: String, i: usize) -> Fact {
    Fact {
        category: Some(Category::Person(PersonDetails {
            identifiers: vec![nhs(&nhs_number)],
            given_name: format!("Given{i:05}"),
            family_name: "Synthetic".into(),
            date_of_birth: "2016-05-14".into(),
            address: format!("{} Example Row, Testtown", i % 500 + 1),
            ..Default::default()
        })),
    }
}

fn link(from: &str, to: &str) -> Fact {
    let by_nhs = |value: &str| {
        Some(PersonRef {
            r#ref: Some(person_ref::Ref::Identifier(nhs(value))),
        })
    };
    Fact {
        category: Some(Category::Link(Link {
            from: by_nhs(from),
            to: by_nhs(to),
            r#type: LinkType::SiblingOf.into(),
        })),
    }
}

/// Writes a dev PKI into `dir` with `safegate pki init`'s code: CA, localhost server
/// certificate, a client certificate per demo system and whatever else the gateway needs
/// at start, so the bench keeps up with the gateway's PKI.
fn write_pki(dir: &Path) -> Result<()> {
    safegate::pki::init(dir, DEMO_SYSTEMS, false).context("writing the dev PKI")?;
    Ok(())
}

async fn client(addr: SocketAddr, pki: &Path) -> Result<RecordsServiceClient<Channel>> {
    let ca = std::fs::read_to_string(pki.join("ca.pem"))?;
    let cert = std::fs::read_to_string(pki.join(format!("{SYSTEM}.pem")))?;
    let key = std::fs::read_to_string(pki.join(format!("{SYSTEM}.key")))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost")
        .identity(Identity::from_pem(cert, key));
    let channel = Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(600))
        .connect()
        .await
        .context("connecting to the gateway over mutual TLS")?;
    Ok(RecordsServiceClient::new(channel))
}

fn context() -> Option<PractitionerContext> {
    Some(PractitionerContext {
        practitioner_id: PRACTITIONER.into(),
        role: Role::SocialWorker.into(),
        ..Default::default()
    })
}

/// Sends one batch and times it from sending the request to receiving the response.
async fn publish_batch(
    client: &mut RecordsServiceClient<Channel>,
    facts: Vec<Fact>,
) -> Result<(Duration, usize, usize)> {
    let n = facts.len();
    let request = PublishBatchRequest {
        context: context(),
        client_request_id: format!("bench-{}", uuid::Uuid::new_v4()),
        facts,
    };
    let request_bytes = request.encoded_len();
    ensure!(
        request_bytes < TONIC_DEFAULT_MAX_DECODE,
        "the batch request encodes to {request_bytes} bytes, over tonic's default 4 MiB limit"
    );
    let started = Instant::now();
    let response = client.publish_batch(request).await;
    let elapsed = started.elapsed();
    let response = match response {
        Ok(response) => response.into_inner(),
        Err(status) => bail!(
            "PublishBatch of {n} facts refused after {:.3} s: code {:?}, message {:?}, details {} bytes",
            elapsed.as_secs_f64(),
            status.code(),
            status.message(),
            status.details().len()
        ),
    };
    ensure!(
        response.receipts.len() == n,
        "PublishBatch returned {} receipts for {n} facts",
        response.receipts.len()
    );
    Ok((elapsed, request_bytes, response.encoded_len()))
}

/// A pool for the baseline, opened the way `Store::connect` opens the gateway's.
async fn plain_pool(url: &str, sqlite: bool) -> Result<AnyPool> {
    let pool = common::plain_pool(url, sqlite, 1).await?;
    pool.execute(
        "CREATE TABLE bench_plain_insert (\
             row_id        TEXT PRIMARY KEY NOT NULL, \
             nhs_number    TEXT NOT NULL, \
             given_name    TEXT NOT NULL, \
             family_name   TEXT NOT NULL, \
             date_of_birth TEXT NOT NULL, \
             address       TEXT NOT NULL, \
             created_at    TEXT NOT NULL)",
    )
    .await
    .context("creating bench_plain_insert")?;
    Ok(pool)
}

/// `n` sequential transactions on one connection, each `BEGIN; INSERT one row; COMMIT`.
async fn plain_inserts(pool: &AnyPool, numbers: &mut NhsNumbers, n: usize) -> Result<Duration> {
    let rows: Vec<[String; 7]> = (0..n)
        .map(|i| {
            [
                uuid::Uuid::new_v4().to_string(),
                numbers.next_valid(),
                format!("Given{i:05}"),
                "Synthetic".into(),
                "2016-05-14".into(),
                format!("{} Example Row, Testtown", i % 500 + 1),
                "2026-01-01T00:00:00.000000Z".into(),
            ]
        })
        .collect();
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    for row in &rows {
        let mut tx = conn.begin().await?;
        let mut query = sqlx::query(
            "INSERT INTO bench_plain_insert \
             (row_id, nhs_number, given_name, family_name, date_of_birth, address, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        );
        for value in row {
            query = query.bind(value.as_str());
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// Best (fastest) and median rate of the rounds.
fn best_and_median(rates: &[f64]) -> (f64, f64) {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let best = sorted.last().copied().unwrap_or(f64::NAN);
    let mid = sorted.len() / 2;
    let median = if sorted.is_empty() {
        f64::NAN
    } else if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    (best, median)
}

struct Settings {
    rounds: usize,
    workloads: Vec<Workload>,
}

fn settings() -> Result<Settings> {
    let rounds = match std::env::var("SAFEGATE_BENCH_ROUNDS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=20).contains(n))
            .context("SAFEGATE_BENCH_ROUNDS must be a number from 1 to 20")?,
        Err(_) => 3,
    };
    let workloads = match std::env::var("SAFEGATE_BENCH_WORKLOAD").as_deref() {
        Ok("persons") => vec![Workload::Persons],
        Ok("mixed") => vec![Workload::Mixed],
        Ok("all") | Err(_) => vec![Workload::Persons, Workload::Mixed],
        Ok(other) => bail!("SAFEGATE_BENCH_WORKLOAD must be persons, mixed or all, not {other:?}"),
    };
    Ok(Settings { rounds, workloads })
}

async fn run() -> Result<()> {
    let settings = settings()?;
    let work = std::env::temp_dir().join(format!("safegate-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let database = BenchDatabase::create(&work, "safegate").await?;
    let outcome = measure(&settings, &work, &database).await;
    let dropped = database.drop_database().await;
    let _ = std::fs::remove_dir_all(&work);
    outcome?;
    dropped
}

async fn measure(settings: &Settings, work: &Path, database: &BenchDatabase) -> Result<()> {
    let pki = work.join("pki");
    write_pki(&pki)?;
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/registry.toml");
    let gateway_settings = Layers::defaults()
        .flag("listen_addr", Some("127.0.0.1:0".into()))
        .flag("data_dir", Some(work.display().to_string()))
        .flag("database_url", Some(database.url()))
        .flag("registry", Some(registry.into()))
        .flag("pki_dir", Some(pki.display().to_string()))
        .resolve()?;
    let pool_size = gateway_settings.database_max_connections;
    let app = Application::build(gateway_settings).await?;
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let sqlite = matches!(database, BenchDatabase::Sqlite { .. });
    let pool = plain_pool(&database.url(), sqlite).await?;
    let durability = durability(&pool, sqlite).await?;
    let mut client = client(addr, &pki).await?;
    let mut numbers = NhsNumbers::from(999_000_000);

    println!("safegate publish benchmark");
    println!("  command   : {}", common::command("publish"));
    println!(
        "  database  : {} ({}), {durability}",
        database.backend(),
        match database {
            BenchDatabase::Sqlite { file } => file.display().to_string(),
            BenchDatabase::Postgres { name, .. } => format!("fresh database {name}"),
        }
    );
    println!(
        "  gateway   : in-process on {addr}, mutual TLS as {SYSTEM} (social_worker), \
         database pool {pool_size}"
    );
    println!(
        "  baseline  : 10,000 x (BEGIN; INSERT INTO bench_plain_insert one 7-column row; COMMIT), \
         one connection, sequential"
    );
    println!(
        "  rounds    : {} measured (+ warm-up of {WARM_UP} facts and {WARM_UP} rows), \
         gateway then baseline in each",
        settings.rounds
    );
    println!(
        "  load avg  : {} (machine has {} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Warm-up: TLS session, HTTP/2 connection, database connections, page cache.
    publish_batch(&mut client, Workload::Persons.facts(&mut numbers, WARM_UP))
        .await
        .context("warm-up batch")?;
    plain_inserts(&pool, &mut numbers, WARM_UP)
        .await
        .context("warm-up inserts")?;

    let started = Instant::now();
    let mut gateway_rates: Vec<Vec<f64>> = vec![Vec::new(); settings.workloads.len()];
    let mut plain_rates = Vec::new();
    let mut sizes = vec![(0, 0); settings.workloads.len()];
    println!();
    println!(
        "{:<6} {:<40} {:>10} {:>12} {:>15}",
        "round", "measurement", "seconds", "per second", "request bytes"
    );
    for round in 1..=settings.rounds {
        for (w, workload) in settings.workloads.iter().enumerate() {
            let facts = workload.facts(&mut numbers, FACTS);
            let (elapsed, request_bytes, response_bytes) = publish_batch(&mut client, facts)
                .await
                .with_context(|| format!("round {round}, gateway batch of {}", workload.label()))?;
            let rate = per_second(FACTS, elapsed);
            gateway_rates[w].push(rate);
            sizes[w] = (request_bytes, response_bytes);
            println!(
                "{round:<6} {:<40} {:>10.3} {:>12} {:>15}",
                format!("gateway: {}", workload.label()),
                elapsed.as_secs_f64(),
                thousands(rate),
                thousands(request_bytes as f64)
            );
        }
        let elapsed = plain_inserts(&pool, &mut numbers, FACTS)
            .await
            .with_context(|| format!("round {round}, plain inserts"))?;
        let rate = per_second(FACTS, elapsed);
        plain_rates.push(rate);
        println!(
            "{round:<6} {:<40} {:>10.3} {:>12} {:>15}",
            format!("plain: {} one-row transactions", thousands(FACTS as f64)),
            elapsed.as_secs_f64(),
            thousands(rate),
            "-"
        );
    }
    let measured = started.elapsed();

    // What was stored, as a check that every round really wrote.
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM record")
        .fetch_one(&pool)
        .await?;
    let plain_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bench_plain_insert")
        .fetch_one(&pool)
        .await?;
    let expected_records = WARM_UP + FACTS * settings.rounds * settings.workloads.len();
    let expected_rows = WARM_UP + FACTS * settings.rounds;
    ensure!(
        records == expected_records as i64 && plain_rows == expected_rows as i64,
        "stored {records} records (expected {expected_records}) and {plain_rows} plain rows \
         (expected {expected_rows})"
    );
    pool.close().await;
    drop(client);
    let _ = stop.send(());
    server.await.context("gateway task")??;

    println!();
    for (w, workload) in settings.workloads.iter().enumerate() {
        let (request, response) = sizes[w];
        println!(
            "  {}: request {} bytes encoded ({:.1}% of tonic's default 4 MiB decode limit), \
             response {} bytes",
            workload.label(),
            thousands(request as f64),
            100.0 * request as f64 / TONIC_DEFAULT_MAX_DECODE as f64,
            thousands(response as f64)
        );
    }
    println!(
        "  stored: {records} gateway records, {plain_rows} plain rows; measured rounds took {:.1} s; \
         load avg now {}",
        measured.as_secs_f64(),
        load_average()
    );
    println!();
    println!(
        "| backend | gateway batch (one PublishBatch of 10,000 facts) | facts/s median | facts/s best \
         | plain single-row tx rows/s median | rows/s best | ratio gateway/plain (median) | ratio (best) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let (plain_best, plain_median) = best_and_median(&plain_rates);
    for (w, workload) in settings.workloads.iter().enumerate() {
        let (best, median) = best_and_median(&gateway_rates[w]);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2}x | {:.2}x |",
            database.backend(),
            workload.label(),
            thousands(median),
            thousands(best),
            thousands(plain_median),
            thousands(plain_best),
            median / plain_median,
            best / plain_best
        );
    }
    println!();
    println!("command: {}", common::command("publish"));
    Ok(())
}
