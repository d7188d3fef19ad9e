//! The demo's walk-through: DOMAIN.md's questions asked through the real API as each
//! agency system, printed in words a newcomer can follow.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

use crate::api::proto::{
    self, ListEntriesRequest, ListNoticesRequest, PersonRef, PractitionerContext, Purpose,
    QueryRequest, QueryResponse, Role, VerifyLogRequest, audit_service_client::AuditServiceClient,
    notification_service_client::NotificationServiceClient,
    query_service_client::QueryServiceClient,
};
use crate::case::{self, AMY_NHS, DEAN_PNC, LoadedCase};

fn context(id: &str, role: Role, purpose: Purpose) -> PractitionerContext {
    PractitionerContext {
        practitioner_id: id.into(),
        role: role.into(),
        purpose: purpose.into(),
        ..Default::default()
    }
}

fn by_identifier(scheme: proto::IdentifierScheme, value: &str) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(proto::Identifier {
            scheme: scheme.into(),
            value: value.into(),
            namespace: String::new(),
        })),
    })
}

/// Person ids to first names, for printing only (the demo's synthetic people).
fn names(case: &LoadedCase) -> HashMap<String, String> {
    case.persons
        .iter()
        .map(|(name, id)| (id.clone(), (*name).to_owned()))
        .collect()
}

/// An answer in words: per person, status, facts in detail and indicators with whom to ask.
pub(crate) fn describe(answer: &QueryResponse, names: &HashMap<String, String>) -> String {
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| "someone".into());
    let mut out = String::new();
    let views = answer
        .subject
        .iter()
        .map(|v| (String::from("subject"), v))
        .chain(answer.linked.iter().filter_map(|l| {
            let relation = proto::LinkType::try_from(l.link_type)
                .map(|t| {
                    t.as_str_name()
                        .trim_start_matches("LINK_TYPE_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            let words = if l.subject_is_from {
                format!("subject is {relation} them")
            } else {
                format!("they are {relation} the subject")
            };
            l.person.as_ref().map(|p| (words, p))
        }));
    for (relation, view) in views {
        let _ = writeln!(out, "    {} ({relation}):", name(&view.person_id));
        if let Some(status) = &view.safeguarding_status {
            let _ = writeln!(out, "      status: {}", status.summary);
        }
        let mut detail: Vec<String> = Vec::new();
        let mut indicators: Vec<String> = Vec::new();
        for fact in &view.facts {
            if fact.category == "person" || fact.category == "link" {
                continue;
            }
            match (&fact.indicator, fact.level()) {
                (Some(i), proto::Level::Indicator) => indicators.push(format!(
                    "{} (ask {}, {})",
                    fact.category, i.team, i.contact_route
                )),
                _ => detail.push(fact.category.clone()),
            }
        }
        if !detail.is_empty() {
            let _ = writeln!(out, "      in detail: {}", detail.join(", "));
        }
        if !indicators.is_empty() {
            let _ = writeln!(out, "      as indicators: {}", indicators.join("; "));
        }
    }
    for note in &answer.notes {
        let _ = writeln!(out, "    note: {note}");
    }
    let _ = writeln!(
        out,
        "    logged as disclosure {}",
        answer.disclosure_entry_id
    );
    out
}

/// Plays the narrative and returns the text to print.
pub async fn play(addr: SocketAddr, pki_dir: &Path, case: &LoadedCase) -> anyhow::Result<String> {
    let names = names(case);
    let mut out = String::from("\nWalk-through of the case (DOMAIN.md), through the real API:\n");

    let mut iom = QueryServiceClient::new(case::channel(addr, pki_dir, "police-iom").await?);
    let answer = iom
        .query(QueryRequest {
            context: Some(context(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: by_identifier(proto::IdentifierScheme::PncId, DEAN_PNC),
            search: None,
        })
        .await?
        .into_inner();
    let _ = writeln!(
        out,
        "\n1. The IOM officer asks about Dean (offender management):"
    );
    out.push_str(&describe(&answer, &names));

    let mut hv = QueryServiceClient::new(case::channel(addr, pki_dir, "health-visiting").await?);
    let answer = hv
        .query(QueryRequest {
            context: Some(context(
                "HV-0001",
                Role::HealthVisitor,
                Purpose::ChildSafeguarding,
            )),
            subject: by_identifier(proto::IdentifierScheme::NhsNumber, AMY_NHS),
            search: None,
        })
        .await?
        .into_inner();
    let _ = writeln!(
        out,
        "\n2. The health visitor asks about Amy (child safeguarding):"
    );
    out.push_str(&describe(&answer, &names));

    let _ = writeln!(
        out,
        "\n3-4. Children's Services recorded the care orders and the police the breaches; \
         the notices each agency received:"
    );
    for system in [
        "health-visiting",
        "gp-practice",
        "nursery",
        "childrens-services",
        "police-iom",
    ] {
        let role = match system {
            "health-visiting" => Role::HealthVisitor,
            "gp-practice" => Role::Gp,
            "nursery" => Role::SchoolDsl,
            "childrens-services" => Role::SocialWorker,
            _ => Role::IomOfficer,
        };
        let notices = NotificationServiceClient::new(case::channel(addr, pki_dir, system).await?)
            .list_notices(ListNoticesRequest {
                context: Some(context("SERVICE", role, Purpose::ChildSafeguarding)),
                after_cursor: 0,
                limit: 100,
            })
            .await?
            .into_inner()
            .notices;
        let mut counts: Vec<(String, usize)> = Vec::new();
        for notice in &notices {
            let label = format!(
                "{} about {}",
                notice.rule,
                names
                    .get(&notice.subject_person_id)
                    .cloned()
                    .unwrap_or_default()
            );
            match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            }
        }
        let listed: Vec<String> = counts
            .iter()
            .map(|(label, n)| {
                if *n > 1 {
                    format!("{label} x{n}")
                } else {
                    label.clone()
                }
            })
            .collect();
        let _ = writeln!(out, "    {system}: {}", listed.join(", "));
    }

    let mut school = QueryServiceClient::new(case::channel(addr, pki_dir, "primary-school").await?);
    let refused = school
        .query(QueryRequest {
            context: Some(context(
                "DSL-0900",
                Role::SchoolDsl,
                Purpose::ChildSafeguarding,
            )),
            subject: by_identifier(proto::IdentifierScheme::PncId, DEAN_PNC),
            search: None,
        })
        .await;
    let _ = writeln!(
        out,
        "\n5. A school DSL with no involvement asks about Dean:"
    );
    match refused {
        Ok(_) => {
            let _ = writeln!(
                out,
                "    answered (unexpected: check the registry and case)"
            );
        }
        Err(status) => {
            let _ = writeln!(
                out,
                "    refused, {:?}: {}",
                status.code(),
                status.message()
            );
        }
    }

    let mut audit = AuditServiceClient::new(case::channel(addr, pki_dir, "ig-office").await?);
    let ig = context("IG-0001", Role::IgOfficer, Purpose::Audit);
    let about_amy = audit
        .list_entries(ListEntriesRequest {
            context: Some(ig.clone()),
            person_id: case.persons["Amy"].clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries;
    let verified = audit
        .verify_log(VerifyLogRequest { context: Some(ig) })
        .await?
        .into_inner();
    let _ = writeln!(
        out,
        "\n6. The IG officer lists every disclosure about Amy: {} entries (queries, notices, \
         refusals), and verifies the log: {} ({} entries, signed checkpoint).",
        about_amy.len(),
        if verified.valid { "intact" } else { "TAMPERED" },
        verified.entries
    );
    let _ = writeln!(
        out,
        "   Export it with: safegate audit export --format fhir (see README)."
    );
    Ok(out)
}
