//! One entry in full: who asked and why, the lawful basis, the policy version and rule
//! ids, what was released at which level and what was withheld, with its inclusion
//! proof checked against the signed checkpoint. A break-glass entry takes the IG
//! review's outcome and note here; a police entry can be released for subject access.

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
use crate::console::views::{Done, FieldError, check_form, display_time, error_for};
use crate::domain::ledger::audit::{LAW_ENFORCEMENT_AGENCY, ProvenEntry};
use crate::domain::ledger::review::ReviewOutcome;
use crate::domain::ledger::{Disclosed, Entry};
use crate::error::Error;

/// The entry page.
#[derive(Template)]
#[template(path = "console/entry.html")]
pub struct EntryPage {
    pub layout: Layout,
    pub entry: Entry,
    pub seq: u64,
    pub recorded_at: String,
    pub leaf_hash: String,
    pub chain_hash: String,
    pub released: Vec<Disclosed>,
    pub withheld: Vec<Disclosed>,
    pub proof: ProofView,
    /// The latest break-glass review, in words.
    pub review: Option<ReviewView>,
    pub can_release: bool,
    /// A confirmation after an outcome or release was recorded.
    pub notice: String,
    pub errors: Vec<FieldError>,
    pub note: String,
    pub outcome: String,
}

impl EntryPage {
    fn error(&self, field: &str) -> String {
        error_for(&self.errors, field)
    }
}

/// The inclusion proof, as the page states it.
pub struct ProofView {
    /// Whether the proof and the checkpoint's signature both verified.
    pub verified: bool,
    pub summary: String,
    pub tree_size: u64,
    pub signed_at: String,
    pub root: String,
    pub key_id: String,
    pub path: Vec<String>,
}

/// A break-glass review, as the page states it.
pub struct ReviewView {
    pub outcome: String,
    pub note: String,
    pub reviewer: String,
    pub reviewed_at: String,
}

impl From<&ProvenEntry> for ProofView {
    fn from(proven: &ProvenEntry) -> Self {
        let (tree_size, signed_at, root, key_id) = match &proven.checkpoint {
            Some(c) => (
                c.tree_size,
                display_time(&c.signed_at),
                hex::encode(c.root),
                c.key_id.clone(),
            ),
            None => (0, String::new(), String::new(), String::new()),
        };
        let verified = proven.proof_valid && proven.signature_valid;
        let summary = match (
            &proven.inclusion,
            proven.proof_valid,
            proven.signature_valid,
        ) {
            (None, _, _) => "This entry is not yet covered by a signed checkpoint; the next \
                             checkpoint will include it."
                .to_owned(),
            (Some(_), true, true) => format!(
                "This entry is leaf {} of the log of {} entries whose root the \
                 checkpoint signed at {} commits to, and the checkpoint's signature verifies \
                 with the log's key.",
                proven.stored.seq, tree_size, signed_at
            ),
            (Some(_), false, _) => "The inclusion proof does NOT lead to the signed root: the \
                                    entry or the tree has been altered. Verify the whole log."
                .to_owned(),
            (Some(_), true, false) => "The checkpoint's signature does NOT verify with the \
                                       log's key. Verify the whole log."
                .to_owned(),
        };
        ProofView {
            verified,
            summary,
            tree_size,
            signed_at,
            root,
            key_id,
            path: proven
                .inclusion
                .as_ref()
                .map(|p| p.path.iter().map(hex::encode).collect())
                .unwrap_or_default(),
        }
    }
}

async fn entry_page(
    state: &ConsoleState,
    officer: &Officer,
    entry_id: &str,
) -> Result<EntryPage, Error> {
    let proven = state.ledger.get_proven(officer.read(), entry_id).await?;
    let stored = &proven.stored;
    let entry = stored.entry.clone();
    let title = format!("Entry {}", stored.seq);
    Ok(EntryPage {
        layout: officer.layout(state, &title, Nav::Search),
        seq: stored.seq,
        recorded_at: display_time(&entry.recorded_at),
        leaf_hash: stored.leaf_hash.clone(),
        chain_hash: stored.chain_hash.clone(),
        released: entry.released.clone(),
        withheld: entry.withheld.clone(),
        proof: ProofView::from(&proven),
        review: stored.latest_review.as_ref().map(|r| ReviewView {
            outcome: r.outcome.as_str().to_owned(),
            note: r.note.clone(),
            reviewer: format!("{} ({})", r.reviewer_id, r.reviewer_system),
            reviewed_at: display_time(&r.reviewed_at),
        }),
        can_release: entry.agency == LAW_ENFORCEMENT_AGENCY,
        entry,
        notice: String::new(),
        errors: Vec::new(),
        note: String::new(),
        outcome: String::new(),
    })
}

/// The entry in full; the read is logged before it is shown.
pub async fn view_entry_get(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(entry_id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    officer
        .answer(&state, Nav::Search, async {
            let mut page = entry_page(&state, &officer, entry_id.trim()).await?;
            page.notice = match done.done.as_str() {
                "reviewed" => "The outcome of the break-glass review is recorded in the log.",
                "released" => "The entry is released for subject-access reports.",
                _ => "",
            }
            .to_owned();
            Ok(render(StatusCode::OK, &page))
        })
        .await
}

/// The break-glass review form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReviewForm {
    pub csrf_token: String,
    pub outcome: String,
    pub note: String,
}

/// The release form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseForm {
    pub csrf_token: String,
    pub release_note: String,
}

/// After a recorded change, the entry again (POST, redirect, GET).
fn see_entry(entry_id: &str, done: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/entries/{entry_id}?done={done}"))],
    )
        .into_response()
}

/// Records the outcome of a break-glass review and its note.
pub async fn view_review_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(entry_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ReviewForm>,
) -> Response {
    officer
        .answer(&state, Nav::BreakGlass, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let outcome = ReviewOutcome::parse(&form.outcome);
            let mut errors = Vec::new();
            if outcome.is_none() {
                errors.push(FieldError {
                    field: "outcome",
                    message: "Select whether the use of break-glass was appropriate".into(),
                });
            }
            if form.note.trim().is_empty() {
                errors.push(FieldError {
                    field: "note",
                    message: "Enter a note saying why: a later reader relies on it".into(),
                });
            }
            let Some(outcome) = outcome.filter(|_| errors.is_empty()) else {
                let mut page = entry_page(&state, &officer, entry_id.trim()).await?;
                page.layout.title = format!("Error: {}", page.layout.title);
                page.errors = errors;
                page.note = form.note;
                page.outcome = form.outcome;
                return Ok(render(StatusCode::BAD_REQUEST, &page));
            };
            state
                .ledger
                .review_break_glass(officer.read(), entry_id.trim(), outcome, &form.note)
                .await?;
            Ok(see_entry(entry_id.trim(), "reviewed"))
        })
        .await
}

/// Releases a police entry for subject-access reports, with its note.
pub async fn view_release_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(entry_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ReleaseForm>,
) -> Response {
    officer
        .answer(&state, Nav::SubjectAccess, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            if form.release_note.trim().is_empty() {
                let mut page = entry_page(&state, &officer, entry_id.trim()).await?;
                page.layout.title = format!("Error: {}", page.layout.title);
                page.errors = vec![FieldError {
                    field: "release_note",
                    message: "Enter a note saying why the entry may be disclosed".into(),
                }];
                return Ok(render(StatusCode::BAD_REQUEST, &page));
            }
            state
                .ledger
                .release_for_subject_access(officer.read(), entry_id.trim(), &form.release_note)
                .await?;
            Ok(see_entry(entry_id.trim(), "released"))
        })
        .await
}
