//! `safegate.v1.NotificationService`: each agency system receives its own notices, in
//! order, at least once.

use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::api::journal::{HasContext, RequestMeta, answer, entry_for};
use crate::api::practitioner;
use crate::api::proto::{
    self, AcknowledgeNoticesRequest, AcknowledgeNoticesResponse, ListNoticesRequest,
    ListNoticesResponse, SubscribeRequest, SubscribeResponse,
    notification_service_server::NotificationService,
};
use crate::api::query::fact_view;
use crate::domain::ledger::{Decision, Entry, EntryKind, Ledger};
use crate::domain::notify::{Delivered, Deliveries, LIST_MAX};
use crate::error::Error;
use crate::registry::Caller;

/// How often a subscriber looks for notices committed by another gateway process.
const POLL: Duration = Duration::from_secs(1);
/// Notices fetched per read while streaming.
const STREAM_BATCH: u32 = 100;

/// Handlers over notice delivery.
#[derive(Debug, Clone)]
pub struct NotificationApi {
    deliveries: Deliveries,
    ledger: Ledger,
}

impl NotificationApi {
    pub fn new(deliveries: Deliveries, ledger: Ledger) -> Self {
        NotificationApi { deliveries, ledger }
    }
}

impl HasContext for SubscribeRequest {
    fn context(&self) -> Option<&proto::PractitionerContext> {
        self.context.as_ref()
    }
}

impl HasContext for ListNoticesRequest {
    fn context(&self) -> Option<&proto::PractitionerContext> {
        self.context.as_ref()
    }
}

impl HasContext for AcknowledgeNoticesRequest {
    fn context(&self) -> Option<&proto::PractitionerContext> {
        self.context.as_ref()
    }
}

fn notice(delivered: Delivered) -> proto::Notice {
    let n = delivered.notice;
    proto::Notice {
        cursor: delivered.cursor,
        notice_id: n.notice_id,
        rule: n.rule.as_str().into(),
        headline: n.headline,
        subject_person_id: n.subject_person_id,
        recipient_role: proto::Role::from(n.recipient_role).into(),
        facts: n.facts.into_iter().map(fact_view).collect(),
        created_at: n.created_at,
        disclosure_entry_id: delivered.entry_id,
        policy_version: n.policy_version,
        lawful_basis: n.lawful_basis,
        contact_request_id: n.contact_request_id,
    }
}

/// How many notices ListNotices returns: 100 unless the request asks for at most
/// [`LIST_MAX`].
pub(crate) fn list_limit(limit: u32) -> Result<u32, Error> {
    match limit {
        0 => Ok(100),
        n if n <= LIST_MAX => Ok(n),
        _ => Err(Error::invalid(
            "limit",
            format!("must be at most {LIST_MAX}"),
        )),
    }
}

/// The delivery entry's base: who receives, on whose behalf.
pub(crate) fn receiver(
    caller: &Caller,
    meta: &RequestMeta,
    context: Option<proto::PractitionerContext>,
) -> Result<Entry, Error> {
    practitioner(caller, context.clone())?;
    Ok(entry_for(
        EntryKind::Notification,
        Decision::Released,
        Some(caller),
        context.as_ref(),
        Some(meta),
    ))
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    type SubscribeStream = ReceiverStream<Result<SubscribeResponse, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let base = receiver(&caller, &meta, request.context)?;
            let system = caller.system.id.clone();
            let deliveries = self.deliveries.clone();
            let store = deliveries.store().clone();
            let mut cursor = match request.after_cursor {
                0 => store.acknowledged(&system).await?,
                after => after,
            };
            let (sender, receiver) = tokio::sync::mpsc::channel(16);
            tokio::spawn(async move {
                let signal = store.notice_signal();
                loop {
                    // Armed before reading, so a commit during the read still wakes us.
                    let arrived = signal.notified();
                    tokio::pin!(arrived);
                    arrived.as_mut().enable();
                    let batch = match store.notices_after(&system, cursor, STREAM_BATCH).await {
                        Ok(batch) => batch,
                        Err(error) => {
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                    };
                    if batch.is_empty() {
                        tokio::select! {
                            _ = &mut arrived => {}
                            _ = tokio::time::sleep(POLL) => {}
                            _ = sender.closed() => return,
                        }
                        continue;
                    }
                    for stored in batch {
                        let delivered = match deliveries.deliver(&base, stored).await {
                            Ok(delivered) => delivered,
                            Err(error) => {
                                // Not logged, so not sent: the subscriber resumes later.
                                let _ = sender.send(Err(error.into())).await;
                                return;
                            }
                        };
                        cursor = delivered.cursor;
                        let response = SubscribeResponse {
                            notice: Some(notice(delivered)),
                        };
                        if sender.send(Ok(response)).await.is_err() {
                            return;
                        }
                    }
                }
            });
            Ok(ReceiverStream::new(receiver))
        })
        .await
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let limit = list_limit(request.limit)?;
            let base = receiver(&caller, &meta, request.context)?;
            let (delivered, acknowledged_cursor) = self
                .deliveries
                .list(&base, &caller.system.id, request.after_cursor, limit)
                .await?;
            Ok(ListNoticesResponse {
                notices: delivered.into_iter().map(notice).collect(),
                acknowledged_cursor,
            })
        })
        .await
    }

    async fn acknowledge_notices(
        &self,
        request: Request<AcknowledgeNoticesRequest>,
    ) -> Result<Response<AcknowledgeNoticesResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            practitioner(&caller, request.context)?;
            let acknowledged_cursor = self
                .deliveries
                .acknowledge(&caller.system.id, request.cursor)
                .await?;
            Ok(AcknowledgeNoticesResponse {
                acknowledged_cursor,
            })
        })
        .await
    }
}
