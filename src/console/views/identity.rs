//! The identity steward's pages: the open review tasks, one task with both persons'
//! published details side by side and the decision, and the identity links with a
//! split. Every page that shows a person's details is logged first, by the same domain
//! calls as `safegate.v1.IdentityResolutionService`; decisions are the steward's own.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::console::ConsoleState;
use crate::console::officer::{Officer, StewardOfficer};
use crate::console::page::{Layout, Nav, render};
use crate::console::views::{FieldError, check_form, display_time, error_for};
use crate::domain::identity::{
    IdentityCard, IdentityLink, LinkMethod, ReviewState, Steward, TaskView,
};
use crate::domain::records::Identifier;
use crate::error::Error;

/// Most links the links page lists (the newest).
pub const LINKS_SHOWN: u32 = 100;

fn steward(state: &ConsoleState) -> Steward {
    Steward::new(
        Arc::new(state.store.clone()),
        state.ledger.clone(),
        Arc::clone(&state.rules),
    )
}

/// A probability as the pages show it, e.g. `91.2%`.
fn percent(probability: Option<f64>) -> String {
    probability
        .map(|p| format!("{:.1}%", p * 100.0))
        .unwrap_or_else(|| "not scored".into())
}

/// An agency as the pages name it.
fn agency_words(agency: &str) -> String {
    match agency {
        "childrens_services" => "Children's Services".into(),
        other => other.replace('_', " "),
    }
}

/// One agency's published person details, in words.
pub struct RecordView {
    pub agency: String,
    pub system_id: String,
    pub name: String,
    pub other_names: Vec<String>,
    pub date_of_birth: String,
    pub sex: String,
    pub postcode: String,
    pub address: String,
    /// (scheme, value) of each identifier.
    pub identifiers: Vec<(String, String)>,
}

fn identifier(identifier: &Identifier) -> (String, String) {
    match identifier {
        Identifier::NhsNumber { value } => ("NHS number".into(), value.clone()),
        Identifier::PncId { value } => ("PNC id".into(), value.clone()),
        Identifier::Local {
            agency,
            namespace,
            value,
        } => (
            format!("{} local id ({namespace})", agency_words(agency)),
            value.clone(),
        ),
    }
}

fn records(card: &IdentityCard) -> Vec<RecordView> {
    card.records
        .iter()
        .map(|record| {
            let d = &record.details;
            let mut name = d.given_name.clone();
            for middle in &d.middle_names {
                name.push(' ');
                name.push_str(middle);
            }
            name.push(' ');
            name.push_str(&d.family_name);
            let mut address = d.address_lines.join(", ");
            if address.is_empty() {
                address = d.address.clone();
            }
            RecordView {
                agency: agency_words(record.agency.as_str()),
                system_id: record.system_id.clone(),
                name: name.trim().to_owned(),
                other_names: d
                    .other_names
                    .iter()
                    .map(|o| {
                        format!(
                            "{} ({})",
                            format!("{} {}", o.given_names, o.family_name).trim(),
                            o.kind.as_str()
                        )
                    })
                    .collect(),
                date_of_birth: d
                    .date_of_birth
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "not recorded".into()),
                sex: d
                    .sex
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "not recorded".into()),
                postcode: d
                    .postcode
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "not recorded".into()),
                address: if address.is_empty() {
                    "not recorded".into()
                } else {
                    address
                },
                identifiers: d.identifiers.iter().map(identifier).collect(),
            }
        })
        .collect()
}

/// The agencies whose records a card holds, in words.
fn agencies(card: &IdentityCard) -> String {
    let mut names: Vec<String> = card
        .records
        .iter()
        .map(|r| agency_words(r.agency.as_str()))
        .collect();
    names.dedup();
    if names.is_empty() {
        "no agency record".into()
    } else {
        names.join(", ")
    }
}

/// A row of the review queue.
pub struct TaskRow {
    pub task_id: String,
    pub raised_at: String,
    pub probability: String,
    pub reasons: Vec<String>,
    pub person_agencies: String,
    pub candidate_agencies: String,
}

/// The review queue.
#[derive(Template)]
#[template(path = "console/identity_tasks.html")]
pub struct TasksPage {
    pub layout: Layout,
    pub tasks: Vec<TaskRow>,
    pub notice: String,
}

/// A confirmation named in the query after a decision (never free text).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Done {
    pub done: String,
    pub crossed: u32,
}

/// The open review tasks, oldest first; the view is logged before it is shown.
pub async fn view_tasks_get(
    StewardOfficer(officer): StewardOfficer,
    State(state): State<Arc<ConsoleState>>,
    Query(done): Query<Done>,
) -> Response {
    officer
        .answer(&state, Nav::IdentityTasks, async {
            let (views, _) = steward(&state).tasks(officer.steward_call(), false).await?;
            let tasks = views
                .iter()
                .map(|view| TaskRow {
                    task_id: view.task.task_id.clone(),
                    raised_at: display_time(&view.task.raised_at),
                    probability: percent(view.task.probability),
                    reasons: view.task.reasons.clone(),
                    person_agencies: agencies(&view.person),
                    candidate_agencies: agencies(&view.candidate),
                })
                .collect();
            let notice = match done.done.as_str() {
                "confirmed" => {
                    "The match is confirmed: the two records are now one person, and the \
                     decision is in the disclosure log."
                }
                "rejected" => {
                    "The match is rejected: the two records stay apart and will not be \
                     proposed again. The decision is in the disclosure log."
                }
                _ => "",
            }
            .to_owned();
            Ok(render(
                StatusCode::OK,
                &TasksPage {
                    layout: officer.layout(&state, "Review tasks", Nav::IdentityTasks),
                    tasks,
                    notice,
                },
            ))
        })
        .await
}

/// One review task, both sides and the decision form.
#[derive(Template)]
#[template(path = "console/identity_task.html")]
pub struct TaskPage {
    pub layout: Layout,
    pub task_id: String,
    pub open: bool,
    pub state: String,
    pub raised_at: String,
    pub probability: String,
    pub rules_version: String,
    pub reasons: Vec<String>,
    pub explanation: Vec<String>,
    pub person: Vec<RecordView>,
    pub candidate: Vec<RecordView>,
    pub errors: Vec<FieldError>,
    pub decision: String,
    pub note: String,
}

impl TaskPage {
    fn error(&self, field: &str) -> String {
        error_for(&self.errors, field)
    }
}

async fn task_page(
    state: &ConsoleState,
    officer: &Officer,
    task_id: &str,
) -> Result<TaskPage, Error> {
    let view: TaskView = steward(state).task(officer.steward_call(), task_id).await?;
    Ok(TaskPage {
        layout: officer.layout(state, "Review task", Nav::IdentityTasks),
        task_id: view.task.task_id.clone(),
        open: view.task.state == ReviewState::Open,
        state: view.task.state.as_str().to_owned(),
        raised_at: display_time(&view.task.raised_at),
        probability: percent(view.task.probability),
        rules_version: view.task.rules_version.chars().take(12).collect(),
        reasons: view.task.reasons.clone(),
        explanation: view.explanation.clone(),
        person: records(&view.person),
        candidate: records(&view.candidate),
        errors: Vec::new(),
        decision: String::new(),
        note: String::new(),
    })
}

/// The task; the view of both persons' details is logged before it is shown.
pub async fn view_task_get(
    StewardOfficer(officer): StewardOfficer,
    State(state): State<Arc<ConsoleState>>,
    Path(task_id): Path<String>,
) -> Response {
    officer
        .answer(&state, Nav::IdentityTasks, async {
            let page = task_page(&state, &officer, &task_id).await?;
            Ok(render(StatusCode::OK, &page))
        })
        .await
}

/// The decision form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DecisionForm {
    pub csrf_token: String,
    /// `confirm` or `reject`.
    pub decision: String,
    pub note: String,
}

/// The steward's note refused by the domain, as the form's field error (`empty` when
/// none was given, else what the domain requires of the `label`); other errors are the
/// page's.
fn note_error(
    error: Error,
    field: &'static str,
    label: &str,
    given: &str,
    empty: &str,
) -> Result<FieldError, Error> {
    match error {
        Error::InvalidArgument(violations) if violations.iter().all(|v| v.field == "note") => {
            let message = match violations.first() {
                Some(v) if !given.trim().is_empty() => format!("{label} {}", v.description),
                _ => empty.to_owned(),
            };
            Ok(FieldError { field, message })
        }
        other => Err(other),
    }
}

/// Confirms or rejects the task with the steward's note, then back to the queue.
pub async fn view_decision_post(
    StewardOfficer(officer): StewardOfficer,
    State(state): State<Arc<ConsoleState>>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    officer
        .answer(&state, Nav::IdentityTasks, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let steward = steward(&state);
            let decided = match form.decision.as_str() {
                "confirm" => Some(
                    steward
                        .confirm(officer.steward_call(), &task_id, &form.note)
                        .await,
                ),
                "reject" => Some(
                    steward
                        .reject(officer.steward_call(), &task_id, &form.note)
                        .await,
                ),
                _ => None,
            };
            let errors = match decided {
                Some(Ok(_)) => {
                    let done = if form.decision == "confirm" {
                        "confirmed"
                    } else {
                        "rejected"
                    };
                    return Ok((
                        StatusCode::SEE_OTHER,
                        [(header::LOCATION, format!("/identity/tasks?done={done}"))],
                    )
                        .into_response());
                }
                Some(Err(error)) => vec![note_error(
                    error,
                    "note",
                    "The note",
                    &form.note,
                    "Enter a note saying why you decided this",
                )?],
                None => {
                    let mut errors = vec![FieldError {
                        field: "decision",
                        message: "Select whether the two records are the same person".into(),
                    }];
                    if form.note.trim().is_empty() {
                        errors.push(FieldError {
                            field: "note",
                            message: "Enter a note saying why you decided this".into(),
                        });
                    }
                    errors
                }
            };
            let mut page = task_page(&state, &officer, &task_id).await?;
            page.layout.title = format!("Error: {}", page.layout.title);
            page.errors = errors;
            page.decision = form.decision;
            page.note = form.note;
            Ok(render(StatusCode::BAD_REQUEST, &page))
        })
        .await
}

/// One person's side of a link, in words.
pub struct SideView {
    pub agencies: String,
    pub name: String,
    pub date_of_birth: String,
}

fn side(card: &IdentityCard) -> SideView {
    let shown = records(card);
    let first = shown.first();
    SideView {
        agencies: agencies(card),
        name: first.map(|r| r.name.clone()).unwrap_or_default(),
        date_of_birth: first.map(|r| r.date_of_birth.clone()).unwrap_or_default(),
    }
}

/// A row of the links page.
pub struct LinkRow {
    pub link_id: String,
    pub decided_at: String,
    pub method: String,
    pub probability: String,
    pub decided_by: String,
    pub active: bool,
    pub split_at: String,
    pub note: String,
    pub person: SideView,
    pub other: SideView,
}

impl From<(IdentityLink, IdentityCard, IdentityCard)> for LinkRow {
    fn from((link, person, other): (IdentityLink, IdentityCard, IdentityCard)) -> Self {
        LinkRow {
            method: match link.method {
                LinkMethod::Automatic => "automatic (matching rules)".into(),
                LinkMethod::Steward => "steward (review task confirmed)".into(),
            },
            probability: percent(link.probability),
            decided_by: format!(
                "{} ({})",
                link.decided_by_practitioner, link.decided_by_system
            ),
            decided_at: display_time(&link.decided_at),
            split_at: link
                .split_at
                .as_deref()
                .map(display_time)
                .unwrap_or_default(),
            active: link.active,
            note: link.note,
            link_id: link.link_id,
            person: side(&person),
            other: side(&other),
        }
    }
}

/// The links page.
#[derive(Template)]
#[template(path = "console/identity_links.html")]
pub struct LinksPage {
    pub layout: Layout,
    pub links: Vec<LinkRow>,
    pub shown_max: u32,
    pub notice: String,
    /// The link whose split form was refused, and why.
    pub error_link: String,
    pub error: String,
    pub reason: String,
}

async fn links_page(state: &ConsoleState, officer: &Officer) -> Result<LinksPage, Error> {
    let links = steward(state)
        .recent_links(officer.steward_call(), LINKS_SHOWN)
        .await?;
    Ok(LinksPage {
        layout: officer.layout(state, "Identity links", Nav::IdentityLinks),
        links: links.into_iter().map(LinkRow::from).collect(),
        shown_max: LINKS_SHOWN,
        notice: String::new(),
        error_link: String::new(),
        error: String::new(),
        reason: String::new(),
    })
}

/// The newest links; the view is logged before it is shown.
pub async fn view_links_get(
    StewardOfficer(officer): StewardOfficer,
    State(state): State<Arc<ConsoleState>>,
    Query(done): Query<Done>,
) -> Response {
    officer
        .answer(&state, Nav::IdentityLinks, async {
            let mut page = links_page(&state, &officer).await?;
            if done.done == "split" {
                page.notice = format!(
                    "The link is split: each record is its own person again. {} disclosures \
                     released facts across the link while it stood; the IG office finds them \
                     in the disclosure log.",
                    done.crossed
                );
            }
            Ok(render(StatusCode::OK, &page))
        })
        .await
}

/// The split form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SplitForm {
    pub csrf_token: String,
    pub reason: String,
}

/// Splits a link with the steward's reason, then back to the links.
pub async fn view_split_post(
    StewardOfficer(officer): StewardOfficer,
    State(state): State<Arc<ConsoleState>>,
    Path(link_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SplitForm>,
) -> Response {
    officer
        .answer(&state, Nav::IdentityLinks, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let error = match steward(&state)
                .split(officer.steward_call(), &link_id, &form.reason)
                .await
            {
                Ok(split) => {
                    return Ok((
                        StatusCode::SEE_OTHER,
                        [(
                            header::LOCATION,
                            format!("/identity/links?done=split&crossed={}", split.crossed.len()),
                        )],
                    )
                        .into_response());
                }
                Err(error) => note_error(
                    error,
                    "reason",
                    "The reason",
                    &form.reason,
                    "Enter the reason the link is wrong",
                )?,
            };
            let mut page = links_page(&state, &officer).await?;
            page.layout.title = format!("Error: {}", page.layout.title);
            page.error_link = link_id.trim().to_owned();
            page.error = error.message;
            page.reason = form.reason;
            Ok(render(StatusCode::BAD_REQUEST, &page))
        })
        .await
}
