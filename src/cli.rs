//! The `safegate` command line: `serve`, `migrate`, `pki init` and `demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Layers, Settings};
use crate::startup::Application;
use crate::store::Store;
use crate::{demo, pki, telemetry};

/// Cross-agency safeguarding information-sharing gateway.
#[derive(Debug, Parser)]
#[command(name = "safegate", version, about)]
pub struct Cli {
    /// TOML configuration file (keys as in safegate.example.toml).
    #[arg(long, global = true, env = "SAFEGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gateway over mutual TLS, migrating the database first.
    Serve(ServerFlags),
    /// Apply database migrations and exit.
    Migrate(StorageFlags),
    /// Development PKI.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// The newcomer's one command: dev PKI if absent, SQLite in the data dir, serve.
    Demo(ServerFlags),
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Write a dev CA, a localhost server certificate and one client certificate per
    /// demo agency system.
    Init {
        /// Directory to write into.
        #[arg(long)]
        dir: PathBuf,
        /// Replace an existing PKI in DIR.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
struct StorageFlags {
    /// Data directory (default safegate-data) [env SAFEGATE_DATA_DIR].
    #[arg(long)]
    data_dir: Option<String>,
    /// sqlite: or postgres:// URL (default: SQLite in the data dir) [env SAFEGATE_DATABASE_URL].
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct ServerFlags {
    #[command(flatten)]
    storage: StorageFlags,
    /// Address to listen on (default 127.0.0.1:50051) [env SAFEGATE_LISTEN_ADDR].
    #[arg(long)]
    listen: Option<String>,
    /// Agency registry file (default policies/registry.toml) [env SAFEGATE_REGISTRY].
    #[arg(long)]
    registry: Option<String>,
    /// Sharing-policy directory: sharing.conf and sharing.csv (default policies)
    /// [env SAFEGATE_POLICY_DIR].
    #[arg(long)]
    policy_dir: Option<String>,
    /// PKI directory: server.pem/server.key and the registry's CA files (default DATA_DIR/pki)
    /// [env SAFEGATE_PKI_DIR].
    #[arg(long)]
    pki_dir: Option<String>,
    /// Server certificate, PEM (default PKI_DIR/server.pem) [env SAFEGATE_TLS_CERT].
    #[arg(long)]
    tls_cert: Option<String>,
    /// Server private key, PEM (default PKI_DIR/server.key) [env SAFEGATE_TLS_KEY].
    #[arg(long)]
    tls_key: Option<String>,
}

impl StorageFlags {
    fn apply(self, layers: Layers) -> Layers {
        layers
            .flag("data_dir", self.data_dir)
            .flag("database_url", self.database_url)
    }
}

impl ServerFlags {
    fn apply(self, layers: Layers) -> Layers {
        self.storage
            .apply(layers)
            .flag("listen_addr", self.listen)
            .flag("registry", self.registry)
            .flag("policy_dir", self.policy_dir)
            .flag("pki_dir", self.pki_dir)
            .flag("tls_cert", self.tls_cert)
            .flag("tls_key", self.tls_key)
    }
}

/// Exit status for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

/// Runs the command line; configuration errors exit 2, other failures 1.
pub fn run(cli: Cli) -> ExitCode {
    if let Command::Pki(PkiCommand::Init { dir, force }) = &cli.command {
        return report(pki_init(dir, *force));
    }
    let mut layers = Layers::defaults();
    if let Some(path) = &cli.config {
        layers = match layers.file(path) {
            Ok(layers) => layers,
            Err(error) => return config_failure(&error),
        };
    }
    layers = layers.env(std::env::vars());
    let (layers, demo_mode, migrate_only) = match cli.command {
        Command::Serve(flags) => (flags.apply(layers), false, false),
        Command::Demo(flags) => (flags.apply(layers), true, false),
        Command::Migrate(flags) => (flags.apply(layers), false, true),
        Command::Pki(_) => unreachable_pki(),
    };
    let settings = match layers.resolve() {
        Ok(settings) => settings,
        Err(error) => return config_failure(&error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return report(Err(anyhow::Error::from(error).context("starting Tokio"))),
    };
    report(runtime.block_on(async move {
        let _telemetry = telemetry::init(settings.log_format, &settings.log_filter)?;
        if migrate_only {
            migrate(&settings).await
        } else if demo_mode {
            demo::run(settings, shutdown_signal()).await
        } else {
            serve(settings).await
        }
    }))
}

/// `pki init` is answered before settings are read, so this arm never runs.
fn unreachable_pki() -> ! {
    panic!("pki init is handled before configuration is loaded")
}

fn config_failure(error: &crate::config::ConfigError) -> ExitCode {
    eprintln!("safegate: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("safegate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn pki_init(dir: &Path, force: bool) -> anyhow::Result<()> {
    let written = pki::init(dir, pki::DEMO_SYSTEMS, force)?;
    println!("wrote a development PKI to {}:", dir.display());
    for path in written {
        println!("  {}", path.display());
    }
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database_url, 1)
        .await
        .context("opening the database (`database_url`)")?;
    store.migrate().await.context("migrating the database")?;
    println!("database migrated ({:?})", store.backend());
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
