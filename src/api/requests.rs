//! What each RPC checks and converts before it calls the domain, driven from raw bytes:
//! the request decoded with prost as tonic decodes it, then the very functions its handler
//! runs (context and role, wire-to-domain conversion, field rules), stopping where the
//! handler would first touch the database. For fuzzing (`fuzz/`): any input must end in
//! a decode error, a refusal or an accepted request, never a panic.

use prost::Message;

use crate::api::journal::RequestMeta;
use crate::api::{audit, identity, notifications, practitioner, proto, query, records, resolution};
use crate::domain::publish::check_changes;
use crate::domain::records::Day;
use crate::error::Error;
use crate::registry::Caller;

/// Every safegate RPC whose request a caller sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    WhoAmI,
    Publish,
    PublishBatch,
    UpdateFact,
    EndFact,
    GetFactHistory,
    GetSafeguardingStatus,
    Query,
    Explain,
    ReloadPolicy,
    Subscribe,
    ListNotices,
    AcknowledgeNotices,
    ListEntries,
    GetEntry,
    GetCheckpoint,
    GetInclusionProof,
    GetConsistencyProof,
    VerifyLog,
    ReviewBreakGlass,
    SubjectAccessReport,
    ReleaseForSubjectAccess,
    ExportEntries,
    ListReviewTasks,
    ConfirmMatch,
    RejectMatch,
    ListIdentityLinks,
    SplitLink,
}

impl Rpc {
    /// Every RPC, in the order of the services in `proto/`.
    pub const ALL: &'static [Rpc] = &[
        Rpc::WhoAmI,
        Rpc::Publish,
        Rpc::PublishBatch,
        Rpc::UpdateFact,
        Rpc::EndFact,
        Rpc::GetFactHistory,
        Rpc::GetSafeguardingStatus,
        Rpc::Query,
        Rpc::Explain,
        Rpc::ReloadPolicy,
        Rpc::Subscribe,
        Rpc::ListNotices,
        Rpc::AcknowledgeNotices,
        Rpc::ListEntries,
        Rpc::GetEntry,
        Rpc::GetCheckpoint,
        Rpc::GetInclusionProof,
        Rpc::GetConsistencyProof,
        Rpc::VerifyLog,
        Rpc::ReviewBreakGlass,
        Rpc::SubjectAccessReport,
        Rpc::ReleaseForSubjectAccess,
        Rpc::ExportEntries,
        Rpc::ListReviewTasks,
        Rpc::ConfirmMatch,
        Rpc::RejectMatch,
        Rpc::ListIdentityLinks,
        Rpc::SplitLink,
    ];
}

/// Decodes `bytes` as `rpc`'s request and runs its handler's checks and conversions for
/// `caller`, on `today`. The outer error is a message prost cannot decode (tonic answers
/// those before any handler runs); the inner result is the handler's verdict.
pub fn check(
    rpc: Rpc,
    caller: &Caller,
    bytes: &[u8],
    today: Day,
) -> Result<Result<(), Error>, prost::DecodeError> {
    let meta = RequestMeta {
        rpc: format!("{rpc:?}"),
        trace_id: "fuzz".into(),
    };
    let changes =
        |(actor, id, changes): records::ChangeRequest| check_changes(&actor, &id, &changes, today);
    Ok(match rpc {
        Rpc::WhoAmI => {
            let request = proto::WhoAmIRequest::decode(bytes)?;
            identity::who_am_i_context(caller, request.context).map(drop)
        }
        Rpc::Publish => records::publish_request(caller, proto::PublishRequest::decode(bytes)?)
            .and_then(changes),
        Rpc::PublishBatch => {
            let request = proto::PublishBatchRequest::decode(bytes)?;
            records::publish_batch_request(caller, request).and_then(changes)
        }
        Rpc::UpdateFact => {
            let request = proto::UpdateFactRequest::decode(bytes)?;
            records::update_fact_request(caller, request).and_then(changes)
        }
        Rpc::EndFact => records::end_fact_request(caller, proto::EndFactRequest::decode(bytes)?)
            .and_then(changes),
        Rpc::GetFactHistory => {
            let request = proto::GetFactHistoryRequest::decode(bytes)?;
            records::fact_history_request(caller, request).map(drop)
        }
        Rpc::GetSafeguardingStatus => {
            let request = proto::GetSafeguardingStatusRequest::decode(bytes)?;
            records::safeguarding_status_request(caller, request).map(drop)
        }
        Rpc::Query => {
            let r = proto::QueryRequest::decode(bytes)?;
            query::question(caller, &meta, r.context, r.subject, r.search).map(drop)
        }
        Rpc::Explain => {
            let r = proto::ExplainRequest::decode(bytes)?;
            query::question(caller, &meta, r.context, r.subject, r.search).map(drop)
        }
        Rpc::ReloadPolicy => {
            let request = proto::ReloadPolicyRequest::decode(bytes)?;
            query::reload_policy_request(caller, request)
        }
        Rpc::Subscribe => {
            let request = proto::SubscribeRequest::decode(bytes)?;
            notifications::receiver(caller, &meta, request.context).map(drop)
        }
        Rpc::ListNotices => {
            let request = proto::ListNoticesRequest::decode(bytes)?;
            notifications::list_limit(request.limit)
                .and_then(|_| notifications::receiver(caller, &meta, request.context))
                .map(drop)
        }
        Rpc::AcknowledgeNotices => {
            let request = proto::AcknowledgeNoticesRequest::decode(bytes)?;
            practitioner(caller, request.context).map(drop)
        }
        Rpc::ListEntries => {
            let request = proto::ListEntriesRequest::decode(bytes)?;
            audit::filter(&request)
                .and_then(|_| audit::reader(caller, &meta, request.context))
                .map(drop)
        }
        Rpc::GetEntry => reader(
            caller,
            &meta,
            proto::GetEntryRequest::decode(bytes)?.context,
        ),
        Rpc::GetCheckpoint => reader(
            caller,
            &meta,
            proto::GetCheckpointRequest::decode(bytes)?.context,
        ),
        Rpc::GetInclusionProof => {
            let request = proto::GetInclusionProofRequest::decode(bytes)?;
            reader(caller, &meta, request.context)
        }
        Rpc::GetConsistencyProof => {
            let request = proto::GetConsistencyProofRequest::decode(bytes)?;
            reader(caller, &meta, request.context)
        }
        Rpc::VerifyLog => reader(
            caller,
            &meta,
            proto::VerifyLogRequest::decode(bytes)?.context,
        ),
        Rpc::ReviewBreakGlass => {
            let request = proto::ReviewBreakGlassRequest::decode(bytes)?;
            audit::review_outcome(request.outcome())
                .and_then(|_| reader(caller, &meta, request.context))
        }
        Rpc::SubjectAccessReport => {
            let request = proto::SubjectAccessReportRequest::decode(bytes)?;
            reader(caller, &meta, request.context)
        }
        Rpc::ReleaseForSubjectAccess => {
            let request = proto::ReleaseForSubjectAccessRequest::decode(bytes)?;
            reader(caller, &meta, request.context)
        }
        Rpc::ExportEntries => {
            let request = proto::ExportEntriesRequest::decode(bytes)?;
            audit::export_format(request.format())
                .and_then(|_| audit::filter(&audit::export_filters(&request)))
                .and_then(|_| reader(caller, &meta, request.context))
        }
        Rpc::ListReviewTasks => {
            let request = proto::ListReviewTasksRequest::decode(bytes)?;
            resolution::call(caller, &meta, request.context).map(drop)
        }
        Rpc::ConfirmMatch => {
            let request = proto::ConfirmMatchRequest::decode(bytes)?;
            resolution::call(caller, &meta, request.context).map(drop)
        }
        Rpc::RejectMatch => {
            let request = proto::RejectMatchRequest::decode(bytes)?;
            resolution::call(caller, &meta, request.context).map(drop)
        }
        Rpc::ListIdentityLinks => {
            let request = proto::ListIdentityLinksRequest::decode(bytes)?;
            resolution::identity_links_request(caller, &meta, request).map(drop)
        }
        Rpc::SplitLink => {
            let request = proto::SplitLinkRequest::decode(bytes)?;
            resolution::call(caller, &meta, request.context).map(drop)
        }
    })
}

/// The audit service's reader check, which every log read starts with.
fn reader(
    caller: &Caller,
    meta: &RequestMeta,
    context: Option<proto::PractitionerContext>,
) -> Result<(), Error> {
    audit::reader(caller, meta, context).map(drop)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{Agency, AgencySystem, Role};

    fn police() -> Caller {
        Caller {
            system: Arc::new(AgencySystem {
                id: "police-iom".into(),
                name: "Police IOM".into(),
                agency: Agency::Police,
                roles: vec![Role::IomOfficer],
                contact_route: "IOM duty desk".into(),
                admin: false,
            }),
            certificate_sha256: String::new(),
            certificate_identity: "uri:urn:safegate:system:police-iom".into(),
            authority: "dev-ca".into(),
        }
    }

    fn today() -> Day {
        Day::parse("2026-01-01").expect("day")
    }

    #[test]
    fn every_rpc_but_who_am_i_refuses_a_request_without_a_context() {
        for rpc in Rpc::ALL.iter().filter(|rpc| **rpc != Rpc::WhoAmI) {
            let verdict = check(*rpc, &police(), &[], today()).expect("empty bytes decode");
            let refused = verdict.expect_err(&format!("{rpc:?} accepted no context"));
            assert!(refused.is_refusal(), "{rpc:?}: {refused:?}");
        }
        let who = check(Rpc::WhoAmI, &police(), &[], today()).expect("decodes");
        assert!(who.is_ok(), "WhoAmI needs no context: {who:?}");
    }

    #[test]
    fn a_valid_end_fact_is_accepted_and_a_future_end_or_bad_bytes_refused() {
        let request = proto::EndFactRequest {
            context: Some(proto::PractitionerContext {
                practitioner_id: "IOM-0001".into(),
                role: proto::Role::IomOfficer.into(),
                ..Default::default()
            }),
            client_request_id: "end-1".into(),
            record_id: "r-1".into(),
            end_date: "2025-12-31".into(),
            reason: proto::EndReason::Closed.into(),
        };
        let bytes = request.encode_to_vec();
        let verdict = check(Rpc::EndFact, &police(), &bytes, today()).expect("decodes");
        assert!(verdict.is_ok(), "{verdict:?}");
        let future = proto::EndFactRequest {
            end_date: "2026-01-02".into(),
            ..request
        };
        let verdict = check(Rpc::EndFact, &police(), &future.encode_to_vec(), today());
        assert!(matches!(verdict, Ok(Err(Error::InvalidArgument(_)))));
        assert!(check(Rpc::EndFact, &police(), &[0xff], today()).is_err());
    }
}
