//! Rotation without restart: SIGHUP and `AdminService.ReloadPolicy` read the sharing
//! policy, the agency registry with its authorities, and the server certificate and key
//! again, and put them in force together.
//!
//! All or nothing: every file is read and checked before anything is replaced, so a
//! broken file leaves everything in force as it was, and the error says which file and
//! why. Connections already open keep the TLS configuration they were accepted with and
//! their calls finish; the next handshake uses the new certificate and authorities, and
//! the next call is identified against the new registry.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::Role;
use crate::domain::notify::IgSystems;
use crate::domain::policy::{Policy, PolicyError, PolicyHolder};
use crate::registry::{Registry, RegistryError, RegistryHolder};
use crate::tls::{ServerTls, TlsError, TlsHolder};

/// Why a reload was refused; nothing was replaced.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("sharing policy (`policy_dir`): {0}")]
    Policy(#[from] PolicyError),
    #[error("agency registry (`registry`): {0}")]
    Registry(#[from] RegistryError),
    #[error("server TLS: {0}")]
    Tls(#[from] TlsError),
}

/// What is in force, after a reload or as it stayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The sharing policy's version (SHA-256 of its files).
    pub policy_version: String,
    /// SHA-256 of the server certificate presented at the next handshake, hex.
    pub server_certificate_sha256: String,
    /// Registered agency systems.
    pub registry_systems: usize,
    /// Certificate authorities whose client certificates are accepted.
    pub registry_authorities: usize,
}

/// The files a reload reads, and the holders of what is in force.
#[derive(Debug)]
pub struct Reloader {
    policy_dir: PathBuf,
    registry_path: PathBuf,
    pki_dir: PathBuf,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    policy: Arc<PolicyHolder>,
    registry: Arc<RegistryHolder>,
    tls: Arc<TlsHolder>,
    ig_systems: Arc<IgSystems>,
    /// One reload at a time, so two racing reloads cannot leave the older files in force.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Reloads the files named by `settings` into the given holders.
    pub fn new(
        settings: &Settings,
        policy: Arc<PolicyHolder>,
        registry: Arc<RegistryHolder>,
        tls: Arc<TlsHolder>,
        ig_systems: Arc<IgSystems>,
    ) -> Self {
        Reloader {
            policy_dir: settings.policy_dir.clone(),
            registry_path: settings.registry.clone(),
            pki_dir: settings.pki_dir.clone(),
            tls_cert: settings.tls_cert.clone(),
            tls_key: settings.tls_key.clone(),
            policy,
            registry,
            tls,
            ig_systems,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads and checks every file, then puts them all in force; on any error nothing
    /// changes and the error names the file and the reason.
    pub async fn reload(&self) -> Result<InForce, ReloadError> {
        let _one_at_a_time = self.one_at_a_time.lock().await;
        let policy = Policy::load(&self.policy_dir).await?;
        let registry = Registry::load(&self.registry_path, Some(&self.pki_dir))?;
        let tls = ServerTls::load(&self.tls_cert, &self.tls_key, &registry.client_ca_pem())?;
        // Everything loaded: replace it all. Each holder swaps a whole value, so a request
        // or handshake sees either the old or the new one, never a mixture within a holder.
        self.ig_systems
            .replace(registry.systems_with_role(Role::IgOfficer));
        self.registry.replace(registry);
        self.tls.replace(tls);
        self.policy.install(policy);
        Ok(self.in_force())
    }

    /// What is in force now.
    pub fn in_force(&self) -> InForce {
        let registry = self.registry.current();
        InForce {
            policy_version: self.policy.current().version().to_owned(),
            server_certificate_sha256: self.tls.current().certificate_sha256,
            registry_systems: registry.len(),
            registry_authorities: registry.authority_count(),
        }
    }
}
