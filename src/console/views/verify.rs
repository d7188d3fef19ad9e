//! Verify the whole log: the verification runs as a job beside the page, and the job's
//! page refreshes itself (a meta refresh, no script) with the progress until it is done.
//! The verification is logged when it has run, as `VerifyLog` logs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::check_form;
use crate::domain::progress::Progress;
use crate::error::Error;

/// Jobs kept at most; the oldest finished ones make room.
const JOBS_MAX: usize = 64;

/// The verification jobs under way or done, by id.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

/// One verification: who started it and how far it is.
pub struct Job {
    /// The officer who started it (only they see it).
    practitioner_id: String,
    started_at: String,
    state: Mutex<JobState>,
}

#[derive(Debug, Clone, Default)]
struct JobState {
    done: u64,
    total: Option<u64>,
    outcome: Option<Outcome>,
}

/// What a finished verification found, in words.
#[derive(Debug, Clone)]
struct Outcome {
    valid: bool,
    summary: String,
}

impl Jobs {
    fn insert(&self, job: Arc<Job>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(mut jobs) = self.jobs.lock() {
            if jobs.len() >= JOBS_MAX {
                let finished: Vec<String> = jobs
                    .iter()
                    .filter(|(_, j)| j.state.lock().is_ok_and(|s| s.outcome.is_some()))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in finished {
                    jobs.remove(&id);
                }
            }
            jobs.insert(id.clone(), job);
        }
        id
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok().and_then(|jobs| jobs.get(id).cloned())
    }
}

/// The verify page: what a verification checks, and the button that starts one.
#[derive(Template)]
#[template(path = "console/verify.html")]
pub struct VerifyPage {
    pub layout: Layout,
}

/// A job's page.
#[derive(Template)]
#[template(path = "console/verify_job.html")]
pub struct JobPage {
    pub layout: Layout,
    pub started_at: String,
    pub done: u64,
    /// Entries to check, when known.
    pub total: u64,
    pub percent: u64,
    pub finished: bool,
    pub valid: bool,
    pub summary: String,
}

/// The page that starts a verification.
pub async fn view_verify_get(officer: Officer, State(state): State<Arc<ConsoleState>>) -> Response {
    render(
        StatusCode::OK,
        &VerifyPage {
            layout: officer.layout(&state, "Verify the log", Nav::Verify),
        },
    )
}

/// The start form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartForm {
    pub csrf_token: String,
}

/// Starts a verification and sends the officer to its page.
pub async fn view_verify_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Response {
    officer
        .answer(&state, Nav::Verify, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let job = Arc::new(Job {
                practitioner_id: officer.signed_in.officer.practitioner_id.clone(),
                started_at: crate::console::views::display_time(&crate::domain::ledger::now()),
                state: Mutex::new(JobState::default()),
            });
            let id = state.jobs.insert(Arc::clone(&job));
            let ledger = state.ledger.clone();
            let read = officer.read();
            tokio::spawn(async move {
                let watched = Arc::clone(&job);
                let mut progress = move |p: Progress| {
                    if let Ok(mut s) = watched.state.lock() {
                        s.done = p.done;
                        s.total = p.total;
                    }
                };
                let outcome = match ledger.verify_logged_reporting(read, &mut progress).await {
                    Ok((Ok(verified), checkpoint, _)) => Outcome {
                        valid: true,
                        summary: format!(
                            "The log verifies: all {} entries match their hashes, the hash \
                             chain and the Merkle tree, and the tables beside the log match \
                             the entries that record them{}.",
                            verified.entries,
                            checkpoint.map_or(String::new(), |c| format!(
                                "; the signed checkpoint of {} entries verifies",
                                c.tree_size
                            ))
                        ),
                    },
                    Ok((Err(mismatch), _, _)) => Outcome {
                        valid: false,
                        summary: format!(
                            "The log does NOT verify. First problem at entry {}{}: {}",
                            mismatch.seq,
                            if mismatch.entry_id.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", mismatch.entry_id)
                            },
                            mismatch.problem
                        ),
                    },
                    Err(error) => {
                        let reference = uuid::Uuid::new_v4();
                        tracing::error!(%reference, %error, "console: verification failed to run");
                        Outcome {
                            valid: false,
                            summary: format!(
                                "The verification could not run to the end (the log could \
                                 not be read or its verification not recorded). Quote \
                                 reference {reference} to the gateway's operators."
                            ),
                        }
                    }
                };
                if let Ok(mut s) = job.state.lock() {
                    s.outcome = Some(outcome);
                }
            });
            Ok((
                StatusCode::SEE_OTHER,
                [(header::LOCATION, format!("/verify/{id}"))],
            )
                .into_response())
        })
        .await
}

/// A verification's progress, or what it found.
pub async fn view_job_get(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    Path(job_id): Path<String>,
) -> Response {
    officer
        .answer(&state, Nav::Verify, async {
            let job = state
                .jobs
                .get(job_id.trim())
                .filter(|job| job.practitioner_id == officer.signed_in.officer.practitioner_id)
                .ok_or_else(|| Error::NotFound {
                    field: "job_id".into(),
                    reason: "no verification you started has this id (jobs are kept until \
                             the gateway restarts)"
                        .into(),
                })?;
            let s = job.state.lock().map(|s| s.clone()).unwrap_or_default();
            let total = s.total.unwrap_or(0);
            let finished = s.outcome.is_some();
            let outcome = s.outcome.unwrap_or(Outcome {
                valid: false,
                summary: String::new(),
            });
            let title = if finished {
                "Verification finished"
            } else {
                "Verifying the log"
            };
            Ok(render(
                StatusCode::OK,
                &JobPage {
                    layout: officer.layout(&state, title, Nav::Verify),
                    started_at: job.started_at.clone(),
                    done: s.done,
                    total,
                    percent: (s.done.min(total) * 100).checked_div(total).unwrap_or(0),
                    finished,
                    valid: outcome.valid,
                    summary: outcome.summary,
                },
            ))
        })
        .await
}
