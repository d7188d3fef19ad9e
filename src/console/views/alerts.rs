//! The privacy alerts (`policies/alerts.toml`): the list of cases, newest first, and
//! each case with why it was raised, the entries it rests on, its history and the forms
//! to assign and close it. Every page is one logged read of the cases, through the same
//! domain calls as `safegate.v1.AlertService`; assigning and closing write the step with
//! the log entry that records it.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::{
    Choice, Done, EntryRow, FieldError, check_form, display_time, error_for,
};
use crate::domain::alerts::cases::{AlertDetail, AlertFilter};
use crate::domain::alerts::{AlertCase, AlertRule, CaseAction, CaseOutcome, CaseState, Cases};
use crate::error::Error;

/// Alerts per page of the list.
const PAGE: u32 = 50;

/// A rule in words, for the list and the case (the id itself for a rule this gateway
/// does not know).
pub fn rule_words(rule_id: &str) -> String {
    match AlertRule::parse(rule_id) {
        Some(AlertRule::BreakGlassWithoutInvolvement) => {
            "Break-glass not followed by an involvement"
        }
        Some(AlertRule::InvolvementWindow) => "Involvement recorded just around a query",
        Some(AlertRule::VolumeAboveUsual) => "Far more queries than the practitioner's usual",
        Some(AlertRule::RepeatedRefusals) => "Repeated refusals",
        Some(AlertRule::OutOfHours) => "Query out of hours",
        None => rule_id,
    }
    .to_owned()
}

/// A rule in a word or two, for a chart's axis.
pub fn rule_label(rule_id: &str) -> String {
    match AlertRule::parse(rule_id) {
        Some(AlertRule::BreakGlassWithoutInvolvement) => "Break-glass",
        Some(AlertRule::InvolvementWindow) => "Involvement window",
        Some(AlertRule::VolumeAboveUsual) => "Volume",
        Some(AlertRule::RepeatedRefusals) => "Refusals",
        Some(AlertRule::OutOfHours) => "Out of hours",
        None => rule_id,
    }
    .to_owned()
}

/// An outcome in words.
fn outcome_words(outcome: CaseOutcome) -> &'static str {
    match outcome {
        CaseOutcome::Explained => "Explained: the access was legitimate",
        CaseOutcome::Breach => "Breach: the access was inappropriate",
        CaseOutcome::FalsePositive => "False positive: the rule fired when it should not have",
    }
}

/// The list's filters, as the query string carries them (no personal data in them).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub state: String,
    pub rule: String,
    /// The position of the last alert of the previous page.
    pub before: String,
}

/// One row of the list.
pub struct AlertRow {
    pub alert_id: String,
    pub rule: String,
    pub raised_at: String,
    pub who: String,
    pub state: String,
    pub assignee: String,
}

/// Who an alert is about: the practitioner at their system, or the system alone.
fn who(case: &AlertCase) -> String {
    let a = &case.alert;
    if a.practitioner_id.is_empty() {
        format!("system {}", a.system_id)
    } else {
        format!("{} at {}", a.practitioner_id, a.system_id)
    }
}

impl From<&AlertCase> for AlertRow {
    fn from(case: &AlertCase) -> Self {
        AlertRow {
            alert_id: case.alert.alert_id.clone(),
            rule: rule_words(&case.alert.rule_id),
            raised_at: display_time(&case.alert.raised_at),
            who: who(case),
            state: case.state.as_str().to_owned(),
            assignee: case.assignee.clone(),
        }
    }
}

/// The list page.
#[derive(Template)]
#[template(path = "console/alerts.html")]
pub struct AlertsPage {
    pub layout: Layout,
    pub errors: Vec<FieldError>,
    pub states: Vec<Choice>,
    pub rules: Vec<Choice>,
    pub rows: Vec<AlertRow>,
    /// The query string of the next page; empty on the last.
    pub next_page: String,
    /// The query string of the first page; empty on the first.
    pub first_page: String,
}

impl AlertsPage {
    fn error(&self, field: &str) -> String {
        error_for(&self.errors, field)
    }
}

/// The query string of the list with these filters, from `before` (0: the newest).
fn list_query(state: &str, rule: &str, before: u64) -> String {
    let mut query = format!("?state={state}");
    if !rule.is_empty() {
        query.push_str(&format!("&rule={rule}"));
    }
    if before > 0 {
        query.push_str(&format!("&before={before}"));
    }
    query
}

/// The filters read, or the problems with them.
fn read_query(query: &ListQuery) -> Result<(String, AlertFilter), Vec<FieldError>> {
    let mut errors = Vec::new();
    let state_text = match query.state.trim() {
        "" => "all",
        text => text,
    };
    let state = match state_text {
        "all" => None,
        text => {
            let parsed = CaseState::parse(text);
            if parsed.is_none() {
                errors.push(FieldError {
                    field: "state",
                    message: "Select open, assigned, closed or all".into(),
                });
            }
            parsed
        }
    };
    let rule = query.rule.trim();
    if !rule.is_empty() && AlertRule::parse(rule).is_none() {
        errors.push(FieldError {
            field: "rule",
            message: "Select one of the rules, or any rule".into(),
        });
    }
    let before_seq = match query.before.trim() {
        "" => 0,
        text => text.parse::<u64>().unwrap_or_else(|_| {
            errors.push(FieldError {
                field: "state",
                message: "The page asked for does not exist: start again from the first page"
                    .into(),
            });
            0
        }),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        state_text.to_owned(),
        AlertFilter {
            rule_id: (!rule.is_empty()).then(|| rule.to_owned()),
            state,
            before_seq,
            limit: PAGE,
            ..AlertFilter::default()
        },
    ))
}

/// The list; the read is logged (naming each alert shown) before it is shown.
pub async fn view_alerts_get(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<ListQuery>,
) -> Response {
    officer
        .answer(&state, Nav::Alerts, async {
            let state_values = ["all", "open", "assigned", "closed"];
            let current_state = match query.state.trim() {
                "" => "all",
                text => text,
            };
            let rules: Vec<&str> = AlertRule::ALL.iter().map(|r| r.as_str()).collect();
            let mut page = AlertsPage {
                layout: officer.layout(&state, "Privacy alerts", Nav::Alerts),
                errors: Vec::new(),
                states: state_values
                    .iter()
                    .map(|v| Choice {
                        value: (*v).to_owned(),
                        label: match *v {
                            "all" => "All".to_owned(),
                            other => {
                                let mut label = other.to_owned();
                                label[..1].make_ascii_uppercase();
                                label
                            }
                        },
                        selected: *v == current_state,
                    })
                    .collect(),
                rules: std::iter::once(Choice {
                    value: String::new(),
                    label: "Any rule".into(),
                    selected: query.rule.trim().is_empty(),
                })
                .chain(rules.iter().map(|r| Choice {
                    value: (*r).to_owned(),
                    label: rule_words(r),
                    selected: *r == query.rule.trim(),
                }))
                .collect(),
                rows: Vec::new(),
                next_page: String::new(),
                first_page: String::new(),
            };
            let (state_text, filter) = match read_query(&query) {
                Ok(read) => read,
                Err(errors) => {
                    page.layout.title = "Error: Privacy alerts".into();
                    page.errors = errors;
                    return Ok(render(StatusCode::BAD_REQUEST, &page));
                }
            };
            let mut read = officer.read();
            read.reason = "privacy alerts: the list of cases".into();
            let cases = Cases::new(state.ledger.clone(), Arc::new(state.store.clone()))
                .list(read, &filter)
                .await?;
            let rule = filter.rule_id.clone().unwrap_or_default();
            if let Some(last) = cases.last().filter(|_| cases.len() == PAGE as usize) {
                page.next_page = list_query(&state_text, &rule, last.seq);
            }
            if filter.before_seq > 0 {
                page.first_page = list_query(&state_text, &rule, 0);
            }
            page.rows = cases.iter().map(AlertRow::from).collect();
            Ok(render(StatusCode::OK, &page))
        })
        .await
}

/// One step of a case's history, in words.
pub struct StepView {
    pub what: String,
    pub by: String,
    pub at: String,
    pub note: String,
    pub log_entry_id: String,
}

/// The case page.
#[derive(Template)]
#[template(path = "console/alert.html")]
pub struct AlertPage {
    pub layout: Layout,
    pub alert_id: String,
    pub rule_id: String,
    pub rule: String,
    pub rules_version: String,
    pub raised_at: String,
    pub who: String,
    pub summary: String,
    pub state: String,
    pub closed: bool,
    pub assigned: bool,
    pub assignee: String,
    pub outcome_words: String,
    pub entries: Vec<EntryRow>,
    /// Entries the alert names that the log did not return (none in a sound log).
    pub missing_entries: Vec<String>,
    pub history: Vec<StepView>,
    pub outcomes: Vec<Choice>,
    pub notice: String,
    pub errors: Vec<FieldError>,
    /// What the officer typed, shown again with the errors.
    pub form_assignee: String,
    pub assign_note: String,
    pub close_note: String,
}

impl AlertPage {
    fn error(&self, field: &str) -> String {
        error_for(&self.errors, field)
    }

    fn new(layout: Layout, detail: AlertDetail) -> Self {
        let AlertDetail { case, entries } = detail;
        let a = &case.alert;
        let mut history = vec![StepView {
            what: "Raised".into(),
            by: "the gateway's alert rules".into(),
            at: display_time(&a.raised_at),
            note: String::new(),
            log_entry_id: a.log_entry_id.clone(),
        }];
        history.extend(case.events.iter().map(|e| StepView {
            what: match (e.action, e.outcome) {
                (CaseAction::Assigned, _) => format!("Assigned to {}", e.assignee),
                (CaseAction::Closed, Some(outcome)) => {
                    format!("Closed. {}", outcome_words(outcome))
                }
                (CaseAction::Closed, None) => "Closed".into(),
            },
            by: format!("{} ({})", e.by_id, e.by_system),
            at: display_time(&e.at),
            note: e.note.clone(),
            log_entry_id: e.log_entry_id.clone(),
        }));
        let missing_entries = a
            .entry_ids
            .iter()
            .filter(|id| !entries.iter().any(|s| &s.entry.entry_id == *id))
            .cloned()
            .collect();
        AlertPage {
            layout,
            alert_id: a.alert_id.clone(),
            rule_id: a.rule_id.clone(),
            rule: rule_words(&a.rule_id),
            rules_version: a.rules_version.clone(),
            raised_at: display_time(&a.raised_at),
            who: who(&case),
            summary: a.summary.clone(),
            state: case.state.as_str().to_owned(),
            closed: case.state == CaseState::Closed,
            assigned: case.state == CaseState::Assigned,
            assignee: case.assignee.clone(),
            outcome_words: case
                .outcome
                .map(outcome_words)
                .unwrap_or_default()
                .to_owned(),
            entries: entries.iter().map(EntryRow::from).collect(),
            missing_entries,
            history,
            outcomes: outcome_choices(""),
            notice: String::new(),
            errors: Vec::new(),
            form_assignee: String::new(),
            assign_note: String::new(),
            close_note: String::new(),
        }
    }
}

/// The outcomes as radios, `current` checked.
fn outcome_choices(current: &str) -> Vec<Choice> {
    CaseOutcome::ALL
        .iter()
        .map(|o| Choice {
            value: o.as_str().to_owned(),
            label: outcome_words(*o).to_owned(),
            selected: o.as_str() == current,
        })
        .collect()
}

/// The case, read (and logged) for `officer`.
async fn alert_page(
    state: &ConsoleState,
    officer: &Officer,
    alert_id: &str,
) -> Result<AlertPage, Error> {
    let mut read = officer.read();
    read.reason = "privacy alerts: one case".into();
    let detail = Cases::new(state.ledger.clone(), Arc::new(state.store.clone()))
        .get(read, alert_id)
        .await?;
    let layout = officer.layout(state, "Privacy alert case", Nav::Alerts);
    Ok(AlertPage::new(layout, detail))
}

/// The case; the read is logged (naming the alert and each entry shown) first.
pub async fn view_alert_get(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(alert_id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    officer
        .answer(&state, Nav::Alerts, async {
            let mut page = alert_page(&state, &officer, alert_id.trim()).await?;
            page.notice = match done.done.as_str() {
                "assigned" => "The assignment is recorded in the log.",
                "closed" => "The case is closed; its outcome and note are recorded in the log.",
                _ => "",
            }
            .to_owned();
            Ok(render(StatusCode::OK, &page))
        })
        .await
}

/// The assignment form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AssignForm {
    pub csrf_token: String,
    pub assignee: String,
    pub assign_note: String,
}

/// The closing form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CloseForm {
    pub csrf_token: String,
    pub outcome: String,
    pub close_note: String,
}

/// After a recorded step, the case again (POST, redirect, GET).
fn see_case(alert_id: &str, done: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/alerts/{alert_id}?done={done}"))],
    )
        .into_response()
}

/// A refusal of the domain turned into the form's errors: a field it names becomes the
/// form's field `fields` maps it to, a case in the wrong state an error on `state_field`.
/// Anything else is the page's problem, not the form's.
fn form_errors(
    error: Error,
    fields: &[(&str, &'static str)],
    state_field: &'static str,
) -> Result<(StatusCode, Vec<FieldError>), Error> {
    match error {
        Error::InvalidArgument(violations) => {
            let mut errors = Vec::new();
            for v in &violations {
                match fields.iter().find(|(name, _)| *name == v.field) {
                    Some((_, field)) => errors.push(FieldError {
                        field,
                        message: sentence(&format!("The {} {}", v.field, v.description)),
                    }),
                    None => return Err(Error::InvalidArgument(violations)),
                }
            }
            Ok((StatusCode::BAD_REQUEST, errors))
        }
        Error::FailedPrecondition { reason, .. } => Ok((
            StatusCode::CONFLICT,
            vec![FieldError {
                field: state_field,
                message: sentence(&reason),
            }],
        )),
        other => Err(other),
    }
}

/// `text` with a capital first letter.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Assigns the case to an IG officer, with an optional note.
pub async fn view_assign_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(alert_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AssignForm>,
) -> Response {
    officer
        .answer(&state, Nav::Alerts, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let alert_id = alert_id.trim();
            let assignee = form.assignee.trim();
            let mut errors = Vec::new();
            if assignee.is_empty() {
                errors.push(FieldError {
                    field: "assignee",
                    message: "Enter the practitioner id of the IG officer to assign the case to"
                        .into(),
                });
            } else if !state.registry.current().is_ig_officer(assignee) {
                errors.push(FieldError {
                    field: "assignee",
                    message: "Enter the practitioner id of a registered IG officer, such as \
                              IG-0002"
                        .into(),
                });
            }
            let mut status = StatusCode::BAD_REQUEST;
            if errors.is_empty() {
                let done = Cases::new(state.ledger.clone(), Arc::new(state.store.clone()))
                    .assign(officer.read(), alert_id, assignee, &form.assign_note)
                    .await;
                match done {
                    Ok(_) => return Ok(see_case(alert_id, "assigned")),
                    Err(error) => {
                        (status, errors) = form_errors(
                            error,
                            &[("assignee", "assignee"), ("note", "assign_note")],
                            "assignee",
                        )?;
                    }
                }
            }
            let mut page = alert_page(&state, &officer, alert_id).await?;
            page.layout.title = format!("Error: {}", page.layout.title);
            page.errors = errors;
            page.form_assignee = form.assignee;
            page.assign_note = form.assign_note;
            Ok(render(status, &page))
        })
        .await
}

/// Closes an assigned case with an outcome and a note saying why.
pub async fn view_close_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(alert_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CloseForm>,
) -> Response {
    officer
        .answer(&state, Nav::Alerts, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let alert_id = alert_id.trim();
            let outcome = CaseOutcome::parse(form.outcome.trim());
            let mut errors = Vec::new();
            if outcome.is_none() {
                errors.push(FieldError {
                    field: "outcome",
                    message: "Select what the investigation found".into(),
                });
            }
            if form.close_note.trim().is_empty() {
                errors.push(FieldError {
                    field: "close_note",
                    message: "Enter a note saying why: a later reader relies on it".into(),
                });
            }
            let mut status = StatusCode::BAD_REQUEST;
            if let Some(outcome) = outcome.filter(|_| errors.is_empty()) {
                let done = Cases::new(state.ledger.clone(), Arc::new(state.store.clone()))
                    .close(officer.read(), alert_id, outcome, &form.close_note)
                    .await;
                match done {
                    Ok(_) => return Ok(see_case(alert_id, "closed")),
                    Err(error) => {
                        (status, errors) =
                            form_errors(error, &[("note", "close_note")], "outcome")?;
                    }
                }
            }
            let mut page = alert_page(&state, &officer, alert_id).await?;
            page.layout.title = format!("Error: {}", page.layout.title);
            page.errors = errors;
            page.outcomes = outcome_choices(form.outcome.trim());
            page.close_note = form.close_note;
            Ok(render(status, &page))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_words_and_a_label() {
        for rule in AlertRule::ALL {
            assert_ne!(rule_words(rule.as_str()), rule.as_str());
            assert_ne!(rule_label(rule.as_str()), rule.as_str());
        }
        assert_eq!(rule_words("alerts.unknown"), "alerts.unknown");
    }

    #[test]
    fn filters_are_checked_naming_the_field() {
        let bad = ListQuery {
            state: "reopened".into(),
            rule: "alerts.nothing".into(),
            before: String::new(),
        };
        let fields: Vec<_> = read_query(&bad)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["state", "rule"]);
        let (state, filter) = read_query(&ListQuery {
            state: "closed".into(),
            rule: "alerts.repeated_refusals".into(),
            before: "42".into(),
        })
        .expect("valid");
        assert_eq!(state, "closed");
        assert_eq!(filter.state, Some(CaseState::Closed));
        assert_eq!(filter.before_seq, 42);
        assert_eq!(
            list_query("closed", "alerts.repeated_refusals", 42),
            "?state=closed&rule=alerts.repeated_refusals&before=42"
        );
    }
}
