//! SQL for the notification outbox.

use sqlx::{AnyConnection, Row};

use crate::domain::Stored;
use crate::domain::ledger::review::NoticeRow;
use crate::domain::notify::{Notice, NotifyStorage, StoredNotice};
use crate::error::Error;
use crate::store::{Backend, Store, database_error};

/// PostgreSQL advisory lock serialising notice inserts, so `seq` order is commit order
/// and a subscriber that has seen notice N never misses an earlier one committed later.
const NOTICE_LOCK: i64 = 0x5AFE_0071;

/// Inserts notices on an open transaction's connection.
pub(crate) async fn insert_notices(
    conn: &mut AnyConnection,
    backend: Backend,
    trigger_record_id: &str,
    notices: &[Notice],
) -> Result<(), Error> {
    let rows = notices
        .iter()
        .map(Notice::row)
        .collect::<Result<Vec<_>, Error>>()?;
    insert_notice_rows(conn, backend, trigger_record_id, &rows).await
}

/// Inserts notices, as the outbox keeps them, on an open transaction's connection.
pub(crate) async fn insert_notice_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    trigger_record_id: &str,
    notices: &[NoticeRow],
) -> Result<(), Error> {
    if notices.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(NOTICE_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(database_error)?;
    }
    for notice in notices {
        sqlx::query(
            "INSERT INTO notice (notice_id, recipient_system, rule, trigger_record_id, payload, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&notice.notice_id)
        .bind(&notice.recipient_system)
        .bind(notice.rule)
        .bind(trigger_record_id)
        .bind(&notice.payload)
        .bind(&notice.created_at)
        .execute(&mut *conn)
        .await
        .map_err(database_error)?;
    }
    Ok(())
}

impl Store {
    /// Writes notices in their own transaction (break-glass notices follow a query, not a
    /// stored fact) and wakes subscribers.
    pub async fn add_notices(
        &self,
        trigger_record_id: &str,
        notices: &[Notice],
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await.map_err(database_error)?;
        insert_notices(&mut tx, self.backend, trigger_record_id, notices).await?;
        tx.commit().await.map_err(database_error)?;
        self.notices_committed.notify_waiters();
        Ok(())
    }

    /// The last acknowledged position of a receiving system (0 if none).
    pub async fn acknowledged(&self, system: &str) -> Result<u64, Error> {
        let acked: Option<i64> =
            sqlx::query_scalar("SELECT acked_seq FROM notice_ack WHERE recipient_system = $1")
                .bind(system)
                .fetch_optional(&self.pool)
                .await
                .map_err(database_error)?;
        Ok(acked.unwrap_or(0) as u64)
    }

    /// Notices for `system` after `after`, oldest first.
    pub async fn notices_after(
        &self,
        system: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredNotice>, Error> {
        let rows = sqlx::query(
            "SELECT seq, payload FROM notice WHERE recipient_system = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(system)
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(database_error)?;
                let payload: String = row.try_get(1).map_err(database_error)?;
                Ok(StoredNotice {
                    seq: seq as u64,
                    notice: serde_json::from_str(&payload).map_err(Error::internal)?,
                })
            })
            .collect()
    }

    /// Records that `system` has everything up to `seq`; never moves backwards.
    pub async fn acknowledge(&self, system: &str, seq: u64, at: &str) -> Result<u64, Error> {
        let mut tx = self.begin_write().await.map_err(database_error)?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT acked_seq FROM notice_ack WHERE recipient_system = $1")
                .bind(system)
                .fetch_optional(&mut *tx)
                .await
                .map_err(database_error)?;
        let acked = match current {
            Some(current) if current as u64 >= seq => current as u64,
            Some(_) => {
                sqlx::query("UPDATE notice_ack SET acked_seq = $1, acked_at = $2 WHERE recipient_system = $3")
                    .bind(seq as i64)
                    .bind(at)
                    .bind(system)
                    .execute(&mut *tx)
                    .await
                    .map_err(database_error)?;
                seq
            }
            None => {
                sqlx::query("INSERT INTO notice_ack (recipient_system, acked_seq, acked_at) VALUES ($1, $2, $3)")
                    .bind(system)
                    .bind(seq as i64)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(database_error)?;
                seq
            }
        };
        tx.commit().await.map_err(database_error)?;
        Ok(acked)
    }

    /// The signal this process raises whenever it commits notices. Arm a `notified()`
    /// future before reading, so a commit between the read and the wait is not missed.
    pub fn notice_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        std::sync::Arc::clone(&self.notices_committed)
    }
}

impl NotifyStorage for Store {
    fn add_notices<'a>(
        &'a self,
        trigger_record_id: &'a str,
        notices: &'a [Notice],
    ) -> Stored<'a, ()> {
        Box::pin(self.add_notices(trigger_record_id, notices))
    }

    fn acknowledged<'a>(&'a self, system: &'a str) -> Stored<'a, u64> {
        Box::pin(self.acknowledged(system))
    }

    fn notices_after<'a>(
        &'a self,
        system: &'a str,
        after: u64,
        limit: u32,
    ) -> Stored<'a, Vec<StoredNotice>> {
        Box::pin(self.notices_after(system, after, limit))
    }

    fn acknowledge<'a>(&'a self, system: &'a str, seq: u64, at: &'a str) -> Stored<'a, u64> {
        Box::pin(self.acknowledge(system, seq, at))
    }

    fn notice_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.notice_signal()
    }
}
