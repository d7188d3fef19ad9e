//! Downloads of the log: JSON lines (verifiable offline when unfiltered), CSV and FHIR
//! R4 AuditEvent NDJSON, through the same export as `ExportEntries`. The export is
//! logged before its first line leaves; the form is posted (it writes to the log).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::{Choice, FieldError, check_form, choices, error_for};
use crate::domain::Agency;
use crate::domain::ledger::audit::LogSearch;
use crate::domain::ledger::export::ExportFormat;
use crate::domain::records::Day;

/// The form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportForm {
    pub csrf_token: String,
    pub format: String,
    pub agency: String,
    pub from_date: String,
    pub to_date: String,
}

/// The exports page.
#[derive(Template)]
#[template(path = "console/exports.html")]
pub struct ExportsPage {
    pub layout: Layout,
    pub errors: Vec<FieldError>,
    pub format: String,
    pub agencies: Vec<Choice>,
    pub from_date: String,
    pub to_date: String,
}

impl ExportsPage {
    fn error(&self, field: &str) -> String {
        error_for(&self.errors, field)
    }
}

fn page(layout: Layout, form: &ExportForm, errors: Vec<FieldError>) -> ExportsPage {
    let agencies: Vec<&str> = Agency::ALL.iter().map(|a| a.as_str()).collect();
    ExportsPage {
        layout,
        errors,
        format: form.format.clone(),
        agencies: choices(&agencies, &form.agency, "Every agency"),
        from_date: form.from_date.clone(),
        to_date: form.to_date.clone(),
    }
}

/// The form (nothing from the log is shown, so nothing is logged).
pub async fn view_exports_get(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
) -> Response {
    let layout = officer.layout(&state, "Export the log", Nav::Exports);
    render(
        StatusCode::OK,
        &page(layout, &ExportForm::default(), Vec::new()),
    )
}

/// Streams the export as a download, once its entry is in the log.
pub async fn view_exports_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<ExportForm>,
) -> Response {
    officer
        .answer(&state, Nav::Exports, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let mut errors = Vec::new();
            let format = ExportFormat::parse(&form.format);
            if format.is_none() {
                errors.push(FieldError {
                    field: "format",
                    message: "Select the format of the export".into(),
                });
            }
            for (field, text) in [("from_date", &form.from_date), ("to_date", &form.to_date)] {
                if !text.trim().is_empty() && Day::parse(text).is_none() {
                    errors.push(FieldError {
                        field,
                        message: "Enter a date as YYYY-MM-DD, for example 2026-11-30".into(),
                    });
                }
            }
            let Some(format) = format.filter(|_| errors.is_empty()) else {
                let layout = officer.layout(&state, "Error: Export the log", Nav::Exports);
                return Ok(render(
                    StatusCode::BAD_REQUEST,
                    &page(layout, &form, errors),
                ));
            };
            let filter = LogSearch {
                agency: form.agency.clone(),
                from_time: form.from_date.trim().to_owned(),
                // The last day named is included: the bound is the start of the next.
                to_time: next_day(form.to_date.trim()),
                ..LogSearch::default()
            }
            .filter()?;
            let export = state.ledger.export(officer.read(), &filter, format).await?;
            let (extension, content_type) = match format {
                ExportFormat::Jsonl => ("jsonl", "application/x-ndjson"),
                ExportFormat::Csv => ("csv", "text/csv; charset=utf-8"),
                ExportFormat::Fhir => ("ndjson", "application/fhir+ndjson"),
            };
            let name = format!(
                "disclosure-log-{}-{}.{extension}",
                format.as_str(),
                export.tree_size
            );
            let chunks = ReceiverStream::new(export.chunks).map(|chunk| {
                chunk.map(bytes::Bytes::from).map_err(|error| {
                    // The download stops short; the cause is logged here, once.
                    tracing::error!(%error, "console: an export stopped part-way");
                    std::io::Error::other("the export could not be completed")
                })
            });
            let mut response = (StatusCode::OK, Body::from_stream(chunks)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            Ok(response)
        })
        .await
}

/// The day after `day` (`YYYY-MM-DD`).
fn next_day(day: &str) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format)
        .ok()
        .and_then(time::Date::next_day)
        .and_then(|next| next.format(&format).ok())
        .unwrap_or_default()
}
