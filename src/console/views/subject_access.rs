//! The subject-access report: every disclosure recorded about one person, with the
//! entries of disclosures by police held back (counted, not shown) until an IG officer
//! releases them on the entry's page.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::{FieldError, check_form, display_time, person_reference};
use crate::domain::ledger::Disclosed;
use crate::domain::ledger::subject_access::SubjectAccessReport;
use crate::domain::records::PersonRef;

/// The form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SarForm {
    pub csrf_token: String,
    pub person: String,
}

/// One disclosure of the report, as the page shows it.
pub struct ReportRow {
    pub seq: u64,
    pub entry_id: String,
    pub recorded_at: String,
    pub kind: String,
    pub decision: String,
    pub agency: String,
    pub system_id: String,
    pub purpose: String,
    pub lawful_basis: String,
    pub break_glass: bool,
    pub released: Vec<Disclosed>,
    pub withheld: Vec<Disclosed>,
    pub released_for_subject_access: bool,
}

/// The form, and the report once one is built.
#[derive(Template)]
#[template(path = "console/subject_access.html")]
pub struct SarPage {
    pub layout: Layout,
    pub person: String,
    pub errors: Vec<FieldError>,
    pub note: String,
    pub report: Option<ReportView>,
}

/// The report, as the page shows it.
pub struct ReportView {
    pub person_id: String,
    pub rows: Vec<ReportRow>,
    pub withheld_count: u64,
    pub report_entry_id: String,
    pub covers_through_seq: u64,
}

impl From<SubjectAccessReport> for ReportView {
    fn from(report: SubjectAccessReport) -> Self {
        ReportView {
            person_id: report.person_id,
            withheld_count: report.withheld_count,
            report_entry_id: report.report_entry_id,
            covers_through_seq: report.covers_through_seq,
            rows: report
                .disclosures
                .into_iter()
                .map(|d| ReportRow {
                    seq: d.seq,
                    entry_id: d.entry_id,
                    recorded_at: display_time(&d.recorded_at),
                    kind: d.kind.as_str().replace('_', " "),
                    decision: d.decision.as_str().replace('_', " "),
                    agency: d.agency.replace('_', " "),
                    system_id: d.system_id,
                    purpose: d.purpose.replace('_', " "),
                    lawful_basis: d.lawful_basis,
                    break_glass: d.break_glass,
                    released: d.released,
                    withheld: d.withheld,
                    released_for_subject_access: d.released_for_subject_access,
                })
                .collect(),
        }
    }
}

/// The form (nothing from the log is shown, so nothing is logged).
pub async fn view_sar_get(officer: Officer, State(state): State<Arc<ConsoleState>>) -> Response {
    render(
        StatusCode::OK,
        &SarPage {
            layout: officer.layout(&state, "Subject-access report", Nav::SubjectAccess),
            person: String::new(),
            errors: Vec::new(),
            note: String::new(),
            report: None,
        },
    )
}

/// Builds the report; it is logged (as the gRPC report is) before it is shown.
pub async fn view_sar_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<SarForm>,
) -> Response {
    officer
        .answer(&state, Nav::SubjectAccess, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let mut page = SarPage {
                layout: officer.layout(&state, "Subject-access report", Nav::SubjectAccess),
                person: form.person.clone(),
                errors: Vec::new(),
                note: String::new(),
                report: None,
            };
            let reference = match person_reference(&form.person) {
                Ok(reference) => reference,
                Err(message) => {
                    page.layout.title = "Error: Subject-access report".into();
                    page.errors = vec![FieldError {
                        field: "person",
                        message,
                    }];
                    return Ok(render(StatusCode::BAD_REQUEST, &page));
                }
            };
            let Some(person_id) = state.store.find_person(&reference).await? else {
                let mut read = officer.read();
                read.subject_asked = match &reference {
                    PersonRef::PersonId(id) => format!("person_id:{id}"),
                    PersonRef::Identifier(identifier) => identifier.key(),
                };
                read.reason = "subject-access report: the person named is not on record".into();
                state.ledger.record_read(read, &[]).await?;
                page.note = "No person on record has this identifier, so no disclosure about \
                             them is recorded."
                    .into();
                return Ok(render(StatusCode::OK, &page));
            };
            let report = state
                .ledger
                .subject_access_report(officer.read(), &person_id)
                .await?;
            page.report = Some(report.into());
            Ok(render(StatusCode::OK, &page))
        })
        .await
}
