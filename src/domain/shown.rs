//! What a practitioner or a notice is shown of a fact: the fact itself, or an indicator
//! naming whom to contact; and the facts around a person that decide it. The query and
//! notify rooms both shape what they release with these, so they live in a room of their
//! own that imports neither.

use std::collections::HashMap;

use crate::domain::Agency;
use crate::domain::records::facts::Fact;
use crate::domain::records::{Category, FactAbout, Facts};

/// Current facts naming the trigger's persons and everyone one link from them.
pub type Surroundings = HashMap<String, Facts>;

/// Whom to contact about a fact shown as an indicator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Indicator {
    pub owner_agency: Agency,
    pub owner_system: String,
    pub team: String,
    pub contact_route: String,
}

/// One fact as released.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Shown {
    Detail(Fact),
    Indicator(Indicator),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FactView {
    pub record_id: String,
    pub category: Category,
    pub rule_id: String,
    pub shown: Shown,
}

/// Every fact in `world` naming `person`, ended or not.
pub fn naming<'a>(world: &'a Surroundings, person: &str) -> &'a [FactAbout] {
    world.get(person).map_or(&[], |facts| &facts[..])
}

/// Whom to contact about a fact: its own team and route where it has them, else the
/// owning agency's involvement with the same person, else the owning system and the
/// contact route the registry gives it.
pub fn indicator(about: &FactAbout, facts: &Surroundings) -> Indicator {
    let own = match &about.fact {
        Fact::Involvement(f) => Some((f.team.clone(), f.contact_route.clone())),
        Fact::Iom(f) => Some((
            "Integrated Offender Management".to_owned(),
            f.contact_route.clone(),
        )),
        Fact::ProbationSupervision(f) => Some(("Probation".to_owned(), f.contact_route.clone())),
        Fact::HealthInvolvement(f) => Some((f.team.clone(), f.contact_route.clone())),
        Fact::Education(f) => Some((f.setting_name.clone(), f.dsl_contact_route.clone())),
        _ => None,
    };
    let (team, contact_route) = own
        .or_else(|| {
            about.fact.person_ids().iter().find_map(|person| {
                naming(facts, person)
                    .iter()
                    .find_map(|other| match &other.fact {
                        Fact::Involvement(i) if other.owner == about.owner => {
                            Some((i.team.clone(), i.contact_route.clone()))
                        }
                        _ => None,
                    })
            })
        })
        .filter(|(_, route)| !route.is_empty())
        .unwrap_or_else(|| (about.owner_system.clone(), about.owner_contact.clone()));
    Indicator {
        owner_agency: about.owner,
        owner_system: about.owner_system.clone(),
        team,
        contact_route,
    }
}
