//! What every bench harness needs alike: the database it measures on, the command line
//! that reproduces a run, and number formatting. Each harness uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sqlx::{Connection, Executor, PgConnection};

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
