//! SQL for the operational backlogs the metrics report: notices not yet acknowledged
//! and break-glass entries not yet reviewed. Counts and times only, never content.

use sqlx::Row;

use crate::error::Error;
use crate::store::{Store, database_error};

/// One recipient system's unacknowledged notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeBacklog {
    pub recipient_system: String,
    /// Notices after its acknowledged position.
    pub notices: u64,
    /// When the oldest of them was created (the outbox's RFC 3339 text).
    pub oldest_created_at: String,
}

impl Store {
    /// Unacknowledged notices per recipient system that has any.
    pub async fn notice_backlog(&self) -> Result<Vec<NoticeBacklog>, Error> {
        let rows = sqlx::query(
            "SELECT n.recipient_system, COUNT(*) AS notices, MIN(n.created_at) AS oldest \
             FROM notice n LEFT JOIN notice_ack a ON a.recipient_system = n.recipient_system \
             WHERE n.seq > COALESCE(a.acked_seq, 0) \
             GROUP BY n.recipient_system ORDER BY n.recipient_system",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                Ok(NoticeBacklog {
                    recipient_system: row.try_get(0)?,
                    notices: u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                    oldest_created_at: row.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(database_error)
    }

    /// Break-glass entries with no review yet: all of them, and those recorded before
    /// `due_before` (the log's RFC 3339 text, which sorts as time).
    pub async fn break_glass_unreviewed(&self, due_before: &str) -> Result<(u64, u64), Error> {
        let unreviewed = "FROM disclosure_log l WHERE l.break_glass = 1 AND NOT EXISTS \
                          (SELECT 1 FROM break_glass_review r WHERE r.entry_id = l.entry_id)";
        let pending: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {unreviewed}"))
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)?;
        let overdue: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) {unreviewed} AND l.recorded_at < $1"
        ))
        .bind(due_before)
        .fetch_one(&self.pool)
        .await
        .map_err(database_error)?;
        Ok((
            u64::try_from(pending).unwrap_or(0),
            u64::try_from(overdue).unwrap_or(0),
        ))
    }
}
