//! The facts agencies publish, one type per category of DOMAIN.md, and the rules each
//! must satisfy before anything is stored.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::records::demographics::{OtherName, Postcode, Sex};
use crate::domain::records::identifiers::Identifier;
use crate::domain::{Agency, records::Day};
use crate::error::FieldViolation;

vocabulary! {
    /// A data category. The category decides which agency may publish it.
    Category {
        Person => "person",
        Link => "link",
        Involvement => "involvement",
        Iom => "iom",
        CourtOrder => "court_order",
        PoliceEvent => "police_event",
        LegalStatus => "legal_status",
        ContactArrangement => "contact_arrangement",
        ProbationSupervision => "probation_supervision",
        HealthInvolvement => "health_involvement",
        Education => "education",
    }
}

impl Category {
    /// The agencies that own the category (DOMAIN.md); `None` when any case agency may
    /// publish it.
    pub fn owners(self) -> Option<&'static [Agency]> {
        match self {
            Category::Person | Category::Link | Category::Involvement => None,
            Category::Iom => Some(&[Agency::Police, Agency::Probation]),
            Category::CourtOrder | Category::PoliceEvent => Some(&[Agency::Police]),
            Category::LegalStatus | Category::ContactArrangement => {
                Some(&[Agency::ChildrensServices])
            }
            Category::ProbationSupervision => Some(&[Agency::Probation]),
            Category::HealthInvolvement => Some(&[Agency::Health]),
            Category::Education => Some(&[Agency::Education]),
        }
    }

    /// Whether `agency` may publish facts of this category. The IG office holds no case data.
    pub fn may_be_published_by(self, agency: Agency) -> bool {
        agency != Agency::InformationGovernance
            && self.owners().is_none_or(|owners| owners.contains(&agency))
    }
}

vocabulary! {
    /// How one person relates to another: `from` is <type> `to`.
    LinkType {
        ParentOf => "parent_of",
        SiblingOf => "sibling_of",
        PartnerOf => "partner_of",
        ExPartnerOf => "ex_partner_of",
        HouseholdMember => "household_member",
        CarerOf => "carer_of",
    }
}

vocabulary! {
    /// Integrated Offender Management cohort.
    IomCohort {
        DomesticAbusePerpetrator => "domestic_abuse_perpetrator",
        Fixed => "fixed",
        Flex => "flex",
    }
}

vocabulary! {
    /// Protective court orders.
    CourtOrderType {
        NonMolestationOrder => "non_molestation_order",
        RestrainingOrder => "restraining_order",
        DomesticAbuseProtectionOrder => "domestic_abuse_protection_order",
    }
}

vocabulary! {
    /// Where a court order stands.
    CourtOrderStatus {
        InForce => "in_force",
        Varied => "varied",
        Discharged => "discharged",
        Expired => "expired",
    }
}

vocabulary! {
    /// Police events other agencies need to know of.
    PoliceEventType {
        BreachOfOrder => "breach_of_order",
        Arrest => "arrest",
        DomesticAbuseIncident => "domestic_abuse_incident",
    }
}

vocabulary! {
    /// A child's legal status under the Children Act 1989.
    LegalStatusType {
        ChildInNeed => "child_in_need",
        ChildProtectionPlan => "child_protection_plan",
        LookedAfter => "looked_after",
        SupervisionOrder => "supervision_order",
    }
}

vocabulary! {
    /// Category of a child protection plan.
    CpCategory {
        Neglect => "neglect",
        PhysicalAbuse => "physical_abuse",
        EmotionalAbuse => "emotional_abuse",
        SexualAbuse => "sexual_abuse",
    }
}

vocabulary! {
    /// The legal basis on which a child is looked after.
    LookedAfterBasis {
        InterimCareOrder => "interim_care_order",
        CareOrder => "care_order",
        Section20 => "section_20",
    }
}

vocabulary! {
    /// Where a looked-after child lives.
    PlacementType {
        Foster => "foster",
        Residential => "residential",
        PlacedWithParent => "placed_with_parent",
        Kinship => "kinship",
    }
}

vocabulary! {
    /// How contact with a person may take place.
    ContactSupervision {
        SupervisedOnly => "supervised_only",
        Unsupervised => "unsupervised",
        NoContact => "no_contact",
    }
}

vocabulary! {
    /// Kind of probation supervision.
    SupervisionType {
        Licence => "licence",
        CommunityOrder => "community_order",
        SuspendedSentenceOrder => "suspended_sentence_order",
    }
}

vocabulary! {
    /// Health practitioner responsible for a person.
    HealthRole {
        HealthVisitor => "health_visitor",
        Gp => "gp",
        SchoolNurse => "school_nurse",
    }
}

vocabulary! {
    /// Kind of education setting.
    SettingType {
        School => "school",
        EarlyYears => "early_years",
    }
}

vocabulary! {
    /// Why a fact ended.
    EndReason {
        Closed => "closed",
        Expired => "expired",
        ReplacedByCareOrder => "replaced_by_care_order",
        EnteredInError => "entered_in_error",
    }
}

vocabulary! {
    /// What a version of a fact records.
    ChangeKind {
        Published => "published",
        Updated => "updated",
        Ended => "ended",
    }
}

vocabulary! {
    /// The part a person plays in a fact; indexed so facts are found from either side.
    Part {
        Subject => "subject",
        From => "from",
        To => "to",
        Respondent => "respondent",
        Protected => "protected",
        Involved => "involved",
        Child => "child",
        PlacedWith => "placed_with",
        WithPerson => "with_person",
    }
}

/// A reference to a person: a gateway person id, or an identifier attached to them.
/// Stored facts always hold resolved person ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonRef {
    PersonId(String),
    Identifier(Identifier),
}

impl PersonRef {
    /// The person id, once resolved.
    pub fn person_id(&self) -> Option<&str> {
        match self {
            PersonRef::PersonId(id) => Some(id),
            PersonRef::Identifier(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersonDetails {
    pub identifiers: Vec<Identifier>,
    /// The person this resolved to; set by the store.
    #[serde(default)]
    pub person: Option<PersonRef>,
    /// The first given name (the one the person is called by, where the agency knows it).
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: Option<Day>,
    /// The address as one line of free text (kept for systems that send it that way).
    pub address: String,
    /// Further given names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middle_names: Vec<String>,
    /// Previous and alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_names: Vec<OtherName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<Postcode>,
    /// The address, one line each, without the postcode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub from: PersonRef,
    pub to: PersonRef,
    pub link_type: LinkType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Involvement {
    pub person: PersonRef,
    pub team: String,
    pub contact_route: String,
    pub practitioner_id: String,
    pub start: Day,
    pub end: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IomMembership {
    pub person: PersonRef,
    pub cohort: IomCohort,
    pub lead_officer: String,
    pub offender_manager: String,
    pub contact_route: String,
    pub start: Day,
    pub end: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourtOrder {
    pub order_type: CourtOrderType,
    pub respondent: PersonRef,
    pub protected_persons: Vec<PersonRef>,
    pub conditions: String,
    pub made: Day,
    pub served: Option<Day>,
    pub expires: Option<Day>,
    pub status: CourtOrderStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoliceEvent {
    pub event_type: PoliceEventType,
    pub occurred: Day,
    pub persons: Vec<PersonRef>,
    pub court_order_record_id: Option<String>,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalStatus {
    pub child: PersonRef,
    pub status_type: LegalStatusType,
    pub cp_categories: Vec<CpCategory>,
    pub looked_after_basis: Option<LookedAfterBasis>,
    pub placement: Option<PlacementType>,
    pub placed_with: Option<PersonRef>,
    pub start: Day,
    pub end: Option<Day>,
    pub replaces_record_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactArrangement {
    pub child: PersonRef,
    pub with_person: PersonRef,
    pub supervision: ContactSupervision,
    pub conditions: String,
    pub start: Day,
    pub end: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbationSupervision {
    pub person: PersonRef,
    pub supervision_type: SupervisionType,
    pub conditions: String,
    pub offender_manager: String,
    pub contact_route: String,
    pub start: Day,
    pub end: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthInvolvement {
    pub person: PersonRef,
    pub role: HealthRole,
    pub team: String,
    pub contact_route: String,
    pub start: Day,
    pub end: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Education {
    pub child: PersonRef,
    pub setting_type: SettingType,
    pub setting_name: String,
    pub dsl_contact_route: String,
    pub start: Day,
    pub end: Option<Day>,
}

/// One fact of one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "category", rename_all = "snake_case")]
pub enum Fact {
    Person(PersonDetails),
    Link(Link),
    Involvement(Involvement),
    Iom(IomMembership),
    CourtOrder(CourtOrder),
    PoliceEvent(PoliceEvent),
    LegalStatus(LegalStatus),
    ContactArrangement(ContactArrangement),
    ProbationSupervision(ProbationSupervision),
    HealthInvolvement(HealthInvolvement),
    Education(Education),
}

/// Text limits, in characters.
const NAME_MAX: usize = 100;
const SHORT_MAX: usize = 200;
const ADDRESS_MAX: usize = 300;
/// Most address lines accepted.
const ADDRESS_LINES_MAX: usize = 6;
const WORDS_MAX: usize = 2000;

/// Collects field violations under one path prefix.
struct Check<'a> {
    prefix: &'a str,
    today: Day,
    violations: Vec<FieldViolation>,
}

impl Check<'_> {
    fn fail(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(FieldViolation::new(
            format!("{}.{field}", self.prefix),
            description,
        ));
    }

    fn text(&mut self, field: &str, value: &str, max: usize, required: bool) {
        let length = value.trim().chars().count();
        if required && length == 0 {
            self.fail(field, "must be set");
        } else if length > max {
            self.fail(field, format!("must be at most {max} characters"));
        } else if value.chars().any(|c| c.is_control() && c != '\n') {
            self.fail(field, "must not contain control characters");
        }
    }

    fn not_future(&mut self, field: &str, day: Option<Day>) {
        if day.is_some_and(|d| d > self.today) {
            self.fail(field, "must not be in the future");
        }
    }

    fn ordered(&mut self, field: &str, start: Option<Day>, end: Option<Day>, after: &str) {
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            self.fail(field, format!("must not be before {after}"));
        }
    }

    fn period(&mut self, start: Day, end: Option<Day>) {
        self.not_future("start_date", Some(start));
        self.ordered("end_date", Some(start), end, "start_date");
    }
}

impl Fact {
    /// The fact's category.
    pub fn category(&self) -> Category {
        match self {
            Fact::Person(_) => Category::Person,
            Fact::Link(_) => Category::Link,
            Fact::Involvement(_) => Category::Involvement,
            Fact::Iom(_) => Category::Iom,
            Fact::CourtOrder(_) => Category::CourtOrder,
            Fact::PoliceEvent(_) => Category::PoliceEvent,
            Fact::LegalStatus(_) => Category::LegalStatus,
            Fact::ContactArrangement(_) => Category::ContactArrangement,
            Fact::ProbationSupervision(_) => Category::ProbationSupervision,
            Fact::HealthInvolvement(_) => Category::HealthInvolvement,
            Fact::Education(_) => Category::Education,
        }
    }

    /// Every person reference in the fact with the part the person plays, in a fixed order.
    pub fn person_refs_mut(&mut self) -> Vec<(Part, &mut PersonRef)> {
        match self {
            Fact::Person(f) => f.person.iter_mut().map(|p| (Part::Subject, p)).collect(),
            Fact::Link(f) => vec![(Part::From, &mut f.from), (Part::To, &mut f.to)],
            Fact::Involvement(f) => vec![(Part::Subject, &mut f.person)],
            Fact::Iom(f) => vec![(Part::Subject, &mut f.person)],
            Fact::CourtOrder(f) => std::iter::once((Part::Respondent, &mut f.respondent))
                .chain(f.protected_persons.iter_mut().map(|p| (Part::Protected, p)))
                .collect(),
            Fact::PoliceEvent(f) => f.persons.iter_mut().map(|p| (Part::Involved, p)).collect(),
            Fact::LegalStatus(f) => std::iter::once((Part::Child, &mut f.child))
                .chain(f.placed_with.iter_mut().map(|p| (Part::PlacedWith, p)))
                .collect(),
            Fact::ContactArrangement(f) => vec![
                (Part::Child, &mut f.child),
                (Part::WithPerson, &mut f.with_person),
            ],
            Fact::ProbationSupervision(f) => vec![(Part::Subject, &mut f.person)],
            Fact::HealthInvolvement(f) => vec![(Part::Subject, &mut f.person)],
            Fact::Education(f) => vec![(Part::Child, &mut f.child)],
        }
    }

    /// The resolved person ids the fact names, in the order of [`Fact::person_refs_mut`].
    pub fn person_ids(&self) -> Vec<String> {
        // person_refs_mut needs `&mut`; a clone keeps this a read.
        let mut fact = self.clone();
        fact.person_refs_mut()
            .into_iter()
            .filter_map(|(_, p)| p.person_id().map(str::to_owned))
            .collect()
    }

    /// Checks every field rule; `prefix` is the fact's path in the request (e.g.
    /// `facts[2]`), so each violation names a field an integrator can find.
    pub fn validate(&self, prefix: &str, today: Day) -> Vec<FieldViolation> {
        let path = format!("{prefix}.{}", self.category());
        let mut c = Check {
            prefix: &path,
            today,
            violations: Vec::new(),
        };
        match self {
            Fact::Person(f) => {
                if f.identifiers.is_empty() {
                    c.fail("identifiers", "must hold at least one identifier");
                }
                c.text("given_name", &f.given_name, NAME_MAX, false);
                c.text("family_name", &f.family_name, NAME_MAX, false);
                c.text("address", &f.address, ADDRESS_MAX, false);
                c.not_future("date_of_birth", f.date_of_birth);
                for (i, name) in f.middle_names.iter().enumerate() {
                    c.text(&format!("middle_names[{i}]"), name, NAME_MAX, true);
                }
                for (i, name) in f.other_names.iter().enumerate() {
                    c.text(
                        &format!("other_names[{i}].given_names"),
                        &name.given_names,
                        NAME_MAX,
                        false,
                    );
                    c.text(
                        &format!("other_names[{i}].family_name"),
                        &name.family_name,
                        NAME_MAX,
                        true,
                    );
                }
                if f.address_lines.len() > ADDRESS_LINES_MAX {
                    c.fail(
                        "address_lines",
                        format!("at most {ADDRESS_LINES_MAX} lines"),
                    );
                }
                for (i, line) in f.address_lines.iter().enumerate() {
                    c.text(&format!("address_lines[{i}]"), line, SHORT_MAX, true);
                }
            }
            Fact::Link(_) => {}
            Fact::Involvement(f) => {
                c.text("team", &f.team, SHORT_MAX, true);
                c.text("contact_route", &f.contact_route, SHORT_MAX, true);
                c.text("practitioner_id", &f.practitioner_id, 128, false);
                c.period(f.start, f.end);
            }
            Fact::Iom(f) => {
                c.text("lead_officer", &f.lead_officer, NAME_MAX, false);
                c.text("offender_manager", &f.offender_manager, NAME_MAX, false);
                c.text("contact_route", &f.contact_route, SHORT_MAX, true);
                c.period(f.start, f.end);
            }
            Fact::CourtOrder(f) => {
                if f.protected_persons.is_empty() {
                    c.fail(
                        "protected_persons",
                        "must name at least one protected person",
                    );
                }
                c.text("conditions", &f.conditions, WORDS_MAX, true);
                c.not_future("made_date", Some(f.made));
                c.not_future("served_date", f.served);
                c.ordered("served_date", Some(f.made), f.served, "made_date");
                c.ordered("expires_date", Some(f.made), f.expires, "made_date");
            }
            Fact::PoliceEvent(f) => {
                if f.persons.is_empty() {
                    c.fail("persons", "must name at least one person");
                }
                c.not_future("occurred_date", Some(f.occurred));
                c.text("summary", &f.summary, WORDS_MAX, false);
                if f.event_type == PoliceEventType::BreachOfOrder
                    && f.court_order_record_id.is_none()
                {
                    c.fail(
                        "court_order_record_id",
                        "must name the court order breached for a breach_of_order",
                    );
                }
            }
            Fact::LegalStatus(f) => {
                let cp = f.status_type == LegalStatusType::ChildProtectionPlan;
                let looked_after = f.status_type == LegalStatusType::LookedAfter;
                if cp && f.cp_categories.is_empty() {
                    c.fail(
                        "cp_categories",
                        "a child protection plan needs at least one category",
                    );
                }
                if !cp && !f.cp_categories.is_empty() {
                    c.fail(
                        "cp_categories",
                        "only a child protection plan has categories",
                    );
                }
                if looked_after && f.looked_after_basis.is_none() {
                    c.fail("looked_after_basis", "must be set for a looked-after child");
                }
                if looked_after && f.placement.is_none() {
                    c.fail("placement", "must be set for a looked-after child");
                }
                if !looked_after && (f.looked_after_basis.is_some() || f.placement.is_some()) {
                    c.fail(
                        "placement",
                        "only a looked-after child has a basis and placement",
                    );
                }
                let with_parent = f.placement == Some(PlacementType::PlacedWithParent);
                if with_parent && f.placed_with.is_none() {
                    c.fail(
                        "placed_with",
                        "must name the parent the child is placed with",
                    );
                }
                if !with_parent && f.placed_with.is_some() {
                    c.fail("placed_with", "only a placement with parent names a parent");
                }
                if f.replaces_record_id.is_some() && !looked_after {
                    c.fail(
                        "replaces_record_id",
                        "only a looked-after status (a care order) replaces a CP plan",
                    );
                }
                c.period(f.start, f.end);
            }
            Fact::ContactArrangement(f) => {
                c.text("conditions", &f.conditions, WORDS_MAX, true);
                c.period(f.start, f.end);
            }
            Fact::ProbationSupervision(f) => {
                c.text("conditions", &f.conditions, WORDS_MAX, false);
                c.text("offender_manager", &f.offender_manager, NAME_MAX, false);
                c.text("contact_route", &f.contact_route, SHORT_MAX, true);
                c.period(f.start, f.end);
            }
            Fact::HealthInvolvement(f) => {
                c.text("team", &f.team, SHORT_MAX, true);
                c.text("contact_route", &f.contact_route, SHORT_MAX, true);
                c.period(f.start, f.end);
            }
            Fact::Education(f) => {
                c.text("setting_name", &f.setting_name, SHORT_MAX, true);
                c.text("dsl_contact_route", &f.dsl_contact_route, SHORT_MAX, true);
                c.period(f.start, f.end);
            }
        }
        c.violations
    }

    /// The day the fact began, for facts that have one: a period's start, a court order's
    /// made date. An end before it is refused.
    pub fn start_day(&self) -> Option<(Day, &'static str)> {
        match self {
            Fact::Person(_) | Fact::Link(_) | Fact::PoliceEvent(_) => None,
            Fact::CourtOrder(f) => Some((f.made, "made_date")),
            Fact::Involvement(f) => Some((f.start, "start_date")),
            Fact::Iom(f) => Some((f.start, "start_date")),
            Fact::LegalStatus(f) => Some((f.start, "start_date")),
            Fact::ContactArrangement(f) => Some((f.start, "start_date")),
            Fact::ProbationSupervision(f) => Some((f.start, "start_date")),
            Fact::HealthInvolvement(f) => Some((f.start, "start_date")),
            Fact::Education(f) => Some((f.start, "start_date")),
        }
    }

    /// Records that the fact ended on `day` for `reason`, in the fact's own fields where it
    /// has them. Facts without an end (a link, an event) are ended by the version alone.
    /// An end before the fact's start is refused as a violation of `end_date`, and the fact
    /// is left as it was.
    pub fn end(&mut self, day: Day, reason: EndReason) -> Result<(), FieldViolation> {
        if let Some((start, start_field)) = self.start_day()
            && day < start
        {
            return Err(FieldViolation::new(
                "end_date",
                format!("must not be before the fact's {start_field}"),
            ));
        }
        let end = match self {
            Fact::Person(_) | Fact::Link(_) | Fact::PoliceEvent(_) => return Ok(()),
            Fact::CourtOrder(f) => {
                f.status = match reason {
                    EndReason::Expired => CourtOrderStatus::Expired,
                    _ => CourtOrderStatus::Discharged,
                };
                return Ok(());
            }
            Fact::Involvement(f) => &mut f.end,
            Fact::Iom(f) => &mut f.end,
            Fact::LegalStatus(f) => &mut f.end,
            Fact::ContactArrangement(f) => &mut f.end,
            Fact::ProbationSupervision(f) => &mut f.end,
            Fact::HealthInvolvement(f) => &mut f.end,
            Fact::Education(f) => &mut f.end,
        };
        *end = Some(day);
        Ok(())
    }
}

impl fmt::Display for PersonRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersonRef::PersonId(id) => write!(f, "person {id}"),
            PersonRef::Identifier(identifier) => {
                write!(f, "a person by {}", identifier.scheme_name())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).expect("date")
    }

    fn child() -> PersonRef {
        PersonRef::PersonId("p-child".into())
    }

    fn care_order_at_home(placed_with: Option<PersonRef>) -> Fact {
        Fact::LegalStatus(LegalStatus {
            child: child(),
            status_type: LegalStatusType::LookedAfter,
            cp_categories: vec![],
            looked_after_basis: Some(LookedAfterBasis::CareOrder),
            placement: Some(PlacementType::PlacedWithParent),
            placed_with,
            start: day("2018-03-01"),
            end: None,
            replaces_record_id: None,
        })
    }

    #[test]
    fn ownership_follows_the_domain_table() {
        assert!(Category::CourtOrder.may_be_published_by(Agency::Police));
        assert!(!Category::CourtOrder.may_be_published_by(Agency::Health));
        assert!(Category::Iom.may_be_published_by(Agency::Probation));
        assert!(Category::LegalStatus.may_be_published_by(Agency::ChildrensServices));
        assert!(!Category::LegalStatus.may_be_published_by(Agency::Police));
        assert!(Category::Involvement.may_be_published_by(Agency::Education));
        assert!(!Category::Person.may_be_published_by(Agency::InformationGovernance));
    }

    #[test]
    fn a_placement_with_parent_must_name_the_parent() {
        let today = day("2020-01-01");
        let violations = care_order_at_home(None).validate("fact", today);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "fact.legal_status.placed_with");
        let ok = care_order_at_home(Some(PersonRef::PersonId("p-mum".into())));
        assert!(ok.validate("fact", today).is_empty());
    }

    #[test]
    fn dates_cannot_be_in_the_future_and_ends_follow_starts() {
        let fact = Fact::Involvement(Involvement {
            person: child(),
            team: "Health visiting".into(),
            contact_route: "0300 000 0000".into(),
            practitioner_id: String::new(),
            start: day("2030-01-01"),
            end: Some(day("2029-01-01")),
        });
        let fields: Vec<String> = fact
            .validate("facts[4]", day("2026-01-01"))
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "facts[4].involvement.start_date",
                "facts[4].involvement.end_date"
            ]
        );
    }

    #[test]
    fn an_end_before_the_start_is_refused_and_leaves_the_fact_as_it_was() {
        let mut status = care_order_at_home(Some(PersonRef::PersonId("p-mum".into())));
        let before = status.clone();
        let violation = status
            .end(day("2018-02-28"), EndReason::Closed)
            .expect_err("an end before the start");
        assert_eq!(violation.field, "end_date");
        assert_eq!(status, before);
        status
            .end(day("2018-03-01"), EndReason::Closed)
            .expect("an end on the start day");
        assert_ne!(status, before);

        let mut order = Fact::CourtOrder(CourtOrder {
            order_type: CourtOrderType::RestrainingOrder,
            respondent: PersonRef::PersonId("p-adult".into()),
            protected_persons: vec![child()],
            conditions: "No contact".into(),
            made: day("2019-05-01"),
            served: None,
            expires: None,
            status: CourtOrderStatus::InForce,
        });
        let violation = order
            .end(day("2019-04-30"), EndReason::Expired)
            .expect_err("an end before the order was made");
        assert!(violation.description.contains("made_date"));
        order
            .end(day("2020-01-01"), EndReason::Expired)
            .expect("a later end");
    }

    #[test]
    fn facts_round_trip_through_their_stored_form() {
        let fact = care_order_at_home(Some(PersonRef::PersonId("p-mum".into())));
        let stored = serde_json::to_string(&fact).expect("serialise");
        assert!(stored.contains(r#""category":"legal_status""#), "{stored}");
        assert!(
            stored.contains(r#""placement":"placed_with_parent""#),
            "{stored}"
        );
        let back: Fact = serde_json::from_str(&stored).expect("deserialise");
        assert_eq!(back, fact);
    }
}
