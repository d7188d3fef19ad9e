//! Privacy alerts over the disclosure log: the rules of `policies/alerts.toml`, evaluated
//! as entries are committed (`engine.rs`, fed by the ledger's append path through
//! `evaluator.rs`), each alert raised as a case IG officers assign, investigate and close
//! (`cases.rs`). Knows nothing of tonic or SQL: what it needs from storage is
//! [`AlertSources`] and, for the evaluator and the cases, [`AlertStorage`] (`storage.rs`).
//!
//! The console calls [`Cases`] directly (no gRPC): `list`, `get`, `assign`, `close`, each
//! writing its own disclosure-log entry before it answers.

pub mod cases;
pub mod clock;
pub mod engine;
pub mod evaluator;
pub mod rules;
pub mod storage;

use std::future::Future;

pub use crate::domain::ledger::alert_rows::{Alert, AlertEvent, CaseAction, CaseOutcome};
pub use cases::{AlertCase, AlertFilter, CaseState, Cases};
pub use engine::{EndedInvolvement, Engine, Finding, PendingBreakGlass, QueryAt};
pub use evaluator::AlertEvaluator;
pub use rules::{AlertRule, AlertRules};
pub use storage::AlertStorage;

use crate::error::Error;

/// What the rules that look beyond the log need from the records.
pub trait AlertSources {
    /// Whether `system` recorded, between `from_secs` and `to_secs`, a fact by which it
    /// works with any of `persons` (or anyone resolved to the same person): an
    /// involvement, health involvement, education placement, IOM membership or probation
    /// supervision.
    fn works_with_recorded(
        &self,
        system: &str,
        persons: &[String],
        from_secs: i64,
        to_secs: i64,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Such facts whose end was recorded at or after `since_secs`, oldest first.
    fn works_with_ended_since(
        &self,
        since_secs: i64,
    ) -> impl Future<Output = Result<Vec<EndedInvolvement>, Error>> + Send;

    /// The released queries `system` made about any of `persons` (or anyone resolved to
    /// the same person) between `from_secs` and `to_secs`, oldest first.
    fn queries_about(
        &self,
        system: &str,
        persons: &[String],
        from_secs: i64,
        to_secs: i64,
    ) -> impl Future<Output = Result<Vec<QueryAt>, Error>> + Send;
}

/// Rule 1 for one break-glass disclosure whose deadline passed.
pub async fn check_break_glass<S: AlertSources + ?Sized>(
    sources: &S,
    rules: &AlertRules,
    pending: &PendingBreakGlass,
) -> Result<Option<Finding>, Error> {
    let involved = sources
        .works_with_recorded(
            &pending.system_id,
            &pending.persons,
            pending.at_secs,
            pending.deadline_secs,
        )
        .await?;
    Ok(engine::break_glass_unexplained(rules, pending, involved))
}

/// Rule 2 for one involvement whose end was recorded.
pub async fn check_ended<S: AlertSources + ?Sized>(
    sources: &S,
    rules: &AlertRules,
    ended: &EndedInvolvement,
) -> Result<Option<Finding>, Error> {
    let before = i64::from(rules.involvement_window.opened_before_query_minutes) * 60;
    let after = i64::from(rules.involvement_window.ended_after_query_hours) * 3_600;
    // Too long between recording and ending for any query to fit both windows.
    if ended.ended_secs - ended.opened_secs > before + after {
        return Ok(None);
    }
    let queries = sources
        .queries_about(
            &ended.system_id,
            &ended.persons,
            ended.opened_secs,
            ended.ended_secs,
        )
        .await?;
    Ok(engine::involvement_window(rules, ended, &queries))
}

#[cfg(test)]
mod tests;
