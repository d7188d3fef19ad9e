//! The gRPC transport: generated code, conversions between wire and domain types, the
//! caller-identity layer and the service implementations. Thin by design: handlers
//! validate, convert, call the domain and convert back.

pub mod caller_layer;
mod convert;
pub mod identity;

/// Code generated from `proto/safegate/v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("safegate.v1");

    /// Encoded descriptors of every safegate service, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("safegate_descriptor");
}

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
