//! `safegate identity`: the identity steward's work over gRPC as a demo system (by
//! default the MASH): review tasks, confirming, rejecting and splitting links.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::api::client::status_error;
use crate::api::proto::{
    self, ConfirmMatchRequest, IdentityCard, ListIdentityLinksRequest, ListReviewTasksRequest,
    PractitionerContext, RejectMatchRequest, Role, SplitLinkRequest,
    identity_resolution_service_client::IdentityResolutionServiceClient,
};
use crate::cli::query::{By, subject_ref};
use crate::config::{Layers, Settings};
use crate::domain::identity::MatchRules;
use crate::store::Store;

/// Where to reach the gateway and as whom.
#[derive(Debug, Args)]
pub struct StewardFlags {
    /// The agency system to call as: its certificate `<system>.pem` in the PKI dir.
    #[arg(long, default_value = "mash", global = true)]
    system: String,
    /// The steward's agency id.
    #[arg(long, default_value = "MASH-0001", global = true)]
    practitioner: String,
    /// Gateway address (default: the configured listen address).
    #[arg(long, global = true)]
    addr: Option<String>,
    /// PKI directory with ca.pem and the system's certificate (default DATA_DIR/pki).
    #[arg(long, global = true)]
    pki_dir: Option<String>,
    /// For `estimate`: the database to read (default: the configured one).
    #[arg(long, global = true)]
    database_url: Option<String>,
}

/// Review and correct identity links between agencies' records of one person.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    #[command(flatten)]
    flags: StewardFlags,
    #[command(subcommand)]
    command: IdentityCommand,
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Review tasks with both sides' identity details and the reasons in words.
    Tasks {
        /// Also tasks already confirmed or rejected.
        #[arg(long)]
        all: bool,
    },
    /// Confirm a potential match: the two persons become one.
    Confirm {
        task_id: String,
        /// Why, in at least three words.
        #[arg(long)]
        note: String,
    },
    /// Reject a potential match: the pair is never proposed again.
    Reject {
        task_id: String,
        #[arg(long)]
        note: String,
    },
    /// Every identity link of a person.
    Links {
        #[arg(long, value_enum, default_value = "nhs")]
        by: By,
        subject: String,
    },
    /// Split a wrong link; lists the disclosures that released facts across it.
    Split {
        link_id: String,
        #[arg(long)]
        note: String,
    },
    /// Re-estimate the matching rules' m and u from the demographics on record (EM, read
    /// from the database directly) and write new rules for review; the rules in force
    /// are not changed.
    Estimate {
        /// Where to write the re-estimated rules (TOML).
        #[arg(long)]
        out: PathBuf,
        /// EM iterations.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
    },
}

impl IdentityArgs {
    pub fn apply(&self, layers: Layers) -> Layers {
        layers
            .flag("listen_addr", self.flags.addr.clone())
            .flag("pki_dir", self.flags.pki_dir.clone())
            .flag("database_url", self.flags.database_url.clone())
    }
}

/// One side of a task in words: each agency's identity details.
pub fn describe_card(card: &IdentityCard) -> String {
    let mut text = format!("    person {}\n", card.person_id);
    for record in &card.records {
        let agency = proto::Agency::try_from(record.agency)
            .map(|a| a.as_str_name().trim_start_matches("AGENCY_").to_lowercase())
            .unwrap_or_default();
        let Some(d) = &record.details else { continue };
        let mut names = vec![d.given_name.clone()];
        names.extend(d.middle_names.iter().cloned());
        names.push(d.family_name.clone());
        let address = if d.address_lines.is_empty() {
            d.address.clone()
        } else {
            d.address_lines.join(", ")
        };
        text.push_str(&format!(
            "      {agency} ({}): {}, born {}, {} {}\n",
            record.system_id,
            names.join(" "),
            d.date_of_birth,
            address,
            d.postcode
        ));
    }
    text
}

/// Re-estimates the rules in force from every person-details record on record.
async fn estimate(settings: &Settings, out: &Path, iterations: usize) -> anyhow::Result<()> {
    let path = settings.policy_dir.join(crate::startup::MATCHING_RULES);
    let rules = MatchRules::load(&path)
        .with_context(|| format!("loading the matching rules {}", path.display()))?;
    let store = Store::connect(&settings.database_url, 2)
        .await
        .context("opening the database (`database_url`)")?;
    let records = store.all_demographics().await?;
    let estimated = rules
        .estimate(&records, iterations)
        .context("estimating the matching rules")?;
    std::fs::write(out, estimated.to_toml())
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "Re-estimated the rules {} from {} records in {iterations} EM iterations; wrote {} \
         for review (the rules in force are unchanged).",
        rules.version().chars().take(12).collect::<String>(),
        records.len(),
        out.display()
    );
    Ok(())
}

/// Runs one steward command and prints the outcome.
pub async fn run(args: IdentityArgs, settings: &Settings) -> anyhow::Result<()> {
    if let IdentityCommand::Estimate { out, iterations } = &args.command {
        return estimate(settings, out, *iterations).await;
    }
    let channel =
        crate::api::client::channel(settings.listen_addr, &settings.pki_dir, &args.flags.system)
            .await?;
    let mut client = IdentityResolutionServiceClient::new(channel);
    let context = Some(PractitionerContext {
        practitioner_id: args.flags.practitioner.clone(),
        role: Role::IdentitySteward.into(),
        ..Default::default()
    });
    match args.command {
        IdentityCommand::Tasks { all } => {
            let response = client
                .list_review_tasks(ListReviewTasksRequest {
                    context,
                    include_closed: all,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if response.tasks.is_empty() {
                println!("No review tasks.");
            }
            for task in &response.tasks {
                let state = proto::ReviewState::try_from(task.state)
                    .map(|s| {
                        s.as_str_name()
                            .trim_start_matches("REVIEW_STATE_")
                            .to_lowercase()
                    })
                    .unwrap_or_default();
                println!(
                    "task {} ({state}), match probability {:.3}",
                    task.task_id, task.probability
                );
                for reason in &task.reasons {
                    println!("  not linked automatically: {reason}");
                }
                for line in &task.explanation {
                    println!("  {line}");
                }
                if let Some(person) = &task.person {
                    print!("  the new record:\n{}", describe_card(person));
                }
                if let Some(candidate) = &task.candidate {
                    print!("  the candidate:\n{}", describe_card(candidate));
                }
            }
            println!(
                "Logged as disclosure-log entry {}.",
                response.disclosure_entry_id
            );
        }
        IdentityCommand::Confirm { task_id, note } => {
            let response = client
                .confirm_match(ConfirmMatchRequest {
                    context,
                    task_id,
                    note,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!(
                "Confirmed: the two records are one person (decision {}).",
                response.decision_id
            );
        }
        IdentityCommand::Reject { task_id, note } => {
            let response = client
                .reject_match(RejectMatchRequest {
                    context,
                    task_id,
                    note,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!(
                "Rejected: the pair will not be proposed again (decision {}).",
                response.decision_id
            );
        }
        IdentityCommand::Links { by, subject } => {
            let response = client
                .list_identity_links(ListIdentityLinksRequest {
                    context,
                    person: Some(subject_ref(by, &subject)),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if response.links.is_empty() {
                println!("No links on demographics: only shared identifiers join this person.");
            }
            for link in &response.links {
                let method = proto::LinkMethod::try_from(link.method)
                    .map(|m| {
                        m.as_str_name()
                            .trim_start_matches("LINK_METHOD_")
                            .to_lowercase()
                    })
                    .unwrap_or_default();
                println!(
                    "link {}: {} ~ {} ({method}, probability {:.3}, {}{})",
                    link.link_id,
                    link.person_id,
                    link.other_person_id,
                    link.probability,
                    if link.active { "active" } else { "split at " },
                    link.split_at
                );
            }
        }
        IdentityCommand::Estimate { .. } => {}
        IdentityCommand::Split { link_id, note } => {
            let response = client
                .split_link(SplitLinkRequest {
                    context,
                    link_id,
                    note,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("Split (decision {}).", response.decision_id);
            if response.crossed.is_empty() {
                println!("No answer or notice released facts across the link.");
            } else {
                println!("Released across the link while it stood:");
            }
            for crossed in &response.crossed {
                println!(
                    "  {} {} by {}{} (entry {})",
                    crossed.recorded_at,
                    crossed.kind,
                    crossed.system_id,
                    if crossed.recipient_system.is_empty() {
                        String::new()
                    } else {
                        format!(" to {}", crossed.recipient_system)
                    },
                    crossed.entry_id
                );
            }
        }
    }
    Ok(())
}
