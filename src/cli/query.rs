//! `safegate query`: try the Query and Explain RPCs as a demo agency system, with the
//! dev certificates, and read the answer in words.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::api::proto::{
    self, ExplainRequest, PersonRef, PractitionerContext, QueryRequest,
    query_service_client::QueryServiceClient,
};
use crate::config::{Layers, Settings};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum By {
    /// NHS number.
    Nhs,
    /// Police National Computer id.
    Pnc,
    /// Gateway person id.
    PersonId,
}

/// A person reference as the CLI's `--by` names it.
pub fn subject_ref(by: By, subject: &str) -> PersonRef {
    let identifier = |scheme: proto::IdentifierScheme| {
        proto::person_ref::Ref::Identifier(proto::Identifier {
            scheme: scheme.into(),
            value: subject.to_owned(),
            namespace: String::new(),
        })
    };
    PersonRef {
        r#ref: Some(match by {
            By::Nhs => identifier(proto::IdentifierScheme::NhsNumber),
            By::Pnc => identifier(proto::IdentifierScheme::PncId),
            By::PersonId => proto::person_ref::Ref::PersonId(subject.to_owned()),
        }),
    }
}

/// Ask the running gateway about a person, as one agency system.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The agency system to call as: its certificate `<system>.pem` in the PKI dir.
    #[arg(long)]
    system: String,
    /// Practitioner role, e.g. iom_officer, health_visitor, school_dsl.
    #[arg(long)]
    role: String,
    /// Purpose: child_safeguarding, offender_management, order_enforcement.
    #[arg(long, default_value = "child_safeguarding")]
    purpose: String,
    /// The practitioner's agency id.
    #[arg(long, default_value = "CLI-0001")]
    practitioner: String,
    /// How the subject is named.
    #[arg(long, value_enum, default_value = "nhs")]
    by: By,
    /// The subject's identifier (or person id with --by person-id); leave out to search
    /// by --given-name, --family-name and --date-of-birth instead.
    subject: Option<String>,
    /// Search by demographics: the subject's given name.
    #[arg(long, requires_all = ["family_name", "date_of_birth"], conflicts_with = "subject")]
    given_name: Option<String>,
    /// Search by demographics: the subject's family name.
    #[arg(long, requires = "given_name")]
    family_name: Option<String>,
    /// Search by demographics: date of birth, YYYY-MM-DD.
    #[arg(long, requires = "given_name")]
    date_of_birth: Option<String>,
    /// Search by demographics: postcode (optional).
    #[arg(long, requires = "given_name")]
    postcode: Option<String>,
    /// Ask for a dry run (Explain) instead of the answer.
    #[arg(long)]
    explain: bool,
    /// Break-glass access; needs --justification.
    #[arg(long)]
    break_glass: bool,
    #[arg(long, default_value = "")]
    justification: String,
    /// Gateway address (default: the configured listen address).
    #[arg(long)]
    addr: Option<String>,
    /// PKI directory with ca.pem and the system's certificate (default DATA_DIR/pki).
    #[arg(long)]
    pki_dir: Option<String>,
}

impl QueryArgs {
    pub fn apply(&self, layers: Layers) -> Layers {
        layers
            .flag("listen_addr", self.addr.clone())
            .flag("pki_dir", self.pki_dir.clone())
    }
}

pub(crate) fn wire_enum(
    word: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> anyhow::Result<i32> {
    parse(&format!("{prefix}{}", word.to_ascii_uppercase())).with_context(|| {
        format!(
            "`{word}` is not a known {}",
            prefix.trim_end_matches('_').to_lowercase()
        )
    })
}

/// Calls Query or Explain and prints the answer.
pub async fn run(args: QueryArgs, settings: &Settings) -> anyhow::Result<()> {
    let pki_dir: PathBuf = settings.pki_dir.clone();
    let channel = crate::api::client::channel(settings.listen_addr, &pki_dir, &args.system).await?;
    let mut client = QueryServiceClient::new(channel);
    let context = PractitionerContext {
        practitioner_id: args.practitioner.clone(),
        role: wire_enum(&args.role, "ROLE_", |n| {
            proto::Role::from_str_name(n).map(|r| r as i32)
        })?,
        purpose: wire_enum(&args.purpose, "PURPOSE_", |n| {
            proto::Purpose::from_str_name(n).map(|p| p as i32)
        })?,
        justification: args.justification.clone(),
        break_glass: args.break_glass,
    };
    let status_context = context.clone();
    let (subject, search) = match (&args.subject, &args.given_name) {
        (Some(subject), _) => (Some(subject_ref(args.by, subject)), None),
        (None, Some(given_name)) => (
            None,
            Some(proto::SubjectSearch {
                given_name: given_name.clone(),
                family_name: args.family_name.clone().unwrap_or_default(),
                date_of_birth: args.date_of_birth.clone().unwrap_or_default(),
                postcode: args.postcode.clone().unwrap_or_default(),
            }),
        ),
        (None, None) => anyhow::bail!(
            "name the subject by identifier, or search with --given-name, --family-name and \
             --date-of-birth"
        ),
    };
    if args.explain {
        let explanation = client
            .explain(ExplainRequest {
                context: Some(context),
                subject,
                search,
            })
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        if explanation.would_answer {
            println!("A query would be answered ({}).", explanation.legitimacy);
            println!(
                "Lawful basis: {} (rule {})",
                explanation.lawful_basis, explanation.purpose_rule_id
            );
        } else {
            // The reason names its rule already.
            println!("A query would be {}", explanation.refusal_reason);
        }
        for category in &explanation.categories {
            let level = proto::Level::try_from(category.level)
                .map(|l| l.as_str_name().trim_start_matches("LEVEL_").to_lowercase())
                .unwrap_or_default();
            println!(
                "  {:<22} {:<9} {}",
                category.category, level, category.rule_id
            );
        }
        println!(
            "Logged as disclosure-log entry {} (dry run).",
            explanation.disclosure_entry_id
        );
        return Ok(());
    }
    let answer = client
        .query(QueryRequest {
            context: Some(context),
            subject,
            search,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    // Names come from person details the role may see; otherwise the person id is shown.
    let mut names = std::collections::HashMap::new();
    let views = answer
        .subject
        .iter()
        .chain(answer.linked.iter().filter_map(|l| l.person.as_ref()));
    for view in views {
        for fact in &view.facts {
            if let Some(proto::fact::Category::Person(details)) =
                fact.fact.as_ref().and_then(|f| f.category.as_ref())
            {
                // The first agency's details name the person (the earliest record).
                names
                    .entry(view.person_id.clone())
                    .or_insert_with(|| format!("{} {}", details.given_name, details.family_name));
            }
        }
    }
    print!("{}", crate::demo::walkthrough::describe(&answer, &names));
    println!("Lawful basis: {}", answer.lawful_basis);
    println!("Policy version: {}", answer.policy_version);
    print_contact(&answer, &args, status_context, settings).await
}

/// After an answer: how to ask the team behind each indicator to get in touch, and the
/// status of the practitioner's contact requests.
async fn print_contact(
    answer: &proto::QueryResponse,
    args: &QueryArgs,
    context: PractitionerContext,
    settings: &Settings,
) -> anyhow::Result<()> {
    let indicators: Vec<&proto::FactView> = answer
        .subject
        .iter()
        .chain(answer.linked.iter().filter_map(|l| l.person.as_ref()))
        .flat_map(|view| view.facts.iter())
        .filter(|f| f.level() == proto::Level::Indicator)
        .collect();
    if !indicators.is_empty() {
        println!(
            "Ask the team behind an indicator to get in touch (answer {}):",
            answer.disclosure_entry_id
        );
        for fact in indicators {
            println!(
                "  {}  {:<20} {}",
                fact.record_id,
                fact.category,
                fact.indicator.as_ref().map_or("", |i| i.team.as_str()),
            );
        }
        println!(
            "  with: safegate contact --system {} --role {} --practitioner {} request \\\n        --entry {} --record RECORD --urgency routine|same-day|immediate-risk --reason \"...\"",
            args.system, args.role, args.practitioner, answer.disclosure_entry_id,
        );
    }
    let channel =
        crate::api::client::channel(settings.listen_addr, &settings.pki_dir, &args.system).await?;
    let mine = crate::api::proto::contact_service_client::ContactServiceClient::new(channel)
        .list_contact_requests(proto::ListContactRequestsRequest {
            context: Some(context),
            scope: proto::ContactScope::RequestedByMe.into(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
        .into_inner()
        .requests;
    if !mine.is_empty() {
        println!("Your contact requests:");
        for request in &mine {
            println!("  {}", crate::demo::walkthrough::contact_line(request));
        }
    }
    Ok(())
}
