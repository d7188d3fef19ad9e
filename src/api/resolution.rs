//! `safegate.v1.IdentityResolutionService`: the identity steward's review tasks, and
//! confirming, rejecting and splitting links between agencies' records of one person.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::convert_records::Reader;
use crate::api::journal::{RequestMeta, answer, entry_for};
use crate::api::practitioner;
use crate::api::proto::{
    self, ConfirmMatchRequest, ConfirmMatchResponse, ListIdentityLinksRequest,
    ListIdentityLinksResponse, ListReviewTasksRequest, ListReviewTasksResponse, RejectMatchRequest,
    RejectMatchResponse, SplitLinkRequest, SplitLinkResponse,
    identity_resolution_service_server::IdentityResolutionService,
};
use crate::domain::identity::{IdentityCard, ReviewState, Steward, StewardCall, TaskView};
use crate::domain::ledger::{Decision, EntryKind, Ledger};
use crate::error::Error;
use crate::registry::Caller;

/// Handlers over the steward's service.
#[derive(Debug, Clone)]
pub struct ResolutionApi {
    steward: Steward,
    ledger: Ledger,
}

impl ResolutionApi {
    /// Refusals are written to `ledger` before they are returned.
    pub fn new(steward: Steward, ledger: Ledger) -> Self {
        ResolutionApi { steward, ledger }
    }
}

/// The steward acting, and the log entry stamped for the request.
pub(crate) fn call(
    caller: &Caller,
    meta: &RequestMeta,
    context: Option<proto::PractitionerContext>,
) -> Result<StewardCall, Error> {
    let practitioner = practitioner(caller, context.clone())?;
    Ok(StewardCall {
        system: Arc::clone(&caller.system),
        practitioner,
        entry: entry_for(
            EntryKind::Identity,
            Decision::Released,
            Some(caller),
            context.as_ref(),
            Some(meta),
        ),
    })
}

/// ListIdentityLinks, read from the wire: the steward acting and the person asked about.
pub(crate) fn identity_links_request(
    caller: &Caller,
    meta: &RequestMeta,
    request: ListIdentityLinksRequest,
) -> Result<(StewardCall, crate::domain::records::PersonRef), Error> {
    let agency = caller.system.agency;
    let call = call(caller, meta, request.context)?;
    let mut violations = Vec::new();
    let person = Reader {
        agency,
        violations: &mut violations,
    }
    .person("person".into(), request.person);
    let Some(person) = person else {
        return Err(Error::InvalidArgument(violations));
    };
    Ok((call, person))
}

fn card(card: IdentityCard) -> proto::IdentityCard {
    proto::IdentityCard {
        person_id: card.person_id,
        records: card
            .records
            .into_iter()
            .map(|record| proto::PublishedIdentity {
                agency: proto::Agency::from(record.agency).into(),
                system_id: record.system_id,
                person_id: record.person_id,
                details: match proto::Fact::from(crate::domain::records::Fact::Person(
                    record.details,
                ))
                .category
                {
                    Some(proto::fact::Category::Person(details)) => Some(details),
                    _ => None,
                },
            })
            .collect(),
    }
}

fn task(view: TaskView) -> proto::ReviewTask {
    let state = match view.task.state {
        ReviewState::Open => proto::ReviewState::Open,
        ReviewState::Confirmed => proto::ReviewState::Confirmed,
        ReviewState::Rejected => proto::ReviewState::Rejected,
    };
    proto::ReviewTask {
        task_id: view.task.task_id,
        state: state.into(),
        raised_at: view.task.raised_at,
        probability: view.task.probability.unwrap_or_default(),
        rules_version: view.task.rules_version,
        reasons: view.task.reasons,
        explanation: view.explanation,
        person: Some(card(view.person)),
        candidate: Some(card(view.candidate)),
    }
}

#[tonic::async_trait]
impl IdentityResolutionService for ResolutionApi {
    async fn list_review_tasks(
        &self,
        request: Request<ListReviewTasksRequest>,
    ) -> Result<Response<ListReviewTasksResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let call = call(&caller, &meta, request.context)?;
            let (tasks, entry_id) = self.steward.tasks(call, request.include_closed).await?;
            Ok(ListReviewTasksResponse {
                tasks: tasks.into_iter().map(task).collect(),
                disclosure_entry_id: entry_id,
            })
        })
        .await
    }

    async fn confirm_match(
        &self,
        request: Request<ConfirmMatchRequest>,
    ) -> Result<Response<ConfirmMatchResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let call = call(&caller, &meta, request.context)?;
            let decision_id = self
                .steward
                .confirm(call, &request.task_id, &request.note)
                .await?;
            Ok(ConfirmMatchResponse { decision_id })
        })
        .await
    }

    async fn reject_match(
        &self,
        request: Request<RejectMatchRequest>,
    ) -> Result<Response<RejectMatchResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let call = call(&caller, &meta, request.context)?;
            let decision_id = self
                .steward
                .reject(call, &request.task_id, &request.note)
                .await?;
            Ok(RejectMatchResponse { decision_id })
        })
        .await
    }

    async fn list_identity_links(
        &self,
        request: Request<ListIdentityLinksRequest>,
    ) -> Result<Response<ListIdentityLinksResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let (call, person) = identity_links_request(&caller, &meta, request)?;
            let links = self.steward.links(call, &person).await?;
            Ok(ListIdentityLinksResponse {
                links: links.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn split_link(
        &self,
        request: Request<SplitLinkRequest>,
    ) -> Result<Response<SplitLinkResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let call = call(&caller, &meta, request.context)?;
            let split = self
                .steward
                .split(call, &request.link_id, &request.note)
                .await?;
            Ok(SplitLinkResponse {
                decision_id: split.decision_id,
                link: Some(split.link.into()),
                crossed: split
                    .crossed
                    .into_iter()
                    .map(|c| proto::CrossedDisclosure {
                        entry_id: c.entry_id,
                        recorded_at: c.recorded_at,
                        kind: c.kind.as_str().into(),
                        system_id: c.system_id,
                        recipient_system: c.recipient_system,
                    })
                    .collect(),
            })
        })
        .await
    }
}
