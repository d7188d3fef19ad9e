//! What every page shares: the layout, the security headers, and the one mapping from a
//! domain error to the page (and HTTP status) that explains it.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::console::assets;
use crate::error::Error;

/// The content security policy of every response: no script at all, styles and images
/// from the console only, forms posted to the console only, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Which item of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Search,
    BreakGlass,
    Alerts,
    SubjectAccess,
    Verify,
    Exports,
    Charts,
    /// The identity steward's pages.
    IdentityTasks,
    IdentityLinks,
    /// A page outside the navigation (e.g. a refusal).
    None,
}

/// One link of the service navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of every page: its title, the officer signed in, the navigation and the
/// token the page's forms carry.
pub struct Layout {
    /// The page's `<title>` before the service name; never a person's name or identifier.
    pub title: String,
    pub nav: Nav,
    /// Empty on pages shown to someone who is not signed in.
    pub officer_name: String,
    pub practitioner_id: String,
    pub csrf_token: String,
    /// Whether the officer signed in is an identity steward (their own navigation).
    pub steward: bool,
    pub govuk_css: &'static str,
    pub console_css: &'static str,
}

impl Layout {
    /// The frame of a page shown to nobody signed in (a refusal).
    pub fn anonymous(title: &str) -> Self {
        Layout {
            title: title.to_owned(),
            nav: Nav::None,
            officer_name: String::new(),
            practitioner_id: String::new(),
            csrf_token: String::new(),
            steward: false,
            govuk_css: assets::GOVUK_CSS_PATH,
            console_css: assets::CONSOLE_CSS_PATH,
        }
    }

    /// The navigation, for a signed-in officer; none otherwise.
    pub fn nav_items(&self) -> Vec<NavItem> {
        if self.officer_name.is_empty() {
            return Vec::new();
        }
        if self.steward {
            // An identity steward sees the steward's pages only.
            return [
                ("/identity/tasks", "Review tasks", Nav::IdentityTasks),
                ("/identity/links", "Identity links", Nav::IdentityLinks),
            ]
            .into_iter()
            .map(|(href, label, nav)| NavItem {
                href,
                label,
                current: nav == self.nav,
            })
            .collect();
        }
        [
            ("/", "Search the log", Nav::Search),
            ("/break-glass", "Break-glass queue", Nav::BreakGlass),
            ("/alerts", "Privacy alerts", Nav::Alerts),
            ("/subject-access", "Subject access", Nav::SubjectAccess),
            ("/verify", "Verify the log", Nav::Verify),
            ("/exports", "Exports", Nav::Exports),
            ("/charts", "Charts", Nav::Charts),
        ]
        .into_iter()
        .map(|(href, label, nav)| NavItem {
            href,
            label,
            current: nav == self.nav,
        })
        .collect()
    }
}

/// A page explaining why a request was not answered.
#[derive(Template)]
#[template(path = "console/problem.html")]
pub struct ProblemPage {
    pub layout: Layout,
    pub heading: String,
    pub paragraphs: Vec<String>,
    /// The rule that refused it, for the officer to quote.
    pub rule: String,
    /// For a fault of ours: the reference the log holds the cause under.
    pub reference: String,
}

/// Renders a page with `status`; a template that cannot render is logged once and the
/// officer gets a plain error with its reference.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            let reference = uuid::Uuid::new_v4();
            tracing::error!(%reference, %error, "console: a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The page could not be shown. Quote reference {reference}."),
            )
                .into_response()
        }
    }
}

/// The page for a request refused or failed with `error`, in `layout`.
pub fn problem(mut layout: Layout, error: Error) -> Response {
    let (status, heading, paragraphs, rule, reference) = match error {
        Error::InvalidArgument(violations) => (
            StatusCode::BAD_REQUEST,
            "There is a problem with the request",
            violations.iter().map(ToString::to_string).collect(),
            "request.invalid_argument".to_owned(),
            String::new(),
        ),
        Error::Unauthenticated(reason) => (
            StatusCode::FORBIDDEN,
            "You cannot sign in with this certificate",
            vec![
                reason,
                "Ask the information-governance office to register your personal certificate."
                    .to_owned(),
            ],
            "registry.unregistered_certificate".to_owned(),
            String::new(),
        ),
        Error::PermissionDenied { rule, reason } => (
            StatusCode::FORBIDDEN,
            "You do not have permission to do this",
            vec![reason],
            rule.to_owned(),
            String::new(),
        ),
        Error::FailedPrecondition { rule, reason } => (
            StatusCode::CONFLICT,
            "This cannot be done",
            vec![reason],
            rule.to_owned(),
            String::new(),
        ),
        Error::NotFound { field, reason } => (
            StatusCode::NOT_FOUND,
            "Not found",
            vec![format!("{field}: {reason}")],
            "request.not_found".to_owned(),
            String::new(),
        ),
        Error::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sorry, the disclosure log cannot be reached",
            vec!["Nothing was shown and nothing was recorded. Try again in a few minutes.".into()],
            "gateway.unavailable".to_owned(),
            String::new(),
        ),
        Error::Internal(source) => {
            // Logged here, once, where it is handled; the officer gets the reference.
            let reference = uuid::Uuid::new_v4().to_string();
            tracing::error!(%reference, error = %source, "console: internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sorry, there is a problem with the console",
                vec!["Quote the reference below to the gateway's operators.".into()],
                "gateway.internal".to_owned(),
                reference,
            )
        }
        Error::Recorded(refusal) => return problem(layout, *refusal),
    };
    layout.title = heading.to_owned();
    render(
        status,
        &ProblemPage {
            layout,
            heading: heading.to_owned(),
            paragraphs,
            rule,
            reference,
        },
    )
}

/// Any path the console does not serve (no officer needed to say so; nothing is shown).
pub async fn not_found() -> Response {
    problem(
        Layout::anonymous("Page not found"),
        Error::NotFound {
            field: "path".into(),
            reason: "the console has no page here".into(),
        },
    )
}

/// Adds the headers every response carries: the content security policy, no sniffing,
/// no referrer, and no caching of pages (they show the log).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
