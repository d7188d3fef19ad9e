//! `safegate contact`: ask the team behind an indicator to get in touch, answer such a
//! request, or list requests and their status, as a demo agency system.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::api::client::status_error;
use crate::api::proto::{
    self, AnswerContactRequest, ContactOutcome, ContactScope, ContactUrgency,
    ListContactRequestsRequest, PractitionerContext, RequestContactRequest,
    contact_service_client::ContactServiceClient,
};
use crate::cli::query::wire_enum;
use crate::config::{Layers, Settings};
use crate::demo::walkthrough::contact_line;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UrgencyArg {
    Routine,
    SameDay,
    ImmediateRisk,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutcomeArg {
    Contacted,
    Declined,
    PassedOn,
}

/// Contact requests as one agency system.
#[derive(Debug, Args)]
pub struct ContactArgs {
    /// The agency system to call as: its certificate `<system>.pem` in the PKI dir.
    #[arg(long, global = true, default_value = "police-iom")]
    system: String,
    /// Practitioner role, e.g. iom_officer, health_visitor.
    #[arg(long, global = true, default_value = "iom_officer")]
    role: String,
    /// The practitioner's agency id.
    #[arg(long, global = true, default_value = "CLI-0001")]
    practitioner: String,
    /// Purpose: child_safeguarding, offender_management, order_enforcement.
    #[arg(long, global = true, default_value = "child_safeguarding")]
    purpose: String,
    /// Gateway address (default: the configured listen address).
    #[arg(long, global = true)]
    addr: Option<String>,
    /// PKI directory with ca.pem and the system's certificate (default DATA_DIR/pki).
    #[arg(long, global = true)]
    pki_dir: Option<String>,
    #[command(subcommand)]
    command: ContactCommand,
}

#[derive(Debug, Subcommand)]
enum ContactCommand {
    /// Ask the team owning an indicator you were shown to get in touch.
    Request {
        /// The disclosure-log entry of your answer (`safegate query` prints it).
        #[arg(long)]
        entry: String,
        /// The indicator's record id.
        #[arg(long)]
        record: String,
        #[arg(long, value_enum)]
        urgency: UrgencyArg,
        /// Why, in words.
        #[arg(long)]
        reason: String,
        /// How to reach you (default: your system's registered route).
        #[arg(long, default_value = "")]
        contact_route: String,
    },
    /// Answer a request made to your team.
    Answer {
        #[arg(long)]
        request: String,
        #[arg(long, value_enum)]
        outcome: OutcomeArg,
        /// What was agreed; required when declined or passed on.
        #[arg(long, default_value = "")]
        note: String,
        /// For passed-on: the system of the team it goes to.
        #[arg(long, default_value = "")]
        passed_to: String,
    },
    /// Your requests and their status (or, with --to-my-team, those made to your team).
    List {
        #[arg(long)]
        to_my_team: bool,
    },
}

impl ContactArgs {
    pub fn apply(&self, layers: Layers) -> Layers {
        layers
            .flag("listen_addr", self.addr.clone())
            .flag("pki_dir", self.pki_dir.clone())
    }
}

/// Runs one contact command and prints the outcome in words.
pub async fn run(args: ContactArgs, settings: &Settings) -> anyhow::Result<()> {
    let channel =
        crate::api::client::channel(settings.listen_addr, &settings.pki_dir, &args.system)
            .await
            .context("connecting to the gateway")?;
    let mut client = ContactServiceClient::new(channel);
    let context = PractitionerContext {
        practitioner_id: args.practitioner.clone(),
        role: wire_enum(&args.role, "ROLE_", |n| {
            proto::Role::from_str_name(n).map(|r| r as i32)
        })?,
        purpose: wire_enum(&args.purpose, "PURPOSE_", |n| {
            proto::Purpose::from_str_name(n).map(|p| p as i32)
        })?,
        ..Default::default()
    };
    match args.command {
        ContactCommand::Request {
            entry,
            record,
            urgency,
            reason,
            contact_route,
        } => {
            let made = client
                .request_contact(RequestContactRequest {
                    context: Some(context),
                    answer_entry_id: entry,
                    record_id: record,
                    urgency: match urgency {
                        UrgencyArg::Routine => ContactUrgency::Routine,
                        UrgencyArg::SameDay => ContactUrgency::SameDay,
                        UrgencyArg::ImmediateRisk => ContactUrgency::ImmediateRisk,
                    }
                    .into(),
                    reason,
                    contact_route,
                    client_request_id: String::new(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let request = made.request.unwrap_or_default();
            println!("Requested: {}", contact_line(&request));
            println!(
                "Logged as disclosure-log entry {}.",
                made.disclosure_entry_id
            );
        }
        ContactCommand::Answer {
            request,
            outcome,
            note,
            passed_to,
        } => {
            let answered = client
                .answer_contact(AnswerContactRequest {
                    context: Some(context),
                    request_id: request,
                    outcome: match outcome {
                        OutcomeArg::Contacted => ContactOutcome::Contacted,
                        OutcomeArg::Declined => ContactOutcome::Declined,
                        OutcomeArg::PassedOn => ContactOutcome::PassedOn,
                    }
                    .into(),
                    note,
                    passed_to_system_id: passed_to,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!(
                "Answered: {}",
                contact_line(&answered.request.unwrap_or_default())
            );
            println!(
                "Logged as disclosure-log entry {}.",
                answered.disclosure_entry_id
            );
        }
        ContactCommand::List { to_my_team } => {
            let listed = client
                .list_contact_requests(ListContactRequestsRequest {
                    context: Some(context),
                    scope: if to_my_team {
                        ContactScope::AddressedToMyTeam
                    } else {
                        ContactScope::RequestedByMe
                    }
                    .into(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if listed.requests.is_empty() {
                println!("No contact requests.");
            }
            for request in &listed.requests {
                println!("  {}", contact_line(request));
            }
        }
    }
    Ok(())
}
