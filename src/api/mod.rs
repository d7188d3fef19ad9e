//! The gRPC transport: generated code, conversions between wire and domain types, the
//! caller-identity layer and the service implementations. Thin by design: handlers
//! validate, convert, call the domain and convert back.

pub mod alerts;
pub mod audit;
pub mod caller_layer;
pub mod client;
pub mod contact;
mod convert;
mod convert_records;
pub mod identity;
pub mod journal;
pub mod message_size;
pub mod notifications;
pub mod query;
pub mod records;
pub mod requests;
pub mod resolution;
pub mod rpc_metrics;
pub mod server;
mod status;

/// Code generated from `proto/safegate/v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("safegate.v1");

    /// Encoded descriptors of every safegate service, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("safegate_descriptor");
}

use crate::domain::{Practitioner, RequestedContext};
use crate::error::Error;
use crate::registry::Caller;

/// The caller the identity layer put into the request; its absence is a wiring fault.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Error> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Error::internal("caller identity missing from request extensions"))
}

/// The request's practitioner context, required and checked against the caller's system.
pub(crate) fn practitioner(
    caller: &Caller,
    context: Option<proto::PractitionerContext>,
) -> Result<Practitioner, Error> {
    let context = context.ok_or_else(|| {
        Error::invalid(
            "context",
            "must be set: every call names the practitioner, role and purpose",
        )
    })?;
    let practitioner = caller
        .system
        .practitioner(RequestedContext::try_from(context)?)?;
    tracing::Span::current().record("safegate.role", practitioner.role.as_str());
    Ok(practitioner)
}
