//! Builds the gateway from settings and runs it until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::api::server::{self, Health, Services};
use crate::config::Settings;
use crate::console::Console;
use crate::domain::alerts::{AlertEvaluator, AlertRules, Cases};
use crate::domain::contact::{ContactRules, Contacts};
use crate::domain::identity::steward::log_pending;
use crate::domain::identity::{MatchRules, Steward};
use crate::domain::ledger::bound::BoundTable;
use crate::domain::ledger::rotation::rotate;
use crate::domain::ledger::witnessing::{Cosigner, WitnessHealth, WitnessPolicy};
use crate::domain::ledger::{CheckpointSigner, Ledger};
use crate::domain::notify::{Deliveries, IgSystems, WitnessLagNotices};
use crate::domain::policy::PolicyHolder;
use crate::domain::publish::Records;
use crate::domain::query::Queries;
use crate::registry::{Registry, RegistryHolder};
use crate::reload::Reloader;
use crate::store::Store;
use crate::tls::{ServerTls, TlsHolder};
use anyhow::Context;
use tokio::net::TcpListener;

/// The identity matching rules' file in the policy directory.
pub const MATCHING_RULES: &str = "matching.toml";
/// The contact rules' file (deadlines and escalation) in the policy directory.
pub const CONTACT_RULES: &str = "contact.toml";
/// How often overdue contact requests are looked for and escalated.
const CONTACT_SWEEP: Duration = Duration::from_secs(30);
/// The privacy alert rules' file in the policy directory.
pub const ALERT_RULES: &str = "alerts.toml";

/// A gateway bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Arc<TlsHolder>,
    registry: Arc<RegistryHolder>,
    ig_systems: Arc<IgSystems>,
    store: Store,
    ledger: Ledger,
    policy: Arc<PolicyHolder>,
    rules: Arc<MatchRules>,
    contacts: Contacts,
    settings: Settings,
    /// Whether witness cosigning lags (`None` without a witness policy).
    witness_health: Option<Arc<WitnessHealth>>,
    /// This process's privacy alert evaluator.
    alerts: AlertEvaluator,
    /// The IG officers' console, when `console_listen_addr` is set.
    console: Option<Console>,
    console_addr: Option<SocketAddr>,
}

impl Application {
    /// Loads the registry and certificates, connects to and migrates the database, and
    /// binds the listen address. Each failure names the setting at fault.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let registry = Registry::load(&settings.registry, Some(&settings.pki_dir))
            .context("loading the agency registry (`registry`)")?;
        let tls = ServerTls::load(
            &settings.tls_cert,
            &settings.tls_key,
            &registry.client_ca_pem(),
        )
        .context("loading the server certificate and key (`tls_cert`, `tls_key`)")?;
        let ig_systems = Arc::new(IgSystems::new(
            registry.systems_with_role(crate::domain::Role::IgOfficer),
        ));
        let policy = PolicyHolder::load(&settings.policy_dir)
            .await
            .context("loading the sharing policy (`policy_dir`)")?;
        let matching = settings.policy_dir.join(MATCHING_RULES);
        let rules = MatchRules::load(&matching).with_context(|| {
            format!(
                "loading the identity matching rules {} (`policy_dir`)",
                matching.display()
            )
        })?;
        let contact_file = settings.policy_dir.join(CONTACT_RULES);
        let contact_rules = ContactRules::load(&contact_file).map_err(|reason| {
            anyhow::anyhow!(
                "loading the contact rules {} (`policy_dir`): {reason}",
                contact_file.display()
            )
        })?;
        let alert_file = settings.policy_dir.join(ALERT_RULES);
        let alert_rules = AlertRules::load(&alert_file).with_context(|| {
            format!(
                "loading the privacy alert rules {} (`policy_dir`)",
                alert_file.display()
            )
        })?;
        let signer = checkpoint_signer(&settings)?;
        let store = Store::connect(&settings.database_url, settings.database_max_connections)
            .await
            .context("opening the database (`database_url`)")?;
        store.migrate().await.context("migrating the database")?;
        // A new checkpoint key: the change is recorded under the old key first.
        if let Some(path) = &settings.checkpoint_key_previous {
            let previous = CheckpointSigner::load(path)
                .context("loading the previous checkpoint key (`checkpoint_key_previous`)")?
                .with_origin(&settings.log_origin)
                .context("`log_origin` is not a valid checkpoint origin")?;
            if let Some(seq) = rotate(&store, &previous, &signer)
                .await
                .context("recording the checkpoint key change (`checkpoint_key_previous`)")?
            {
                tracing::info!(seq, key_id = %signer.key_id(), "checkpoint key changed; the change is log entry {seq}");
            }
        }
        // What witnesses are configured with to trust this log's checkpoints.
        let log_vkey = signer.vkey().render();
        let ledger = Ledger::start_observed(
            store.clone(),
            signer,
            Arc::new(crate::metrics::LedgerMetrics::new()),
            bound_tables(&store),
        );
        // Identity decisions committed before a crash, whose entries were not written yet.
        log_pending(&store, &ledger, None)
            .await
            .context("writing pending identity decisions to the disclosure log")?;
        // Witnessing runs beside the append path: disclosures never wait for a witness.
        let (ledger, witness_health) = match &settings.witness_policy {
            Some(path) => {
                let policy = Arc::new(WitnessPolicy::load(path).map_err(|reason| {
                    anyhow::anyhow!(
                        "witness policy {} (`witness_policy`): {reason}",
                        path.display()
                    )
                })?);
                let alarm = Arc::new(WitnessLagNotices {
                    store: Arc::new(store.clone()),
                    ig_systems: Arc::clone(&ig_systems),
                });
                let health = Cosigner::start(store.clone(), Arc::clone(&policy), alarm);
                (ledger.with_witnesses(policy), Some(health))
            }
            None => (ledger, None),
        };
        // Privacy alerts are evaluated beside the append path, fed each committed batch.
        let alerts = AlertEvaluator::start(
            ledger.clone(),
            Arc::new(store.clone()),
            Arc::new(alert_rules),
            registry.systems_with_role(crate::domain::Role::IgOfficer),
        );
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("binding `listen_addr` {}", settings.listen_addr))?;
        let local_addr = listener.local_addr()?;
        let registry = Arc::new(registry);
        let registry_in_force = Arc::new(RegistryHolder::new(Arc::clone(&registry)));
        let rules = Arc::new(rules);
        let console = match settings.console_listen_addr {
            Some(addr) => {
                let cert = std::fs::read(&settings.tls_cert).with_context(|| {
                    format!("reading `tls_cert` {}", settings.tls_cert.display())
                })?;
                let key = std::fs::read(&settings.tls_key)
                    .with_context(|| format!("reading `tls_key` {}", settings.tls_key.display()))?;
                let tls = crate::console::server_config(&cert, &key, &registry.officer_ca_pem())
                    .map_err(|reason| {
                        anyhow::anyhow!("the console's TLS (`console_listen_addr`): {reason}")
                    })?;
                let console = Console::bind(
                    addr,
                    tls,
                    ledger.clone(),
                    store.clone(),
                    Arc::clone(&rules),
                    Arc::clone(&registry_in_force),
                )
                .await
                .with_context(|| format!("binding `console_listen_addr` {addr}"))?;
                Some(console)
            }
            None => None,
        };
        let console_addr = match &console {
            Some(console) => Some(console.local_addr()?),
            None => None,
        };
        tracing::info!(
            %local_addr,
            backend = ?store.backend(),
            systems = registry.len(),
            officers = registry.officers(),
            console = ?console_addr,
            %log_vkey,
            "gateway ready"
        );
        let policy = Arc::new(policy);
        let contacts = Contacts::new(
            Arc::new(store.clone()),
            ledger.clone(),
            Arc::clone(&policy),
            Arc::new(contact_rules),
            registry.systems(),
        );
        // Contact steps logged before a crash whose rows were not stored yet: derived
        // from their entries, which carry them whole.
        let restored = contacts
            .restore_logged()
            .await
            .context("restoring contact steps logged but not stored")?;
        if restored > 0 {
            tracing::warn!(
                restored,
                "contact steps logged but not stored were restored from their log entries"
            );
        }
        Ok(Application {
            listener,
            local_addr,
            tls: Arc::new(TlsHolder::new(tls)),
            registry: registry_in_force,
            ig_systems,
            store,
            ledger,
            contacts,
            policy,
            rules,
            settings,
            witness_health,
            alerts,
            console,
            console_addr,
        })
    }

    /// This process's privacy alert evaluator.
    pub fn alerts(&self) -> AlertEvaluator {
        self.alerts.clone()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The console's address, when it is served (`console_listen_addr`).
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console_addr
    }

    /// The disclosure ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Whether witness cosigning lags, when a witness policy is configured.
    pub fn witness_health(&self) -> Option<Arc<WitnessHealth>> {
        self.witness_health.clone()
    }

    /// Contact requests: tests drive their overdue escalation on a controlled clock.
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// The database the gateway uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` completes, then stops accepting calls and lets in-flight
    /// calls finish for up to `shutdown_grace_secs`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let reloader = Arc::new(Reloader::new(
            &self.settings,
            Arc::clone(&self.policy),
            Arc::clone(&self.registry),
            Arc::clone(&self.tls),
            Arc::clone(&self.ig_systems),
        ));
        let hangups = tokio::spawn(reload_on_hangup(Arc::clone(&reloader)));
        let gauges = crate::metrics::start_gauges(
            crate::metrics::Sources {
                store: self.store.clone(),
                policy: Arc::clone(&self.policy),
                registry: Arc::clone(&self.registry),
                tls: Arc::clone(&self.tls),
                break_glass_due: self.settings.break_glass_review_due,
            },
            crate::metrics::sample_interval(),
        );
        let (health, grpc) = server::server(Services {
            ledger: self.ledger.clone(),
            registry: Arc::clone(&self.registry),
            reloader,
            cases: Cases::new(self.ledger.clone(), Arc::new(self.store.clone())),
            deliveries: Deliveries::new(Arc::new(self.store.clone()), self.ledger.clone()),
            queries: Queries::new(
                Arc::new(self.store.clone()),
                Arc::clone(&self.policy),
                self.ledger.clone(),
                Arc::clone(&self.ig_systems),
                Arc::clone(&self.rules),
            ),
            contacts: self.contacts.clone(),
            records: Records::new(
                Arc::new(self.store.clone()),
                Arc::clone(&self.policy),
                Arc::clone(&self.rules),
                self.ledger.clone(),
            ),
            steward: Steward::new(
                Arc::new(self.store.clone()),
                self.ledger.clone(),
                Arc::clone(&self.rules),
            ),
        });
        let watcher = tokio::spawn(watch_database(
            self.store.clone(),
            health,
            self.settings.health_interval,
            self.witness_health.clone(),
        ));
        let sweeper = tokio::spawn(escalate_overdue(self.contacts.clone()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let console = self.console.map(|console| {
            let mut stopping = stop_tx.subscribe();
            tokio::spawn(console.run_until_stopped(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            }))
        });
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining in-flight calls");
            let _ = stop_tx.send(true);
        };
        let server = grpc.serve(self.listener, self.tls, signal);

        let grace = self.settings.shutdown_grace;
        let mut stopping = stop_rx;
        let deadline = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            served = server => served,
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "drain grace expired; closing remaining calls");
                Ok(())
            }
        };
        watcher.abort();
        hangups.abort();
        sweeper.abort();
        drop(gauges);
        self.alerts.stop().await;
        if let Some(console) = console {
            console.abort();
        }
        self.store.close().await;
        tracing::info!("gateway stopped");
        result
    }
}

/// The tables beside the disclosure log that rooms other than the ledger keep, which
/// `audit verify` checks against the entries that record their rows: the ledger is handed
/// them here rather than importing those rooms (see `domain::ledger::bound`), each read
/// from `store`.
pub fn bound_tables(store: &Store) -> Vec<Arc<dyn BoundTable>> {
    vec![
        Arc::new(crate::domain::identity::bound::LoggedDecisions(Arc::new(
            store.clone(),
        ))),
        Arc::new(crate::domain::contact::bound::ContactTables(Arc::new(
            store.clone(),
        ))),
    ]
}

/// The checkpoint signing key (`checkpoint_key`), signing as the log named `log_origin`.
pub fn checkpoint_signer(settings: &Settings) -> anyhow::Result<CheckpointSigner> {
    CheckpointSigner::load(&settings.checkpoint_key)
        .context("loading the checkpoint signing key (`checkpoint_key`)")?
        .with_origin(&settings.log_origin)
        .context("`log_origin` is not a valid checkpoint origin")
}

/// Keeps the health service in step with the database: NOT_SERVING while it cannot be
/// reached, SERVING once it can. Logs each transition once. Witness cosigning that lags
/// is a warning, logged on each change, and never NOT_SERVING: disclosures go on.
async fn watch_database(
    store: Store,
    health: Health,
    interval: Duration,
    witnesses: Option<Arc<WitnessHealth>>,
) {
    let mut last: Option<bool> = None;
    let mut warned = false;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let lagging = witnesses.as_ref().is_some_and(|w| w.lagging());
        if lagging != warned {
            if lagging {
                tracing::warn!(
                    quorum_size = witnesses.as_ref().map_or(0, |w| w.quorum_size()),
                    "health WARNING: witness cosigning lags beyond the policy's bound (still SERVING)"
                );
            } else {
                tracing::info!("health: witness cosigning caught up");
            }
            warned = lagging;
        }
        let serving = match store.probe().await {
            Ok(()) => true,
            Err(error) => {
                if last != Some(false) {
                    tracing::error!(%error, "database unavailable: reporting NOT_SERVING");
                }
                false
            }
        };
        if last == Some(false) && serving {
            tracing::info!("database reachable again: reporting SERVING");
        }
        if last != Some(serving) {
            health.set_serving(serving).await;
            last = Some(serving);
        }
    }
}

/// Escalates overdue contact requests on the gateway's clock, every [`CONTACT_SWEEP`].
/// A failure is logged and the next sweep tries again.
async fn escalate_overdue(contacts: Contacts) {
    let mut ticker = tokio::time::interval(CONTACT_SWEEP);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match contacts
            .escalate_overdue(time::OffsetDateTime::now_utc())
            .await
        {
            Ok(escalated) if !escalated.is_empty() => {
                tracing::info!(
                    count = escalated.len(),
                    "overdue contact requests escalated"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "escalating overdue contact requests failed"),
        }
    }
}

/// Reloads the policy, registry and server certificate on SIGHUP; if any file fails to
/// load, everything in force stays as it was and the reason is logged.
async fn reload_on_hangup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; reload through AdminService.ReloadPolicy");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match reloader.reload().await {
                Ok(in_force) => tracing::info!(
                    policy_version = %in_force.policy_version,
                    server_certificate_sha256 = %in_force.server_certificate_sha256,
                    registry_systems = in_force.registry_systems,
                    registry_authorities = in_force.registry_authorities,
                    "SIGHUP: reloaded the policy, registry and server certificate"
                ),
                Err(error) => tracing::error!(
                    %error,
                    "SIGHUP: reload refused; everything in force stays as it was"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reloader;
    }
}
