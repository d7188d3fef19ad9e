//! Builds the gateway from settings and runs it until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::audit::AuditApi;
use crate::api::caller_layer::CallerLayer;
use crate::api::identity::IdentityApi;
use crate::api::message_size::MessageSizeLayer;
use crate::api::notifications::NotificationApi;
use crate::api::proto::{
    self, admin_service_server::AdminServiceServer, audit_service_server::AuditServiceServer,
    identity_resolution_service_server::IdentityResolutionServiceServer,
    identity_service_server::IdentityServiceServer,
    notification_service_server::NotificationServiceServer,
    query_service_server::QueryServiceServer, records_service_server::RecordsServiceServer,
};
use crate::api::query::{AdminApi, QueryApi};
use crate::api::records::RecordsApi;
use crate::api::resolution::ResolutionApi;
use crate::config::Settings;
use crate::console::Console;
use crate::domain::identity::steward::log_pending;
use crate::domain::identity::{MatchRules, Steward};
use crate::domain::ledger::rotation::rotate;
use crate::domain::ledger::witnessing::{Cosigner, WitnessHealth, WitnessPolicy};
use crate::domain::ledger::{CheckpointSigner, Ledger};
use crate::domain::notify::Deliveries;
use crate::domain::policy::PolicyHolder;
use crate::domain::query::Queries;
use crate::domain::records::Records;
use crate::registry::Registry;
use crate::store::Store;

/// The identity matching rules' file in the policy directory.
pub const MATCHING_RULES: &str = "matching.toml";

/// The gRPC services whose health follows the database.
const SERVICES: &[&str] = &["safegate.v1.IdentityService", "safegate.v1.RecordsService"];

/// A gateway bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: ServerTlsConfig,
    registry: Arc<Registry>,
    store: Store,
    ledger: Ledger,
    policy: Arc<PolicyHolder>,
    rules: Arc<MatchRules>,
    settings: Settings,
    /// Whether witness cosigning lags (`None` without a witness policy).
    witness_health: Option<Arc<WitnessHealth>>,
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
        let cert = std::fs::read(&settings.tls_cert)
            .with_context(|| format!("reading `tls_cert` {}", settings.tls_cert.display()))?;
        let key = std::fs::read(&settings.tls_key)
            .with_context(|| format!("reading `tls_key` {}", settings.tls_key.display()))?;
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&cert, &key))
            .client_ca_root(Certificate::from_pem(registry.client_ca_pem()));
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
        let ledger = Ledger::start(store.clone(), signer);
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
                let health = Cosigner::start(
                    store.clone(),
                    Arc::clone(&policy),
                    registry.systems_with_role(crate::domain::Role::IgOfficer),
                );
                (ledger.with_witnesses(policy), Some(health))
            }
            None => (ledger, None),
        };
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("binding `listen_addr` {}", settings.listen_addr))?;
        let local_addr = listener.local_addr()?;
        let registry = Arc::new(registry);
        let rules = Arc::new(rules);
        let console = match settings.console_listen_addr {
            Some(addr) => {
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
                    Arc::clone(&registry),
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
        Ok(Application {
            listener,
            local_addr,
            tls,
            registry,
            store,
            ledger,
            policy: Arc::new(policy),
            rules,
            settings,
            witness_health,
            console,
            console_addr,
        })
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
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let reloader = tokio::spawn(reload_on_hangup(
            Arc::clone(&self.policy),
            self.settings.policy_dir.clone(),
        ));
        let watcher = tokio::spawn(watch_database(
            self.store.clone(),
            reporter,
            self.settings.health_interval,
            self.witness_health.clone(),
        ));
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

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
        let server = Server::builder()
            .tls_config(self.tls)
            .context("configuring TLS")?
            .layer(CallerLayer::new(
                Arc::clone(&self.registry),
                self.ledger.clone(),
            ))
            .layer(MessageSizeLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AdminServiceServer::new(AdminApi::new(
                Arc::clone(&self.policy),
                self.settings.policy_dir.clone(),
                self.ledger.clone(),
            )))
            .add_service(AuditServiceServer::new(AuditApi::new(self.ledger.clone())))
            .add_service(NotificationServiceServer::new(NotificationApi::new(
                Deliveries::new(self.store.clone(), self.ledger.clone()),
                self.ledger.clone(),
            )))
            .add_service(QueryServiceServer::new(QueryApi::new(
                Queries::new(
                    self.store.clone(),
                    Arc::clone(&self.policy),
                    self.ledger.clone(),
                    self.registry
                        .systems_with_role(crate::domain::Role::IgOfficer),
                    Arc::clone(&self.rules),
                ),
                self.ledger.clone(),
            )))
            .add_service(IdentityServiceServer::new(IdentityApi::new(
                self.ledger.clone(),
            )))
            .add_service(RecordsServiceServer::new(RecordsApi::new(
                Records::new(
                    self.store.clone(),
                    Arc::clone(&self.policy),
                    Arc::clone(&self.rules),
                    self.ledger.clone(),
                ),
                self.ledger.clone(),
            )))
            .add_service(IdentityResolutionServiceServer::new(ResolutionApi::new(
                Steward::new(
                    self.store.clone(),
                    self.ledger.clone(),
                    Arc::clone(&self.rules),
                ),
                self.ledger.clone(),
            )))
            .serve_with_incoming_shutdown(incoming(self.listener), signal);

        let grace = self.settings.shutdown_grace;
        let mut stopping = stop_rx;
        let deadline = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            served = server => served.context("serving gRPC"),
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "drain grace expired; closing remaining calls");
                Ok(())
            }
        };
        watcher.abort();
        reloader.abort();
        if let Some(console) = console {
            console.abort();
        }
        self.store.close().await;
        tracing::info!("gateway stopped");
        result
    }
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
    reporter: HealthReporter,
    interval: Duration,
    witnesses: Option<Arc<WitnessHealth>>,
) {
    let mut last: Option<ServingStatus> = None;
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
        let status = match store.probe().await {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                if last != Some(ServingStatus::NotServing) {
                    tracing::error!(%error, "database unavailable: reporting NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if last == Some(ServingStatus::NotServing) && status == ServingStatus::Serving {
            tracing::info!("database reachable again: reporting SERVING");
        }
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            for service in SERVICES {
                reporter.set_service_status(*service, status).await;
            }
            last = Some(status);
        }
    }
}

/// Reloads the sharing policy on SIGHUP; a policy that fails to load leaves the old one
/// in force and the reason is logged.
async fn reload_on_hangup(policy: Arc<PolicyHolder>, dir: std::path::PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; reload the policy through AdminService");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match policy.reload(&dir).await {
                Ok(version) => tracing::info!(%version, "SIGHUP: sharing policy reloaded"),
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: policy reload refused; the old policy stays in force")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (policy, dir);
    }
}

/// Accepted connections with Nagle's algorithm off, so a response's small trailer frame
/// is not held back waiting for the client's delayed ACK (about 40 ms per call), and
/// with TCP keepalive so dead peers are noticed.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}
