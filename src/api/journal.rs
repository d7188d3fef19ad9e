//! Every refusal is written to the disclosure log before it is returned: handlers run
//! through [`answer`], and the caller layer logs unregistered certificates.

use std::future::Future;

use tonic::{Request, Response, Status};

use crate::api::proto::{self, PractitionerContext};
use crate::domain::ledger::{Decision, Entry, EntryKind, Ledger};
use crate::error::Error;
use crate::registry::Caller;

/// Facts about the call the caller layer records for every safegate RPC.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// `package.Service/Method`.
    pub rpc: String,
    /// The OpenTelemetry trace id when tracing is exported, otherwise a fresh id.
    pub trace_id: String,
}

/// Requests that carry a practitioner context.
pub trait HasContext {
    fn context(&self) -> Option<&PractitionerContext>;
}

macro_rules! has_context {
    ($($request:ty),+ $(,)?) => {$(
        impl HasContext for $request {
            fn context(&self) -> Option<&PractitionerContext> {
                self.context.as_ref()
            }
        }
    )+};
}

has_context!(
    proto::WhoAmIRequest,
    proto::PublishRequest,
    proto::PublishBatchRequest,
    proto::UpdateFactRequest,
    proto::EndFactRequest,
    proto::GetFactHistoryRequest,
    proto::GetSafeguardingStatusRequest,
    proto::ListEntriesRequest,
    proto::GetEntryRequest,
    proto::GetCheckpointRequest,
    proto::GetInclusionProofRequest,
    proto::GetConsistencyProofRequest,
    proto::VerifyLogRequest,
    proto::QueryRequest,
    proto::ExplainRequest,
    proto::ReloadPolicyRequest,
    proto::ListReviewTasksRequest,
    proto::ConfirmMatchRequest,
    proto::RejectMatchRequest,
    proto::ListIdentityLinksRequest,
    proto::SplitLinkRequest,
);

/// An entry stamped with who asked, how and when; the caller fills in what was decided.
pub fn entry_for(
    kind: EntryKind,
    decision: Decision,
    caller: Option<&Caller>,
    context: Option<&PractitionerContext>,
    meta: Option<&RequestMeta>,
) -> Entry {
    let mut entry = Entry::new(kind, decision);
    if let Some(caller) = caller {
        entry.agency = caller.system.agency.as_str().to_owned();
        entry.system_id = caller.system.id.clone();
        entry.certificate_sha256 = caller.certificate_sha256.clone();
    }
    if let Some(context) = context {
        entry.practitioner_id = context.practitioner_id.chars().take(128).collect();
        entry.role = proto::Role::try_from(context.role)
            .map(|r| {
                r.as_str_name()
                    .trim_start_matches("ROLE_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|_| format!("unknown({})", context.role));
        entry.purpose = proto::Purpose::try_from(context.purpose)
            .map(|p| {
                p.as_str_name()
                    .trim_start_matches("PURPOSE_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|_| format!("unknown({})", context.purpose));
        entry.justification = context.justification.chars().take(4000).collect();
        entry.break_glass = context.break_glass;
    }
    if let Some(meta) = meta {
        entry.rpc = meta.rpc.clone();
        entry.trace_id = meta.trace_id.clone();
    }
    entry
}

/// Records a refusal, then returns it; if the log cannot be written the caller gets
/// UNAVAILABLE instead, so no answer leaves unlogged.
pub async fn refuse(
    ledger: &Ledger,
    caller: Option<&Caller>,
    context: Option<&PractitionerContext>,
    meta: Option<&RequestMeta>,
    error: Error,
) -> Status {
    let mut entry = entry_for(EntryKind::Refusal, Decision::Refused, caller, context, meta);
    entry.rule_ids = vec![error.rule().to_owned()];
    entry.reason = error.to_string();
    match ledger.append(entry).await {
        Ok(_) => error.into(),
        Err(unavailable) => unavailable.into(),
    }
}

/// Records the refusal of a certificate no registered system holds, naming its SHA-256
/// fingerprint in the entry's certificate field, then returns it (UNAVAILABLE when the
/// log cannot be written).
pub async fn refuse_certificate(
    ledger: &Ledger,
    certificate_sha256: Option<String>,
    meta: &RequestMeta,
    error: Error,
) -> Status {
    let mut entry = entry_for(
        EntryKind::Refusal,
        Decision::Refused,
        None,
        None,
        Some(meta),
    );
    entry.certificate_sha256 = certificate_sha256.unwrap_or_default();
    entry.rule_ids = vec![error.rule().to_owned()];
    entry.reason = error.to_string();
    match ledger.append(entry).await {
        Ok(_) => error.into(),
        Err(unavailable) => unavailable.into(),
    }
}

/// Runs a handler body for a registered caller; a refusal is logged before it leaves.
pub async fn answer<Req, Res, F, Fut>(
    ledger: &Ledger,
    request: Request<Req>,
    handle: F,
) -> Result<Response<Res>, Status>
where
    Req: HasContext,
    F: FnOnce(Caller, RequestMeta, Req) -> Fut,
    Fut: Future<Output = Result<Res, Error>>,
{
    let caller = crate::api::caller(&request)?;
    let meta = request
        .extensions()
        .get::<RequestMeta>()
        .cloned()
        .ok_or_else(|| Error::internal("request metadata missing from extensions"))?;
    let request = request.into_inner();
    let context = request.context().cloned();
    match handle(caller.clone(), meta.clone(), request).await {
        Ok(response) => Ok(Response::new(response)),
        Err(error) if error.is_refusal() => {
            Err(refuse(ledger, Some(&caller), context.as_ref(), Some(&meta), error).await)
        }
        Err(error) => Err(error.into()),
    }
}
