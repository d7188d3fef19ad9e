//! The demo's walk-through: DOMAIN.md's questions asked through the real API as each
//! agency system, printed in words a newcomer can follow.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

use crate::api::client;
use crate::api::proto::{
    self, AnswerContactRequest, ContactOutcome, ContactScope, ContactStatus, ContactUrgency,
    ListAlertsRequest, ListContactRequestsRequest, ListEntriesRequest, ListIdentityLinksRequest,
    ListNoticesRequest, PersonRef, PractitionerContext, Purpose, QueryRequest, QueryResponse,
    RequestContactRequest, Role, SubjectSearch, VerifyLogRequest,
    alert_service_client::AlertServiceClient, audit_service_client::AuditServiceClient,
    contact_service_client::ContactServiceClient,
    identity_resolution_service_client::IdentityResolutionServiceClient,
    notification_service_client::NotificationServiceClient,
    query_service_client::QueryServiceClient,
};
use crate::demo::case::{AMY_NHS, BEN_NHS, CHLOE_NHS, DEAN_PNC, LoadedCase};

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
        for link in &view.identity_links {
            let how = if link.method == proto::LinkMethod::Steward as i32 {
                "confirmed by an identity steward"
            } else {
                "linked automatically"
            };
            let _ = writeln!(
                out,
                "      rests on a link on demographics ({how}, probability {:.3})",
                link.probability
            );
        }
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

/// The agency systems whose records of one person are joined, as `a, b and c`.
fn systems_of(case: &LoadedCase, resolved: &str, links: &[proto::IdentityLink]) -> String {
    let mut members: Vec<&str> = vec![resolved];
    for link in links {
        members.extend([link.person_id.as_str(), link.other_person_id.as_str()]);
    }
    let mut systems: Vec<&str> = case
        .agency_persons
        .iter()
        .filter(|(_, person)| members.contains(&person.as_str()))
        .map(|(system, _)| *system)
        .collect();
    systems.dedup();
    match systems.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => String::new(),
    }
}

/// How the gateway recognised each person across the agencies' records.
async fn joins(
    addr: SocketAddr,
    pki_dir: &Path,
    case: &LoadedCase,
    out: &mut String,
) -> anyhow::Result<()> {
    let system_of = |person: &str| {
        case.agency_persons
            .iter()
            .find(|(_, p)| p == person)
            .map_or("another agency", |(system, _)| *system)
    };
    let mut mash =
        IdentityResolutionServiceClient::new(client::channel(addr, pki_dir, "mash").await?);
    let _ = writeln!(
        out,
        "\n0. Each agency published the family as its own system holds them; the gateway \
         recognised each person across them (matching rules policies/matching.toml):"
    );
    for (name, scheme, value) in [
        ("Chloe", proto::IdentifierScheme::NhsNumber, CHLOE_NHS),
        ("Amy", proto::IdentifierScheme::NhsNumber, AMY_NHS),
        ("Ben", proto::IdentifierScheme::NhsNumber, BEN_NHS),
        ("Dean", proto::IdentifierScheme::PncId, DEAN_PNC),
    ] {
        let links = mash
            .list_identity_links(ListIdentityLinksRequest {
                context: Some(context(
                    "MASH-0001",
                    Role::IdentitySteward,
                    Purpose::Unspecified,
                )),
                person: by_identifier(scheme, value),
            })
            .await?
            .into_inner()
            .links;
        let resolved = &case.persons[name];
        let _ = writeln!(
            out,
            "    {name}: one person in the records of {}",
            systems_of(case, resolved, &links)
        );
        if links.is_empty() {
            let _ = writeln!(out, "      joined by shared identifiers (NHS number) alone");
        }
        for link in links.iter().filter(|l| l.active) {
            let how = if link.method == proto::LinkMethod::Steward as i32 {
                "confirmed by the MASH identity steward"
            } else {
                "linked automatically on demographics"
            };
            let _ = writeln!(
                out,
                "      {}'s record: {how} (match probability {:.3}, rules {})",
                system_of(&link.person_id),
                link.probability,
                link.rules_version.chars().take(12).collect::<String>()
            );
        }
    }
    for task in &case.confirmed {
        let _ = writeln!(
            out,
            "    The MASH's review task (probability {:.3}) said why it was not automatic:",
            task.probability
        );
        for reason in &task.reasons {
            let _ = writeln!(out, "      - {reason}");
        }
        for line in &task.explanation {
            let _ = writeln!(out, "        {line}");
        }
    }
    Ok(())
}

/// Plays the narrative and returns the text to print.
pub async fn play(addr: SocketAddr, pki_dir: &Path, case: &LoadedCase) -> anyhow::Result<String> {
    let names = names(case);
    let mut out = String::from("\nWalk-through of the case (DOMAIN.md), through the real API:\n");
    joins(addr, pki_dir, case, &mut out).await?;

    let mut iom = QueryServiceClient::new(client::channel(addr, pki_dir, "police-iom").await?);
    let answer = iom
        .query(QueryRequest {
            context: Some(context(
                "IOM-0001",
                Role::IomOfficer,
                Purpose::OffenderManagement,
            )),
            subject: None,
            search: Some(SubjectSearch {
                given_name: "Dean".into(),
                family_name: "Mills".into(),
                date_of_birth: "1990-04-12".into(),
                postcode: String::new(),
            }),
        })
        .await?
        .into_inner();
    let _ = writeln!(
        out,
        "\n1. The IOM officer asks about Dean by name and date of birth (offender \
         management): the gateway answers because exactly one person matches:"
    );
    out.push_str(&describe(&answer, &names));
    let iom_answer = answer;

    let mut hv = QueryServiceClient::new(client::channel(addr, pki_dir, "health-visiting").await?);
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
        let notices = NotificationServiceClient::new(client::channel(addr, pki_dir, system).await?)
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

    let mut school =
        QueryServiceClient::new(client::channel(addr, pki_dir, "primary-school").await?);
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

    let mut audit = AuditServiceClient::new(client::channel(addr, pki_dir, "ig-office").await?);
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
    contact_about_chloe(addr, pki_dir, case, &iom_answer, &mut out).await?;
    probing_raises_an_alert(addr, pki_dir, &mut out).await?;
    Ok(out)
}

/// Who probes in step 8, and how many refusals `policies/alerts.toml`'s repeated-refusals
/// rule needs within its window.
const PROBING_PRACTITIONER: &str = "DSL-0902";
const PROBING_REFUSALS: usize = 5;

/// A school DSL with no involvement asks about Dean again and again; each query is
/// refused, and the privacy alerts point the IG office at the pattern. Once per data
/// directory: a second run of the demo finds the alert and asks no more.
async fn probing_raises_an_alert(
    addr: SocketAddr,
    pki_dir: &Path,
    out: &mut String,
) -> anyhow::Result<()> {
    let ig = context("IG-0001", Role::IgOfficer, Purpose::Audit);
    let mut alerts = AlertServiceClient::new(client::channel(addr, pki_dir, "ig-office").await?);
    let raised = |alerts: Vec<proto::PrivacyAlert>| alerts.into_iter().next();
    let list = ListAlertsRequest {
        context: Some(ig),
        rule_id: "alerts.repeated_refusals".into(),
        practitioner_id: PROBING_PRACTITIONER.into(),
        page_size: 1,
        ..Default::default()
    };
    let mut alert = raised(alerts.list_alerts(list.clone()).await?.into_inner().alerts);
    if alert.is_none() {
        let mut school =
            QueryServiceClient::new(client::channel(addr, pki_dir, "primary-school").await?);
        for _ in 0..PROBING_REFUSALS {
            let asked = school
                .query(QueryRequest {
                    context: Some(context(
                        PROBING_PRACTITIONER,
                        Role::SchoolDsl,
                        Purpose::ChildSafeguarding,
                    )),
                    subject: by_identifier(proto::IdentifierScheme::PncId, DEAN_PNC),
                    search: None,
                })
                .await;
            if asked.is_ok() {
                anyhow::bail!("{PROBING_PRACTITIONER}'s query was answered; it must be refused");
            }
        }
        // The rules run beside the log's append, not inside the call: wait a little.
        for _ in 0..50 {
            alert = raised(alerts.list_alerts(list.clone()).await?.into_inner().alerts);
            if alert.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let _ = writeln!(
        out,
        "\n8. A school DSL ({PROBING_PRACTITIONER}) with no involvement asks about Dean \
         {PROBING_REFUSALS} times and is refused each time."
    );
    match alert {
        Some(alert) => {
            let _ = writeln!(
                out,
                "    The privacy alerts raise a case for the IG office ({}, alert {}): {}\n    \
                 Work it in the console's Privacy alerts, or: safegate audit alerts show {}",
                alert.rule_id, alert.alert_id, alert.summary, alert.alert_id
            );
        }
        None => {
            let _ = writeln!(out, "    (No privacy alert was raised within 10 s.)");
        }
    }
    Ok(())
}

/// The IOM officer asks the health visiting team, shown to them only as an indicator in
/// step 1, to get in touch about Chloe; the team answers "contacted".
async fn contact_about_chloe(
    addr: SocketAddr,
    pki_dir: &Path,
    case: &LoadedCase,
    iom_answer: &QueryResponse,
    out: &mut String,
) -> anyhow::Result<()> {
    let chloe = &case.persons["Chloe"];
    let Some(indicator) = iom_answer
        .linked
        .iter()
        .filter_map(|l| l.person.as_ref())
        .filter(|p| &p.person_id == chloe)
        .flat_map(|p| p.facts.iter())
        .find(|f| {
            f.category == "health_involvement"
                && f.indicator
                    .as_ref()
                    .is_some_and(|i| i.owner_system == "health-visiting")
        })
    else {
        let _ = writeln!(
            out,
            "\n7. (The IOM officer was not shown the health visitor for Chloe; no contact request.)"
        );
        return Ok(());
    };
    let iom = context("IOM-0001", Role::IomOfficer, Purpose::ChildSafeguarding);
    let hv = context("HV-0001", Role::HealthVisitor, Purpose::ChildSafeguarding);
    let mut as_iom = ContactServiceClient::new(client::channel(addr, pki_dir, "police-iom").await?);
    let made = as_iom
        .request_contact(RequestContactRequest {
            context: Some(iom.clone()),
            answer_entry_id: iom_answer.disclosure_entry_id.clone(),
            record_id: indicator.record_id.clone(),
            urgency: ContactUrgency::SameDay.into(),
            reason: "Dean Mills is managed by IOM for domestic abuse and his contact with \
                     the children must be supervised; we need to know what the health \
                     visitor sees at home."
                .into(),
            contact_route: "IOM-0001 via iom.team@police.example.test".into(),
            // The demo's own id for the request: running it again makes no second one.
            client_request_id: "demo-contact-chloe".into(),
        })
        .await?
        .into_inner();
    let request = made.request.unwrap_or_default();
    let _ = writeln!(
        out,
        "\n7. The IOM officer asks the health visiting team (an indicator in step 1) to get \
         in touch about Chloe, same day: request {} to {} ({}), due {}, logged as {}.",
        request.request_id,
        request.team,
        request.owner_system_id,
        request.due_at,
        request.request_entry_id
    );
    let told =
        NotificationServiceClient::new(client::channel(addr, pki_dir, "health-visiting").await?)
            .list_notices(ListNoticesRequest {
                context: Some(hv.clone()),
                after_cursor: 0,
                limit: 500,
            })
            .await?
            .into_inner()
            .notices
            .into_iter()
            .find(|n| n.contact_request_id == request.request_id && n.rule == "contact_request");
    if let Some(notice) = told {
        let _ = writeln!(
            out,
            "    health-visiting is told on its notification stream: {}",
            notice.headline
        );
    }
    if request.status() == ContactStatus::Open || request.status() == ContactStatus::Overdue {
        ContactServiceClient::new(client::channel(addr, pki_dir, "health-visiting").await?)
            .answer_contact(AnswerContactRequest {
                context: Some(hv),
                request_id: request.request_id.clone(),
                outcome: ContactOutcome::Contacted.into(),
                note: "Called the IOM officer; we will share what we see at home visits.".into(),
                passed_to_system_id: String::new(),
            })
            .await?;
    }
    let mine = as_iom
        .list_contact_requests(ListContactRequestsRequest {
            context: Some(iom),
            scope: ContactScope::RequestedByMe.into(),
        })
        .await?
        .into_inner()
        .requests;
    for request in mine.iter().filter(|r| r.request_id == request.request_id) {
        let _ = writeln!(
            out,
            "    The team answers; the IOM officer's requests now show: {}",
            contact_line(request)
        );
    }
    Ok(())
}

/// One contact request's status in words, as `safegate query` and the walk-through print it.
pub(crate) fn contact_line(request: &proto::ContactRequest) -> String {
    let word = |name: &str, prefix: &str| name.trim_start_matches(prefix).to_lowercase();
    let status = word(request.status().as_str_name(), "CONTACT_STATUS_");
    let urgency = word(request.urgency().as_str_name(), "CONTACT_URGENCY_");
    let mut line = format!(
        "{status}: {} record, {urgency}, asked of {} ({}), due {}",
        request.category, request.team, request.current_system_id, request.due_at
    );
    if request.status() == ContactStatus::Answered {
        let _ = write!(
            line,
            "; answered {} at {}",
            word(request.outcome().as_str_name(), "CONTACT_OUTCOME_"),
            request.answered_at
        );
        if !request.answer_note.is_empty() {
            let _ = write!(line, ": \"{}\"", request.answer_note);
        }
    } else if request.escalated {
        line.push_str("; escalated");
    }
    let _ = write!(line, " (request {})", request.request_id);
    line
}
