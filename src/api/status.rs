//! The one mapping of the domain's [`Error`] to gRPC statuses: the field violations of an
//! invalid request as `BadRequest` details, the rule of a refusal as `ErrorInfo`, and an
//! internal fault as a reference id only (its cause is logged here, once).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{Error, join};

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(violations) => {
                let message = format!("invalid request: {}", join(&violations));
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Unauthenticated(reason) => Status::unauthenticated(reason),
            Error::PermissionDenied { rule, reason } => {
                let message = format!("refused by rule `{rule}`: {reason}");
                let details = ErrorDetails::with_error_info(
                    rule,
                    "safegate",
                    std::collections::HashMap::new(),
                );
                Status::with_error_details(Code::PermissionDenied, message, details)
            }
            Error::FailedPrecondition { rule, reason } => {
                let message = format!("refused by rule `{rule}`: {reason}");
                let details = ErrorDetails::with_error_info(
                    rule,
                    "safegate",
                    std::collections::HashMap::new(),
                );
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::NotFound { field, reason } => Status::not_found(format!("{field}: {reason}")),
            Error::Unavailable(reason) => Status::unavailable(reason),
            Error::Recorded(refusal) => Status::from(*refusal),
            Error::Internal(source) => {
                // Logged here, once, where it is handled; the caller gets only the reference.
                let reference = uuid::Uuid::new_v4();
                tracing::error!(%reference, error = %source, "internal error");
                Status::internal(format!(
                    "internal error; quote reference {reference} to the gateway operators"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = Status::from(Error::invalid("context.role", "must be set"));
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad_request = status
            .get_details_bad_request()
            .expect("bad request details");
        assert_eq!(bad_request.field_violations.len(), 1);
        assert_eq!(bad_request.field_violations[0].field, "context.role");
        assert!(status.message().contains("context.role: must be set"));
    }

    #[test]
    fn permission_denied_names_the_rule() {
        let status = Status::from(Error::PermissionDenied {
            rule: "registry.role_not_assertable",
            reason: "nope".into(),
        });
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(status.message().contains("registry.role_not_assertable"));
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "registry.role_not_assertable");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = Status::from(Error::internal("disk on fire at /secret/path"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/secret/path"));
        assert!(status.message().contains("reference"));
    }
}
