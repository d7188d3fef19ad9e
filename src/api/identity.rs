//! `safegate.v1.IdentityService`: how the gateway sees the calling agency system.

use tonic::{Request, Response, Status};

use crate::api::journal::answer;
use crate::api::proto::{
    self, WhoAmIRequest, WhoAmIResponse, identity_service_server::IdentityService,
};
use crate::domain::RequestedContext;
use crate::domain::ledger::Ledger;

/// WhoAmI's optional context, checked against the caller's system and returned as the
/// gateway accepted it.
pub(crate) fn who_am_i_context(
    caller: &crate::registry::Caller,
    context: Option<proto::PractitionerContext>,
) -> Result<Option<proto::PractitionerContext>, crate::error::Error> {
    let Some(context) = context else {
        return Ok(None);
    };
    let requested = RequestedContext::try_from(context)?;
    let practitioner = caller.system.practitioner(requested)?;
    tracing::Span::current().record("safegate.role", practitioner.role.as_str());
    Ok(Some(proto::PractitionerContext::from(practitioner)))
}

/// Answers WhoAmI from the caller identity the layer resolved.
#[derive(Debug, Clone)]
pub struct IdentityApi {
    ledger: Ledger,
}

impl IdentityApi {
    /// Refusals are written to `ledger` before they are returned.
    pub fn new(ledger: Ledger) -> Self {
        IdentityApi { ledger }
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        answer(&self.ledger, request, |caller, _meta, request| async move {
            let context = who_am_i_context(&caller, request.context)?;
            let system = &caller.system;
            Ok(WhoAmIResponse {
                system_id: system.id.clone(),
                system_name: system.name.clone(),
                agency: proto::Agency::from(system.agency).into(),
                assertable_roles: system
                    .roles
                    .iter()
                    .map(|r| proto::Role::from(*r).into())
                    .collect(),
                certificate_sha256: caller.certificate_sha256.clone(),
                certificate_identity: caller.certificate_identity.clone(),
                issuer_authority: caller.authority.clone(),
                context,
            })
        })
        .await
    }
}
