//! `safegate.v1.AuditService`: the disclosure log for information-governance officers.

use std::pin::Pin;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::api::journal::{HasContext, RequestMeta, answer, entry_for};
use crate::api::practitioner;
use crate::api::proto::{
    self, ExportEntriesRequest, ExportEntriesResponse, GetCheckpointRequest, GetCheckpointResponse,
    GetConsistencyProofRequest, GetConsistencyProofResponse, GetEntryRequest, GetEntryResponse,
    GetInclusionProofRequest, GetInclusionProofResponse, ListEntriesRequest, ListEntriesResponse,
    ReleaseForSubjectAccessRequest, ReleaseForSubjectAccessResponse, ReviewBreakGlassRequest,
    ReviewBreakGlassResponse, SubjectAccessReportRequest, SubjectAccessReportResponse,
    VerifyLogRequest, VerifyLogResponse, audit_service_server::AuditService,
};
use crate::domain::ledger::audit::{LOG_READ_LAWFUL_BASIS, LogSearch, authorise, next_page_token};
use crate::domain::ledger::export::ExportFormat;
use crate::domain::ledger::review::{BreakGlassReview, ReviewOutcome, SubjectAccessRelease};
use crate::domain::ledger::subject_access::ReportedDisclosure;
use crate::domain::ledger::{Checkpoint, Decision, Disclosed, Entry, EntryKind, Ledger};
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::error::Error;
use crate::registry::Caller;

// The journal's list of requests with a context covers the other services; these are
// this service's newer requests.
macro_rules! audit_context {
    ($($request:ty),+ $(,)?) => {$(
        impl HasContext for $request {
            fn context(&self) -> Option<&proto::PractitionerContext> {
                self.context.as_ref()
            }
        }
    )+};
}

audit_context!(
    ReviewBreakGlassRequest,
    SubjectAccessReportRequest,
    ReleaseForSubjectAccessRequest,
    ExportEntriesRequest,
);

/// Handlers over the ledger's IG view.
#[derive(Debug, Clone)]
pub struct AuditApi {
    ledger: Ledger,
}

impl AuditApi {
    pub fn new(ledger: Ledger) -> Self {
        AuditApi { ledger }
    }
}

/// Checks the reader and starts the log-read entry describing them.
pub(crate) fn reader(
    caller: &Caller,
    meta: &RequestMeta,
    context: Option<proto::PractitionerContext>,
) -> Result<Entry, Error> {
    let practitioner = practitioner(caller, context.clone())?;
    authorise(&practitioner)?;
    let mut entry = entry_for(
        EntryKind::LogRead,
        Decision::Released,
        Some(caller),
        context.as_ref(),
        Some(meta),
    );
    entry.lawful_basis = LOG_READ_LAWFUL_BASIS.into();
    Ok(entry)
}

fn disclosed(d: Disclosed) -> proto::DisclosedFact {
    proto::DisclosedFact {
        person_id: d.person_id,
        record_id: d.record_id,
        category: d.category,
        level: d.level,
        rule_id: d.rule_id,
    }
}

impl From<StoredEntry> for proto::LogEntry {
    fn from(stored: StoredEntry) -> Self {
        let e = stored.entry;
        proto::LogEntry {
            seq: stored.seq,
            entry_id: e.entry_id,
            recorded_at: e.recorded_at,
            kind: e.kind.as_str().into(),
            decision: e.decision.as_str().into(),
            rpc: e.rpc,
            agency: e.agency,
            system_id: e.system_id,
            certificate_sha256: e.certificate_sha256,
            practitioner_id: e.practitioner_id,
            role: e.role,
            purpose: e.purpose,
            lawful_basis: e.lawful_basis,
            justification: e.justification,
            break_glass: e.break_glass,
            subject_person_id: e.subject_person_id,
            linked_person_ids: e.linked_person_ids,
            released: e.released.into_iter().map(disclosed).collect(),
            withheld: e.withheld.into_iter().map(disclosed).collect(),
            rule_ids: e.rule_ids,
            policy_version: e.policy_version,
            reason: e.reason,
            recipient_system: e.recipient_system,
            trace_id: e.trace_id,
            canonical: stored.text,
            leaf_hash: stored.leaf_hash,
            chain_hash: stored.chain_hash,
            latest_review: stored.latest_review.map(Into::into),
            identity_links: e
                .identity_links
                .into_iter()
                .map(|l| proto::LinkUsed {
                    link_id: l.link_id,
                    person_id: l.person_id,
                    other_person_id: l.other_person_id,
                    method: l.method,
                    probability: l.probability,
                    rules_version: l.rules_version,
                })
                .collect(),
            search_candidates: e.search_candidates,
            subject_asked: e.subject_asked,
        }
    }
}

impl From<ReviewOutcome> for proto::ReviewOutcome {
    fn from(outcome: ReviewOutcome) -> Self {
        match outcome {
            ReviewOutcome::Appropriate => proto::ReviewOutcome::Appropriate,
            ReviewOutcome::Inappropriate => proto::ReviewOutcome::Inappropriate,
        }
    }
}

pub(crate) fn review_outcome(outcome: proto::ReviewOutcome) -> Result<ReviewOutcome, Error> {
    match outcome {
        proto::ReviewOutcome::Appropriate => Ok(ReviewOutcome::Appropriate),
        proto::ReviewOutcome::Inappropriate => Ok(ReviewOutcome::Inappropriate),
        proto::ReviewOutcome::Unspecified => Err(Error::invalid(
            "outcome",
            "must be REVIEW_OUTCOME_APPROPRIATE or REVIEW_OUTCOME_INAPPROPRIATE",
        )),
    }
}

pub(crate) fn export_format(format: proto::ExportFormat) -> Result<ExportFormat, Error> {
    match format {
        proto::ExportFormat::Jsonl => Ok(ExportFormat::Jsonl),
        proto::ExportFormat::Csv => Ok(ExportFormat::Csv),
        proto::ExportFormat::FhirNdjson => Ok(ExportFormat::Fhir),
        proto::ExportFormat::Unspecified => Err(Error::invalid(
            "format",
            "must be EXPORT_FORMAT_JSONL, EXPORT_FORMAT_CSV or EXPORT_FORMAT_FHIR_NDJSON",
        )),
    }
}

impl From<BreakGlassReview> for proto::BreakGlassReview {
    fn from(review: BreakGlassReview) -> Self {
        proto::BreakGlassReview {
            review_id: review.review_id,
            entry_id: review.entry_id,
            outcome: proto::ReviewOutcome::from(review.outcome).into(),
            note: review.note,
            reviewer_system_id: review.reviewer_system,
            reviewer_practitioner_id: review.reviewer_id,
            reviewed_at: review.reviewed_at,
            review_entry_id: review.log_entry_id,
        }
    }
}

impl From<SubjectAccessRelease> for proto::SubjectAccessRelease {
    fn from(release: SubjectAccessRelease) -> Self {
        proto::SubjectAccessRelease {
            release_id: release.release_id,
            entry_id: release.entry_id,
            note: release.note,
            released_by_system_id: release.released_by_system,
            released_by_practitioner_id: release.released_by_id,
            released_at: release.released_at,
            release_entry_id: release.log_entry_id,
        }
    }
}

impl From<ReportedDisclosure> for proto::SubjectAccessDisclosure {
    fn from(d: ReportedDisclosure) -> Self {
        proto::SubjectAccessDisclosure {
            seq: d.seq,
            entry_id: d.entry_id,
            recorded_at: d.recorded_at,
            kind: d.kind.as_str().into(),
            decision: d.decision.as_str().into(),
            agency: d.agency,
            system_id: d.system_id,
            role: d.role,
            purpose: d.purpose,
            lawful_basis: d.lawful_basis,
            break_glass: d.break_glass,
            released: d.released.into_iter().map(disclosed).collect(),
            withheld: d.withheld.into_iter().map(disclosed).collect(),
            released_for_subject_access: d.released_for_subject_access,
        }
    }
}

/// The export's filters, read exactly as ListEntries reads them.
pub(crate) fn export_filters(request: &ExportEntriesRequest) -> ListEntriesRequest {
    ListEntriesRequest {
        context: None,
        person_id: request.person_id.clone(),
        agency: request.agency.clone(),
        system_id: request.system_id.clone(),
        practitioner_id: request.practitioner_id.clone(),
        purpose: request.purpose.clone(),
        kind: request.kind.clone(),
        decision: request.decision.clone(),
        break_glass: request.break_glass,
        from_time: request.from_time.clone(),
        to_time: request.to_time.clone(),
        page_size: 0,
        page_token: String::new(),
        break_glass_unreviewed: request.break_glass_unreviewed,
    }
}

fn signed(checkpoint: Checkpoint, public_key: &[u8]) -> proto::SignedCheckpoint {
    proto::SignedCheckpoint {
        signed_text: checkpoint.text(),
        note: checkpoint.note().unwrap_or_default(),
        tree_size: checkpoint.tree_size,
        root_hash: checkpoint.root.to_vec(),
        signed_at: checkpoint.signed_at,
        signature: checkpoint.signature,
        key_id: checkpoint.key_id,
        public_key: public_key.to_vec(),
    }
}

/// The store filter of a ListEntries request, read by the domain's rules for a search.
pub(crate) fn filter(request: &ListEntriesRequest) -> Result<EntryFilter, Error> {
    LogSearch {
        person_id: request.person_id.clone(),
        agency: request.agency.clone(),
        system_id: request.system_id.clone(),
        practitioner_id: request.practitioner_id.clone(),
        purpose: request.purpose.clone(),
        kind: request.kind.clone(),
        decision: request.decision.clone(),
        break_glass: request.break_glass,
        break_glass_unreviewed: request.break_glass_unreviewed,
        from_time: request.from_time.clone(),
        to_time: request.to_time.clone(),
        page_size: request.page_size,
        page_token: request.page_token.clone(),
    }
    .filter()
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_entries(
        &self,
        request: Request<ListEntriesRequest>,
    ) -> Result<Response<ListEntriesResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let filter = filter(&request)?;
            let mut read = reader(&caller, &meta, request.context)?;
            read.subject_person_id = filter.person_id.clone().unwrap_or_default();
            let entries = self.ledger.list(read, &filter).await?;
            let next_page_token = next_page_token(&filter, &entries);
            Ok(ListEntriesResponse {
                entries: entries.into_iter().map(Into::into).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<GetEntryResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let stored = self.ledger.get(read, request.entry_id.trim()).await?;
            Ok(GetEntryResponse {
                entry: Some(stored.into()),
            })
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<GetCheckpointResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let checkpoint = self.ledger.checkpoint(read).await?;
            Ok(GetCheckpointResponse {
                checkpoint: Some(signed(checkpoint, self.ledger.public_key())),
            })
        })
        .await
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<GetInclusionProofResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let proof = self
                .ledger
                .inclusion(read, request.entry_id.trim(), request.tree_size)
                .await?;
            Ok(GetInclusionProofResponse {
                leaf_index: proof.leaf_index,
                tree_size: proof.tree_size,
                leaf_hash: proof.leaf_hash.to_vec(),
                audit_path: proof.path.iter().map(|h| h.to_vec()).collect(),
                root_hash: proof.root.to_vec(),
            })
        })
        .await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let proof = self
                .ledger
                .consistency(read, request.old_tree_size, request.tree_size)
                .await?;
            Ok(GetConsistencyProofResponse {
                old_tree_size: proof.old_size,
                tree_size: proof.size,
                old_root_hash: proof.old_root.to_vec(),
                root_hash: proof.root.to_vec(),
                proof: proof.proof.iter().map(|h| h.to_vec()).collect(),
            })
        })
        .await
    }

    async fn verify_log(
        &self,
        request: Request<VerifyLogRequest>,
    ) -> Result<Response<VerifyLogResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let (outcome, checkpoint, witnessed) = self.ledger.verify_logged(read).await?;
            let checkpoint = checkpoint.map(|c| signed(c, self.ledger.public_key()));
            Ok(match outcome {
                Ok(verified) => VerifyLogResponse {
                    valid: true,
                    entries: verified.entries,
                    checkpoint,
                    witnessed_size: witnessed.as_ref().map_or(0, |w| w.quorum_size),
                    witness_quorum: witnessed.as_ref().map_or(0, |w| w.quorum as u32),
                    witnesses_seen: witnessed.as_ref().map_or(0, |w| w.witnesses.len() as u32),
                    ..Default::default()
                },
                Err(mismatch) => VerifyLogResponse {
                    valid: false,
                    entries: 0,
                    first_bad_seq: mismatch.seq,
                    first_bad_entry_id: mismatch.entry_id,
                    problem: mismatch.problem,
                    checkpoint,
                    ..Default::default()
                },
            })
        })
        .await
    }

    async fn review_break_glass(
        &self,
        request: Request<ReviewBreakGlassRequest>,
    ) -> Result<Response<ReviewBreakGlassResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let outcome = review_outcome(request.outcome())?;
            let read = reader(&caller, &meta, request.context)?;
            let review = self
                .ledger
                .review_break_glass(read, request.entry_id.trim(), outcome, &request.note)
                .await?;
            Ok(ReviewBreakGlassResponse {
                review: Some(review.into()),
            })
        })
        .await
    }

    async fn subject_access_report(
        &self,
        request: Request<SubjectAccessReportRequest>,
    ) -> Result<Response<SubjectAccessReportResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let report = self
                .ledger
                .subject_access_report(read, &request.person_id)
                .await?;
            Ok(SubjectAccessReportResponse {
                person_id: report.person_id,
                disclosures: report.disclosures.into_iter().map(Into::into).collect(),
                withheld_count: report.withheld_count,
                report_entry_id: report.report_entry_id,
                covers_through_seq: report.covers_through_seq,
            })
        })
        .await
    }

    async fn release_for_subject_access(
        &self,
        request: Request<ReleaseForSubjectAccessRequest>,
    ) -> Result<Response<ReleaseForSubjectAccessResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let read = reader(&caller, &meta, request.context)?;
            let release = self
                .ledger
                .release_for_subject_access(read, request.entry_id.trim(), &request.note)
                .await?;
            Ok(ReleaseForSubjectAccessResponse {
                release: Some(release.into()),
            })
        })
        .await
    }

    type ExportEntriesStream =
        Pin<Box<dyn Stream<Item = Result<ExportEntriesResponse, Status>> + Send + 'static>>;

    async fn export_entries(
        &self,
        request: Request<ExportEntriesRequest>,
    ) -> Result<Response<Self::ExportEntriesStream>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let format = export_format(request.format())?;
            let filter = filter(&export_filters(&request))?;
            let read = reader(&caller, &meta, request.context)?;
            let export = self.ledger.export(read, &filter, format).await?;
            let chunks = ReceiverStream::new(export.chunks).map(|chunk| {
                chunk
                    .map(|data| ExportEntriesResponse { data })
                    .map_err(Status::from)
            });
            Ok(Box::pin(chunks) as Self::ExportEntriesStream)
        })
        .await
    }
}
