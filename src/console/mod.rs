//! The information-governance officers' web console: the disclosure log in a browser,
//! and the identity steward's review tasks and identity links (each role its own pages).
//!
//! Served over HTTPS on its own listen address (`console_listen_addr`), by its own
//! rustls accept loop that asks for a client certificate optionally and hands it to the
//! handlers, so that a visitor without one gets a page saying why rather than a failed
//! handshake. Every page is answered for a signed-in officer only (see [`officer`]);
//! every page that shows the log's contents writes its own disclosure-log entry through
//! the same domain calls as `safegate.v1.AuditService`. Server-rendered HTML (askama
//! templates in `templates/console/`, auto-escaped) in the GOV.UK Design System, with
//! no JavaScript at all: the content security policy forbids scripts.
//!
//! No SQL and no tonic here: the console calls the ledger and the store's read
//! functions, as the gRPC audit service does.

mod assets;
mod csrf;
mod officer;
mod page;
mod tls;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::domain::identity::MatchRules;
use crate::domain::ledger::Ledger;
use crate::registry::RegistryHolder;
use crate::store::Store;

pub use tls::server_config;

/// What every handler of the console reaches.
pub struct ConsoleState {
    ledger: Ledger,
    store: Store,
    rules: Arc<MatchRules>,
    /// The registry in force: a reload (SIGHUP, `ReloadPolicy`) changes who may sign in.
    registry: Arc<RegistryHolder>,
    csrf: csrf::Csrf,
    jobs: views::verify::Jobs,
}

/// A console bound to its address, ready to serve.
pub struct Console {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ConsoleState>,
}

impl Console {
    /// Binds `addr`; `tls` from [`server_config`].
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        ledger: Ledger,
        store: Store,
        rules: Arc<MatchRules>,
        registry: Arc<RegistryHolder>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Console {
            listener,
            tls,
            state: Arc::new(ConsoleState {
                ledger,
                store,
                rules,
                registry,
                csrf: csrf::Csrf::new(),
                jobs: views::verify::Jobs::default(),
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; connections open then are closed gracefully.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        tls::serve(self.listener, self.tls, router(self.state), shutdown).await
    }
}

/// The console's pages.
fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/", get(views::search::view_search_get))
        .route("/search", post(views::search::view_search_post))
        .route("/entries/{entry_id}", get(views::entry::view_entry_get))
        .route(
            "/entries/{entry_id}/review",
            post(views::entry::view_review_post),
        )
        .route(
            "/entries/{entry_id}/release",
            post(views::entry::view_release_post),
        )
        .route("/break-glass", get(views::break_glass::view_queue_get))
        .route("/alerts", get(views::alerts::view_alerts_get))
        .route("/alerts/{alert_id}", get(views::alerts::view_alert_get))
        .route(
            "/alerts/{alert_id}/assign",
            post(views::alerts::view_assign_post),
        )
        .route(
            "/alerts/{alert_id}/close",
            post(views::alerts::view_close_post),
        )
        .route(
            "/subject-access",
            get(views::subject_access::view_sar_get).post(views::subject_access::view_sar_post),
        )
        .route(
            "/verify",
            get(views::verify::view_verify_get).post(views::verify::view_verify_post),
        )
        .route("/verify/{job_id}", get(views::verify::view_job_get))
        .route(
            "/exports",
            get(views::exports::view_exports_get).post(views::exports::view_exports_post),
        )
        .route("/charts", get(views::charts::view_charts_get))
        // The identity steward's pages.
        .route("/identity/tasks", get(views::identity::view_tasks_get))
        .route(
            "/identity/tasks/{task_id}",
            get(views::identity::view_task_get),
        )
        .route(
            "/identity/tasks/{task_id}/decision",
            post(views::identity::view_decision_post),
        )
        .route("/identity/links", get(views::identity::view_links_get))
        .route(
            "/identity/links/{link_id}/split",
            post(views::identity::view_split_post),
        )
        .route(assets::GOVUK_CSS_PATH, get(assets::govuk_css))
        .route(assets::CONSOLE_CSS_PATH, get(assets::console_css))
        .fallback(page::not_found)
        .layer(axum::middleware::map_response(page::security_headers))
        .with_state(state)
}
