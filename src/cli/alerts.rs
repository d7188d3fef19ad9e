//! `safegate audit alerts list | show | assign | close`: privacy alert cases at the
//! console, read and worked through the same domain service as the gRPC API and the web
//! console. Each command writes its own disclosure-log entry (system `cli`, the OS user as
//! practitioner), like every other `safegate audit` command.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use crate::cli::audit::{LogAccess, operator_entry};
use crate::domain::alerts::cases::AlertFilter;
use crate::domain::alerts::{AlertCase, CaseOutcome, CaseState, Cases};
use crate::domain::ledger::{EntryKind, Ledger};

/// Privacy alerts: list, show, assign, close.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

impl AlertsArgs {
    /// Where the log is, as the subcommand names it.
    pub(crate) fn access(&mut self) -> &mut LogAccess {
        match &mut self.command {
            AlertsCommand::List { access, .. }
            | AlertsCommand::Show { access, .. }
            | AlertsCommand::Assign { access, .. }
            | AlertsCommand::Close { access, .. } => access,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StateArg {
    Open,
    Assigned,
    Closed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Explained,
    Breach,
    FalsePositive,
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// List alerts, newest first, as tab-separated lines.
    List {
        #[command(flatten)]
        access: LogAccess,
        /// Only alerts of this rule (e.g. alerts.repeated_refusals).
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only alerts about this practitioner.
        #[arg(long)]
        practitioner: Option<String>,
        /// Most alerts to list (1-500).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Show one alert: why, its history and the log entries it rests on.
    Show {
        #[command(flatten)]
        access: LogAccess,
        alert_id: String,
    },
    /// Assign an open (or assigned) alert to an IG officer.
    Assign {
        #[command(flatten)]
        access: LogAccess,
        alert_id: String,
        /// The IG officer's practitioner id.
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Close an assigned alert with an outcome and a note saying why.
    Close {
        #[command(flatten)]
        access: LogAccess,
        alert_id: String,
        #[arg(long, value_enum)]
        outcome: OutcomeArg,
        #[arg(long, default_value = "")]
        note: String,
    },
}

fn line(case: &AlertCase) -> String {
    let a = &case.alert;
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        a.alert_id,
        a.raised_at,
        a.rule_id,
        case.state,
        case.assignee,
        a.system_id,
        a.practitioner_id,
        a.summary
    )
}

/// Runs an alerts command on `ledger`.
pub async fn run(ledger: &Ledger, args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let cases = Cases::new(ledger.clone(), Arc::new(ledger.store().clone()));
    let mut out = std::io::stdout().lock();
    match args.command {
        AlertsCommand::List {
            access: _,
            rule,
            state,
            practitioner,
            limit,
        } => {
            let filter = AlertFilter {
                rule_id: rule,
                state: state.map(|s| match s {
                    StateArg::Open => CaseState::Open,
                    StateArg::Assigned => CaseState::Assigned,
                    StateArg::Closed => CaseState::Closed,
                }),
                practitioner_id: practitioner,
                limit,
                ..Default::default()
            };
            let read = operator_entry("alerts list", EntryKind::LogRead);
            let found = cases.list(read, &filter).await?;
            writeln!(
                out,
                "alert_id\traised_at\trule_id\tstate\tassignee\tsystem_id\tpractitioner_id\tsummary"
            )?;
            for case in &found {
                writeln!(out, "{}", line(case))?;
            }
        }
        AlertsCommand::Show { alert_id, .. } => {
            let read = operator_entry("alerts show", EntryKind::LogRead);
            let detail = cases.get(read, &alert_id).await?;
            let a = &detail.case.alert;
            writeln!(out, "alert     {}", a.alert_id)?;
            writeln!(
                out,
                "rule      {} (rules version {})",
                a.rule_id, a.rules_version
            )?;
            writeln!(out, "raised    {}", a.raised_at)?;
            writeln!(
                out,
                "about     practitioner {} of system {}",
                a.practitioner_id, a.system_id
            )?;
            writeln!(
                out,
                "state     {} {}",
                detail.case.state, detail.case.assignee
            )?;
            writeln!(out, "why       {}", a.summary)?;
            for event in &detail.case.events {
                writeln!(
                    out,
                    "step {}    {} {} {} by {} at {}: {}",
                    event.step,
                    event.action,
                    event.assignee,
                    event.outcome.map(|o| o.as_str()).unwrap_or(""),
                    event.by_id,
                    event.at,
                    event.note
                )?;
            }
            writeln!(out, "entries")?;
            for stored in &detail.entries {
                let e = &stored.entry;
                writeln!(
                    out,
                    "  {}\t{}\t{}\t{}\t{}\t{}\t{}",
                    stored.seq,
                    e.entry_id,
                    e.recorded_at,
                    e.kind,
                    e.decision,
                    e.system_id,
                    e.practitioner_id
                )?;
            }
        }
        AlertsCommand::Assign {
            alert_id, to, note, ..
        } => {
            let read = operator_entry("alerts assign", EntryKind::Review);
            let case = cases.assign(read, &alert_id, &to, &note).await?;
            writeln!(out, "{}", line(&case))?;
        }
        AlertsCommand::Close {
            alert_id,
            outcome,
            note,
            ..
        } => {
            let outcome = match outcome {
                OutcomeArg::Explained => CaseOutcome::Explained,
                OutcomeArg::Breach => CaseOutcome::Breach,
                OutcomeArg::FalsePositive => CaseOutcome::FalsePositive,
            };
            let read = operator_entry("alerts close", EntryKind::Review);
            let case = cases.close(read, &alert_id, outcome, &note).await?;
            writeln!(out, "{}", line(&case))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
