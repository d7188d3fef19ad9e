//! The one domain error type. Its one mapping to gRPC statuses is `api::status`, beside
//! the rest of the transport.

use std::fmt;

/// One problem with one request field, phrased so an integrator can fix the call.
/// It names the field and the rule, never the value (which may be personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is malformed; nothing was stored.
    #[error("invalid request: {}", join(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The caller's certificate does not identify a registered agency system.
    #[error("{0}")]
    Unauthenticated(String),
    /// A rule forbids the request; `rule` names it so the refusal can be explained.
    #[error("refused by rule `{rule}`: {reason}")]
    PermissionDenied { rule: &'static str, reason: String },
    /// The request is well formed but conflicts with what is stored (e.g. an identifier
    /// that belongs to another person); `rule` names the conflict.
    #[error("refused by rule `{rule}`: {reason}")]
    FailedPrecondition { rule: &'static str, reason: String },
    /// Something the request names does not exist (or is not visible to the caller).
    #[error("{field}: {reason}")]
    NotFound { field: String, reason: String },
    /// A dependency (the database) cannot be reached; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of ours; the caller sees only a reference id.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A refusal the domain already wrote to the disclosure log, with what only the
    /// domain knew (e.g. the candidates a search considered); returned as the refusal.
    #[error("{0}")]
    Recorded(Box<Error>),
}

/// The violations in one line, as messages show them.
pub(crate) fn join(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Shorthand for a request with a single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// Whether this is a refusal of the caller's request (logged to the disclosure log),
    /// rather than a fault of the gateway or its database.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::InvalidArgument(_)
            | Error::Unauthenticated(_)
            | Error::PermissionDenied { .. }
            | Error::FailedPrecondition { .. }
            | Error::NotFound { .. } => true,
            Error::Unavailable(_) | Error::Internal(_) | Error::Recorded(_) => false,
        }
    }

    /// The rule id a refusal names, or a fixed id for its kind.
    pub fn rule(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "request.invalid_argument",
            Error::Unauthenticated(_) => "registry.unregistered_certificate",
            Error::PermissionDenied { rule, .. } | Error::FailedPrecondition { rule, .. } => rule,
            Error::NotFound { .. } => "request.not_found",
            Error::Unavailable(_) => "gateway.unavailable",
            Error::Internal(_) => "gateway.internal",
            Error::Recorded(refusal) => refusal.rule(),
        }
    }

    /// Wraps an unexpected fault.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(source.into())
    }
}
