//! `safegate.v1.QueryService` and `safegate.v1.AdminService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::convert_records::{Reader, WireEnum};
use crate::api::journal::{answer, entry_for};
use crate::api::practitioner;
use crate::api::proto::{
    self, ExplainRequest, ExplainResponse, QueryRequest, QueryResponse, ReloadPolicyRequest,
    ReloadPolicyResponse, admin_service_server::AdminService, query_service_server::QueryService,
};
use crate::domain::ledger::{Decision, EntryKind, Ledger};
use crate::domain::policy::Level;
use crate::domain::query::{Queries, Question, Shown, Subject};
use crate::error::Error;
use crate::reload::{InForce, Reloader};

/// Handlers over the query service.
#[derive(Debug, Clone)]
pub struct QueryApi {
    queries: Queries,
    ledger: Ledger,
}

impl QueryApi {
    pub fn new(queries: Queries, ledger: Ledger) -> Self {
        QueryApi { queries, ledger }
    }
}

fn level(level: Level) -> proto::Level {
    match level {
        Level::Detail => proto::Level::Detail,
        Level::Indicator => proto::Level::Indicator,
        Level::Nothing => proto::Level::Nothing,
    }
}

/// A released fact on the wire: the fact at detail, or the indicator.
pub(crate) fn fact_view(f: crate::domain::query::FactView) -> proto::FactView {
    let (level, fact, indicator) = match f.shown {
        Shown::Detail(fact) => (proto::Level::Detail, Some(fact.into()), None),
        Shown::Indicator(i) => (
            proto::Level::Indicator,
            None,
            Some(proto::Indicator {
                owner_agency: proto::Agency::from(i.owner_agency).into(),
                owner_system: i.owner_system,
                team: i.team,
                contact_route: i.contact_route,
                current: true,
            }),
        ),
    };
    proto::FactView {
        record_id: f.record_id,
        category: f.category.as_str().into(),
        level: level.into(),
        fact,
        indicator,
        rule_id: f.rule_id,
    }
}

fn person_view(view: crate::domain::query::PersonView) -> proto::PersonView {
    proto::PersonView {
        person_id: view.person_id,
        facts: view.facts.into_iter().map(fact_view).collect(),
        safeguarding_status: view.status.map(Into::into),
        identity_links: view.identity_links.into_iter().map(Into::into).collect(),
    }
}

/// Builds the question from the request: context, subject and the log entry so far.
pub(crate) fn question(
    caller: &crate::registry::Caller,
    meta: &crate::api::journal::RequestMeta,
    context: Option<proto::PractitionerContext>,
    subject: Option<proto::PersonRef>,
    search: Option<proto::SubjectSearch>,
) -> Result<Question, Error> {
    let practitioner = practitioner(caller, context.clone())?;
    let mut violations = Vec::new();
    let mut reader = Reader {
        agency: caller.system.agency,
        violations: &mut violations,
    };
    let named = subject.as_ref().is_some_and(|s| s.r#ref.is_some());
    let subject = match (named, search) {
        (true, Some(_)) => {
            return Err(Error::invalid(
                "search",
                "set either subject or search, not both",
            ));
        }
        (false, Some(search)) => reader.search("search", search).map(Subject::Search),
        _ => reader
            .person("subject".into(), subject)
            .map(Subject::Person),
    };
    let Some(subject) = subject else {
        return Err(Error::InvalidArgument(violations));
    };
    Ok(Question {
        system: Arc::clone(&caller.system),
        practitioner,
        subject,
        entry: entry_for(
            EntryKind::Query,
            Decision::Released,
            Some(caller),
            context.as_ref(),
            Some(meta),
        ),
    })
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let question = question(
                &caller,
                &meta,
                request.context,
                request.subject,
                request.search,
            )?;
            let answer = self.queries.query(question).await?;
            Ok(QueryResponse {
                disclosure_entry_id: answer.entry_id,
                policy_version: answer.policy_version,
                lawful_basis: answer.lawful_basis,
                break_glass: answer.break_glass,
                subject: Some(person_view(answer.subject)),
                linked: answer
                    .linked
                    .into_iter()
                    .map(|l| proto::LinkedPerson {
                        link_type: l.link_type.to_wire(),
                        subject_is_from: l.subject_is_from,
                        person: Some(person_view(l.person)),
                    })
                    .collect(),
                notes: answer.notes,
            })
        })
        .await
    }

    async fn explain(
        &self,
        request: Request<ExplainRequest>,
    ) -> Result<Response<ExplainResponse>, Status> {
        answer(&self.ledger, request, |caller, meta, request| async move {
            let question = question(
                &caller,
                &meta,
                request.context,
                request.subject,
                request.search,
            )?;
            let explanation = self.queries.explain(question).await?;
            let (refusal_rule_id, refusal_reason) = explanation
                .refusal
                .clone()
                .map(|(rule, reason)| (rule.to_owned(), reason))
                .unwrap_or_default();
            Ok(ExplainResponse {
                disclosure_entry_id: explanation.entry_id,
                policy_version: explanation.policy_version,
                would_answer: explanation.refusal.is_none(),
                refusal_rule_id,
                refusal_reason,
                purpose_rule_id: explanation.purpose_rule_id,
                lawful_basis: explanation.lawful_basis,
                legitimacy: explanation.legitimacy,
                categories: explanation
                    .categories
                    .into_iter()
                    .map(|(category, l, rule_id)| proto::CategoryDecision {
                        category: category.as_str().into(),
                        level: level(l).into(),
                        rule_id,
                    })
                    .collect(),
            })
        })
        .await
    }
}

/// ReloadPolicy, read from the wire: a practitioner of an admin system.
pub(crate) fn reload_policy_request(
    caller: &crate::registry::Caller,
    request: ReloadPolicyRequest,
) -> Result<(), Error> {
    practitioner(caller, request.context)?;
    if !caller.system.admin {
        return Err(Error::PermissionDenied {
            rule: "admin.admin_system_only",
            reason: format!(
                "agency system `{}` is not an admin system in the registry",
                caller.system.id
            ),
        });
    }
    Ok(())
}

/// Reloads the policy, registry and server certificate for admin systems.
#[derive(Debug, Clone)]
pub struct AdminApi {
    reloader: Arc<Reloader>,
    ledger: Ledger,
}

impl AdminApi {
    pub fn new(reloader: Arc<Reloader>, ledger: Ledger) -> Self {
        AdminApi { reloader, ledger }
    }
}

fn reload_response(in_force: InForce, error: String) -> ReloadPolicyResponse {
    ReloadPolicyResponse {
        reloaded: error.is_empty(),
        policy_version: in_force.policy_version,
        error,
        server_certificate_sha256: in_force.server_certificate_sha256,
        registry_systems: u32::try_from(in_force.registry_systems).unwrap_or(u32::MAX),
        registry_authorities: u32::try_from(in_force.registry_authorities).unwrap_or(u32::MAX),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn reload_policy(
        &self,
        request: Request<ReloadPolicyRequest>,
    ) -> Result<Response<ReloadPolicyResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            reload_policy_request(&caller, request)?;
            Ok(match self.reloader.reload().await {
                Ok(in_force) => {
                    tracing::info!(
                        policy_version = %in_force.policy_version,
                        server_certificate_sha256 = %in_force.server_certificate_sha256,
                        registry_systems = in_force.registry_systems,
                        system = %caller.system.id,
                        "reloaded the policy, registry and server certificate"
                    );
                    reload_response(in_force, String::new())
                }
                Err(error) => {
                    tracing::error!(%error, system = %caller.system.id, "reload refused; everything in force stays as it was");
                    reload_response(self.reloader.in_force(), error.to_string())
                }
            })
        })
        .await
    }
}
