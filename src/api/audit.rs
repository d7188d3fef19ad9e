//! `safegate.v1.AuditService`: the disclosure log for information-governance officers.

use tonic::{Request, Response, Status};

use crate::api::journal::{RequestMeta, answer, entry_for};
use crate::api::practitioner;
use crate::api::proto::{
    self, GetCheckpointRequest, GetCheckpointResponse, GetConsistencyProofRequest,
    GetConsistencyProofResponse, GetEntryRequest, GetEntryResponse, GetInclusionProofRequest,
    GetInclusionProofResponse, ListEntriesRequest, ListEntriesResponse, VerifyLogRequest,
    VerifyLogResponse, audit_service_server::AuditService,
};
use crate::domain::ledger::audit::authorise;
use crate::domain::ledger::{Checkpoint, Decision, Disclosed, Entry, EntryKind, Ledger};
use crate::error::Error;
use crate::registry::Caller;
use crate::store::{EntryFilter, StoredEntry};

/// Largest page of entries.
const PAGE_MAX: u32 = 1000;
const PAGE_DEFAULT: u32 = 100;

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
fn reader(
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
    entry.lawful_basis = "UK GDPR Art 6(1)(c); DPA 2018 s62 (logging)".into();
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
        }
    }
}

fn signed(checkpoint: Checkpoint, public_key: &[u8]) -> proto::SignedCheckpoint {
    proto::SignedCheckpoint {
        signed_text: Checkpoint::signed_text(
            checkpoint.tree_size,
            &checkpoint.root,
            &checkpoint.signed_at,
        ),
        tree_size: checkpoint.tree_size,
        root_hash: checkpoint.root.to_vec(),
        signed_at: checkpoint.signed_at,
        signature: checkpoint.signature,
        key_id: checkpoint.key_id,
        public_key: public_key.to_vec(),
    }
}

fn filter(request: &ListEntriesRequest) -> Result<EntryFilter, Error> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let after_seq = match request.page_token.trim() {
        "" => 0,
        token => token
            .parse::<u64>()
            .map_err(|_| Error::invalid("page_token", "must be a token from a previous page"))?,
    };
    let limit = match request.page_size {
        0 => PAGE_DEFAULT,
        n if n <= PAGE_MAX => n,
        _ => {
            return Err(Error::invalid(
                "page_size",
                format!("must be at most {PAGE_MAX}"),
            ));
        }
    };
    Ok(EntryFilter {
        person_id: text(&request.person_id),
        agency: text(&request.agency),
        system_id: text(&request.system_id),
        practitioner_id: text(&request.practitioner_id),
        purpose: text(&request.purpose),
        kind: text(&request.kind),
        decision: text(&request.decision),
        break_glass: request.break_glass,
        from: text(&request.from_time),
        to: text(&request.to_time),
        after_seq,
        limit,
    })
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
            let next_page_token = match entries.last() {
                Some(last) if entries.len() == filter.limit as usize => last.seq.to_string(),
                _ => String::new(),
            };
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
            let (outcome, checkpoint) = self.ledger.verify_logged(read).await?;
            let checkpoint = checkpoint.map(|c| signed(c, self.ledger.public_key()));
            Ok(match outcome {
                Ok(verified) => VerifyLogResponse {
                    valid: true,
                    entries: verified.entries,
                    checkpoint,
                    ..Default::default()
                },
                Err(mismatch) => VerifyLogResponse {
                    valid: false,
                    entries: 0,
                    first_bad_seq: mismatch.seq,
                    first_bad_entry_id: mismatch.entry_id,
                    problem: mismatch.problem,
                    checkpoint,
                },
            })
        })
        .await
    }
}
