//! SQL of the witness (`safegate witness serve`): its own small database, apart from any
//! gateway's, holding the latest checkpoint it cosigned for each log. Every change goes
//! through [`WitnessStore::update`], which reads the stored checkpoint, runs the caller's
//! check and stores its result in one transaction that no other update interleaves with.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use crate::error::Error;
use crate::store::{Backend, StoreError, database_error};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/witness/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/witness/postgres");

/// The latest checkpoint a witness cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub origin: String,
    pub tree_size: u64,
    /// Base64 root hash, as the checkpoint writes it.
    pub root_hash: String,
    /// The checkpoint note as submitted (body and the log's signature lines).
    pub note: String,
    /// This witness's `cosignature/v1` line over it.
    pub cosignature: String,
}

/// The witness's database.
#[derive(Debug, Clone)]
pub struct WitnessStore {
    pool: AnyPool,
    backend: Backend,
}

impl WitnessStore {
    /// Connects to `url` (`sqlite:` or `postgres://`) and applies the witness's own
    /// migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options =
            AnyConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        // SQLite: one connection, so updates are serialised by the pool itself.
        let connections = if backend == Backend::Sqlite { 1 } else { 4 };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect { backend, source })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { backend, source })?;
        Ok(WitnessStore { pool, backend })
    }

    /// The latest checkpoint cosigned for `origin`, if any.
    pub async fn latest(&self, origin: &str) -> Result<Option<Witnessed>, Error> {
        let row = sqlx::query(
            "SELECT origin, tree_size, root_hash, note, cosignature FROM witnessed_log \
             WHERE origin = $1",
        )
        .bind(origin)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.map(|row| witnessed(&row)).transpose()
    }

    /// Runs `check` on the latest checkpoint stored for `origin` and, if it passes,
    /// stores what it returns, in one transaction: two submissions for one log never
    /// both pass a check against the same stored size. `check`'s refusal is returned
    /// as it is, and nothing is stored.
    pub async fn update<R>(
        &self,
        origin: &str,
        check: impl FnOnce(Option<&Witnessed>) -> Result<Witnessed, R>,
    ) -> Result<Result<Witnessed, R>, Error> {
        let mut tx = self.pool.begin().await.map_err(database_error)?;
        if self.backend == Backend::Postgres {
            // Serialises updates of this log across connections (and witness processes
            // sharing the database), also before its first row exists.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(origin)
                .execute(&mut *tx)
                .await
                .map_err(database_error)?;
        }
        let row = sqlx::query(
            "SELECT origin, tree_size, root_hash, note, cosignature FROM witnessed_log \
             WHERE origin = $1",
        )
        .bind(origin)
        .fetch_optional(&mut *tx)
        .await
        .map_err(database_error)?;
        let stored = row.map(|row| witnessed(&row)).transpose()?;
        let next = match check(stored.as_ref()) {
            Ok(next) => next,
            Err(refusal) => return Ok(Err(refusal)),
        };
        sqlx::query(
            "INSERT INTO witnessed_log (origin, tree_size, root_hash, note, cosignature, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (origin) DO UPDATE SET \
             tree_size = excluded.tree_size, root_hash = excluded.root_hash, \
             note = excluded.note, cosignature = excluded.cosignature, \
             updated_at = excluded.updated_at",
        )
        .bind(&next.origin)
        .bind(next.tree_size as i64)
        .bind(&next.root_hash)
        .bind(&next.note)
        .bind(&next.cosignature)
        .bind(crate::domain::ledger::now())
        .execute(&mut *tx)
        .await
        .map_err(database_error)?;
        tx.commit().await.map_err(database_error)?;
        Ok(Ok(next))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn witnessed(row: &sqlx::any::AnyRow) -> Result<Witnessed, Error> {
    let size: i64 = row.try_get(1).map_err(database_error)?;
    Ok(Witnessed {
        origin: row.try_get(0).map_err(database_error)?,
        tree_size: size as u64,
        root_hash: row.try_get(2).map_err(database_error)?,
        note: row.try_get(3).map_err(database_error)?,
        cosignature: row.try_get(4).map_err(database_error)?,
    })
}
