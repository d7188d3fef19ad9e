//! Sign-in: the officer is the holder of the personal client certificate the TLS layer
//! verified, as the registry's `[[officer]]` entries map it to a practitioner id, a
//! system and a role. There is no anonymous page: without a certificate, with one the
//! registry does not know, or with a role the page is not for, every page is a 403 that
//! says why; the last two are refusals and written to the disclosure log. The IG pages
//! are for the role `ig_officer` ([`Officer`]), the identity steward's pages for the role
//! `identity_steward` ([`StewardOfficer`]): each role sees its own pages only.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::console::ConsoleState;
use crate::console::page::{Layout, Nav, ProblemPage, problem, render};
use crate::console::tls::PeerCertificates;
use crate::domain::identity::StewardCall;
use crate::domain::identity::steward::rules::STEWARD_ONLY;
use crate::domain::ledger::audit::Reader;
use crate::domain::ledger::{Decision, Entry, EntryKind};
use crate::domain::{Practitioner, Role};
use crate::error::Error;
use crate::registry::SignedIn;

/// A signed-in officer (on the IG pages, an IG officer), and how the log records their
/// reads of this page.
pub struct Officer {
    pub signed_in: SignedIn,
    pub reader: Reader,
}

impl Officer {
    /// A new log-read entry for this page, as the gRPC audit service starts its own.
    pub fn read(&self) -> Entry {
        self.reader.entry()
    }

    /// Whether this officer is an identity steward.
    pub fn is_steward(&self) -> bool {
        self.reader.role == Role::IdentitySteward
    }

    /// A new identity entry for this page, stamped as the gRPC steward service stamps
    /// its own (the domain fills in what the page showed).
    fn identity_entry(&self) -> Entry {
        let mut entry = Entry::new(EntryKind::Identity, Decision::Released);
        entry.agency = self.reader.agency.clone();
        entry.system_id = self.reader.system_id.clone();
        entry.certificate_sha256 = self.reader.certificate_sha256.clone();
        entry.practitioner_id = self.reader.practitioner_id.clone();
        entry.role = self.reader.role.as_str().to_owned();
        entry.rpc = self.reader.rpc.clone();
        entry.trace_id = self.reader.trace_id.clone();
        entry
    }

    /// This officer acting as identity steward, for the steward's service.
    pub fn steward_call(&self) -> StewardCall {
        StewardCall {
            system: Arc::clone(&self.signed_in.officer.system),
            practitioner: Practitioner {
                id: self.reader.practitioner_id.clone(),
                role: self.reader.role,
                purpose: None,
                justification: None,
                break_glass: false,
            },
            entry: self.identity_entry(),
        }
    }

    /// The frame of a page shown to this officer.
    pub fn layout(&self, state: &ConsoleState, title: &str, nav: Nav) -> Layout {
        Layout {
            officer_name: self.signed_in.officer.name.clone(),
            practitioner_id: self.signed_in.officer.practitioner_id.clone(),
            csrf_token: state.csrf.token(&self.signed_in.certificate_sha256),
            steward: self.is_steward(),
            nav,
            ..Layout::anonymous(title)
        }
    }

    /// The entry a refusal on this officer's pages is written from.
    fn refusal_base(&self) -> Entry {
        if self.is_steward() {
            self.identity_entry()
        } else {
            self.reader.entry()
        }
    }

    /// Refuses this page: `error` is written to the log from `base`, then shown, in the
    /// frame of the officer's own pages when `admitted` (a role the console admits,
    /// signed in on the other role's page), with no navigation otherwise.
    async fn refuse(
        &self,
        state: &ConsoleState,
        base: Entry,
        error: Error,
        admitted: bool,
    ) -> Response {
        let refusal = refusal_entry(base, &error);
        let shown = match state.ledger.append(refusal).await {
            Ok(_) => error,
            Err(unavailable) => unavailable,
        };
        let layout = if admitted {
            self.layout(state, "", Nav::None)
        } else {
            Layout::anonymous("")
        };
        problem(layout, shown)
    }

    /// Runs a page's body; a refusal is written to the log before its page is shown
    /// (and a log that cannot be written turns it into "unavailable"), as the gRPC
    /// services do.
    pub async fn answer(
        &self,
        state: &ConsoleState,
        nav: Nav,
        body: impl Future<Output = Result<Response, Error>>,
    ) -> Response {
        match body.await {
            Ok(response) => response,
            Err(error) if error.is_refusal() => {
                let refusal = refusal_entry(self.refusal_base(), &error);
                let shown = match state.ledger.append(refusal).await {
                    Ok(_) => error,
                    Err(unavailable) => unavailable,
                };
                problem(self.layout(state, "", nav), shown)
            }
            Err(error) => problem(self.layout(state, "", nav), error),
        }
    }
}

/// `entry` turned into the refusal of `error`.
fn refusal_entry(mut entry: Entry, error: &Error) -> Entry {
    entry.kind = EntryKind::Refusal;
    entry.decision = Decision::Refused;
    entry.lawful_basis = String::new();
    entry.rule_ids = vec![error.rule().to_owned()];
    entry.reason = error.to_string();
    entry
}

/// How the log names a console page: the method and the route's pattern, never the
/// path as requested (which may carry an id typed by hand).
fn page_name(parts: &Parts) -> String {
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    format!("console {} {route}", parts.method)
}

/// The certificate's holder, as the registry knows them, whatever their role; a
/// certificate missing or unknown is answered here.
async fn sign_in(parts: &Parts, state: &ConsoleState) -> Result<Officer, Response> {
    let rpc = page_name(parts);
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let chain = parts
        .extensions
        .get::<PeerCertificates>()
        .and_then(|peer| peer.0.clone());
    let Some(chain) = chain else {
        return Err(no_certificate());
    };
    let signed_in = match state.registry.current().identify_officer(&chain) {
        Ok(signed_in) => signed_in,
        Err(error) => {
            // Logged as the gRPC layer logs an unregistered certificate: by fingerprint.
            let mut refusal = Entry::new(EntryKind::Refusal, Decision::Refused);
            refusal.rpc = rpc;
            refusal.trace_id = trace_id;
            refusal.certificate_sha256 = chain
                .first()
                .map(|leaf| hex::encode(Sha256::digest(leaf.as_ref())))
                .unwrap_or_default();
            let refusal = refusal_entry(refusal, &error);
            let shown = match state.ledger.append(refusal).await {
                Ok(_) => error,
                Err(unavailable) => unavailable,
            };
            return Err(problem(Layout::anonymous(""), shown));
        }
    };
    let officer = Officer {
        reader: Reader {
            agency: signed_in.officer.system.agency.as_str().to_owned(),
            system_id: signed_in.officer.system.id.clone(),
            certificate_sha256: signed_in.certificate_sha256.clone(),
            practitioner_id: signed_in.officer.practitioner_id.clone(),
            role: signed_in.officer.role,
            rpc,
            trace_id,
        },
        signed_in,
    };
    tracing::Span::current().record("safegate.role", officer.reader.role.as_str());
    Ok(officer)
}

impl FromRequestParts<Arc<ConsoleState>> for Officer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState>,
    ) -> Result<Self, Self::Rejection> {
        let officer = sign_in(parts, state).await?;
        // The console's front door sends a steward to their own queue.
        if officer.is_steward() && parts.method == Method::GET && parts.uri.path() == "/" {
            return Err(Redirect::to("/identity/tasks").into_response());
        }
        if let Err(error) = officer.reader.authorise() {
            let admitted = officer.is_steward();
            let base = officer.reader.entry();
            return Err(officer.refuse(state, base, error, admitted).await);
        }
        Ok(officer)
    }
}

/// A signed-in identity steward, on the steward's pages.
pub struct StewardOfficer(pub Officer);

impl FromRequestParts<Arc<ConsoleState>> for StewardOfficer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ConsoleState>,
    ) -> Result<Self, Self::Rejection> {
        let officer = sign_in(parts, state).await?;
        if !officer.is_steward() {
            let error = Error::PermissionDenied {
                rule: STEWARD_ONLY,
                reason: format!(
                    "the identity steward's pages are for the {} role only, not `{}`",
                    Role::IdentitySteward,
                    officer.reader.role
                ),
            };
            let admitted = officer.reader.role == Role::IgOfficer;
            let base = officer.identity_entry();
            return Err(officer.refuse(state, base, error, admitted).await);
        }
        Ok(StewardOfficer(officer))
    }
}

/// The page for a browser that presented no certificate: nothing is logged (there is
/// nobody to log), nothing is shown.
fn no_certificate() -> Response {
    render(
        StatusCode::FORBIDDEN,
        &ProblemPage {
            layout: Layout::anonymous("Sign in with your personal certificate"),
            heading: "Sign in with your personal certificate".into(),
            paragraphs: vec![
                "The console is for information-governance officers and identity \
                 stewards, who sign in with the personal certificate the IG office issued \
                 to them. Your browser did not present one."
                    .into(),
                "Import your certificate into your browser (see the README's \"The IG \
                 console\"), then open this page again."
                    .into(),
            ],
            rule: "console.certificate_required".into(),
            reference: String::new(),
        },
    )
}
