//! The append's independent floor (issue 14): group-committed one-row inserts of the
//! same entry bytes into a table with one index, on the same database. Concurrent
//! inserts wait in one queue and a single committer writes whatever has gathered as one
//! multi-row INSERT in one transaction, as the ledger's committer does, but with nothing
//! else: no chain or Merkle hashing, no signed checkpoint, no person index, no other
//! table. The append cannot cost less than this; the goal is at most 2x its CPU.

use std::sync::Arc;

use anyhow::{Context, Result};
use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

/// Most inserts in one transaction: the ledger committer's own bound.
const MAX_BATCH: usize = 1024;

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle on the floor's committer; cloned by every caller.
#[derive(Clone)]
pub struct InsertFloor {
    queue: mpsc::Sender<Waiter>,
}

impl InsertFloor {
    /// Creates `bench_floor (entry_id, entry)` with a unique index on `entry_id` and
    /// starts its committer on `runtime`; each insert writes `text` under a fresh id.
    pub async fn start(
        url: &str,
        sqlite: bool,
        text: String,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self> {
        let pool = super::plain_pool(url, sqlite, 1).await?;
        pool.execute("CREATE TABLE bench_floor (entry_id TEXT NOT NULL, entry TEXT NOT NULL)")
            .await
            .context("creating the floor's table")?;
        pool.execute("CREATE UNIQUE INDEX bench_floor_by_id ON bench_floor (entry_id)")
            .await
            .context("creating the floor's index")?;
        let (queue, waiting) = mpsc::channel(8192);
        runtime.spawn(commit_loop(pool, Arc::new(text), sqlite, waiting));
        Ok(InsertFloor { queue })
    }

    /// One insert, answered once its transaction has committed.
    pub async fn insert(&self) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(done)
            .await
            .map_err(|_| "the floor's committer stopped".to_owned())?;
        committed
            .await
            .map_err(|_| "the floor's committer dropped the insert".to_owned())?
    }
}

async fn commit_loop(
    pool: AnyPool,
    text: Arc<String>,
    sqlite: bool,
    mut waiting: mpsc::Receiver<Waiter>,
) {
    while let Some(first) = waiting.recv().await {
        let mut waiters = vec![first];
        while waiters.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => waiters.push(next),
                Err(_) => break,
            }
        }
        let outcome = commit(&pool, &text, sqlite, waiters.len())
            .await
            .map_err(|e| format!("floor insert: {e}"));
        for waiter in waiters {
            let _ = waiter.send(outcome.clone());
        }
    }
    pool.close().await;
}

async fn commit(pool: &AnyPool, text: &str, sqlite: bool, rows: usize) -> Result<(), sqlx::Error> {
    let mut sql = String::from("INSERT INTO bench_floor (entry_id, entry) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
    }
    let ids: Vec<String> = (0..rows)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let mut query = sqlx::query(&sql).persistent(false);
    for id in &ids {
        query = query.bind(id.as_str()).bind(text);
    }
    let mut conn = pool.acquire().await?;
    conn.execute(if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" })
        .await?;
    if let Err(error) = query.execute(&mut *conn).await {
        let _ = conn.execute("ROLLBACK").await;
        return Err(error);
    }
    conn.execute("COMMIT").await?;
    Ok(())
}

/// Bytes the database holds now: SQLite's used pages after a WAL checkpoint; every
/// table, index and TOAST relation in PostgreSQL's public schema.
pub async fn bytes_on_disk(pool: &AnyPool, sqlite: bool) -> Result<i64> {
    if sqlite {
        pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(pool)
            .await?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(pool)
            .await?;
        let size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(pool)
            .await?;
        Ok((pages - free) * size)
    } else {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r'",
        )
        .fetch_one(pool)
        .await?;
        Ok(bytes)
    }
}
