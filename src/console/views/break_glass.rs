//! The break-glass queue: every use of break-glass no IG officer has reviewed yet,
//! the overdue ones first. The outcome is recorded on each entry's page.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::EntryRow;
use crate::domain::ledger::audit::{LogSearch, PAGE_MAX};

/// A break-glass use unreviewed for longer than this many days is overdue.
pub const REVIEW_DUE_DAYS: i64 = 7;

/// The queue page.
#[derive(Template)]
#[template(path = "console/break_glass.html")]
pub struct QueuePage {
    pub layout: Layout,
    pub overdue: Vec<EntryRow>,
    pub pending: Vec<EntryRow>,
    pub due_days: i64,
    /// Whether more are waiting than one page shows.
    pub more: bool,
}

/// The queue; the read is logged before it is shown.
pub async fn view_queue_get(officer: Officer, State(state): State<Arc<ConsoleState>>) -> Response {
    officer
        .answer(&state, Nav::BreakGlass, async {
            let filter = LogSearch {
                break_glass: Some(true),
                break_glass_unreviewed: true,
                page_size: PAGE_MAX,
                ..LogSearch::default()
            }
            .filter()?;
            let mut read = officer.read();
            read.reason = "break-glass queue: unreviewed break-glass entries".into();
            let entries = state.ledger.list(read, &filter).await?;
            let due = (time::OffsetDateTime::now_utc() - time::Duration::days(REVIEW_DUE_DAYS))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let (overdue, pending): (Vec<_>, Vec<_>) = entries
                .iter()
                .partition(|stored| stored.entry.recorded_at < due);
            Ok(render(
                StatusCode::OK,
                &QueuePage {
                    layout: officer.layout(&state, "Break-glass queue", Nav::BreakGlass),
                    more: entries.len() == filter.limit as usize,
                    overdue: overdue.into_iter().map(EntryRow::from).collect(),
                    pending: pending.into_iter().map(EntryRow::from).collect(),
                    due_days: REVIEW_DUE_DAYS,
                },
            ))
        })
        .await
}
