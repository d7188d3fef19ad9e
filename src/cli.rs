//! The `safegate` command line: `serve`, `migrate`, `pki init`, `demo`, `audit` and
//! `query`.
//! Each group of subcommands beyond the basics lives in its own module under `cli/`.

mod alerts;
mod audit;
mod contact;
mod identity;
mod progress;
mod query;
mod witness;

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
    /// The disclosure log, read from the database directly: list, verify, export, sar.
    /// Each use is itself written to the log, as the operator (system `cli`).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Ask the running gateway about a person as a demo agency system (dev certificates):
    /// the answer in words, or with --explain what would be released and why.
    Query(query::QueryArgs),
    /// Contact requests as a demo system: ask the team behind an indicator to get in
    /// touch, answer a request made to your team, or list requests and their status.
    Contact(contact::ContactArgs),
    /// The identity steward's work as a demo system (default: the MASH): review tasks,
    /// confirm or reject a potential match, list and split identity links.
    Identity(identity::IdentityArgs),
    /// A witness for partner agencies' disclosure logs (C2SP tlog-witness): serve, keygen.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
}

/// What to run once settings are resolved.
enum Action {
    Serve,
    Demo,
    Migrate,
    Audit(Box<audit::AuditCommand>),
    Query(Box<query::QueryArgs>),
    Identity(Box<identity::IdentityArgs>),
    Contact(Box<contact::ContactArgs>),
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Write a dev CA, a localhost server certificate and one client certificate per
    /// demo agency system, and the demo IG officers' personal certificates (PEM and
    /// PKCS#12) from a CA of their own.
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
    /// Address the IG officers' web console listens on over HTTPS (default: no console;
    /// 127.0.0.1:8443 for `demo`) [env SAFEGATE_CONSOLE_LISTEN_ADDR].
    #[arg(long)]
    console_listen: Option<String>,
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
            .flag("console_listen_addr", self.console_listen)
            .flag("registry", self.registry)
            .flag("policy_dir", self.policy_dir)
            .flag("pki_dir", self.pki_dir)
            .flag("tls_cert", self.tls_cert)
            .flag("tls_key", self.tls_key)
    }
}

/// Exit status for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

/// Runs the command line; configuration errors exit 2, other failures 1 (and a
/// disclosure log that fails verification 3).
pub fn run(cli: Cli) -> ExitCode {
    if let Command::Pki(PkiCommand::Init { dir, force }) = &cli.command {
        return report(pki_init(dir, *force));
    }
    // Offline verification reads a file and a public key: no settings, no database.
    if let Command::Audit(command) = &cli.command
        && let Some(offline) = command.offline()
    {
        return report_status(audit::verify_offline(offline));
    }
    // A witness is its own service: its flags alone, no gateway settings.
    if let Command::Witness(command) = cli.command {
        return report(run_witness(command));
    }
    let mut layers = Layers::defaults();
    if let Some(path) = &cli.config {
        layers = match layers.file(path) {
            Ok(layers) => layers,
            Err(error) => return config_failure(&error),
        };
    }
    layers = layers.env(std::env::vars());
    let (layers, action) = match cli.command {
        Command::Serve(flags) => (flags.apply(layers), Action::Serve),
        Command::Demo(flags) => (
            flags
                .apply(layers)
                .default_for("console_listen_addr", demo::CONSOLE_ADDR),
            Action::Demo,
        ),
        Command::Migrate(flags) => (flags.apply(layers), Action::Migrate),
        Command::Audit(mut command) => (command.apply(layers), Action::Audit(Box::new(command))),
        Command::Query(args) => (args.apply(layers), Action::Query(Box::new(args))),
        Command::Identity(args) => (args.apply(layers), Action::Identity(Box::new(args))),
        Command::Contact(args) => (args.apply(layers), Action::Contact(Box::new(args))),
        Command::Pki(_) | Command::Witness(_) => unreachable_pki(),
    };
    let settings = match layers.resolve() {
        Ok(settings) => settings,
        Err(error) => return config_failure(&error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return report(Err(anyhow::Error::from(error).context("starting Tokio"))),
    };
    report_status(runtime.block_on(async move {
        let _telemetry = telemetry::init(settings.log_format, &settings.log_filter)?;
        let done = |()| ExitCode::SUCCESS;
        match action {
            Action::Migrate => migrate(&settings).await.map(done),
            Action::Demo => demo::run(settings, shutdown_signal()).await.map(done),
            Action::Serve => serve(settings).await.map(done),
            Action::Audit(command) => audit::run(*command, &settings).await,
            Action::Query(args) => query::run(*args, &settings).await.map(done),
            Action::Identity(args) => identity::run(*args, &settings).await.map(done),
            Action::Contact(args) => contact::run(*args, &settings).await.map(done),
        }
    }))
}

/// `pki init` and `witness` are answered before settings are read, so this arm never
/// runs.
fn unreachable_pki() -> ! {
    panic!("pki init and witness are handled before configuration is loaded")
}

fn run_witness(command: witness::WitnessCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting Tokio")?;
    runtime.block_on(async move {
        let _telemetry = telemetry::init(crate::config::LogFormat::Pretty, "info")?;
        witness::run(command, shutdown_signal()).await
    })
}

fn config_failure(error: &crate::config::ConfigError) -> ExitCode {
    eprintln!("safegate: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    report_status(result.map(|()| ExitCode::SUCCESS))
}

fn report_status(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
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
    // Listen for signals before binding, so none arrives unhandled during start-up.
    let shutdown = shutdown_signal();
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown).await
}

/// Completes on Ctrl-C or SIGTERM. The handlers are registered when this is called, not
/// when the future is first polled, so a signal that arrives while the gateway is still
/// starting drains it instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |registered: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match registered {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = wait(interrupt, "Ctrl-C") => {},
                () = wait(terminate, "SIGTERM") => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
