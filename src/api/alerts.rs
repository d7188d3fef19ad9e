//! `safegate.v1.AlertService`: privacy alert cases for information-governance officers.

use tonic::{Request, Response, Status};

use crate::api::audit::reader;
use crate::api::journal::{HasContext, answer};
use crate::api::proto::{
    self, AssignAlertRequest, AssignAlertResponse, CloseAlertRequest, CloseAlertResponse,
    GetAlertRequest, GetAlertResponse, ListAlertsRequest, ListAlertsResponse,
    alert_service_server::AlertService,
};
use crate::domain::alerts::cases::{AlertFilter, PAGE_MAX};
use crate::domain::alerts::{AlertCase, CaseOutcome, CaseState, Cases};
use crate::error::Error;

const PAGE_DEFAULT: u32 = 50;

macro_rules! alert_context {
    ($($request:ty),+ $(,)?) => {$(
        impl HasContext for $request {
            fn context(&self) -> Option<&proto::PractitionerContext> {
                self.context.as_ref()
            }
        }
    )+};
}

alert_context!(
    ListAlertsRequest,
    GetAlertRequest,
    AssignAlertRequest,
    CloseAlertRequest,
);

/// Handlers over the alert cases.
#[derive(Debug, Clone)]
pub struct AlertApi {
    cases: Cases,
}

impl AlertApi {
    pub fn new(cases: Cases) -> Self {
        AlertApi { cases }
    }
}

fn state(state: CaseState) -> proto::AlertState {
    match state {
        CaseState::Open => proto::AlertState::Open,
        CaseState::Assigned => proto::AlertState::Assigned,
        CaseState::Closed => proto::AlertState::Closed,
    }
}

fn outcome(outcome: Option<CaseOutcome>) -> proto::AlertOutcome {
    match outcome {
        None => proto::AlertOutcome::Unspecified,
        Some(CaseOutcome::Explained) => proto::AlertOutcome::Explained,
        Some(CaseOutcome::Breach) => proto::AlertOutcome::Breach,
        Some(CaseOutcome::FalsePositive) => proto::AlertOutcome::FalsePositive,
    }
}

fn case_outcome(outcome: proto::AlertOutcome) -> Result<CaseOutcome, Error> {
    match outcome {
        proto::AlertOutcome::Explained => Ok(CaseOutcome::Explained),
        proto::AlertOutcome::Breach => Ok(CaseOutcome::Breach),
        proto::AlertOutcome::FalsePositive => Ok(CaseOutcome::FalsePositive),
        proto::AlertOutcome::Unspecified => Err(Error::invalid(
            "outcome",
            "must be ALERT_OUTCOME_EXPLAINED, ALERT_OUTCOME_BREACH or \
             ALERT_OUTCOME_FALSE_POSITIVE",
        )),
    }
}

impl From<AlertCase> for proto::PrivacyAlert {
    fn from(case: AlertCase) -> Self {
        let a = case.alert;
        proto::PrivacyAlert {
            alert_id: a.alert_id,
            rule_id: a.rule_id,
            rules_version: a.rules_version,
            raised_at: a.raised_at,
            system_id: a.system_id,
            practitioner_id: a.practitioner_id,
            summary: a.summary,
            entry_ids: a.entry_ids,
            log_entry_id: a.log_entry_id,
            state: state(case.state).into(),
            assignee: case.assignee,
            outcome: outcome(case.outcome).into(),
            history: case
                .events
                .into_iter()
                .map(|e| proto::AlertStep {
                    event_id: e.event_id,
                    step: e.step,
                    action: e.action.as_str().into(),
                    assignee: e.assignee,
                    outcome: outcome(e.outcome).into(),
                    note: e.note,
                    by_system: e.by_system,
                    by_practitioner_id: e.by_id,
                    at: e.at,
                    log_entry_id: e.log_entry_id,
                })
                .collect(),
        }
    }
}

fn filter(request: &ListAlertsRequest) -> Result<AlertFilter, Error> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let before_seq = match request.page_token.trim() {
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
    let state = match proto::AlertState::try_from(request.state) {
        Ok(proto::AlertState::Unspecified) => None,
        Ok(proto::AlertState::Open) => Some(CaseState::Open),
        Ok(proto::AlertState::Assigned) => Some(CaseState::Assigned),
        Ok(proto::AlertState::Closed) => Some(CaseState::Closed),
        Err(_) => return Err(Error::invalid("state", "is not an AlertState")),
    };
    Ok(AlertFilter {
        rule_id: text(&request.rule_id),
        state,
        assignee: text(&request.assignee),
        system_id: text(&request.system_id),
        practitioner_id: text(&request.practitioner_id),
        from: text(&request.from_time),
        to: text(&request.to_time),
        before_seq,
        limit,
    })
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn list_alerts(
        &self,
        request: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsResponse>, Status> {
        answer(
            self.cases.ledger(),
            request,
            |caller, meta, request| async move {
                let filter = filter(&request)?;
                let read = reader(&caller, &meta, request.context)?;
                let cases = self.cases.list(read, &filter).await?;
                let next_page_token = match cases.last() {
                    Some(last) if cases.len() == filter.limit as usize => last.seq.to_string(),
                    _ => String::new(),
                };
                Ok(ListAlertsResponse {
                    alerts: cases.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn get_alert(
        &self,
        request: Request<GetAlertRequest>,
    ) -> Result<Response<GetAlertResponse>, Status> {
        answer(
            self.cases.ledger(),
            request,
            |caller, meta, request| async move {
                let read = reader(&caller, &meta, request.context)?;
                let detail = self.cases.get(read, &request.alert_id).await?;
                Ok(GetAlertResponse {
                    alert: Some(detail.case.into()),
                    entries: detail.entries.into_iter().map(Into::into).collect(),
                })
            },
        )
        .await
    }

    async fn assign_alert(
        &self,
        request: Request<AssignAlertRequest>,
    ) -> Result<Response<AssignAlertResponse>, Status> {
        answer(
            self.cases.ledger(),
            request,
            |caller, meta, request| async move {
                let read = reader(&caller, &meta, request.context)?;
                let case = self
                    .cases
                    .assign(read, &request.alert_id, &request.assignee, &request.note)
                    .await?;
                Ok(AssignAlertResponse {
                    alert: Some(case.into()),
                })
            },
        )
        .await
    }

    async fn close_alert(
        &self,
        request: Request<CloseAlertRequest>,
    ) -> Result<Response<CloseAlertResponse>, Status> {
        answer(
            self.cases.ledger(),
            request,
            |caller, meta, request| async move {
                let outcome = proto::AlertOutcome::try_from(request.outcome)
                    .map_err(|_| Error::invalid("outcome", "is not an AlertOutcome"))
                    .and_then(case_outcome)?;
                let read = reader(&caller, &meta, request.context)?;
                let case = self
                    .cases
                    .close(read, &request.alert_id, outcome, &request.note)
                    .await?;
                Ok(CloseAlertResponse {
                    alert: Some(case.into()),
                })
            },
        )
        .await
    }
}
