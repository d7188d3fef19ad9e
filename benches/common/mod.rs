//! What every bench harness needs alike: the database it measures on, the command line
//! that reproduces a run, number formatting, and the `safegate` binary's allocator. Each
//! harness uses a part of it.
#![allow(dead_code)]

pub mod floor;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor, PgConnection};

/// The allocator the `safegate` binary uses (`src/main.rs`), so the gateway is measured
/// as it runs; the baselines in the same process use it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A bench's database: a SQLite file in the bench's work directory, or a fresh
/// PostgreSQL database (`safegate_bench_<uuid>`, dropped at the end) when
/// `SAFEGATE_BENCH_DATABASE_URL` names a server.
pub enum BenchDatabase {
    Sqlite { file: PathBuf },
    Postgres { server: String, name: String },
}

impl BenchDatabase {
    /// A new database; `label` names the SQLite file (`<label>.db` in `dir`).
    pub async fn create(dir: &Path, label: &str) -> Result<Self> {
        match std::env::var("SAFEGATE_BENCH_DATABASE_URL") {
            Ok(server) if server.starts_with("postgres") => {
                let name = format!("safegate_bench_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&server)
                    .await
                    .context("connecting to SAFEGATE_BENCH_DATABASE_URL")?;
                admin
                    .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .context("creating the bench database")?;
                admin.close().await?;
                Ok(BenchDatabase::Postgres { server, name })
            }
            Ok(other) if !other.is_empty() => {
                bail!("SAFEGATE_BENCH_DATABASE_URL must be a postgres:// URL (unset for SQLite)")
            }
            _ => Ok(BenchDatabase::Sqlite {
                file: dir.join(format!("{label}.db")),
            }),
        }
    }

    pub fn url(&self) -> String {
        match self {
            BenchDatabase::Sqlite { file } => format!("sqlite://{}?mode=rwc", file.display()),
            BenchDatabase::Postgres { server, name } => {
                let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
                format!("{base}/{name}")
            }
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, BenchDatabase::Sqlite { .. })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            BenchDatabase::Sqlite { .. } => "SQLite",
            BenchDatabase::Postgres { .. } => "PostgreSQL",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            BenchDatabase::Sqlite { file } => format!("SQLite ({})", file.display()),
            BenchDatabase::Postgres { name, .. } => {
                format!("PostgreSQL (fresh database {name}, dropped at the end)")
            }
        }
    }

    pub async fn drop_database(&self) -> Result<()> {
        if let BenchDatabase::Postgres { server, name } = self {
            let mut admin = PgConnection::connect(server).await?;
            admin
                .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                .await
                .context("dropping the bench database")?;
            admin.close().await?;
        }
        Ok(())
    }
}

/// The command that runs `bench` as this run was asked for, any password in the database
/// URL hidden.
pub fn command(bench: &str) -> String {
    match std::env::var("SAFEGATE_BENCH_DATABASE_URL") {
        Ok(server) if !server.is_empty() => format!(
            "SAFEGATE_BENCH_DATABASE_URL={} cargo bench --bench {bench}",
            redact_password(&server)
        ),
        _ => format!("cargo bench --bench {bench}"),
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// A whole number with thousands separators: `12,345`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The machine's load averages (1, 5, 15 minutes), so load from other processes shows.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// The database's durability settings as a line for the report, so a run on a database
/// that does not sync its commits shows it.
pub async fn durability(pool: &AnyPool, sqlite: bool) -> Result<String> {
    if sqlite {
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await?;
        let name = match synchronous {
            0 => "OFF",
            1 => "NORMAL",
            2 => "FULL",
            3 => "EXTRA",
            _ => "?",
        };
        Ok(format!(
            "journal_mode={journal}, synchronous={synchronous} ({name})"
        ))
    } else {
        let mut settings = Vec::new();
        for name in [
            "server_version",
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
            "commit_delay",
        ] {
            let value: String = sqlx::query_scalar(&format!("SHOW {name}"))
                .fetch_one(pool)
                .await?;
            settings.push(format!("{name}={value}"));
        }
        Ok(settings.join(", "))
    }
}

/// Valid NHS numbers in the synthetic 999 range, ascending, never repeating.
pub struct NhsNumbers {
    /// The next 9-digit prefix to try.
    prefix: u64,
}

impl NhsNumbers {
    /// Numbers whose first nine digits start at `first_prefix`.
    pub fn from(first_prefix: u64) -> Self {
        NhsNumbers {
            prefix: first_prefix,
        }
    }

    /// Modulus 11: weights 10..2 over the first nine digits, check = 11 - sum % 11,
    /// 11 -> 0, 10 -> no valid number with this prefix.
    pub fn next_valid(&mut self) -> String {
        loop {
            let prefix = self.prefix;
            self.prefix += 1;
            let digits = format!("{prefix:09}");
            let sum: u32 = digits
                .bytes()
                .zip((2..=10).rev())
                .map(|(d, w)| u32::from(d - b'0') * w)
                .sum();
            let check = match 11 - sum % 11 {
                11 => 0,
                10 => continue,
                c => c,
            };
            return format!("{digits}{check}");
        }
    }
}

/// Runs a gateway measurement: the gateway and its baselines on one Tokio runtime
/// (`sg-server` threads) with the gateway's own logging as `safegate serve` installs it
/// (so per-RPC spans cost what they cost in production), the load generator on another
/// (`sg-client`), so CPU time can be split by thread. `measure` gets a fresh work
/// directory, a fresh database and the server runtime; both are removed afterwards,
/// whatever the outcome.
pub fn on_split_runtimes(
    label: &str,
    measure: impl AsyncFnOnce(&Path, &BenchDatabase, &tokio::runtime::Handle) -> Result<()>,
) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sg-server")
        .enable_all()
        .build()
        .context("building the server runtime")?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sg-client")
        .enable_all()
        .build()
        .context("building the client runtime")?;
    let telemetry = server_runtime.block_on(async {
        safegate::telemetry::init(safegate::config::LogFormat::Pretty, "info")
    })?;
    let work =
        std::env::temp_dir().join(format!("safegate-bench-{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let outcome = client_runtime.block_on(async {
        let database = BenchDatabase::create(&work, "safegate").await?;
        let outcome = measure(&work, &database, server_runtime.handle()).await;
        let dropped = database.drop_database().await;
        outcome.and(dropped)
    });
    let _ = std::fs::remove_dir_all(&work);
    drop(telemetry);
    client_runtime.shutdown_timeout(Duration::from_secs(2));
    server_runtime.shutdown_timeout(Duration::from_secs(2));
    outcome
}

/// A pool of `connections` plain connections for a baseline, set up as the gateway sets
/// up its own (SQLite: WAL, busy timeout, foreign keys).
pub async fn plain_pool(url: &str, sqlite: bool, connections: u32) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)?;
    AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if sqlite {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .context("opening the baseline pool")
}
