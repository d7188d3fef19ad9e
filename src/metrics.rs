//! The gateway's metrics, recorded through the OpenTelemetry API and exported over OTLP
//! when `src/telemetry.rs` installed a meter provider (otherwise every instrument is a
//! no-op). The per-RPC instrument lives with the transport (`src/api/rpc_metrics.rs`);
//! here are the ledger's group commits, the backlogs an on-call engineer watches, the
//! policy version in force and how long the certificates have left.
//!
//! Attributes name systems, authorities, queues and versions: never a practitioner,
//! a subject or anything else about a person.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, ObservableGauge};

use crate::domain::ledger::CommitObserver;
use crate::domain::policy::PolicyHolder;
use crate::error::Error;
use crate::registry::RegistryHolder;
use crate::store::Store;
use crate::tls::TlsHolder;

/// The instrumentation scope of every safegate instrument.
pub const METER: &str = "safegate";

/// How often backlogs are sampled when `OTEL_METRIC_EXPORT_INTERVAL` is unset: the
/// OpenTelemetry default export interval.
const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(60);
/// Backlogs are never sampled more often than this, whatever the export interval.
const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The meter every safegate instrument is made from.
pub fn meter() -> Meter {
    opentelemetry::global::meter(METER)
}

/// Records each group commit of the disclosure log: how many entries, and how long the
/// transaction took.
#[derive(Debug)]
pub struct LedgerMetrics {
    batch_size: Histogram<u64>,
    commit_duration: Histogram<f64>,
}

impl LedgerMetrics {
    pub fn new() -> Self {
        let meter = meter();
        LedgerMetrics {
            batch_size: meter
                .u64_histogram("safegate.ledger.batch.size")
                .with_description("Disclosure-log entries written per group commit")
                .with_unit("{entry}")
                .with_boundaries(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                ])
                .build(),
            commit_duration: meter
                .f64_histogram("safegate.ledger.commit.duration")
                .with_description("Time to write and commit one group of disclosure-log entries")
                .with_unit("s")
                .with_boundaries(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .build(),
        }
    }
}

impl Default for LedgerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CommitObserver for LedgerMetrics {
    fn batch(&self, entries: usize, took: Duration, committed: bool) {
        let outcome = [KeyValue::new(
            "safegate.outcome",
            if committed { "committed" } else { "failed" },
        )];
        self.batch_size
            .record(u64::try_from(entries).unwrap_or(u64::MAX), &outcome);
        self.commit_duration.record(took.as_secs_f64(), &outcome);
    }
}

/// A review queue whose length is reported as `safegate.review.backlog`, with its
/// `safegate.review_queue` and `safegate.review_state` attributes.
///
/// To report another queue (the privacy alerts being built), add a variant here, its
/// attribute values in [`ReviewQueue::attributes`], and its count in
/// [`review_backlogs`]: nothing else changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewQueue {
    /// Break-glass entries the IG office has not reviewed yet.
    BreakGlassPending,
    /// ... of which recorded longer ago than `break_glass_review_days`.
    BreakGlassOverdue,
    /// Identity review tasks waiting for a steward.
    IdentityReviewOpen,
}

impl ReviewQueue {
    /// The queue and the state its count is of.
    pub fn attributes(self) -> [KeyValue; 2] {
        let (queue, state) = match self {
            ReviewQueue::BreakGlassPending => ("break_glass", "pending"),
            ReviewQueue::BreakGlassOverdue => ("break_glass", "overdue"),
            ReviewQueue::IdentityReviewOpen => ("identity_review", "open"),
        };
        [
            KeyValue::new("safegate.review_queue", queue),
            KeyValue::new("safegate.review_state", state),
        ]
    }
}

/// Every review queue's length now.
async fn review_backlogs(
    store: &Store,
    break_glass_due: Duration,
) -> Result<Vec<(ReviewQueue, u64)>, Error> {
    let due_before = time::OffsetDateTime::now_utc()
        - time::Duration::try_from(break_glass_due).unwrap_or(time::Duration::WEEK);
    let due_before = rfc3339_micros(due_before);
    let (pending, overdue) = store.break_glass_unreviewed(&due_before).await?;
    let identity = store.review_tasks(false).await?.len();
    Ok(vec![
        (ReviewQueue::BreakGlassPending, pending),
        (ReviewQueue::BreakGlassOverdue, overdue),
        (
            ReviewQueue::IdentityReviewOpen,
            u64::try_from(identity).unwrap_or(u64::MAX),
        ),
    ])
}

/// The disclosure log's own time format, which sorts as time.
fn rfc3339_micros(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// One recipient system's notification backlog.
#[derive(Debug, Clone, PartialEq)]
struct RecipientBacklog {
    recipient_system: String,
    notices: u64,
    /// Age of the oldest unacknowledged notice.
    lag_secs: f64,
}

/// What the last sample of the database found.
#[derive(Debug, Default)]
struct Sample {
    reviews: Vec<(ReviewQueue, u64)>,
    notices: Vec<RecipientBacklog>,
}

/// The observable gauges and the task sampling the backlogs they report; both stop when
/// this is dropped.
#[derive(Debug)]
pub struct Gauges {
    _instruments: Vec<ObservableGauge<f64>>,
    _counts: Vec<ObservableGauge<u64>>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Drop for Gauges {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// What the gauges read.
#[derive(Debug, Clone)]
pub struct Sources {
    pub store: Store,
    pub policy: Arc<PolicyHolder>,
    pub registry: Arc<RegistryHolder>,
    pub tls: Arc<TlsHolder>,
    /// After how long an unreviewed break-glass entry is overdue.
    pub break_glass_due: Duration,
}

/// The interval backlogs are sampled at: the metric export interval
/// (`OTEL_METRIC_EXPORT_INTERVAL`, ms), so each export carries a fresh sample.
pub fn sample_interval() -> Duration {
    std::env::var("OTEL_METRIC_EXPORT_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_SAMPLE_INTERVAL, Duration::from_millis)
        .max(MIN_SAMPLE_INTERVAL)
}

/// Registers the gauges and starts sampling the database every `interval`. The policy
/// version and the certificates' expiry are read from what is in force at each export,
/// so a reload shows at the next one.
pub fn start_gauges(sources: Sources, interval: Duration) -> Gauges {
    let meter = meter();
    let sample = Arc::new(Mutex::new(Sample::default()));
    let days_left = |not_after: i64| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Whole seconds over a day's: exact enough for an expiry alert.
        (not_after - now) as f64 / 86_400.0
    };

    let tls = Arc::clone(&sources.tls);
    let server_expiry = meter
        .f64_observable_gauge("safegate.tls.server_certificate.expiry")
        .with_description(
            "Days until the server certificate in force expires (negative once expired)",
        )
        .with_unit("d")
        .with_callback(move |observer| {
            observer.observe(days_left(tls.current().certificate_not_after), &[]);
        })
        .build();
    let registry = Arc::clone(&sources.registry);
    let authority_expiry = meter
        .f64_observable_gauge("safegate.registry.authority.expiry")
        .with_description("Days until each registry authority's certificate expires")
        .with_unit("d")
        .with_callback(move |observer| {
            for (authority, not_after) in registry.current().authority_expiry() {
                observer.observe(
                    days_left(not_after),
                    &[KeyValue::new("safegate.authority", authority)],
                );
            }
        })
        .build();
    let held = Arc::clone(&sample);
    let delivery_lag = meter
        .f64_observable_gauge("safegate.notifications.delivery_lag")
        .with_description(
            "Age of each recipient system's oldest notice not yet acknowledged (0 when none)",
        )
        .with_unit("s")
        .with_callback(move |observer| {
            for backlog in &held.lock().unwrap_or_else(PoisonError::into_inner).notices {
                observer.observe(
                    backlog.lag_secs,
                    &[KeyValue::new(
                        "safegate.recipient_system",
                        backlog.recipient_system.clone(),
                    )],
                );
            }
        })
        .build();

    let policy = Arc::clone(&sources.policy);
    let policy_version = meter
        .u64_observable_gauge("safegate.policy.in_force")
        .with_description("1 for the sharing policy version in force (SHA-256 of its files)")
        .with_callback(move |observer| {
            observer.observe(
                1,
                &[KeyValue::new(
                    "safegate.policy_version",
                    policy.current().version().to_owned(),
                )],
            );
        })
        .build();
    let held = Arc::clone(&sample);
    let notice_backlog = meter
        .u64_observable_gauge("safegate.notifications.backlog")
        .with_description("Notices each recipient system has not acknowledged yet")
        .with_unit("{notice}")
        .with_callback(move |observer| {
            for backlog in &held.lock().unwrap_or_else(PoisonError::into_inner).notices {
                observer.observe(
                    backlog.notices,
                    &[KeyValue::new(
                        "safegate.recipient_system",
                        backlog.recipient_system.clone(),
                    )],
                );
            }
        })
        .build();
    let held = Arc::clone(&sample);
    let review_backlog = meter
        .u64_observable_gauge("safegate.review.backlog")
        .with_description("Items waiting in each review queue")
        .with_unit("{item}")
        .with_callback(move |observer| {
            for (queue, count) in &held.lock().unwrap_or_else(PoisonError::into_inner).reviews {
                observer.observe(*count, &queue.attributes());
            }
        })
        .build();

    let sampler = tokio::spawn(sample_backlogs(sources, sample, interval));
    Gauges {
        _instruments: vec![server_expiry, authority_expiry, delivery_lag],
        _counts: vec![policy_version, notice_backlog, review_backlog],
        sampler,
    }
}

/// Samples the backlogs into `sample` every `interval`. A recipient whose backlog
/// emptied is reported as 0 rather than dropped, so a dashboard sees it drain.
async fn sample_backlogs(sources: Sources, sample: Arc<Mutex<Sample>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let reviews = review_backlogs(&sources.store, sources.break_glass_due).await;
        let notices = sources.store.notice_backlog().await;
        let (reviews, notices) = match (reviews, notices) {
            (Ok(reviews), Ok(notices)) => {
                if failing {
                    tracing::info!("metrics: backlogs sampled again");
                    failing = false;
                }
                (reviews, notices)
            }
            (Err(error), _) | (_, Err(error)) => {
                // The health watcher reports the database; say once that samples stopped.
                if !failing {
                    tracing::warn!(%error, "metrics: cannot sample backlogs; reporting the last sample");
                    failing = true;
                }
                continue;
            }
        };
        let now = time::OffsetDateTime::now_utc();
        let mut held = sample.lock().unwrap_or_else(PoisonError::into_inner);
        let mut backlogs: Vec<RecipientBacklog> = notices
            .into_iter()
            .map(|b| RecipientBacklog {
                lag_secs: oldest_age(&b.oldest_created_at, now),
                recipient_system: b.recipient_system,
                notices: b.notices,
            })
            .collect();
        for before in &held.notices {
            if !backlogs
                .iter()
                .any(|b| b.recipient_system == before.recipient_system)
            {
                backlogs.push(RecipientBacklog {
                    recipient_system: before.recipient_system.clone(),
                    notices: 0,
                    lag_secs: 0.0,
                });
            }
        }
        *held = Sample {
            reviews,
            notices: backlogs,
        };
    }
}

/// Seconds from an RFC 3339 creation time to `now` (0 if it cannot be read).
fn oldest_age(created_at: &str, now: time::OffsetDateTime) -> f64 {
    time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
        .map(|at| (now - at).as_seconds_f64().max(0.0))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_time_format_sorts_as_time_and_reads_back() {
        let earlier = time::macros::datetime!(2025-03-01 09:05:07.25 UTC);
        let later = time::macros::datetime!(2025-03-01 10:00:00 UTC);
        let (a, b) = (rfc3339_micros(earlier), rfc3339_micros(later));
        assert_eq!(a, "2025-03-01T09:05:07.250000Z");
        assert!(a < b);
        assert_eq!(oldest_age(&a, later), 3292.75);
        assert_eq!(oldest_age("not a time", later), 0.0);
    }
}
