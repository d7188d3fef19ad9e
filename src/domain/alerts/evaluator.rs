//! Runs the rules beside the append path. The ledger's committer hands each committed
//! batch over (moved, never copied, and never waited for); the engine takes it in memory
//! and raises what it completes. Every few seconds, and whenever asked, the evaluator
//! also reads back any entries it has not seen (another gateway process's, or a batch
//! that found the hand-off full), checks the break-glass deadlines that passed, and looks
//! for involvements whose end was recorded.
//!
//! Over one database shared by several gateway processes exactly one evaluates: it holds
//! a lease row it renews; another takes over when the lease runs out, rebuilding the
//! engine's state from the log (the last `lookback` of it, replayed without raising up to
//! where the previous evaluator had got). An alert is unique by key in the database, so
//! even two evaluators at once could not raise one twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::domain::alerts::clock::{format_utc, parse_utc};
use crate::domain::alerts::engine::{Engine, Finding};
use crate::domain::alerts::rules::AlertRules;
use crate::domain::alerts::storage::AlertStorage;
use crate::domain::alerts::{check_break_glass, check_ended};
use crate::domain::ledger::EntryFilter;
use crate::domain::ledger::alert_rows::Alert;
use crate::domain::ledger::review::Annotation;
use crate::domain::ledger::{Committed, Decision, Entry, EntryKind, Ledger};
use crate::error::Error;

/// How often the evaluator looks for entries, deadlines and ended involvements it has
/// not seen, and renews its lease.
const TICK: Duration = Duration::from_secs(5);
/// How long a lease lasts unrenewed: after this, another process takes over.
const LEASE_SECS: i64 = 30;
/// Entries read back per page.
const PAGE: u32 = 1_000;
/// Ends are looked for again this far back, since a transaction that recorded one may
/// commit after a later one did.
const ENDED_MARGIN_SECS: i64 = 120;

/// The rpc the gateway's own alert entries name.
pub const ALERT_RPC: &str = "safegate.alerts/evaluate";

enum Command {
    Sync {
        now_secs: Option<i64>,
        done: oneshot::Sender<Result<bool, Error>>,
    },
    Stop {
        done: oneshot::Sender<()>,
    },
}

/// A handle on this process's evaluator.
#[derive(Debug, Clone)]
pub struct AlertEvaluator {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

fn wall_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl AlertEvaluator {
    /// Subscribes to `ledger`'s append path and starts evaluating `rules` over what
    /// `storage` holds (the same database as `ledger`'s); new alerts are notices to
    /// `ig_systems`.
    pub fn start(
        ledger: Ledger,
        storage: Arc<dyn AlertStorage>,
        rules: Arc<AlertRules>,
        ig_systems: Vec<String>,
    ) -> Self {
        let handoff = ledger.subscribe();
        let (commands, received) = mpsc::channel(16);
        let worker = Worker {
            store: storage,
            ledger,
            rules,
            ig_systems,
            holder: uuid::Uuid::new_v4().to_string(),
            engine: None,
            ended_since: 0,
            ended_seen: HashMap::new(),
            cursor_saved: 0,
        };
        tokio::spawn(worker.run(handoff, received));
        AlertEvaluator { commands }
    }

    /// Evaluates everything committed so far, checks break-glass deadlines as at
    /// `now_secs` (the wall clock when `None`) and looks for ended involvements; returns
    /// whether this process is the one evaluating.
    pub async fn sync(&self, now_secs: Option<i64>) -> Result<bool, Error> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Sync { now_secs, done })
            .await
            .map_err(|_| Error::internal("the alert evaluator has stopped"))?;
        answer
            .await
            .map_err(|_| Error::internal("the alert evaluator has stopped"))?
    }

    /// Stops evaluating and gives up the lease, so another process takes over at once.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Stop { done }).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

struct Worker {
    ledger: Ledger,
    store: Arc<dyn AlertStorage>,
    rules: Arc<AlertRules>,
    ig_systems: Vec<String>,
    /// This process's name on the lease.
    holder: String,
    /// The rules' state, while this process holds the lease.
    engine: Option<Engine>,
    /// Ends recorded from this time on are still to be looked at (seconds).
    ended_since: i64,
    /// Ends already looked at, by record id, with their time.
    ended_seen: HashMap<String, i64>,
    /// The position last written to the lease row.
    cursor_saved: u64,
}

impl Worker {
    async fn run(
        mut self,
        mut handoff: mpsc::Receiver<Committed>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(batch) = handoff.recv() => {
                    if let Err(error) = self.batch(batch).await {
                        tracing::error!(%error, "privacy alert evaluation failed; retrying from the log");
                        self.engine = None;
                    }
                }
                _ = ticker.tick() => {
                    if let Err(error) = self.round(wall_secs()).await {
                        tracing::warn!(%error, "privacy alert evaluation round failed; retrying");
                        self.engine = None;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Sync { now_secs, done }) => {
                        let outcome = self.round(now_secs.unwrap_or_else(wall_secs)).await;
                        if outcome.is_err() {
                            self.engine = None;
                        }
                        let _ = done.send(outcome.map(|()| self.engine.is_some()));
                    }
                    Some(Command::Stop { done }) => {
                        self.release().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.release().await;
                        return;
                    }
                },
            }
        }
    }

    async fn release(&mut self) {
        if self.engine.take().is_some()
            && let Err(error) = self.store.release_alert_lease(&self.holder).await
        {
            tracing::warn!(%error, "the privacy alert lease could not be released; it lapses");
        }
    }

    /// A batch just committed by this process.
    async fn batch(&mut self, batch: Committed) -> Result<(), Error> {
        let Some(engine) = &self.engine else {
            return Ok(());
        };
        let Some(&(first, _)) = batch.first() else {
            return Ok(());
        };
        if first > engine.evaluated_seq() + 1 {
            self.catch_up(first - 1).await?;
        }
        let mut found = Vec::new();
        if let Some(engine) = &mut self.engine {
            for (seq, entry) in &batch {
                engine.observe(*seq, entry, &mut found);
            }
        }
        self.raise_all(found).await?;
        self.deadlines(wall_secs()).await
    }

    /// Everything there is to do now: lead if nobody else does, catch up with the log,
    /// the deadlines that passed by `now`, and ended involvements.
    async fn round(&mut self, now: i64) -> Result<(), Error> {
        if !self.lead().await? {
            return Ok(());
        }
        self.catch_up(u64::MAX).await?;
        self.deadlines(now).await?;
        self.ended().await?;
        let evaluated = self.engine.as_ref().map_or(0, Engine::evaluated_seq);
        if evaluated > self.cursor_saved {
            if !self
                .store
                .save_alert_cursor(&self.holder, evaluated)
                .await?
            {
                // The lease was lost (this process stalled past it): another evaluates.
                self.engine = None;
                return Ok(());
            }
            self.cursor_saved = evaluated;
        }
        Ok(())
    }

    /// Takes or renews the lease; on taking it, rebuilds the state from the log.
    async fn lead(&mut self) -> Result<bool, Error> {
        let wall = wall_secs();
        let cursor = self
            .store
            .alert_lease(
                &self.holder,
                &format_utc(wall),
                &format_utc(wall + LEASE_SECS),
            )
            .await?;
        let Some(cursor) = cursor else {
            if self.engine.take().is_some() {
                tracing::info!("another gateway process evaluates the privacy alert rules now");
            }
            return Ok(false);
        };
        if self.engine.is_none() {
            self.rebuild(cursor, wall).await?;
        }
        Ok(true)
    }

    /// Replays the log's last `lookback` into a fresh engine: up to `cursor` (where the
    /// previous evaluator had got) without raising, after it as new.
    async fn rebuild(&mut self, cursor: u64, wall: i64) -> Result<(), Error> {
        let since = format_utc(wall - self.rules.lookback_secs());
        let start = self
            .store
            .first_seq_recorded_since(&since)
            .await?
            .unwrap_or(cursor + 1)
            .min(cursor + 1);
        let mut engine = Engine::new(Arc::clone(&self.rules));
        engine.resume_after(start.saturating_sub(1));
        let mut after = start.saturating_sub(1);
        let mut found = Vec::new();
        while after < cursor {
            let page = self.page(after).await?;
            let Some(last) = page.last().map(|(seq, _)| *seq) else {
                break;
            };
            for (seq, entry) in page.iter().filter(|(seq, _)| *seq <= cursor) {
                engine.observe(*seq, entry, &mut found);
                found.clear();
                if let Some(at) = parse_utc(&entry.recorded_at) {
                    engine.due(at);
                }
            }
            after = last;
        }
        engine.resume_after(cursor.max(engine.evaluated_seq()));
        let window = i64::from(self.rules.involvement_window.opened_before_query_minutes) * 60
            + i64::from(self.rules.involvement_window.ended_after_query_hours) * 3_600;
        self.ended_since = wall - window;
        self.ended_seen.clear();
        self.cursor_saved = cursor;
        tracing::info!(
            replayed_from = start,
            cursor,
            pending_break_glass = engine.pending(),
            "this gateway process evaluates the privacy alert rules"
        );
        self.engine = Some(engine);
        Ok(())
    }

    async fn page(&self, after: u64) -> Result<Vec<(u64, Entry)>, Error> {
        let filter = EntryFilter {
            after_seq: after,
            limit: PAGE,
            ..Default::default()
        };
        Ok(self
            .store
            .entries(&filter)
            .await?
            .into_iter()
            .map(|stored| (stored.seq, stored.entry))
            .collect())
    }

    /// Observes the log's entries after the engine's position, up to `through`.
    async fn catch_up(&mut self, through: u64) -> Result<(), Error> {
        loop {
            let Some(after) = self.engine.as_ref().map(Engine::evaluated_seq) else {
                return Ok(());
            };
            if after >= through {
                return Ok(());
            }
            let page = self.page(after).await?;
            let full = page.len() == PAGE as usize;
            let mut found = Vec::new();
            if let Some(engine) = &mut self.engine {
                for (seq, entry) in page.iter().filter(|(seq, _)| *seq <= through) {
                    engine.observe(*seq, entry, &mut found);
                }
            }
            self.raise_all(found).await?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Rule 1 for each break-glass disclosure whose deadline passed by `now`.
    async fn deadlines(&mut self, now: i64) -> Result<(), Error> {
        let Some(engine) = &mut self.engine else {
            return Ok(());
        };
        let due = engine.due(now);
        for pending in &due {
            if let Some(finding) = check_break_glass(&*self.store, &self.rules, pending).await? {
                self.raise(finding).await?;
            }
        }
        Ok(())
    }

    /// Rule 2 for each involvement whose end was recorded since the last look.
    async fn ended(&mut self) -> Result<(), Error> {
        let since = self.ended_since - ENDED_MARGIN_SECS;
        let ended = self.store.works_with_ended_since(since).await?;
        for involvement in &ended {
            if self.ended_seen.contains_key(&involvement.record_id) {
                continue;
            }
            if let Some(finding) = check_ended(&*self.store, &self.rules, involvement).await? {
                self.raise(finding).await?;
            }
            self.ended_seen
                .insert(involvement.record_id.clone(), involvement.ended_secs);
            self.ended_since = self.ended_since.max(involvement.ended_secs);
        }
        let keep_from = self.ended_since - ENDED_MARGIN_SECS;
        self.ended_seen.retain(|_, at| *at >= keep_from);
        Ok(())
    }

    async fn raise_all(&self, found: Vec<Finding>) -> Result<(), Error> {
        for finding in found {
            self.raise(finding).await?;
        }
        Ok(())
    }

    /// Writes the alert with the log entry that records it and its notices to the IG
    /// office, in one transaction; an alert already raised under the key is left alone.
    async fn raise(&self, finding: Finding) -> Result<(), Error> {
        let mut entry = Entry::new(EntryKind::Alert, Decision::Recorded);
        entry.rpc = ALERT_RPC.into();
        entry.agency = finding.agency.clone();
        entry.system_id = finding.system_id.clone();
        entry.practitioner_id = finding.practitioner_id.clone();
        entry.role = finding.role.clone();
        entry.purpose = "audit".into();
        entry.lawful_basis = "UK GDPR Art 5(1)(f), Art 32; DPA 2018 s62 (logging)".into();
        entry.rule_ids = vec![finding.rule.as_str().into()];
        entry.policy_version = self.rules.version().into();
        let alert = Alert {
            alert_id: uuid::Uuid::new_v4().to_string(),
            alert_key: finding.key,
            rule_id: finding.rule.as_str().into(),
            rules_version: self.rules.version().into(),
            raised_at: entry.recorded_at.clone(),
            system_id: finding.system_id,
            practitioner_id: finding.practitioner_id,
            summary: finding.summary,
            entry_ids: finding.entry_ids,
            log_entry_id: entry.entry_id.clone(),
        };
        entry.reason = crate::domain::ledger::alert_rows::alert_reason(&alert);
        let notices = crate::domain::notify::privacy_alert(&self.ig_systems, &alert)
            .iter()
            .map(crate::domain::notify::Notice::row)
            .collect::<Result<Vec<_>, Error>>()?;
        match self
            .ledger
            .append_annotated(
                entry,
                Annotation::Alert {
                    alert: alert.clone(),
                    notices,
                },
            )
            .await
        {
            Ok(_) => {
                self.store.notices_were_committed();
                tracing::info!(alert_id = %alert.alert_id, rule = %alert.rule_id, system = %alert.system_id, "privacy alert raised");
                Ok(())
            }
            Err(Error::FailedPrecondition {
                rule: "alerts.already_raised",
                ..
            }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
