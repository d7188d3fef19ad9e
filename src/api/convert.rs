//! Conversions between the wire types of `proto/` and the domain. Every match is
//! exhaustive so a new enum value cannot be silently mistranslated.

use crate::api::proto;
use crate::domain::identity::{IdentityLink, LinkMethod};
use crate::domain::{Agency, Practitioner, Purpose, RequestedContext, Role};
use crate::error::Error;

impl From<Agency> for proto::Agency {
    fn from(agency: Agency) -> Self {
        match agency {
            Agency::Police => proto::Agency::Police,
            Agency::Probation => proto::Agency::Probation,
            Agency::Health => proto::Agency::Health,
            Agency::ChildrensServices => proto::Agency::ChildrensServices,
            Agency::Education => proto::Agency::Education,
            Agency::InformationGovernance => proto::Agency::InformationGovernance,
        }
    }
}

impl From<Role> for proto::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::IomOfficer => proto::Role::IomOfficer,
            Role::PoliceOfficer => proto::Role::PoliceOfficer,
            Role::OffenderManager => proto::Role::OffenderManager,
            Role::HealthVisitor => proto::Role::HealthVisitor,
            Role::Gp => proto::Role::Gp,
            Role::SchoolNurse => proto::Role::SchoolNurse,
            Role::SocialWorker => proto::Role::SocialWorker,
            Role::TeamManager => proto::Role::TeamManager,
            Role::SchoolDsl => proto::Role::SchoolDsl,
            Role::IgOfficer => proto::Role::IgOfficer,
            Role::IdentitySteward => proto::Role::IdentitySteward,
        }
    }
}

fn role_from_wire(value: i32) -> Result<Option<Role>, Error> {
    let role = proto::Role::try_from(value)
        .map_err(|_| Error::invalid("context.role", format!("unknown role value {value}")))?;
    Ok(match role {
        proto::Role::Unspecified => None,
        proto::Role::IomOfficer => Some(Role::IomOfficer),
        proto::Role::PoliceOfficer => Some(Role::PoliceOfficer),
        proto::Role::OffenderManager => Some(Role::OffenderManager),
        proto::Role::HealthVisitor => Some(Role::HealthVisitor),
        proto::Role::Gp => Some(Role::Gp),
        proto::Role::SchoolNurse => Some(Role::SchoolNurse),
        proto::Role::SocialWorker => Some(Role::SocialWorker),
        proto::Role::TeamManager => Some(Role::TeamManager),
        proto::Role::SchoolDsl => Some(Role::SchoolDsl),
        proto::Role::IgOfficer => Some(Role::IgOfficer),
        proto::Role::IdentitySteward => Some(Role::IdentitySteward),
    })
}

impl From<Purpose> for proto::Purpose {
    fn from(purpose: Purpose) -> Self {
        match purpose {
            Purpose::ChildSafeguarding => proto::Purpose::ChildSafeguarding,
            Purpose::OffenderManagement => proto::Purpose::OffenderManagement,
            Purpose::OrderEnforcement => proto::Purpose::OrderEnforcement,
            Purpose::Audit => proto::Purpose::Audit,
        }
    }
}

fn purpose_from_wire(value: i32) -> Result<Option<Purpose>, Error> {
    let purpose = proto::Purpose::try_from(value)
        .map_err(|_| Error::invalid("context.purpose", format!("unknown purpose value {value}")))?;
    Ok(match purpose {
        proto::Purpose::Unspecified => None,
        proto::Purpose::ChildSafeguarding => Some(Purpose::ChildSafeguarding),
        proto::Purpose::OffenderManagement => Some(Purpose::OffenderManagement),
        proto::Purpose::OrderEnforcement => Some(Purpose::OrderEnforcement),
        proto::Purpose::Audit => Some(Purpose::Audit),
    })
}

impl TryFrom<proto::PractitionerContext> for RequestedContext {
    type Error = Error;

    fn try_from(context: proto::PractitionerContext) -> Result<Self, Error> {
        Ok(RequestedContext {
            practitioner_id: context.practitioner_id,
            role: role_from_wire(context.role)?,
            purpose: purpose_from_wire(context.purpose)?,
            justification: context.justification,
            break_glass: context.break_glass,
        })
    }
}

impl From<Practitioner> for proto::PractitionerContext {
    fn from(practitioner: Practitioner) -> Self {
        proto::PractitionerContext {
            practitioner_id: practitioner.id,
            role: proto::Role::from(practitioner.role).into(),
            purpose: practitioner
                .purpose
                .map(proto::Purpose::from)
                .unwrap_or(proto::Purpose::Unspecified)
                .into(),
            justification: practitioner.justification.unwrap_or_default(),
            break_glass: practitioner.break_glass,
        }
    }
}

impl From<IdentityLink> for proto::IdentityLink {
    fn from(link: IdentityLink) -> Self {
        proto::IdentityLink {
            link_id: link.link_id,
            person_id: link.person_id,
            other_person_id: link.other_person_id,
            method: match link.method {
                LinkMethod::Automatic => proto::LinkMethod::Automatic,
                LinkMethod::Steward => proto::LinkMethod::Steward,
            }
            .into(),
            probability: link.probability.unwrap_or_default(),
            rules_version: link.rules_version,
            active: link.active,
            decided_at: link.decided_at,
            decided_by_system: link.decided_by_system,
            split_at: link.split_at.unwrap_or_default(),
            task_id: link.task_id,
        }
    }
}
