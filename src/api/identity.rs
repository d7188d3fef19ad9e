//! `safegate.v1.IdentityService`: how the gateway sees the calling agency system.

use tonic::{Request, Response, Status};

use crate::api::caller;
use crate::api::proto::{
    self, WhoAmIRequest, WhoAmIResponse, identity_service_server::IdentityService,
};
use crate::domain::RequestedContext;

/// Answers WhoAmI from the caller identity the layer resolved.
#[derive(Debug, Default, Clone)]
pub struct IdentityApi;

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = caller(&request)?;
        let context = match request.into_inner().context {
            Some(context) => {
                let practitioner = caller
                    .system
                    .practitioner(RequestedContext::try_from(context)?)?;
                tracing::Span::current().record("safegate.role", practitioner.role.as_str());
                Some(proto::PractitionerContext::from(practitioner))
            }
            None => None,
        };
        let system = &caller.system;
        Ok(Response::new(WhoAmIResponse {
            system_id: system.id.clone(),
            system_name: system.name.clone(),
            agency: proto::Agency::from(system.agency).into(),
            assertable_roles: system
                .roles
                .iter()
                .map(|r| proto::Role::from(*r).into())
                .collect(),
            certificate_sha256: caller.certificate_sha256,
            certificate_identity: caller.certificate_identity,
            issuer_authority: caller.authority,
            context,
        }))
    }
}
