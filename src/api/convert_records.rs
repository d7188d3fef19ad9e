//! Wire <-> domain for agency records. Wire enums map to domain vocabularies by name
//! (`LINK_TYPE_PARENT_OF` <-> `parent_of`); a unit test proves every value maps both ways.

use crate::api::proto;
use crate::domain::Agency;
use crate::domain::records::facts::{
    ContactArrangement, ContactSupervision, CourtOrder, CourtOrderStatus, CourtOrderType,
    CpCategory, Education, HealthInvolvement, HealthRole, Involvement, IomCohort, IomMembership,
    LegalStatus, LegalStatusType, Link, LinkType, LookedAfterBasis, PersonDetails, PlacementType,
    PoliceEvent, PoliceEventType, ProbationSupervision, SettingType, SupervisionType,
};
use crate::domain::records::{
    ChangeKind, ConcernLevel, Day, EndReason, Fact, FactHistory, FactVersion, Identifier, NameKind,
    OtherName, PersonRef, Postcode, Receipt, SafeguardingStatus, Sex,
};
use crate::error::FieldViolation;

/// A domain vocabulary with a wire enum of the same words under a prefix.
pub(crate) trait WireEnum: Sized + Copy {
    /// `Ok(None)` for the UNSPECIFIED value, `Err` for a number the wire enum lacks.
    fn from_wire(value: i32) -> Result<Option<Self>, ()>;
    fn to_wire(self) -> i32;
}

macro_rules! wire_enum {
    ($($domain:ty => $wire:ty, $prefix:literal;)+) => {$(
        impl WireEnum for $domain {
            fn from_wire(value: i32) -> Result<Option<Self>, ()> {
                let wire = <$wire>::try_from(value).map_err(|_| ())?;
                let word = wire.as_str_name().strip_prefix($prefix).ok_or(())?;
                if word == "UNSPECIFIED" {
                    return Ok(None);
                }
                <$domain>::parse(&word.to_ascii_lowercase()).map(Some).ok_or(())
            }

            fn to_wire(self) -> i32 {
                let name = format!("{}{}", $prefix, self.as_str().to_ascii_uppercase());
                <$wire>::from_str_name(&name).map_or(0, |w| w as i32)
            }
        }
    )+};
}

wire_enum! {
    LinkType => proto::LinkType, "LINK_TYPE_";
    IomCohort => proto::IomCohort, "IOM_COHORT_";
    CourtOrderType => proto::CourtOrderType, "COURT_ORDER_TYPE_";
    CourtOrderStatus => proto::CourtOrderStatus, "COURT_ORDER_STATUS_";
    PoliceEventType => proto::PoliceEventType, "POLICE_EVENT_TYPE_";
    LegalStatusType => proto::LegalStatusType, "LEGAL_STATUS_TYPE_";
    CpCategory => proto::CpCategory, "CP_CATEGORY_";
    LookedAfterBasis => proto::LookedAfterBasis, "LOOKED_AFTER_BASIS_";
    PlacementType => proto::PlacementType, "PLACEMENT_TYPE_";
    ContactSupervision => proto::ContactSupervision, "CONTACT_SUPERVISION_";
    SupervisionType => proto::SupervisionType, "SUPERVISION_TYPE_";
    HealthRole => proto::HealthRole, "HEALTH_ROLE_";
    SettingType => proto::SettingType, "SETTING_TYPE_";
    EndReason => proto::EndReason, "END_REASON_";
    ChangeKind => proto::ChangeKind, "CHANGE_KIND_";
    ConcernLevel => proto::ConcernLevel, "CONCERN_LEVEL_";
    Sex => proto::Sex, "SEX_";
    NameKind => proto::NameKind, "NAME_KIND_";
}

/// Reads one request's wire values, collecting every violation instead of stopping at
/// the first, so an integrator sees all that is wrong at once.
pub(crate) struct Reader<'a> {
    pub agency: Agency,
    pub violations: &'a mut Vec<FieldViolation>,
}

impl Reader<'_> {
    fn fail(&mut self, field: String, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field, description));
    }

    /// A required enum.
    pub fn required<E: WireEnum>(&mut self, field: String, value: i32) -> Option<E> {
        match E::from_wire(value) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.fail(field, "must be set");
                None
            }
            Err(()) => {
                self.fail(field, format!("unknown value {value}"));
                None
            }
        }
    }

    /// An optional enum: `Some(None)` when unset, `None` when invalid.
    fn optional<E: WireEnum>(&mut self, field: String, value: i32) -> Option<Option<E>> {
        match E::from_wire(value) {
            Ok(v) => Some(v),
            Err(()) => {
                self.fail(field, format!("unknown value {value}"));
                None
            }
        }
    }

    /// A required `YYYY-MM-DD` date.
    pub fn day(&mut self, field: String, text: &str) -> Option<Day> {
        if text.trim().is_empty() {
            self.fail(field, "must be set (YYYY-MM-DD)");
            return None;
        }
        self.optional_day(field, text).flatten()
    }

    /// An optional date: `Some(None)` when empty, `None` when malformed.
    pub fn optional_day(&mut self, field: String, text: &str) -> Option<Option<Day>> {
        if text.trim().is_empty() {
            return Some(None);
        }
        match Day::parse(text) {
            Some(day) => Some(Some(day)),
            None => {
                self.fail(field, "must be a date written YYYY-MM-DD");
                None
            }
        }
    }

    pub fn identifier(&mut self, field: String, wire: &proto::Identifier) -> Option<Identifier> {
        let scheme: proto::IdentifierScheme = match proto::IdentifierScheme::try_from(wire.scheme) {
            Ok(proto::IdentifierScheme::Unspecified) | Err(_) => {
                self.fail(format!("{field}.scheme"), "must be set");
                return None;
            }
            Ok(scheme) => scheme,
        };
        let value_field = format!("{field}.value");
        let parsed = match scheme {
            proto::IdentifierScheme::NhsNumber => Identifier::nhs_number(&wire.value, &value_field),
            proto::IdentifierScheme::PncId => Identifier::pnc_id(&wire.value, &value_field),
            proto::IdentifierScheme::Local => {
                Identifier::local(self.agency, &wire.namespace, &wire.value, &field)
            }
            proto::IdentifierScheme::Unspecified => return None,
        };
        parsed.map_err(|v| self.violations.push(v)).ok()
    }

    pub fn person(&mut self, field: String, wire: Option<proto::PersonRef>) -> Option<PersonRef> {
        match wire.and_then(|r| r.r#ref) {
            Some(proto::person_ref::Ref::PersonId(id)) if !id.trim().is_empty() => {
                Some(PersonRef::PersonId(id.trim().to_owned()))
            }
            Some(proto::person_ref::Ref::Identifier(identifier)) => self
                .identifier(format!("{field}.identifier"), &identifier)
                .map(PersonRef::Identifier),
            _ => {
                self.fail(field, "must name a person by person_id or identifier");
                None
            }
        }
    }

    /// A subject named by demographics: given name, family name and date of birth are
    /// required, the postcode optional.
    pub fn search(
        &mut self,
        field: &str,
        wire: proto::SubjectSearch,
    ) -> Option<Box<PersonDetails>> {
        let f = |name: &str| format!("{field}.{name}");
        let name = |reader: &mut Self, name: &str, value: String| {
            let value = value.trim().to_owned();
            if value.is_empty() || value.chars().count() > 100 {
                reader.fail(f(name), "must be 1-100 characters");
                return None;
            }
            Some(value)
        };
        let given_name = name(self, "given_name", wire.given_name);
        let family_name = name(self, "family_name", wire.family_name);
        let date_of_birth = self.day(f("date_of_birth"), &wire.date_of_birth);
        let postcode = match wire.postcode.trim() {
            "" => Some(None),
            raw => Postcode::parse(raw, &f("postcode"))
                .map_err(|v| self.violations.push(v))
                .ok()
                .map(Some),
        };
        Some(Box::new(PersonDetails {
            given_name: given_name?,
            family_name: family_name?,
            date_of_birth: Some(date_of_birth?),
            postcode: postcode?,
            ..PersonDetails::default()
        }))
    }

    fn persons(&mut self, field: &str, wire: Vec<proto::PersonRef>) -> Option<Vec<PersonRef>> {
        let people: Vec<Option<PersonRef>> = wire
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.person(format!("{field}[{i}]"), Some(p)))
            .collect();
        people.into_iter().collect()
    }

    fn optional_person(
        &mut self,
        field: String,
        wire: Option<proto::PersonRef>,
    ) -> Option<Option<PersonRef>> {
        match wire {
            Some(p) if p.r#ref.is_some() => self.person(field, Some(p)).map(Some),
            _ => Some(None),
        }
    }

    /// Converts a wire fact whose path in the request is `path`; `None` if any field was bad.
    pub fn fact(&mut self, path: &str, wire: Option<proto::Fact>) -> Option<Fact> {
        use proto::fact::Category as C;
        let Some(category) = wire.and_then(|f| f.category) else {
            self.fail(path.to_owned(), "must set exactly one category");
            return None;
        };
        let f = |name: &str, field: &str| format!("{path}.{name}.{field}");
        let text = |s: String| s.trim().to_owned();
        let optional_text = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Some(match category {
            C::Person(p) => {
                let identifiers: Vec<Option<Identifier>> = p
                    .identifiers
                    .iter()
                    .enumerate()
                    .map(|(i, id)| self.identifier(f("person", &format!("identifiers[{i}]")), id))
                    .collect();
                let date_of_birth =
                    self.optional_day(f("person", "date_of_birth"), &p.date_of_birth);
                let sex = self.optional(f("person", "sex"), p.sex);
                let postcode = match p.postcode.trim() {
                    "" => Some(None),
                    raw => Postcode::parse(raw, &f("person", "postcode"))
                        .map_err(|v| self.violations.push(v))
                        .ok()
                        .map(Some),
                };
                let other_names: Vec<Option<OtherName>> = p
                    .other_names
                    .into_iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let kind = self
                            .required(f("person", &format!("other_names[{i}].kind")), name.kind)?;
                        Some(OtherName {
                            kind,
                            given_names: text(name.given_names),
                            family_name: text(name.family_name),
                        })
                    })
                    .collect();
                Fact::Person(PersonDetails {
                    identifiers: identifiers.into_iter().collect::<Option<Vec<_>>>()?,
                    person: None,
                    given_name: text(p.given_name),
                    family_name: text(p.family_name),
                    date_of_birth: date_of_birth?,
                    address: text(p.address),
                    middle_names: p.middle_names.into_iter().map(text).collect(),
                    other_names: other_names.into_iter().collect::<Option<Vec<_>>>()?,
                    sex: sex?,
                    postcode: postcode?,
                    address_lines: p.address_lines.into_iter().map(text).collect(),
                })
            }
            C::Link(l) => {
                let from = self.person(f("link", "from"), l.from);
                let to = self.person(f("link", "to"), l.to);
                let link_type = self.required(f("link", "type"), l.r#type);
                Fact::Link(Link {
                    from: from?,
                    to: to?,
                    link_type: link_type?,
                })
            }
            C::Involvement(i) => {
                let person = self.person(f("involvement", "person"), i.person);
                let start = self.day(f("involvement", "start_date"), &i.start_date);
                let end = self.optional_day(f("involvement", "end_date"), &i.end_date);
                Fact::Involvement(Involvement {
                    person: person?,
                    team: text(i.team),
                    contact_route: text(i.contact_route),
                    practitioner_id: text(i.practitioner_id),
                    start: start?,
                    end: end?,
                })
            }
            C::Iom(m) => {
                let person = self.person(f("iom", "person"), m.person);
                let cohort = self.required(f("iom", "cohort"), m.cohort);
                let start = self.day(f("iom", "start_date"), &m.start_date);
                let end = self.optional_day(f("iom", "end_date"), &m.end_date);
                Fact::Iom(IomMembership {
                    person: person?,
                    cohort: cohort?,
                    lead_officer: text(m.lead_officer),
                    offender_manager: text(m.offender_manager),
                    contact_route: text(m.contact_route),
                    start: start?,
                    end: end?,
                })
            }
            C::CourtOrder(o) => {
                let order_type = self.required(f("court_order", "type"), o.r#type);
                let respondent = self.person(f("court_order", "respondent"), o.respondent);
                let protected =
                    self.persons(&f("court_order", "protected_persons"), o.protected_persons);
                let made = self.day(f("court_order", "made_date"), &o.made_date);
                let served = self.optional_day(f("court_order", "served_date"), &o.served_date);
                let expires = self.optional_day(f("court_order", "expires_date"), &o.expires_date);
                let status = self.required(f("court_order", "status"), o.status);
                Fact::CourtOrder(CourtOrder {
                    order_type: order_type?,
                    respondent: respondent?,
                    protected_persons: protected?,
                    conditions: text(o.conditions),
                    made: made?,
                    served: served?,
                    expires: expires?,
                    status: status?,
                })
            }
            C::PoliceEvent(e) => {
                let event_type = self.required(f("police_event", "type"), e.r#type);
                let occurred = self.day(f("police_event", "occurred_date"), &e.occurred_date);
                let persons = self.persons(&f("police_event", "persons"), e.persons);
                Fact::PoliceEvent(PoliceEvent {
                    event_type: event_type?,
                    occurred: occurred?,
                    persons: persons?,
                    court_order_record_id: optional_text(e.court_order_record_id),
                    summary: text(e.summary),
                })
            }
            C::LegalStatus(s) => {
                let child = self.person(f("legal_status", "child"), s.child);
                let status_type = self.required(f("legal_status", "type"), s.r#type);
                let categories: Vec<Option<CpCategory>> = s
                    .cp_categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        self.required(f("legal_status", &format!("cp_categories[{i}]")), *c)
                    })
                    .collect();
                let basis = self.optional(
                    f("legal_status", "looked_after_basis"),
                    s.looked_after_basis,
                );
                let placement = self.optional(f("legal_status", "placement"), s.placement);
                let placed_with =
                    self.optional_person(f("legal_status", "placed_with"), s.placed_with);
                let start = self.day(f("legal_status", "start_date"), &s.start_date);
                let end = self.optional_day(f("legal_status", "end_date"), &s.end_date);
                Fact::LegalStatus(LegalStatus {
                    child: child?,
                    status_type: status_type?,
                    cp_categories: categories.into_iter().collect::<Option<Vec<_>>>()?,
                    looked_after_basis: basis?,
                    placement: placement?,
                    placed_with: placed_with?,
                    start: start?,
                    end: end?,
                    replaces_record_id: optional_text(s.replaces_record_id),
                })
            }
            C::ContactArrangement(a) => {
                let child = self.person(f("contact_arrangement", "child"), a.child);
                let with = self.person(f("contact_arrangement", "with_person"), a.with_person);
                let supervision =
                    self.required(f("contact_arrangement", "supervision"), a.supervision);
                let start = self.day(f("contact_arrangement", "start_date"), &a.start_date);
                let end = self.optional_day(f("contact_arrangement", "end_date"), &a.end_date);
                Fact::ContactArrangement(ContactArrangement {
                    child: child?,
                    with_person: with?,
                    supervision: supervision?,
                    conditions: text(a.conditions),
                    start: start?,
                    end: end?,
                })
            }
            C::ProbationSupervision(p) => {
                let person = self.person(f("probation_supervision", "person"), p.person);
                let kind = self.required(f("probation_supervision", "type"), p.r#type);
                let start = self.day(f("probation_supervision", "start_date"), &p.start_date);
                let end = self.optional_day(f("probation_supervision", "end_date"), &p.end_date);
                Fact::ProbationSupervision(ProbationSupervision {
                    person: person?,
                    supervision_type: kind?,
                    conditions: text(p.conditions),
                    offender_manager: text(p.offender_manager),
                    contact_route: text(p.contact_route),
                    start: start?,
                    end: end?,
                })
            }
            C::HealthInvolvement(h) => {
                let person = self.person(f("health_involvement", "person"), h.person);
                let role = self.required(f("health_involvement", "role"), h.role);
                let start = self.day(f("health_involvement", "start_date"), &h.start_date);
                let end = self.optional_day(f("health_involvement", "end_date"), &h.end_date);
                Fact::HealthInvolvement(HealthInvolvement {
                    person: person?,
                    role: role?,
                    team: text(h.team),
                    contact_route: text(h.contact_route),
                    start: start?,
                    end: end?,
                })
            }
            C::Education(e) => {
                let child = self.person(f("education", "child"), e.child);
                let setting = self.required(f("education", "setting_type"), e.setting_type);
                let start = self.day(f("education", "start_date"), &e.start_date);
                let end = self.optional_day(f("education", "end_date"), &e.end_date);
                Fact::Education(Education {
                    child: child?,
                    setting_type: setting?,
                    setting_name: text(e.setting_name),
                    dsl_contact_route: text(e.dsl_contact_route),
                    start: start?,
                    end: end?,
                })
            }
        })
    }
}

fn person_to_wire(person: PersonRef) -> proto::PersonRef {
    let r#ref = match person {
        PersonRef::PersonId(id) => proto::person_ref::Ref::PersonId(id),
        PersonRef::Identifier(identifier) => {
            proto::person_ref::Ref::Identifier(identifier_to_wire(identifier))
        }
    };
    proto::PersonRef { r#ref: Some(r#ref) }
}

fn identifier_to_wire(identifier: Identifier) -> proto::Identifier {
    match identifier {
        Identifier::NhsNumber { value } => proto::Identifier {
            scheme: proto::IdentifierScheme::NhsNumber.into(),
            value,
            namespace: String::new(),
        },
        Identifier::PncId { value } => proto::Identifier {
            scheme: proto::IdentifierScheme::PncId.into(),
            value,
            namespace: String::new(),
        },
        Identifier::Local {
            namespace, value, ..
        } => proto::Identifier {
            scheme: proto::IdentifierScheme::Local.into(),
            value,
            namespace,
        },
    }
}

fn day_to_wire(day: Option<Day>) -> String {
    day.map(|d| d.to_string()).unwrap_or_default()
}

fn wire_or_zero<E: WireEnum>(value: Option<E>) -> i32 {
    value.map_or(0, WireEnum::to_wire)
}

impl From<Fact> for proto::Fact {
    fn from(fact: Fact) -> Self {
        use proto::fact::Category as C;
        let category = match fact {
            Fact::Person(p) => C::Person(proto::PersonDetails {
                identifiers: p.identifiers.into_iter().map(identifier_to_wire).collect(),
                given_name: p.given_name,
                family_name: p.family_name,
                date_of_birth: day_to_wire(p.date_of_birth),
                address: p.address,
                middle_names: p.middle_names,
                other_names: p
                    .other_names
                    .into_iter()
                    .map(|name| proto::OtherName {
                        kind: name.kind.to_wire(),
                        given_names: name.given_names,
                        family_name: name.family_name,
                    })
                    .collect(),
                sex: wire_or_zero(p.sex),
                postcode: p.postcode.map(String::from).unwrap_or_default(),
                address_lines: p.address_lines,
            }),
            Fact::Link(l) => C::Link(proto::Link {
                from: Some(person_to_wire(l.from)),
                to: Some(person_to_wire(l.to)),
                r#type: l.link_type.to_wire(),
            }),
            Fact::Involvement(i) => C::Involvement(proto::Involvement {
                person: Some(person_to_wire(i.person)),
                team: i.team,
                contact_route: i.contact_route,
                practitioner_id: i.practitioner_id,
                start_date: i.start.to_string(),
                end_date: day_to_wire(i.end),
            }),
            Fact::Iom(m) => C::Iom(proto::IomMembership {
                person: Some(person_to_wire(m.person)),
                cohort: m.cohort.to_wire(),
                lead_officer: m.lead_officer,
                offender_manager: m.offender_manager,
                contact_route: m.contact_route,
                start_date: m.start.to_string(),
                end_date: day_to_wire(m.end),
            }),
            Fact::CourtOrder(o) => C::CourtOrder(proto::CourtOrder {
                r#type: o.order_type.to_wire(),
                respondent: Some(person_to_wire(o.respondent)),
                protected_persons: o
                    .protected_persons
                    .into_iter()
                    .map(person_to_wire)
                    .collect(),
                conditions: o.conditions,
                made_date: o.made.to_string(),
                served_date: day_to_wire(o.served),
                expires_date: day_to_wire(o.expires),
                status: o.status.to_wire(),
            }),
            Fact::PoliceEvent(e) => C::PoliceEvent(proto::PoliceEvent {
                r#type: e.event_type.to_wire(),
                occurred_date: e.occurred.to_string(),
                persons: e.persons.into_iter().map(person_to_wire).collect(),
                court_order_record_id: e.court_order_record_id.unwrap_or_default(),
                summary: e.summary,
            }),
            Fact::LegalStatus(s) => C::LegalStatus(proto::LegalStatus {
                child: Some(person_to_wire(s.child)),
                r#type: s.status_type.to_wire(),
                cp_categories: s.cp_categories.into_iter().map(WireEnum::to_wire).collect(),
                looked_after_basis: wire_or_zero(s.looked_after_basis),
                placement: wire_or_zero(s.placement),
                placed_with: s.placed_with.map(person_to_wire),
                start_date: s.start.to_string(),
                end_date: day_to_wire(s.end),
                replaces_record_id: s.replaces_record_id.unwrap_or_default(),
            }),
            Fact::ContactArrangement(a) => C::ContactArrangement(proto::ContactArrangement {
                child: Some(person_to_wire(a.child)),
                with_person: Some(person_to_wire(a.with_person)),
                supervision: a.supervision.to_wire(),
                conditions: a.conditions,
                start_date: a.start.to_string(),
                end_date: day_to_wire(a.end),
            }),
            Fact::ProbationSupervision(p) => C::ProbationSupervision(proto::ProbationSupervision {
                person: Some(person_to_wire(p.person)),
                r#type: p.supervision_type.to_wire(),
                conditions: p.conditions,
                offender_manager: p.offender_manager,
                contact_route: p.contact_route,
                start_date: p.start.to_string(),
                end_date: day_to_wire(p.end),
            }),
            Fact::HealthInvolvement(h) => C::HealthInvolvement(proto::HealthInvolvement {
                person: Some(person_to_wire(h.person)),
                role: h.role.to_wire(),
                team: h.team,
                contact_route: h.contact_route,
                start_date: h.start.to_string(),
                end_date: day_to_wire(h.end),
            }),
            Fact::Education(e) => C::Education(proto::Education {
                child: Some(person_to_wire(e.child)),
                setting_type: e.setting_type.to_wire(),
                setting_name: e.setting_name,
                dsl_contact_route: e.dsl_contact_route,
                start_date: e.start.to_string(),
                end_date: day_to_wire(e.end),
            }),
        };
        proto::Fact {
            category: Some(category),
        }
    }
}

impl From<Receipt> for proto::FactReceipt {
    fn from(receipt: Receipt) -> Self {
        proto::FactReceipt {
            record_id: receipt.record_id,
            version: receipt.version,
            person_ids: receipt.person_ids,
        }
    }
}

impl From<FactVersion> for proto::FactVersion {
    fn from(version: FactVersion) -> Self {
        proto::FactVersion {
            version: version.version,
            change: version.change.to_wire(),
            valid_from: version.valid_from,
            valid_to: version.valid_to.unwrap_or_default(),
            recorded_by_system: version.recorded_by_system,
            recorded_by_practitioner: version.recorded_by_practitioner,
            fact: Some(version.fact.into()),
            end_reason: wire_or_zero(version.end_reason),
            end_date: day_to_wire(version.end_date),
        }
    }
}

impl From<FactHistory> for proto::GetFactHistoryResponse {
    fn from(history: FactHistory) -> Self {
        proto::GetFactHistoryResponse {
            record_id: history.record_id,
            owner_agency: proto::Agency::from(history.owner).into(),
            versions: history.versions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SafeguardingStatus> for proto::SafeguardingStatus {
    fn from(status: SafeguardingStatus) -> Self {
        proto::SafeguardingStatus {
            person_id: status.person_id,
            level: status.level.to_wire(),
            summary: status.summary,
            carried_over_risk: status
                .carried_over_risk
                .into_iter()
                .map(WireEnum::to_wire)
                .collect(),
            current_record_ids: status.current_record_ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<E: WireEnum + PartialEq + std::fmt::Debug>(all: &[E]) {
        for value in all {
            let wire = value.to_wire();
            assert_ne!(wire, 0, "{value:?} has no wire value");
            assert_eq!(E::from_wire(wire), Ok(Some(*value)));
        }
        assert_eq!(E::from_wire(0), Ok(None));
        assert_eq!(E::from_wire(9999), Err(()));
    }

    #[test]
    fn every_vocabulary_value_maps_to_its_wire_enum_and_back() {
        round_trips(LinkType::ALL);
        round_trips(IomCohort::ALL);
        round_trips(CourtOrderType::ALL);
        round_trips(CourtOrderStatus::ALL);
        round_trips(PoliceEventType::ALL);
        round_trips(LegalStatusType::ALL);
        round_trips(CpCategory::ALL);
        round_trips(LookedAfterBasis::ALL);
        round_trips(PlacementType::ALL);
        round_trips(ContactSupervision::ALL);
        round_trips(SupervisionType::ALL);
        round_trips(HealthRole::ALL);
        round_trips(SettingType::ALL);
        round_trips(EndReason::ALL);
        round_trips(ChangeKind::ALL);
        round_trips(ConcernLevel::ALL);
    }

    #[test]
    fn every_bad_field_of_a_fact_is_reported_together() {
        let mut violations = Vec::new();
        let mut reader = Reader {
            agency: Agency::Police,
            violations: &mut violations,
        };
        let wire = proto::Fact {
            category: Some(proto::fact::Category::CourtOrder(proto::CourtOrder {
                r#type: 0,
                made_date: "1 March 2018".into(),
                status: 77,
                ..Default::default()
            })),
        };
        assert!(reader.fact("facts[1]", Some(wire)).is_none());
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "facts[1].court_order.type",
                "facts[1].court_order.respondent",
                "facts[1].court_order.made_date",
                "facts[1].court_order.status",
            ]
        );
    }
}
