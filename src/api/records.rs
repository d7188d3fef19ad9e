//! `safegate.v1.RecordsService`: agency systems publish the facts their agency owns.

use tonic::{Request, Response, Status};

use crate::api::convert_records::Reader;
use crate::api::journal::answer;
use crate::api::practitioner;
use crate::api::proto::{
    self, EndFactRequest, EndFactResponse, GetFactHistoryRequest, GetFactHistoryResponse,
    GetSafeguardingStatusRequest, GetSafeguardingStatusResponse, PublishBatchRequest,
    PublishBatchResponse, PublishRequest, PublishResponse, UpdateFactRequest, UpdateFactResponse,
    records_service_server::RecordsService,
};
use crate::domain::ledger::Ledger;
use crate::domain::publish::Records;
use crate::domain::records::{Actor, Change, EndReason, PersonRef, Receipt};
use crate::error::Error;
use crate::registry::Caller;

/// Handlers over the records domain service.
#[derive(Debug, Clone)]
pub struct RecordsApi {
    records: Records,
    ledger: Ledger,
}

impl RecordsApi {
    /// Refusals are written to `ledger` before they are returned.
    pub fn new(records: Records, ledger: Ledger) -> Self {
        RecordsApi { records, ledger }
    }
}

/// The acting practitioner, from the request's context.
fn actor(caller: &Caller, context: Option<proto::PractitionerContext>) -> Result<Actor, Error> {
    let practitioner = practitioner(caller, context)?;
    Actor::for_records(&caller.system, &practitioner)
}

/// Converts wire facts, reporting every bad field of every fact at once.
fn changes<I>(
    caller: &Caller,
    facts: I,
    make: impl Fn(crate::domain::records::Fact) -> Change,
) -> Result<Vec<(String, Change)>, Error>
where
    I: IntoIterator<Item = (String, Option<proto::Fact>)>,
{
    let mut violations = Vec::new();
    let mut reader = Reader {
        agency: caller.system.agency,
        violations: &mut violations,
    };
    let converted: Vec<_> = facts
        .into_iter()
        .map(|(path, wire)| reader.fact(&path, wire).map(|fact| (path, make(fact))))
        .collect();
    if !violations.is_empty() {
        return Err(Error::InvalidArgument(violations));
    }
    Ok(converted.into_iter().flatten().collect())
}

fn first(receipts: Vec<Receipt>) -> Option<proto::FactReceipt> {
    receipts.into_iter().next().map(Into::into)
}

/// What a records request asks to change: the actor, the client request id and the
/// changes, each with its path in the request.
pub(crate) type ChangeRequest = (Actor, String, Vec<(String, Change)>);

/// Publish, read from the wire.
pub(crate) fn publish_request(
    caller: &Caller,
    request: PublishRequest,
) -> Result<ChangeRequest, Error> {
    let actor = actor(caller, request.context)?;
    let changes = changes(caller, [("fact".to_owned(), request.fact)], Change::Publish)?;
    Ok((actor, request.client_request_id, changes))
}

/// PublishBatch, read from the wire.
pub(crate) fn publish_batch_request(
    caller: &Caller,
    request: PublishBatchRequest,
) -> Result<ChangeRequest, Error> {
    let actor = actor(caller, request.context)?;
    let facts = request
        .facts
        .into_iter()
        .enumerate()
        .map(|(i, fact)| (format!("facts[{i}]"), Some(fact)));
    let changes = changes(caller, facts, Change::Publish)?;
    Ok((actor, request.client_request_id, changes))
}

/// UpdateFact, read from the wire.
pub(crate) fn update_fact_request(
    caller: &Caller,
    request: UpdateFactRequest,
) -> Result<ChangeRequest, Error> {
    let actor = actor(caller, request.context)?;
    let record_id = request.record_id.trim().to_owned();
    if record_id.is_empty() {
        return Err(Error::invalid("record_id", "must be set"));
    }
    let changes = changes(caller, [("fact".to_owned(), request.fact)], |fact| {
        Change::Update {
            record_id: record_id.clone(),
            fact,
        }
    })?;
    Ok((actor, request.client_request_id, changes))
}

/// EndFact, read from the wire.
pub(crate) fn end_fact_request(
    caller: &Caller,
    request: EndFactRequest,
) -> Result<ChangeRequest, Error> {
    let actor = actor(caller, request.context)?;
    let mut violations = Vec::new();
    let mut reader = Reader {
        agency: caller.system.agency,
        violations: &mut violations,
    };
    let day = reader.day("end_date".into(), &request.end_date);
    let reason: Option<EndReason> = reader.required("reason".into(), request.reason);
    let record_id = request.record_id.trim().to_owned();
    if record_id.is_empty() {
        violations.push(crate::error::FieldViolation::new(
            "record_id",
            "must be set",
        ));
    }
    let (Some(day), Some(reason), true) = (day, reason, violations.is_empty()) else {
        return Err(Error::InvalidArgument(violations));
    };
    let change = Change::End {
        record_id,
        day,
        reason,
    };
    Ok((
        actor,
        request.client_request_id,
        vec![("end".into(), change)],
    ))
}

/// GetFactHistory, read from the wire: the actor and the record id.
pub(crate) fn fact_history_request(
    caller: &Caller,
    request: GetFactHistoryRequest,
) -> Result<(Actor, String), Error> {
    let actor = actor(caller, request.context)?;
    Ok((actor, request.record_id.trim().to_owned()))
}

/// GetSafeguardingStatus, read from the wire: the actor and the child.
pub(crate) fn safeguarding_status_request(
    caller: &Caller,
    request: GetSafeguardingStatusRequest,
) -> Result<(Actor, PersonRef), Error> {
    let actor = actor(caller, request.context)?;
    let mut violations = Vec::new();
    let mut reader = Reader {
        agency: caller.system.agency,
        violations: &mut violations,
    };
    let Some(child) = reader.person("child".into(), request.child) else {
        return Err(Error::InvalidArgument(violations));
    };
    Ok((actor, child))
}

#[tonic::async_trait]
impl RecordsService for RecordsApi {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let (actor, client_request_id, changes) = publish_request(&caller, request)?;
            let receipts = self
                .records
                .apply(&actor, &client_request_id, changes)
                .await?;
            Ok(PublishResponse {
                receipt: first(receipts),
            })
        })
        .await
    }

    async fn publish_batch(
        &self,
        request: Request<PublishBatchRequest>,
    ) -> Result<Response<PublishBatchResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let (actor, client_request_id, changes) = publish_batch_request(&caller, request)?;
            let receipts = self
                .records
                .apply(&actor, &client_request_id, changes)
                .await?;
            Ok(PublishBatchResponse {
                receipts: receipts.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn update_fact(
        &self,
        request: Request<UpdateFactRequest>,
    ) -> Result<Response<UpdateFactResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let (actor, client_request_id, changes) = update_fact_request(&caller, request)?;
            let receipts = self
                .records
                .apply(&actor, &client_request_id, changes)
                .await?;
            Ok(UpdateFactResponse {
                receipt: first(receipts),
            })
        })
        .await
    }

    async fn end_fact(
        &self,
        request: Request<EndFactRequest>,
    ) -> Result<Response<EndFactResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let (actor, client_request_id, changes) = end_fact_request(&caller, request)?;
            let receipts = self
                .records
                .apply(&actor, &client_request_id, changes)
                .await?;
            Ok(EndFactResponse {
                receipt: first(receipts),
            })
        })
        .await
    }

    async fn get_fact_history(
        &self,
        request: Request<GetFactHistoryRequest>,
    ) -> Result<Response<GetFactHistoryResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let (actor, record_id) = fact_history_request(&caller, request)?;
            let history = self.records.history(&actor, &record_id).await?;
            Ok(history.into())
        })
        .await
    }

    async fn get_safeguarding_status(
        &self,
        request: Request<GetSafeguardingStatusRequest>,
    ) -> Result<Response<GetSafeguardingStatusResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let (actor, child) = safeguarding_status_request(&caller, request)?;
            let status = self.records.safeguarding_status(&actor, &child).await?;
            Ok(GetSafeguardingStatusResponse {
                status: Some(status.into()),
            })
        })
        .await
    }
}
