//! `safegate audit list | verify | export | sar`: the disclosure log read from the
//! database directly, for operators and IG officers at the console. Reading the database
//! this way is an operator action, so each command writes its own entry to the log
//! (system `cli`, the OS user as practitioner) through the same group-commit append path
//! as the gateway, keeping the chain, the tree and the checkpoints exact. `verify
//! --export` needs neither database nor key: it checks an export file offline against
//! the public key alone.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::StorageFlags;
use crate::cli::progress::Meter;
use crate::config::{Layers, Settings};
use crate::domain::ledger::checkpoint::public_key_from_pem;
use crate::domain::ledger::export::{ExportCheck, ExportFormat, verify_export_reporting};
use crate::domain::ledger::verify::{Mismatch, Verified};
use crate::domain::ledger::witnessing::{WitnessPolicy, verify_witnessed_reporting};
use crate::domain::ledger::{Decision, Entry, EntryKind, Ledger};
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::store::Store;

/// Exit status when the log (or an export) fails verification.
const EXIT_TAMPERED: u8 = 3;
/// The system id CLI entries are recorded under.
const CLI_SYSTEM: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries, oldest first, as tab-separated lines.
    List(ListArgs),
    /// Verify the log against the signed checkpoint (online), or an export file with the
    /// public key alone (offline, `--export FILE --public-key FILE`). Prints OK with the
    /// entry count and root, or names the first entry that does not match and exits 3.
    Verify(VerifyArgs),
    /// Export entries as JSON lines (verifiable offline when unfiltered), CSV or FHIR R4
    /// AuditEvent NDJSON.
    Export(ExportArgs),
    /// Subject-access report: every disclosure about one person; law-enforcement
    /// entries are held back (counted) until an IG officer releases them.
    Sar(SarArgs),
    /// Privacy alerts (policies/alerts.toml): list, show, assign, close.
    Alerts(crate::cli::alerts::AlertsArgs),
}

/// Where the log is and the key that signs its checkpoints: every entry the CLI writes
/// is signed into a checkpoint like any other.
#[derive(Debug, Args)]
pub struct LogAccess {
    #[command(flatten)]
    pub(crate) storage: StorageFlags,
    /// PKI directory (default DATA_DIR/pki) [env SAFEGATE_PKI_DIR].
    #[arg(long)]
    pki_dir: Option<String>,
    /// Checkpoint signing key, PKCS#8 PEM (default PKI_DIR/checkpoint.key)
    /// [env SAFEGATE_CHECKPOINT_KEY].
    #[arg(long)]
    checkpoint_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct Filters {
    /// Only entries about this gateway person id.
    #[arg(long)]
    person: Option<String>,
    /// Only entries by this agency system.
    #[arg(long)]
    system: Option<String>,
    /// Only entries of this kind (query, explain, notification, export, log_read,
    /// refusal, review).
    #[arg(long)]
    kind: Option<String>,
    /// Only break-glass entries no IG officer has reviewed yet.
    #[arg(long)]
    break_glass_unreviewed: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    access: LogAccess,
    #[command(flatten)]
    filters: Filters,
    /// Most entries to list (1-1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    access: LogAccess,
    /// Ed25519 public key, SPKI PEM (as `checkpoint.pub`). Online: check against this key
    /// rather than the one derived from the checkpoint key. Offline: required.
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// Verify this JSON-lines export offline instead of the database; it must be an
    /// unfiltered export.
    #[arg(long, requires = "public_key")]
    export: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Jsonl,
    Csv,
    Fhir,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    access: LogAccess,
    #[command(flatten)]
    filters: Filters,
    #[arg(long, value_enum)]
    format: FormatArg,
    /// File to write (default standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SarArgs {
    #[command(flatten)]
    access: LogAccess,
    /// The gateway person id the report is about.
    #[arg(long)]
    person: String,
}

/// An offline verification: an export file and a public key.
#[derive(Debug)]
pub struct Offline<'a> {
    export: &'a Path,
    public_key: &'a Path,
}

impl AuditCommand {
    /// The offline verification this command asks for, if it is one.
    pub fn offline(&self) -> Option<Offline<'_>> {
        match self {
            AuditCommand::Verify(VerifyArgs {
                export: Some(export),
                public_key: Some(public_key),
                ..
            }) => Some(Offline { export, public_key }),
            _ => None,
        }
    }

    /// Overlays this command's flags on the settings.
    pub fn apply(&mut self, layers: Layers) -> Layers {
        let access = match self {
            AuditCommand::List(args) => &mut args.access,
            AuditCommand::Verify(args) => &mut args.access,
            AuditCommand::Export(args) => &mut args.access,
            AuditCommand::Sar(args) => &mut args.access,
            AuditCommand::Alerts(args) => args.access(),
        };
        let storage = StorageFlags {
            data_dir: access.storage.data_dir.take(),
            database_url: access.storage.database_url.take(),
        };
        storage
            .apply(layers)
            .flag("pki_dir", access.pki_dir.take())
            .flag("checkpoint_key", access.checkpoint_key.take())
    }
}

/// Runs an audit command against the database named by `settings`.
pub async fn run(command: AuditCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let ledger = open(settings).await?;
    match command {
        AuditCommand::List(args) => list(&ledger, &args).await,
        AuditCommand::Verify(args) => verify(&ledger, args.public_key.as_deref(), settings).await,
        AuditCommand::Export(args) => export(&ledger, &args).await,
        AuditCommand::Sar(args) => sar(&ledger, &args.person).await,
        AuditCommand::Alerts(args) => crate::cli::alerts::run(&ledger, args).await,
    }
}

/// Connects to the log and starts its append path with the checkpoint key.
async fn open(settings: &Settings) -> anyhow::Result<Ledger> {
    let store = Store::connect(&settings.database_url, 2)
        .await
        .context("opening the database (`database_url`)")?;
    store.probe().await.context(
        "the database holds no safegate disclosure log: check `data_dir` / `database_url`",
    )?;
    let signer = crate::startup::checkpoint_signer(settings)
        .context("the CLI signs the entry recording its own use of the log")?;
    let bound = crate::startup::bound_tables(&store);
    Ok(Ledger::start(store, signer, bound))
}

/// The log entry recording this use of the CLI.
pub(crate) fn operator_entry(command: &str, kind: EntryKind) -> Entry {
    let mut entry = Entry::new(kind, Decision::Released);
    entry.rpc = format!("safegate audit {command}");
    entry.system_id = CLI_SYSTEM.into();
    entry.practitioner_id = os_user();
    entry.role = "operator".into();
    entry.purpose = "audit".into();
    entry.lawful_basis = "UK GDPR Art 6(1)(c); DPA 2018 s62 (logging)".into();
    entry.trace_id = uuid::Uuid::new_v4().simple().to_string();
    entry
}

/// The operating-system account running the CLI.
fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .map(|user| user.chars().take(128).collect())
        .unwrap_or_else(|| "unknown-os-user".into())
}

impl Filters {
    fn to_filter(&self, limit: u32) -> EntryFilter {
        let text = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        EntryFilter {
            person_id: text(&self.person),
            system_id: text(&self.system),
            kind: text(&self.kind),
            break_glass_unreviewed: self.break_glass_unreviewed,
            limit,
            ..Default::default()
        }
    }
}

async fn list(ledger: &Ledger, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filters.to_filter(args.limit);
    let mut read = operator_entry("list", EntryKind::LogRead);
    read.subject_person_id = filter.person_id.clone().unwrap_or_default();
    let entries = ledger.list(read, &filter).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "seq\trecorded_at\tkind\tdecision\tagency\tsystem_id\tpractitioner_id\tpurpose\tbreak_glass\tsubject_person_id\treview\tentry_id"
    )?;
    for stored in &entries {
        writeln!(out, "{}", list_line(stored))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list_line(stored: &StoredEntry) -> String {
    let e = &stored.entry;
    let review = match (&stored.latest_review, e.break_glass) {
        (Some(review), _) => review.outcome.as_str(),
        (None, true) => "unreviewed",
        (None, false) => "-",
    };
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    [
        stored.seq.to_string(),
        e.recorded_at.clone(),
        e.kind.as_str().to_owned(),
        e.decision.as_str().to_owned(),
        or_dash(&e.agency),
        or_dash(&e.system_id),
        or_dash(&e.practitioner_id),
        or_dash(&e.purpose),
        e.break_glass.to_string(),
        or_dash(&e.subject_person_id),
        review.to_owned(),
        e.entry_id.clone(),
    ]
    .join("\t")
}

fn public_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the public key {}", path.display()))?;
    public_key_from_pem(&text).with_context(|| {
        format!(
            "{} is not an Ed25519 public key in SPKI PEM (as `checkpoint.pub`)",
            path.display()
        )
    })
}

fn verified(verified: &Verified) -> ExitCode {
    if verified.entries == 0 {
        println!("OK: 0 entries verified; the log is empty and has no checkpoint yet");
    } else {
        println!(
            "OK: {} entries verified; Merkle root {} matches the signed checkpoint",
            verified.entries,
            hex::encode(verified.root)
        );
    }
    ExitCode::SUCCESS
}

fn tampered(mismatch: &Mismatch) -> ExitCode {
    println!("FAILED: {mismatch}");
    ExitCode::from(EXIT_TAMPERED)
}

async fn verify(
    ledger: &Ledger,
    public_key: Option<&Path>,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let key = match public_key {
        Some(path) => public_key_file(path)?,
        None => ledger.public_key().to_vec(),
    };
    // The log against its own checkpoints, then against what the witnesses hold, which
    // its operator cannot remove.
    let policy = match &settings.witness_policy {
        Some(path) => Some(WitnessPolicy::load(path).map_err(|reason| {
            anyhow::anyhow!(
                "witness policy {} (`witness_policy`): {reason}",
                path.display()
            )
        })?),
        None => None,
    };
    let mut meter = Meter::on_stderr("verify", false);
    let checked = verify_witnessed_reporting(
        ledger.store(),
        &key,
        policy.as_ref(),
        &settings.log_origin,
        ledger.bound_tables(),
        &mut |p| meter.update(p),
    )
    .await;
    meter.finish();
    let (outcome, _, witnessed) = checked?;
    let mut read = operator_entry("verify", EntryKind::LogRead);
    read.rule_ids = vec!["audit.verify".into()];
    read.reason = match &outcome {
        Ok(done) => format!("disclosure log verified: {} entries", done.entries),
        Err(mismatch) => format!(
            "disclosure log failed verification at entry {}",
            mismatch.seq
        ),
    };
    let logged = ledger.append(read).await;
    match (outcome, logged) {
        (Ok(done), Ok(_)) => {
            let status = verified(&done);
            if let Some(seen) = witnessed {
                println!(
                    "witnessed: {} entries cosigned by a quorum of {} ({})",
                    seen.quorum_size,
                    seen.quorum,
                    seen.witnesses
                        .iter()
                        .map(|(name, size)| format!("{name} at {size}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if seen.witnesses.len() < seen.quorum {
                    println!(
                        "WARNING: only {} of the {} witnesses a quorum needs could be asked or \
                         had cosigned: a log cut short since would not be caught",
                        seen.witnesses.len(),
                        seen.quorum
                    );
                }
            }
            Ok(status)
        }
        (Ok(_), Err(error)) => Err(error).context("recording the verification in the log"),
        (Err(mismatch), logged) => {
            if let Err(error) = logged {
                // A damaged log may refuse new entries; the diagnosis still matters most.
                eprintln!("safegate: the verification could not be recorded in the log: {error}");
            }
            Ok(tampered(&mismatch))
        }
    }
}

/// Verifies an export file against a public key alone.
pub fn verify_offline(offline: Offline<'_>) -> anyhow::Result<ExitCode> {
    let key = public_key_file(offline.public_key)?;
    let file = std::fs::File::open(offline.export)
        .with_context(|| format!("opening the export {}", offline.export.display()))?;
    let mut meter = Meter::on_stderr("verify", false);
    let checked = verify_export_reporting(BufReader::new(file), &key, &mut |p| meter.update(p));
    meter.finish();
    match checked {
        Ok(done) => Ok(verified(&done)),
        Err(ExportCheck::Mismatch(mismatch)) => Ok(tampered(&mismatch)),
        Err(other) => bail!("{}: {other}", offline.export.display()),
    }
}

async fn export(ledger: &Ledger, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        FormatArg::Jsonl => ExportFormat::Jsonl,
        FormatArg::Csv => ExportFormat::Csv,
        FormatArg::Fhir => ExportFormat::Fhir,
    };
    let filter = args.filters.to_filter(0);
    let read = operator_entry("export", EntryKind::Export);
    // Drawn from the task that reads the log; cleared here once the last line is written.
    let meter = std::sync::Arc::new(std::sync::Mutex::new(Meter::on_stderr(
        "export",
        args.out.is_none() && std::io::stdout().is_terminal(),
    )));
    let drawing = std::sync::Arc::clone(&meter);
    let progress = Box::new(move |p| {
        if let Ok(mut meter) = drawing.lock() {
            meter.update(p);
        }
    });
    let mut export = ledger
        .export_reporting(read, &filter, format, progress)
        .await?;
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut entries = 0usize;
    while let Some(chunk) = export.chunks.recv().await {
        let chunk = chunk.context("reading entries for the export")?;
        entries += chunk.lines().count();
        sink.write_all(chunk.as_bytes())
            .context("writing the export")?;
    }
    sink.flush().context("writing the export")?;
    if let Ok(mut meter) = meter.lock() {
        meter.finish();
    }
    if let Some(path) = &args.out {
        eprintln!(
            "exported the disclosure log through entry {} as {format} to {} ({entries} lines); \
             the export is recorded as entry {}",
            export.tree_size,
            path.display(),
            export.export_entry_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn sar(ledger: &Ledger, person: &str) -> anyhow::Result<ExitCode> {
    let read = operator_entry("sar", EntryKind::LogRead);
    let report = ledger.subject_access_report(read, person).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "subject-access report for person {}: {} disclosures; {} law-enforcement entries held back \
         until released (DPA 2018 s45(4)); covers the log through entry {}",
        report.person_id,
        report.disclosures.len(),
        report.withheld_count,
        report.covers_through_seq
    )?;
    writeln!(
        out,
        "seq\trecorded_at\tkind\tdecision\tagency\tsystem_id\trole\tpurpose\tbreak_glass\treleased\twithheld\tentry_id"
    )?;
    for d in &report.disclosures {
        let facts = |facts: &[crate::domain::ledger::Disclosed]| {
            facts
                .iter()
                .map(|f| format!("{}:{}", f.category, f.level))
                .collect::<Vec<_>>()
                .join(",")
        };
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            d.seq,
            d.recorded_at,
            d.kind,
            d.decision,
            d.agency,
            d.system_id,
            d.role,
            d.purpose,
            d.break_glass,
            facts(&d.released),
            facts(&d.withheld),
            d.entry_id
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
