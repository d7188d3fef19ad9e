//! SQL for privacy alerts: the evaluator's lease and position, what the rules ask of the
//! records (when systems recorded or ended the facts by which they work with a person,
//! and which queries they made meanwhile), and the alert cases.

use sqlx::Row;

use crate::domain::Stored;
use crate::domain::alerts::cases::{AlertFilter, CaseState};
use crate::domain::alerts::clock::{format_utc, parse_utc};
use crate::domain::alerts::storage::AlertStorage;
use crate::domain::alerts::{AlertSources, EndedInvolvement, QueryAt};
use crate::domain::ledger::alert_rows::{Alert, AlertEvent, CaseAction, CaseOutcome};
use crate::domain::ledger::{Entry, EntryFilter, EntryKind, StoredEntry};
use crate::domain::records::{Category, ChangeKind};
use crate::error::Error;
use crate::store::{Store, database_error};

/// The categories of fact by which a system says it works with a person.
const WORKS_WITH: [Category; 5] = [
    Category::Involvement,
    Category::HealthInvolvement,
    Category::Education,
    Category::Iom,
    Category::ProbationSupervision,
];

fn works_with_list() -> String {
    WORKS_WITH
        .iter()
        .map(|c| format!("'{}'", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Takes or renews the evaluator's lease for `holder` until `until` if it is free,
    /// lapsed (before `now`) or already `holder`'s; returns the evaluated position then.
    pub async fn alert_lease(
        &self,
        holder: &str,
        now: &str,
        until: &str,
    ) -> Result<Option<u64>, Error> {
        let taken = sqlx::query(
            "UPDATE alert_evaluator SET holder = $1, lease_until = $2 \
             WHERE id = 1 AND (holder = $1 OR holder = '' OR lease_until < $3)",
        )
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        let seq: i64 = sqlx::query_scalar("SELECT evaluated_seq FROM alert_evaluator WHERE id = 1")
            .fetch_one(&self.writer)
            .await
            .map_err(database_error)?;
        Ok(Some(seq as u64))
    }

    /// Records how far `holder` has evaluated; false if it no longer holds the lease.
    pub async fn save_alert_cursor(&self, holder: &str, seq: u64) -> Result<bool, Error> {
        let saved = sqlx::query(
            "UPDATE alert_evaluator SET evaluated_seq = $2 \
             WHERE id = 1 AND holder = $1 AND evaluated_seq <= $2",
        )
        .bind(holder)
        .bind(seq as i64)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        Ok(saved.rows_affected() == 1)
    }

    /// Gives the lease up, so another process may take it at once.
    pub async fn release_alert_lease(&self, holder: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE alert_evaluator SET holder = '', lease_until = '' WHERE id = 1 AND holder = $1",
        )
        .bind(holder)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        Ok(())
    }

    /// The first entry recorded at or after `time` (RFC 3339 UTC).
    pub async fn first_seq_recorded_since(&self, time: &str) -> Result<Option<u64>, Error> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM disclosure_log WHERE recorded_at >= $1")
                .bind(time)
                .fetch_one(&self.pool)
                .await
                .map_err(database_error)?;
        Ok(seq.map(|s| s as u64))
    }

    /// Wakes this process's notice subscribers after notices were committed on the
    /// append path.
    pub fn notices_were_committed(&self) {
        self.notices_committed.notify_waiters();
    }

    /// Everyone resolved to the same person as any of `persons`.
    async fn members_of(&self, persons: &[String]) -> Result<Vec<String>, Error> {
        let mut all = Vec::new();
        for person in persons {
            all.extend(self.identity_members(person).await?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Alerts matching `filter`, newest first, each with the position of its entry.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<(u64, Alert)>, Error> {
        let mut sql = String::from(
            "SELECT l.seq, a.alert_id, a.alert_key, a.rule_id, a.rules_version, a.raised_at, \
             a.system_id, a.practitioner_id, a.summary, a.entry_ids, a.log_entry_id \
             FROM privacy_alert a JOIN disclosure_log l ON l.entry_id = a.log_entry_id \
             WHERE l.seq < $1",
        );
        let mut binds: Vec<String> = Vec::new();
        let mut add = |clause: &str, value: &str| {
            binds.push(value.to_owned());
            sql.push_str(&clause.replace('?', &format!("${}", binds.len() + 1)));
        };
        for (column, value) in [
            ("a.rule_id", &filter.rule_id),
            ("a.system_id", &filter.system_id),
            ("a.practitioner_id", &filter.practitioner_id),
        ] {
            if let Some(value) = value {
                add(&format!(" AND {column} = ?"), value);
            }
        }
        if let Some(from) = &filter.from {
            add(" AND a.raised_at >= ?", from);
        }
        if let Some(to) = &filter.to {
            add(" AND a.raised_at < ?", to);
        }
        if let Some(assignee) = &filter.assignee {
            add(
                " AND ? = (SELECT e.assignee FROM privacy_alert_event e \
                 WHERE e.alert_id = a.alert_id ORDER BY e.step DESC LIMIT 1)",
                assignee,
            );
        }
        let any = |action: &str| {
            format!(
                "EXISTS (SELECT 1 FROM privacy_alert_event e WHERE e.alert_id = a.alert_id \
                 AND e.action = '{action}')"
            )
        };
        match filter.state {
            None => {}
            Some(CaseState::Open) => sql.push_str(
                " AND NOT EXISTS (SELECT 1 FROM privacy_alert_event e \
                 WHERE e.alert_id = a.alert_id)",
            ),
            Some(CaseState::Assigned) => sql.push_str(&format!(
                " AND {} AND NOT {}",
                any(CaseAction::Assigned.as_str()),
                any(CaseAction::Closed.as_str())
            )),
            Some(CaseState::Closed) => {
                sql.push_str(&format!(" AND {}", any(CaseAction::Closed.as_str())))
            }
        }
        sql.push_str(&format!(
            " ORDER BY l.seq DESC LIMIT {}",
            filter.limit.max(1)
        ));
        let before = if filter.before_seq == 0 {
            i64::MAX
        } else {
            filter.before_seq.min(i64::MAX as u64) as i64
        };
        let mut query = sqlx::query(&sql).bind(before);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database_error)?;
        rows.iter().map(alert_from_row).collect()
    }

    /// One alert by id, with the position of its entry.
    pub async fn alert(&self, alert_id: &str) -> Result<Option<(u64, Alert)>, Error> {
        let row = sqlx::query(
            "SELECT l.seq, a.alert_id, a.alert_key, a.rule_id, a.rules_version, a.raised_at, \
             a.system_id, a.practitioner_id, a.summary, a.entry_ids, a.log_entry_id \
             FROM privacy_alert a JOIN disclosure_log l ON l.entry_id = a.log_entry_id \
             WHERE a.alert_id = $1",
        )
        .bind(alert_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// How many alerts each rule has raised, as (rule id, not yet closed, closed), by
    /// rule id; rules that raised none are absent.
    pub async fn alert_counts(&self) -> Result<Vec<(String, u64, u64)>, Error> {
        let closed = format!(
            "EXISTS (SELECT 1 FROM privacy_alert_event e WHERE e.alert_id = a.alert_id \
             AND e.action = '{}')",
            CaseAction::Closed.as_str()
        );
        let count = |sql: String| async move {
            let rows = sqlx::query(&sql)
                .fetch_all(&self.pool)
                .await
                .map_err(database_error)?;
            rows.iter()
                .map(|row| {
                    let rule: String = row.try_get(0).map_err(database_error)?;
                    let n: i64 = row.try_get(1).map_err(database_error)?;
                    Ok((rule, u64::try_from(n).map_err(Error::internal)?))
                })
                .collect::<Result<Vec<_>, Error>>()
        };
        let totals = count(
            "SELECT a.rule_id, COUNT(*) FROM privacy_alert a GROUP BY a.rule_id \
             ORDER BY a.rule_id"
                .to_owned(),
        )
        .await?;
        let closed = count(format!(
            "SELECT a.rule_id, COUNT(*) FROM privacy_alert a WHERE {closed} \
             GROUP BY a.rule_id ORDER BY a.rule_id"
        ))
        .await?;
        Ok(totals
            .into_iter()
            .map(|(rule, total)| {
                let done = closed
                    .iter()
                    .find(|(r, _)| *r == rule)
                    .map_or(0, |(_, n)| *n);
                (rule, total.saturating_sub(done), done)
            })
            .collect())
    }

    /// The case steps of `alert_ids`, in step order.
    pub async fn alert_events(&self, alert_ids: &[String]) -> Result<Vec<AlertEvent>, Error> {
        let mut events = Vec::new();
        for chunk in alert_ids.chunks(500) {
            let sql = format!(
                "SELECT event_id, alert_id, step, action, assignee, outcome, note, by_system, \
                 by_id, at, log_entry_id FROM privacy_alert_event WHERE alert_id IN ({}) \
                 ORDER BY alert_id, step",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await.map_err(database_error)? {
                let step: i64 = row.try_get(2).map_err(database_error)?;
                let action: String = row.try_get(3).map_err(database_error)?;
                let outcome: String = row.try_get(5).map_err(database_error)?;
                events.push(AlertEvent {
                    event_id: row.try_get(0).map_err(database_error)?,
                    alert_id: row.try_get(1).map_err(database_error)?,
                    step: u32::try_from(step).map_err(Error::internal)?,
                    action: CaseAction::parse(&action)
                        .ok_or_else(|| Error::internal("stored alert step action is unknown"))?,
                    assignee: row.try_get(4).map_err(database_error)?,
                    outcome: CaseOutcome::parse(&outcome),
                    note: row.try_get(6).map_err(database_error)?,
                    by_system: row.try_get(7).map_err(database_error)?,
                    by_id: row.try_get(8).map_err(database_error)?,
                    at: row.try_get(9).map_err(database_error)?,
                    log_entry_id: row.try_get(10).map_err(database_error)?,
                });
            }
        }
        Ok(events)
    }
}

fn alert_from_row(row: &sqlx::any::AnyRow) -> Result<(u64, Alert), Error> {
    let seq: i64 = row.try_get(0).map_err(database_error)?;
    let entries: String = row.try_get(9).map_err(database_error)?;
    Ok((
        seq as u64,
        Alert {
            alert_id: row.try_get(1).map_err(database_error)?,
            alert_key: row.try_get(2).map_err(database_error)?,
            rule_id: row.try_get(3).map_err(database_error)?,
            rules_version: row.try_get(4).map_err(database_error)?,
            raised_at: row.try_get(5).map_err(database_error)?,
            system_id: row.try_get(6).map_err(database_error)?,
            practitioner_id: row.try_get(7).map_err(database_error)?,
            summary: row.try_get(8).map_err(database_error)?,
            entry_ids: entries
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            log_entry_id: row.try_get(10).map_err(database_error)?,
        },
    ))
}

impl AlertSources for Store {
    async fn works_with_recorded(
        &self,
        system: &str,
        persons: &[String],
        from_secs: i64,
        to_secs: i64,
    ) -> Result<bool, Error> {
        let members = self.members_of(persons).await?;
        if members.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "SELECT COUNT(*) FROM record r JOIN record_person p ON p.record_id = r.record_id \
             WHERE r.owner_system = $1 AND r.category IN ({}) AND r.created_at >= $2 \
             AND r.created_at <= $3 AND p.person_id IN ({})",
            works_with_list(),
            placeholders(4, members.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql)
            .bind(system)
            .bind(format_utc(from_secs))
            // Through the whole last second.
            .bind(format_utc(to_secs).replace(".000000Z", ".999999Z"));
        for person in &members {
            query = query.bind(person);
        }
        let found = query.fetch_one(&self.pool).await.map_err(database_error)?;
        Ok(found > 0)
    }

    async fn works_with_ended_since(
        &self,
        since_secs: i64,
    ) -> Result<Vec<EndedInvolvement>, Error> {
        let sql = format!(
            "SELECT t.record_id, t.category, t.system_id, r.created_at, t.recorded_at \
             FROM change_trail t JOIN record r ON r.record_id = t.record_id \
             WHERE t.category IN ({}) AND t.change_kind = $1 AND t.recorded_at >= $2 \
             ORDER BY t.recorded_at",
            works_with_list()
        );
        let rows = sqlx::query(&sql)
            .bind(ChangeKind::Ended.as_str())
            .bind(format_utc(since_secs))
            .fetch_all(&self.pool)
            .await
            .map_err(database_error)?;
        let mut ended = Vec::with_capacity(rows.len());
        for row in rows {
            let record_id: String = row.try_get(0).map_err(database_error)?;
            let opened: String = row.try_get(3).map_err(database_error)?;
            let closed: String = row.try_get(4).map_err(database_error)?;
            let persons: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT person_id FROM record_person WHERE record_id = $1",
            )
            .bind(&record_id)
            .fetch_all(&self.pool)
            .await
            .map_err(database_error)?;
            let (Some(opened_secs), Some(ended_secs)) = (parse_utc(&opened), parse_utc(&closed))
            else {
                return Err(Error::internal("stored record time is not RFC 3339"));
            };
            ended.push(EndedInvolvement {
                record_id,
                category: row.try_get(1).map_err(database_error)?,
                system_id: row.try_get(2).map_err(database_error)?,
                opened_secs,
                ended_secs,
                persons,
            });
        }
        Ok(ended)
    }

    async fn queries_about(
        &self,
        system: &str,
        persons: &[String],
        from_secs: i64,
        to_secs: i64,
    ) -> Result<Vec<QueryAt>, Error> {
        let members = self.members_of(persons).await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT l.entry FROM disclosure_log l WHERE l.system_id = $1 AND l.kind = $2 \
             AND l.decision = 'released' AND l.recorded_at >= $3 AND l.recorded_at <= $4 \
             AND l.seq IN (SELECT seq FROM disclosure_person WHERE person_id IN ({})) \
             ORDER BY l.seq",
            placeholders(5, members.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql)
            .bind(system)
            .bind(EntryKind::Query.as_str())
            .bind(format_utc(from_secs))
            .bind(format_utc(to_secs).replace(".000000Z", ".999999Z"));
        for person in &members {
            query = query.bind(person);
        }
        let texts = query.fetch_all(&self.pool).await.map_err(database_error)?;
        texts
            .iter()
            .map(|text| {
                let entry: Entry = serde_json::from_str(text).map_err(Error::internal)?;
                Ok(QueryAt {
                    at_secs: parse_utc(&entry.recorded_at)
                        .ok_or_else(|| Error::internal("stored entry time is not RFC 3339"))?,
                    entry_id: entry.entry_id,
                    agency: entry.agency,
                    practitioner_id: entry.practitioner_id,
                    role: entry.role,
                })
            })
            .collect()
    }
}

impl AlertStorage for Store {
    fn alert_lease<'a>(
        &'a self,
        holder: &'a str,
        now: &'a str,
        until: &'a str,
    ) -> Stored<'a, Option<u64>> {
        Box::pin(self.alert_lease(holder, now, until))
    }

    fn save_alert_cursor<'a>(&'a self, holder: &'a str, seq: u64) -> Stored<'a, bool> {
        Box::pin(self.save_alert_cursor(holder, seq))
    }

    fn release_alert_lease<'a>(&'a self, holder: &'a str) -> Stored<'a, ()> {
        Box::pin(self.release_alert_lease(holder))
    }

    fn first_seq_recorded_since<'a>(&'a self, time: &'a str) -> Stored<'a, Option<u64>> {
        Box::pin(self.first_seq_recorded_since(time))
    }

    fn entries<'a>(&'a self, filter: &'a EntryFilter) -> Stored<'a, Vec<StoredEntry>> {
        Box::pin(self.entries(filter))
    }

    fn entry<'a>(&'a self, entry_id: &'a str) -> Stored<'a, Option<StoredEntry>> {
        Box::pin(self.entry(entry_id))
    }

    fn notices_were_committed(&self) {
        self.notices_were_committed();
    }

    fn works_with_recorded<'a>(
        &'a self,
        system: &'a str,
        persons: &'a [String],
        from_secs: i64,
        to_secs: i64,
    ) -> Stored<'a, bool> {
        Box::pin(AlertSources::works_with_recorded(
            self, system, persons, from_secs, to_secs,
        ))
    }

    fn works_with_ended_since(&self, since_secs: i64) -> Stored<'_, Vec<EndedInvolvement>> {
        Box::pin(AlertSources::works_with_ended_since(self, since_secs))
    }

    fn queries_about<'a>(
        &'a self,
        system: &'a str,
        persons: &'a [String],
        from_secs: i64,
        to_secs: i64,
    ) -> Stored<'a, Vec<QueryAt>> {
        Box::pin(AlertSources::queries_about(
            self, system, persons, from_secs, to_secs,
        ))
    }

    fn alerts<'a>(&'a self, filter: &'a AlertFilter) -> Stored<'a, Vec<(u64, Alert)>> {
        Box::pin(self.alerts(filter))
    }

    fn alert<'a>(&'a self, alert_id: &'a str) -> Stored<'a, Option<(u64, Alert)>> {
        Box::pin(self.alert(alert_id))
    }

    fn alert_counts(&self) -> Stored<'_, Vec<(String, u64, u64)>> {
        Box::pin(self.alert_counts())
    }

    fn alert_events<'a>(&'a self, alert_ids: &'a [String]) -> Stored<'a, Vec<AlertEvent>> {
        Box::pin(self.alert_events(alert_ids))
    }
}
