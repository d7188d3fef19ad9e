//! What the alerts room needs from storage: the evaluator's lease and cursor, the log's
//! entries it reads back, the records the rules look at beyond the log, and the alert
//! cases. The store implements [`AlertStorage`] (the only place with SQL); the room's
//! services hold it as a trait object, so the room imports nothing of the store.

use crate::domain::Stored;
use crate::domain::alerts::cases::AlertFilter;
use crate::domain::alerts::{AlertSources, EndedInvolvement, QueryAt};
use crate::domain::ledger::alert_rows::{Alert, AlertEvent};
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::error::Error;

/// The storage operations the alerts room uses, with the store's names and meanings.
pub trait AlertStorage: std::fmt::Debug + Send + Sync {
    /// Takes or renews the evaluator's lease for `holder` at `now` until `until`; the
    /// position evaluated so far when `holder` holds it, `None` when another does.
    fn alert_lease<'a>(
        &'a self,
        holder: &'a str,
        now: &'a str,
        until: &'a str,
    ) -> Stored<'a, Option<u64>>;

    /// Saves the position `holder` evaluated up to; false when it no longer holds the
    /// lease.
    fn save_alert_cursor<'a>(&'a self, holder: &'a str, seq: u64) -> Stored<'a, bool>;

    /// Gives up the lease, if `holder` holds it.
    fn release_alert_lease<'a>(&'a self, holder: &'a str) -> Stored<'a, ()>;

    /// The position of the first entry recorded at or after `time`, if any.
    fn first_seq_recorded_since<'a>(&'a self, time: &'a str) -> Stored<'a, Option<u64>>;

    /// The log's entries matching `filter`.
    fn entries<'a>(&'a self, filter: &'a EntryFilter) -> Stored<'a, Vec<StoredEntry>>;

    /// The log's entry with this id, if any.
    fn entry<'a>(&'a self, entry_id: &'a str) -> Stored<'a, Option<StoredEntry>>;

    /// Wakes this process's notice subscribers: notices were committed.
    fn notices_were_committed(&self);

    /// See [`AlertSources::works_with_recorded`].
    fn works_with_recorded<'a>(
        &'a self,
        system: &'a str,
        persons: &'a [String],
        from_secs: i64,
        to_secs: i64,
    ) -> Stored<'a, bool>;

    /// See [`AlertSources::works_with_ended_since`].
    fn works_with_ended_since(&self, since_secs: i64) -> Stored<'_, Vec<EndedInvolvement>>;

    /// See [`AlertSources::queries_about`].
    fn queries_about<'a>(
        &'a self,
        system: &'a str,
        persons: &'a [String],
        from_secs: i64,
        to_secs: i64,
    ) -> Stored<'a, Vec<QueryAt>>;

    /// Alerts matching `filter`, newest first, each with the position of the entry that
    /// raised it.
    fn alerts<'a>(&'a self, filter: &'a AlertFilter) -> Stored<'a, Vec<(u64, Alert)>>;

    /// The alert with this id, with the position of the entry that raised it.
    fn alert<'a>(&'a self, alert_id: &'a str) -> Stored<'a, Option<(u64, Alert)>>;

    /// By rule: how many alerts are not closed and how many are closed.
    fn alert_counts(&self) -> Stored<'_, Vec<(String, u64, u64)>>;

    /// The case steps of these alerts, by alert and step.
    fn alert_events<'a>(&'a self, alert_ids: &'a [String]) -> Stored<'a, Vec<AlertEvent>>;
}

/// The rules that look beyond the log read the records through the room's storage.
impl AlertSources for dyn AlertStorage + '_ {
    async fn works_with_recorded(
        &self,
        system: &str,
        persons: &[String],
        from_secs: i64,
        to_secs: i64,
    ) -> Result<bool, Error> {
        AlertStorage::works_with_recorded(self, system, persons, from_secs, to_secs).await
    }

    async fn works_with_ended_since(
        &self,
        since_secs: i64,
    ) -> Result<Vec<EndedInvolvement>, Error> {
        AlertStorage::works_with_ended_since(self, since_secs).await
    }

    async fn queries_about(
        &self,
        system: &str,
        persons: &[String],
        from_secs: i64,
        to_secs: i64,
    ) -> Result<Vec<QueryAt>, Error> {
        AlertStorage::queries_about(self, system, persons, from_secs, to_secs).await
    }
}
