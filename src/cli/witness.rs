//! `safegate witness`: run a witness for partner agencies' disclosure logs, and make its
//! key. A witness needs no gateway settings: its key, its database and the logs it trusts.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::domain::ledger::checkpoint::{generate_key_pem, load_key};
use crate::domain::ledger::note::{self, Vkey};
use crate::store::WitnessStore;
use crate::witness::{Witness, WitnessKey, http};

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Serve `POST /add-checkpoint` (C2SP tlog-witness) for the logs given by --log.
    Serve(ServeArgs),
    /// Write a new witness key and print its verifier key for the logs' witness policy.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (plain HTTP; put TLS in front of it beyond loopback).
    #[arg(long, default_value = "127.0.0.1:7380")]
    listen: SocketAddr,
    /// The witness's Ed25519 PKCS#8 PEM key (as `safegate witness keygen` writes).
    #[arg(long)]
    key: PathBuf,
    /// The witness's name in its cosignatures (a schema-less URL, no spaces or `+`).
    #[arg(long, default_value = "safegate.local/witness")]
    name: String,
    /// The witness's own database: sqlite: or postgres:// URL.
    #[arg(long, default_value = "sqlite://safegate-witness.db?mode=rwc")]
    database: String,
    /// A log to witness, by its verifier key `<origin>+<key hash>+<key>` (repeat).
    #[arg(long = "log", required = true)]
    logs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (refused if it exists).
    #[arg(long)]
    key: PathBuf,
    /// The witness's name in its cosignatures.
    #[arg(long, default_value = "safegate.local/witness")]
    name: String,
}

/// Builds the witness from its flags.
pub async fn witness(args: &ServeArgs) -> anyhow::Result<Witness> {
    if !note::valid_name(&args.name) {
        bail!("--name must be non-empty, without spaces or `+`");
    }
    let key = load_key(&args.key).context("loading the witness key (--key)")?;
    let logs = args
        .logs
        .iter()
        .map(|text| {
            Vkey::parse(text)
                .filter(|vkey| vkey.signature_type == note::ED25519_TYPE)
                .with_context(|| format!("--log {text} is not an Ed25519 log verifier key"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = WitnessStore::open(&args.database)
        .await
        .context("opening the witness database (--database)")?;
    Ok(Witness::new(
        WitnessKey {
            name: args.name.clone(),
            key,
            logs,
        },
        store,
    ))
}

pub async fn run(
    command: WitnessCommand,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match command {
        WitnessCommand::Serve(args) => {
            let witness = witness(&args).await?;
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("binding --listen {}", args.listen))?;
            tracing::info!(
                addr = %listener.local_addr()?,
                vkey = %witness.vkey().render(),
                logs = args.logs.len(),
                "witness ready"
            );
            http::serve(listener, witness, shutdown)
                .await
                .context("serving the witness")
        }
        WitnessCommand::Keygen(args) => {
            if !note::valid_name(&args.name) {
                bail!("--name must be non-empty, without spaces or `+`");
            }
            if args.key.exists() {
                bail!("{} exists: not replacing a witness key", args.key.display());
            }
            let (private, _) = generate_key_pem().context("generating a key")?;
            std::fs::write(&args.key, private)
                .with_context(|| format!("writing {}", args.key.display()))?;
            let key = load_key(&args.key)?;
            let vkey = WitnessKey {
                name: args.name,
                key,
                logs: Vec::new(),
            }
            .vkey();
            println!("{}", vkey.render());
            Ok(())
        }
    }
}
