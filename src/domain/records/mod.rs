//! The safeguarding data model: persons and their identifiers, links, and the facts of
//! each category, with who may publish what and the child's derived status.

pub mod demographics;
pub mod facts;
pub mod identifiers;
pub mod status;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use demographics::{NameKind, OtherName, Postcode, Sex};
pub use facts::{
    Category, ChangeKind, CourtOrder, CourtOrderStatus, EndReason, Fact, LegalStatus,
    LegalStatusType, Part, PersonRef,
};
pub use identifiers::Identifier;
pub use status::{ConcernLevel, LegalStatusVersion, SafeguardingStatus};

use crate::domain::{Agency, AgencySystem, Practitioner, Role};
use crate::error::Error;

/// A calendar date, written `YYYY-MM-DD` on the wire and in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(time::Date);

impl Day {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Self> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text.trim(), &format).ok().map(Day)
    }

    /// Today in UTC.
    pub fn today() -> Self {
        Day(time::OffsetDateTime::now_utc().date())
    }

    /// The day of a calendar year, month (1-12) and day of the month; `None` when there is
    /// no such date.
    pub fn from_ymd(year: i32, month: u8, day: u8) -> Option<Self> {
        let month = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(Day)
    }

    /// The calendar year.
    pub fn year(&self) -> i32 {
        self.0.year()
    }

    /// The month, 1-12.
    pub fn month(&self) -> u8 {
        self.0.month() as u8
    }

    /// The day of the month, 1-31.
    pub fn day(&self) -> u8 {
        self.0.day()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = (self.0.year(), self.0.month() as u8, self.0.day());
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Day::parse(&text).ok_or_else(|| serde::de::Error::custom("expected YYYY-MM-DD"))
    }
}

/// Who made a change: the system, its agency and the practitioner acting.
#[derive(Debug, Clone)]
pub struct Actor {
    pub system_id: String,
    pub agency: Agency,
    /// How to reach the system's team; recorded with each fact it publishes.
    pub contact_route: String,
    pub practitioner_id: String,
    pub role: Role,
}

impl Actor {
    /// The actor for a practitioner of a system. The IG office reads the disclosure log
    /// and never writes case data.
    pub fn for_records(system: &AgencySystem, practitioner: &Practitioner) -> Result<Self, Error> {
        if practitioner.role == Role::IgOfficer {
            return Err(Error::PermissionDenied {
                rule: "records.ig_officer_reads_log_only",
                reason: "an ig_officer reviews the disclosure log and publishes no case data"
                    .into(),
            });
        }
        Ok(Actor {
            system_id: system.id.clone(),
            agency: system.agency,
            contact_route: system.contact_route.clone(),
            practitioner_id: practitioner.id.clone(),
            role: practitioner.role,
        })
    }

    /// Refuses a category the actor's agency does not own.
    pub fn check_may_publish(&self, category: Category) -> Result<(), Error> {
        if category.may_be_published_by(self.agency) {
            return Ok(());
        }
        let owners = category
            .owners()
            .unwrap_or_default()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::PermissionDenied {
            rule: "records.category_owner",
            reason: format!(
                "agency `{}` may not publish `{category}` facts; they are owned by: {owners}",
                self.agency
            ),
        })
    }

    /// Refuses a change to a fact another agency owns.
    pub fn check_owns(&self, owner: Agency) -> Result<(), Error> {
        if owner == self.agency {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            rule: "records.only_owner_changes",
            reason: format!(
                "only the owning agency (`{owner}`) may update or end this fact or read its history"
            ),
        })
    }
}

/// What a publish, update or end stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub record_id: String,
    pub version: i64,
    pub person_ids: Vec<String>,
}

/// A change to one fact, as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Change {
    Publish(Fact),
    Update {
        record_id: String,
        fact: Fact,
    },
    End {
        record_id: String,
        day: Day,
        reason: EndReason,
    },
}

/// One version of a fact, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactVersion {
    pub version: i64,
    pub change: ChangeKind,
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub recorded_by_system: String,
    pub recorded_by_practitioner: String,
    pub fact: Fact,
    pub end_reason: Option<EndReason>,
    pub end_date: Option<Day>,
}

/// A fact's owner and every version, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactHistory {
    pub record_id: String,
    pub owner: Agency,
    pub versions: Vec<FactVersion>,
}

/// A current fact naming a person, with the parts that person plays in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactAbout {
    pub record_id: String,
    pub version: i64,
    pub owner: Agency,
    pub owner_system: String,
    /// How to reach the owning system's team.
    pub owner_contact: String,
    pub parts: Vec<Part>,
    pub fact: Fact,
}

/// Current facts naming one person, shared between queries without copying.
pub type Facts = std::sync::Arc<[FactAbout]>;

/// One change and the path of its fact in the request (`fact`, `facts[3]`), for messages.
pub type PathedChange = (String, Change);
