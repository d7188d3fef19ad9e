//! The reviewed contact rules (`policies/contact.toml`): deadlines by urgency and the
//! manager role each agency escalates overdue requests to.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::contact::Urgency;
use crate::domain::{Agency, Role};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    deadline_minutes: BTreeMap<String, i64>,
    #[serde(default)]
    escalate_to: BTreeMap<String, String>,
}

/// The contact rules in force, with the SHA-256 of the file they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRules {
    /// Minutes to answer, indexed by urgency.
    deadlines: BTreeMap<Urgency, i64>,
    escalate_to: BTreeMap<Agency, Role>,
    version: String,
}

impl ContactRules {
    /// Reads and checks the rules file; the error names the file's fault.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Self::parse(&text)
    }

    /// Checks the rules' text: every urgency has a positive deadline, a more urgent
    /// request never has longer than a less urgent one, and each escalation role is a
    /// role its agency may hold.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut deadlines = BTreeMap::new();
        for (word, minutes) in file.deadline_minutes {
            let urgency = Urgency::parse(&word).ok_or_else(|| {
                format!(
                    "deadline_minutes.{word}: not an urgency (expected {})",
                    Urgency::expected()
                )
            })?;
            if minutes <= 0 {
                return Err(format!(
                    "deadline_minutes.{word}: must be a positive number of minutes"
                ));
            }
            deadlines.insert(urgency, minutes);
        }
        for urgency in Urgency::ALL {
            if !deadlines.contains_key(urgency) {
                return Err(format!("deadline_minutes.{urgency}: missing"));
            }
        }
        // ALL runs from least to most urgent.
        for pair in Urgency::ALL.windows(2) {
            if deadlines[&pair[1]] > deadlines[&pair[0]] {
                return Err(format!(
                    "deadline_minutes.{}: longer than {}'s, but it is more urgent",
                    pair[1], pair[0]
                ));
            }
        }
        let mut escalate_to = BTreeMap::new();
        for (agency_word, role_word) in file.escalate_to {
            let agency = Agency::parse(&agency_word).ok_or_else(|| {
                format!(
                    "escalate_to.{agency_word}: not an agency (expected {})",
                    Agency::expected()
                )
            })?;
            let role = Role::parse(&role_word)
                .ok_or_else(|| format!("escalate_to.{agency_word}: `{role_word}` is not a role"))?;
            if !agency.permits_role(role) {
                return Err(format!(
                    "escalate_to.{agency_word}: {agency} may not hold the role {role}"
                ));
            }
            escalate_to.insert(agency, role);
        }
        Ok(ContactRules {
            deadlines,
            escalate_to,
            version: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// How long the owning team has to answer a request of this urgency.
    pub fn deadline(&self, urgency: Urgency) -> time::Duration {
        time::Duration::minutes(self.deadlines.get(&urgency).copied().unwrap_or(60))
    }

    /// The role overdue requests to `agency` are escalated to, if it has one.
    pub fn manager(&self, agency: Agency) -> Option<Role> {
        self.escalate_to.get(&agency).copied()
    }

    /// SHA-256 of the rules file, recorded with every request and escalation.
    pub fn version(&self) -> &str {
        &self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = include_str!("../../../policies/contact.toml");

    #[test]
    fn the_reviewed_rules_load() {
        let rules = ContactRules::parse(RULES).expect("policies/contact.toml");
        assert_eq!(
            rules.deadline(Urgency::ImmediateRisk),
            time::Duration::minutes(60)
        );
        assert!(rules.deadline(Urgency::Routine) > rules.deadline(Urgency::SameDay));
        assert_eq!(
            rules.manager(Agency::ChildrensServices),
            Some(Role::TeamManager)
        );
        assert_eq!(rules.manager(Agency::Health), None);
        assert_eq!(rules.version().len(), 64);
    }

    #[test]
    fn faults_are_named() {
        let missing = ContactRules::parse("[deadline_minutes]\nroutine = 10\nsame_day = 5\n");
        assert!(
            missing
                .expect_err("missing urgency")
                .contains("immediate_risk: missing")
        );
        let inverted = ContactRules::parse(
            "[deadline_minutes]\nroutine = 10\nsame_day = 20\nimmediate_risk = 1\n",
        );
        assert!(
            inverted
                .expect_err("inverted deadlines")
                .contains("same_day")
        );
        let wrong_role = ContactRules::parse(
            "[deadline_minutes]\nroutine = 10\nsame_day = 5\nimmediate_risk = 1\n\
             [escalate_to]\nhealth = \"team_manager\"\n",
        );
        assert!(
            wrong_role
                .expect_err("role outside agency")
                .contains("may not hold")
        );
        let unknown = ContactRules::parse(
            "[deadline_minutes]\nroutine = 10\nsame_day = 5\nimmediate_risk = 1\nsoon = 2\n",
        );
        assert!(unknown.expect_err("unknown urgency").contains("soon"));
    }
}
