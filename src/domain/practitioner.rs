//! The practitioner on whose behalf an agency system calls, checked against what that
//! system may assert.

use crate::domain::{Agency, Purpose, Role};
use crate::error::{Error, FieldViolation};

/// Longest practitioner id accepted; agencies use staff numbers, not names.
const PRACTITIONER_ID_MAX: usize = 128;
/// Longest justification accepted, in characters.
const JUSTIFICATION_MAX: usize = 4000;
/// Break-glass needs a written reason an IG officer can review: at least a short
/// sentence, not a placeholder such as "urgent".
const BREAK_GLASS_MIN_WORDS: usize = 4;

/// An agency system as the agency registry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencySystem {
    /// Registry id, e.g. `police-iom`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    pub agency: Agency,
    /// The roles this system may assert for its practitioners.
    pub roles: Vec<Role>,
    /// How practitioners reach the team behind this system (shown on indicators).
    pub contact_route: String,
    /// Whether the system may administer the gateway (reload the policy, registry and certificates).
    pub admin: bool,
}

/// The practitioner context exactly as the request carried it, before any checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedContext {
    pub practitioner_id: String,
    pub role: Option<Role>,
    pub purpose: Option<Purpose>,
    pub justification: String,
    pub break_glass: bool,
}

/// A practitioner context that is well formed and whose role the calling system may assert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practitioner {
    pub id: String,
    pub role: Role,
    pub purpose: Option<Purpose>,
    pub justification: Option<String>,
    pub break_glass: bool,
}

impl AgencySystem {
    /// Accepts a practitioner context only if it is well formed (INVALID_ARGUMENT naming each
    /// bad field otherwise) and its role is one this system may assert (PERMISSION_DENIED).
    pub fn practitioner(&self, requested: RequestedContext) -> Result<Practitioner, Error> {
        let mut violations = Vec::new();
        let id = requested.practitioner_id.trim();
        if id.is_empty() {
            violations.push(FieldViolation::new(
                "context.practitioner_id",
                "must be set to the agency's identifier for the practitioner",
            ));
        } else if id.chars().count() > PRACTITIONER_ID_MAX {
            violations.push(FieldViolation::new(
                "context.practitioner_id",
                format!("must be at most {PRACTITIONER_ID_MAX} characters"),
            ));
        } else if id.chars().any(char::is_control) {
            violations.push(FieldViolation::new(
                "context.practitioner_id",
                "must not contain control characters",
            ));
        }
        if requested.role.is_none() {
            violations.push(FieldViolation::new(
                "context.role",
                format!("must be set to one of: {}", Role::expected()),
            ));
        }
        let justification = requested.justification.trim();
        if justification.chars().count() > JUSTIFICATION_MAX {
            violations.push(FieldViolation::new(
                "context.justification",
                format!("must be at most {JUSTIFICATION_MAX} characters"),
            ));
        }
        let Some(role) = requested.role.filter(|_| violations.is_empty()) else {
            return Err(Error::InvalidArgument(violations));
        };
        if requested.break_glass && justification.split_whitespace().count() < BREAK_GLASS_MIN_WORDS
        {
            return Err(Error::PermissionDenied {
                rule: "break_glass.justification_required",
                reason: format!(
                    "break-glass access needs a written justification of at least \
                     {BREAK_GLASS_MIN_WORDS} words for the IG review"
                ),
            });
        }
        if !self.roles.contains(&role) {
            return Err(Error::PermissionDenied {
                rule: "registry.role_not_assertable",
                reason: format!(
                    "agency system `{}` may not assert role `{role}`; it may assert: {}",
                    self.id,
                    self.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(Practitioner {
            id: id.to_owned(),
            role,
            purpose: requested.purpose,
            justification: (!justification.is_empty()).then(|| justification.to_owned()),
            break_glass: requested.break_glass,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nursery() -> AgencySystem {
        AgencySystem {
            id: "nursery".into(),
            name: "Nursery".into(),
            agency: Agency::Education,
            roles: vec![Role::SchoolDsl],
            contact_route: "dsl@nursery.test".into(),
            admin: false,
        }
    }

    fn context(role: Option<Role>) -> RequestedContext {
        RequestedContext {
            practitioner_id: "DSL-0042".into(),
            role,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_an_assertable_role() {
        let p = nursery()
            .practitioner(context(Some(Role::SchoolDsl)))
            .expect("accepted");
        assert_eq!(p.role, Role::SchoolDsl);
        assert_eq!(p.id, "DSL-0042");
        assert_eq!(p.justification, None);
    }

    #[test]
    fn refuses_a_role_the_system_may_not_assert() {
        let err = nursery()
            .practitioner(context(Some(Role::IomOfficer)))
            .expect_err("refused");
        match err {
            Error::PermissionDenied { rule, reason } => {
                assert_eq!(rule, "registry.role_not_assertable");
                assert!(reason.contains("iom_officer"), "{reason}");
                assert!(reason.contains("school_dsl"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn break_glass_needs_a_written_justification() {
        let mut requested = context(Some(Role::SchoolDsl));
        requested.break_glass = true;
        requested.justification = "urgent".into();
        let Err(Error::PermissionDenied { rule, .. }) = nursery().practitioner(requested.clone())
        else {
            panic!("expected a refusal");
        };
        assert_eq!(rule, "break_glass.justification_required");

        requested.justification = "Child disclosed injury at nursery this morning".into();
        let practitioner = nursery().practitioner(requested).expect("accepted");
        assert!(practitioner.break_glass);
        assert_eq!(
            practitioner.justification.as_deref(),
            Some("Child disclosed injury at nursery this morning")
        );
    }

    #[test]
    fn names_every_bad_field() {
        let requested = RequestedContext {
            practitioner_id: " ".into(),
            role: None,
            justification: "x".repeat(JUSTIFICATION_MAX + 1),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(violations)) = nursery().practitioner(requested) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "context.practitioner_id",
                "context.role",
                "context.justification"
            ]
        );
    }
}
