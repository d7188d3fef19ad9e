//! SQL for the tables beside the disclosure log that IG questions are answered from: the
//! person index (`disclosure_person`), break-glass reviews, subject-access releases and
//! the record of which identity decisions reached the log. Verification reads them back
//! as stored, to compare with what the hashed entries say they must hold.

use sqlx::Row;

use crate::domain::ledger::bound::BoundRow;
use crate::error::Error;
use crate::store::{Store, database_error};

/// Columns of a `break_glass_review` row bound to its recording entry.
pub const REVIEW_COLUMNS: [&str; 7] = [
    "review_id",
    "entry_id",
    "outcome",
    "note",
    "reviewer_system",
    "reviewer_id",
    "reviewed_at",
];
/// Columns of a `subject_access_release` row bound to its recording entry.
pub const RELEASE_COLUMNS: [&str; 6] = [
    "release_id",
    "entry_id",
    "note",
    "released_by_system",
    "released_by_id",
    "released_at",
];
/// Columns of an `identity_decision_logged` row (with the decision it names) bound to
/// the entry that logged the decision.
pub const LOGGED_DECISION_COLUMNS: [&str; 4] = [
    "decision_id",
    "identity_decision.kind",
    "identity_decision.person_id",
    "identity_decision.other_person_id",
];

/// Columns of a `privacy_alert` row bound to the entry that raised it.
pub const ALERT_COLUMNS: [&str; 9] = [
    "alert_id",
    "alert_key",
    "rule_id",
    "rules_version",
    "raised_at",
    "system_id",
    "practitioner_id",
    "summary",
    "entry_ids",
];
/// Columns of a `privacy_alert_event` row bound to the entry that records the step.
pub const ALERT_EVENT_COLUMNS: [&str; 10] = [
    "event_id",
    "alert_id",
    "step",
    "action",
    "assignee",
    "outcome",
    "note",
    "by_system",
    "by_id",
    "at",
];

impl Store {
    /// The whole person index as (seq, person_id), in `seq` order, streamed: read once
    /// beside the log's pages while verifying (the index has no key on `seq` alone, so
    /// one ordered pass is cheaper than a range read per page).
    pub fn person_index_in_order(
        &self,
    ) -> impl tokio_stream::Stream<Item = Result<(u64, String), Error>> + Send + '_ {
        use tokio_stream::StreamExt;
        sqlx::query("SELECT seq, person_id FROM disclosure_person ORDER BY seq")
            .fetch(&self.pool)
            .map(|row| {
                let row = row.map_err(database_error)?;
                let seq: i64 = row.try_get(0).map_err(database_error)?;
                Ok((seq as u64, row.try_get(1).map_err(database_error)?))
            })
    }

    /// The positions in the log after `after_seq`: entries appended since verification
    /// began, which person index rows past the checkpoint may name.
    pub async fn log_seqs_after(&self, after_seq: u64) -> Result<Vec<u64>, Error> {
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM disclosure_log WHERE seq > $1 ORDER BY seq")
                .bind(after_seq as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(database_error)?;
        Ok(seqs.into_iter().map(|s| s as u64).collect())
    }

    /// Every row of the review, release and alert tables, each with the position of the
    /// entry it names. These tables grow with IG's work, not with disclosures, so they
    /// are read whole.
    pub async fn bound_rows(&self) -> Result<Vec<BoundRow>, Error> {
        self.read_bound(&[
            (
                "break_glass_review",
                "SELECT r.review_id, r.log_entry_id, l.seq, r.review_id, r.entry_id, \
                 r.outcome, r.note, r.reviewer_system, r.reviewer_id, r.reviewed_at \
                 FROM break_glass_review r LEFT JOIN disclosure_log l \
                 ON l.entry_id = r.log_entry_id",
                &REVIEW_COLUMNS,
            ),
            (
                "subject_access_release",
                "SELECT r.release_id, r.log_entry_id, l.seq, r.release_id, r.entry_id, \
                 r.note, r.released_by_system, r.released_by_id, r.released_at \
                 FROM subject_access_release r LEFT JOIN disclosure_log l \
                 ON l.entry_id = r.log_entry_id",
                &RELEASE_COLUMNS,
            ),
            (
                "privacy_alert",
                "SELECT a.alert_id, a.log_entry_id, l.seq, a.alert_id, a.alert_key, a.rule_id, \
                 a.rules_version, a.raised_at, a.system_id, a.practitioner_id, a.summary, \
                 a.entry_ids FROM privacy_alert a LEFT JOIN disclosure_log l \
                 ON l.entry_id = a.log_entry_id",
                &ALERT_COLUMNS,
            ),
            (
                "privacy_alert_event",
                "SELECT e.event_id, e.log_entry_id, l.seq, e.event_id, e.alert_id, \
                 CAST(e.step AS TEXT), e.action, e.assignee, e.outcome, e.note, e.by_system, \
                 e.by_id, e.at FROM privacy_alert_event e LEFT JOIN disclosure_log l \
                 ON l.entry_id = e.log_entry_id",
                &ALERT_EVENT_COLUMNS,
            ),
        ])
        .await
    }

    /// Every row of the logged-decision table (with the decision it names), each with
    /// the position of the entry it names. It grows with identity decisions, not with
    /// disclosures, so it is read whole.
    pub async fn identity_bound_rows(&self) -> Result<Vec<BoundRow>, Error> {
        self.read_bound(&[(
            "identity_decision_logged",
            "SELECT g.decision_id, g.entry_id, l.seq, g.decision_id, \
             COALESCE(d.kind, ''), COALESCE(d.person_id, ''), \
             COALESCE(d.other_person_id, '') \
             FROM identity_decision_logged g \
             LEFT JOIN disclosure_log l ON l.entry_id = g.entry_id \
             LEFT JOIN identity_decision d ON d.decision_id = g.decision_id",
            &LOGGED_DECISION_COLUMNS,
        )])
        .await
    }

    /// The rows each (table, query, columns) reads: a query selects the row's key, the
    /// log entry id it names, that entry's `seq` (NULL when none), then `columns`.
    async fn read_bound(
        &self,
        tables: &[(&'static str, &str, &[&'static str])],
    ) -> Result<Vec<BoundRow>, Error> {
        let mut bound = Vec::new();
        for &(table, sql, columns) in tables {
            for row in sqlx::query(sql)
                .fetch_all(&self.pool)
                .await
                .map_err(database_error)?
            {
                let seq: Option<i64> = row.try_get(2).map_err(database_error)?;
                let values = columns
                    .iter()
                    .enumerate()
                    .map(|(i, column)| Ok((*column, row.try_get::<String, _>(3 + i)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(database_error)?;
                bound.push(BoundRow {
                    table,
                    key: row.try_get(0).map_err(database_error)?,
                    log_entry_id: row.try_get(1).map_err(database_error)?,
                    log_seq: seq.map(|s| s as u64),
                    columns: values,
                });
            }
        }
        Ok(bound)
    }
}

/// A witness's cosignature of one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCosignature {
    pub witness: String,
    pub tree_size: u64,
    /// Hex root.
    pub root_hash: String,
    /// The signature line, with its newline.
    pub cosignature: String,
    pub cosigned_at: u64,
}

impl Store {
    /// Keeps a witness's cosignature (once per witness and size).
    pub async fn add_cosignature(&self, cosignature: &StoredCosignature) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO checkpoint_cosignature (witness, tree_size, root_hash, cosignature, \
             cosigned_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&cosignature.witness)
        .bind(cosignature.tree_size as i64)
        .bind(&cosignature.root_hash)
        .bind(&cosignature.cosignature)
        .bind(cosignature.cosigned_at.min(i64::MAX as u64) as i64)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        Ok(())
    }

    /// The largest size each witness has cosigned, by witness name.
    pub async fn cosigned_sizes(&self) -> Result<Vec<(String, u64)>, Error> {
        let rows = sqlx::query(
            "SELECT witness, MAX(tree_size) FROM checkpoint_cosignature GROUP BY witness",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let size: i64 = row.try_get(1)?;
                Ok((row.try_get(0)?, size as u64))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(database_error)
    }

    /// The cosignatures of the checkpoint of `tree_size`.
    pub async fn cosignatures_at(&self, tree_size: u64) -> Result<Vec<StoredCosignature>, Error> {
        let rows = sqlx::query(
            "SELECT witness, tree_size, root_hash, cosignature, cosigned_at \
             FROM checkpoint_cosignature WHERE tree_size = $1 ORDER BY witness",
        )
        .bind(tree_size as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let size: i64 = row.try_get(1)?;
                let at: i64 = row.try_get(4)?;
                Ok(StoredCosignature {
                    witness: row.try_get(0)?,
                    tree_size: size as u64,
                    root_hash: row.try_get(2)?,
                    cosignature: row.try_get(3)?,
                    cosigned_at: at as u64,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(database_error)
    }
}

// Contact requests and their steps (issue 16's tables), bound to the `contact` entries
// that carry them whole.

/// Columns of a `contact_request` row the recording entry determines.
pub const CONTACT_REQUEST_COLUMNS: [&str; 8] = [
    "request_id",
    "requester_system",
    "requester_practitioner",
    "client_request_id",
    "owner_system",
    "created_at",
    "due_at",
    "payload",
];
/// Columns of a `contact_step` row the recording entry determines.
pub const CONTACT_STEP_COLUMNS: [&str; 7] = [
    "step_id",
    "request_id",
    "kind",
    "outcome",
    "to_system",
    "payload",
    "recorded_at",
];

impl Store {
    /// Every contact request and step row, each with the position of the entry it names.
    /// They grow with contact requests, not with disclosures, so they are read whole.
    pub async fn contact_bound_rows(&self) -> Result<Vec<BoundRow>, Error> {
        self.read_bound(&[
            (
                "contact_request",
                "SELECT r.request_id, r.log_entry_id, l.seq, r.request_id, r.requester_system, \
                 r.requester_practitioner, r.client_request_id, r.owner_system, r.created_at, \
                 r.due_at, r.payload \
                 FROM contact_request r LEFT JOIN disclosure_log l \
                 ON l.entry_id = r.log_entry_id",
                &CONTACT_REQUEST_COLUMNS,
            ),
            (
                "contact_step",
                "SELECT s.step_id, s.log_entry_id, l.seq, s.step_id, s.request_id, s.kind, \
                 s.outcome, s.to_system, s.payload, s.recorded_at \
                 FROM contact_step s LEFT JOIN disclosure_log l \
                 ON l.entry_id = s.log_entry_id",
                &CONTACT_STEP_COLUMNS,
            ),
        ])
        .await
    }
}
