//! The partnership's fixed vocabulary: agencies, practitioner roles and purposes.

vocabulary! {
    /// An agency of the safeguarding partnership.
    Agency {
        Police => "police",
        Probation => "probation",
        Health => "health",
        ChildrensServices => "childrens_services",
        Education => "education",
        /// The partnership's information-governance office.
        InformationGovernance => "information_governance",
    }
}

vocabulary! {
    /// A practitioner role asserted by an agency system on behalf of a practitioner.
    Role {
        IomOfficer => "iom_officer",
        PoliceOfficer => "police_officer",
        OffenderManager => "offender_manager",
        HealthVisitor => "health_visitor",
        Gp => "gp",
        SchoolNurse => "school_nurse",
        SocialWorker => "social_worker",
        TeamManager => "team_manager",
        SchoolDsl => "school_dsl",
        IgOfficer => "ig_officer",
        /// Confirms identities across agencies (in the demo, the MASH): sees identity
        /// details only, never case facts.
        IdentitySteward => "identity_steward",
    }
}

vocabulary! {
    /// Why a practitioner asks; it decides the lawful basis of a disclosure.
    Purpose {
        ChildSafeguarding => "child_safeguarding",
        OffenderManagement => "offender_management",
        OrderEnforcement => "order_enforcement",
        Audit => "audit",
    }
}

impl Agency {
    /// The roles this agency's systems may be configured to assert (DOMAIN.md). An IG
    /// officer and an identity steward (a MASH is hosted by one agency for all) may sit
    /// in any agency.
    pub fn permits_role(self, role: Role) -> bool {
        if matches!(role, Role::IgOfficer | Role::IdentitySteward) {
            return true;
        }
        let allowed: &[Role] = match self {
            Agency::Police => &[Role::IomOfficer, Role::PoliceOfficer],
            Agency::Probation => &[Role::OffenderManager],
            Agency::Health => &[Role::HealthVisitor, Role::Gp, Role::SchoolNurse],
            Agency::ChildrensServices => &[Role::SocialWorker, Role::TeamManager],
            Agency::Education => &[Role::SchoolDsl],
            Agency::InformationGovernance => &[],
        };
        allowed.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
        for agency in Agency::ALL {
            assert_eq!(Agency::parse(agency.as_str()), Some(*agency));
        }
        for purpose in Purpose::ALL {
            assert_eq!(Purpose::parse(purpose.as_str()), Some(*purpose));
        }
        assert_eq!(Role::parse("IOM_OFFICER"), None);
    }

    #[test]
    fn agencies_permit_only_their_own_roles() {
        assert!(Agency::Police.permits_role(Role::IomOfficer));
        assert!(!Agency::Education.permits_role(Role::IomOfficer));
        assert!(!Agency::Health.permits_role(Role::SocialWorker));
        assert!(Agency::Health.permits_role(Role::IgOfficer));
        assert!(Agency::InformationGovernance.permits_role(Role::IgOfficer));
        assert!(Agency::ChildrensServices.permits_role(Role::IdentitySteward));
        assert!(!Agency::InformationGovernance.permits_role(Role::Gp));
    }
}
