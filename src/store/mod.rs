//! The only place with SQL. One code path over SQLite (the embedded default) and
//! PostgreSQL (production), through sqlx's `Any` driver; each backend has its own
//! migrations because their DDL differs.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::error::Error;

mod alerts;
mod backlog;
mod bound;
mod contact;
mod identity;
mod ledger;
mod notices;
mod read_cache;
mod records;
mod witness;
pub use backlog::NoticeBacklog;
pub use bound::StoredCosignature;
pub use ledger::{COLUMN_SEPARATOR, DailyCount, FILTER_COLUMNS, RawLogRow};
pub use read_cache::RecordsNow;
pub use witness::{WitnessStore, Witnessed};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database sits underneath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why the store could not be opened or migrated. Messages never include the URL,
/// which may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL is not valid: {0}")]
    Url(String),
    #[error("cannot create the SQLite directory {path}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to the {backend:?} database")]
    Connect {
        backend: Backend,
        source: sqlx::Error,
    },
    #[error("cannot lock {path} to migrate the SQLite database")]
    MigrationLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("migrating the {backend:?} database failed")]
    Migrate {
        backend: Backend,
        source: sqlx::migrate::MigrateError,
    },
}

/// SQLite page cache of each reading connection, in KiB (SQLite's own default).
const READ_CACHE_KIB: u32 = 2_000;
/// SQLite page cache of the writing connection, in KiB: room for the disclosure log's
/// and the records' upper B-tree pages.
const WRITE_CACHE_KIB: u32 = 32_768;

/// A pool of connections to the gateway's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run. On SQLite, one connection kept for writing alone:
    /// SQLite admits one writer at a time anyway, and a connection that only this
    /// process's writes touch keeps its page cache between transactions instead of
    /// reading the tables' upper B-tree pages again for every batch. On PostgreSQL, the
    /// same pool as reads.
    writer: AnyPool,
    backend: Backend,
    /// The SQLite database file, watched by the readiness probe.
    sqlite_file: Option<PathBuf>,
    /// Woken whenever this process commits notices, so subscribers deliver at once.
    notices_committed: std::sync::Arc<tokio::sync::Notify>,
    /// Set when this process committed identity decisions whose log entries are still
    /// to be written (see `Store::take_identity_pending`).
    identity_pending: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What queries read most, while the records are unchanged (see `read_cache.rs`).
    read_cache: std::sync::Arc<read_cache::ReadCache>,
    /// Where this process's last disclosure-log batch left the log.
    ledger_tip: std::sync::Arc<std::sync::Mutex<Option<ledger::LedgerTip>>>,
}

impl Store {
    /// Connects to `url` (`sqlite:` or `postgres://`), creating a SQLite file and its
    /// directory when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, sqlite_file) = if url.starts_with("sqlite:") {
            let file = sqlite_path(url);
            if let Some(dir) = file.as_ref().and_then(|f| f.parent())
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            (Backend::Sqlite, file)
        } else {
            (Backend::Postgres, None)
        };
        let options =
            AnyConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let pool = Self::pool_options(backend, max_connections, READ_CACHE_KIB)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Connect { backend, source })?;
        let writer = match backend {
            Backend::Sqlite => Self::pool_options(backend, 1, WRITE_CACHE_KIB)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect { backend, source })?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Store {
            pool,
            writer,
            backend,
            sqlite_file,
            notices_committed: std::sync::Arc::new(tokio::sync::Notify::new()),
            identity_pending: Default::default(),
            read_cache: Default::default(),
            ledger_tip: Default::default(),
        })
    }

    fn pool_options(backend: Backend, max_connections: u32, cache_kib: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; the busy timeout makes
                        // writers queue instead of failing with SQLITE_BUSY.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // Statement journals (kept so one statement of a transaction can
                        // be undone alone) in memory rather than in a temporary file
                        // written page by page: durability rests on the WAL alone.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
                            .await?;
                    }
                    Ok(())
                })
            })
    }

    /// Applies the backend's migrations that have not run yet. Concurrent migrators are
    /// serialised: PostgreSQL's by sqlx's advisory lock, SQLite's (which has no such lock)
    /// by an exclusive lock on a file beside the database, `<db>.migrate.lock`, held for
    /// the whole run. So when two gateway processes start together on one file, the second
    /// reads which migrations are applied only once the first has finished, and applies
    /// none twice.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // An in-memory SQLite database lives in this process alone: nothing to serialise.
        let _lock = match &self.sqlite_file {
            Some(file) => Some(MigrationLock::acquire(file).await?),
            None => None,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: self.backend,
                source,
            })
    }

    /// Opens a write transaction.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            // Take the write lock up front so two writers queue instead of deadlocking.
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database can serve requests: reachable, migrated, and (for SQLite)
    /// still the file at its configured path rather than an unlinked one.
    pub async fn probe(&self) -> Result<(), Error> {
        if let Some(file) = &self.sqlite_file
            && !file.exists()
        {
            return Err(Error::Unavailable(
                "the SQLite database file is missing".into(),
            ));
        }
        let query =
            sqlx::query_scalar::<_, String>("SELECT value FROM gateway_meta WHERE key = 'schema'");
        match tokio::time::timeout(Duration::from_secs(3), query.fetch_one(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(database_error(e)),
            Err(_) => Err(Error::Unavailable(
                "the database did not answer in time".into(),
            )),
        }
    }

    /// Closes every connection; later calls fail as UNAVAILABLE.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Maps a database failure to the domain: connection trouble is UNAVAILABLE (retryable),
/// anything else is internal.
pub fn database_error(error: sqlx::Error) -> Error {
    if unavailable(&error) {
        Error::Unavailable("the database is unavailable".into())
    } else {
        Error::internal(error)
    }
}

/// Whether `error` means the database cannot serve now, rather than a fault of ours.
fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().as_deref().is_some_and(unavailable_code),
        _ => false,
    }
}

/// Database error codes that mean "the database is not there or cannot serve now"
/// rather than "this statement is wrong": PostgreSQL SQLSTATE classes 08 (connection),
/// 53 (resources), 57 (operator intervention, e.g. the database was dropped), 58 (system)
/// and 3D000 (no such database); SQLite BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
fn unavailable_code(code: &str) -> bool {
    // A SQLSTATE is always five characters; SQLite's (extended) result codes are shorter.
    if code.len() == 5 {
        return ["08", "53", "57", "58"]
            .iter()
            .any(|class| code.starts_with(class))
            || code == "3D000";
    }
    code.parse::<u32>()
        .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
}

/// An exclusive lock on `<db>.migrate.lock`, held while one process migrates a SQLite
/// file; released when dropped, or by the operating system if the process dies.
struct MigrationLock {
    _file: std::fs::File,
}

impl MigrationLock {
    async fn acquire(database: &std::path::Path) -> Result<Self, StoreError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".migrate.lock");
        let path = PathBuf::from(name);
        let failed = |path: &PathBuf, source| StoreError::MigrationLock {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| failed(&path, source))?;
        match file.try_lock() {
            Ok(()) => return Ok(MigrationLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!("another process is migrating this SQLite database; waiting");
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(failed(&path, source)),
        }
        // Waiting blocks a thread, so not one of the runtime's workers.
        let waited = path.clone();
        tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|join| failed(&waited, std::io::Error::other(join)))?
            .map(|file| MigrationLock { _file: file })
            .map_err(|source| failed(&path, source))
    }
}

/// The file a `sqlite:` URL names, if it names one (not `:memory:`).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_unavailable_not_internal() {
        assert!(unavailable_code("57P01"));
        assert!(unavailable_code("3D000"));
        assert!(unavailable_code("08006"));
        assert!(unavailable_code("14"));
        assert!(unavailable_code("522")); // SQLITE_IOERR_SHORT_READ
        assert!(!unavailable_code("23505")); // unique violation: a bug or a conflict
        assert!(!unavailable_code("2067")); // SQLITE_CONSTRAINT_UNIQUE
    }

    #[tokio::test]
    async fn a_second_sqlite_migrator_waits_until_the_first_has_finished() {
        let dir = std::env::temp_dir().join(format!("safegate-lock-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let database = dir.join("gateway.db");
        let first = MigrationLock::acquire(&database).await.expect("first lock");
        assert!(dir.join("gateway.db.migrate.lock").exists());
        let waiting = database.clone();
        let second = tokio::spawn(async move { MigrationLock::acquire(&waiting).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second migrator did not wait");
        drop(first);
        let acquired = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second migrator still waits after the first finished")
            .expect("task");
        assert!(acquired);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn finds_the_sqlite_file_in_a_url() {
        assert_eq!(
            sqlite_path("sqlite://data/safegate.db?mode=rwc"),
            Some(PathBuf::from("data/safegate.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///abs/sg.db"),
            Some(PathBuf::from("/abs/sg.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/sg"), None);
    }
}
