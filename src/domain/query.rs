//! Policy-enforced linked-person queries: a practitioner asks about a person and sees,
//! for that person and everyone one link away, exactly what the sharing policy lets their
//! role see for their purpose, and no more. Nothing leaves before its disclosure-log
//! entry is committed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::domain::Stored;
use crate::domain::identity::{IdentityLink, IdentityStorage, MatchRules};
use crate::domain::ledger::{Decision, Disclosed, Entry, EntryKind, Ledger};
use crate::domain::notify::{IgSystems, Notice};
use crate::domain::policy::{Level, Policy, PolicyHolder};
use crate::domain::records::facts::{Fact, LinkType, Part, PersonDetails};
use crate::domain::records::status::{self, SafeguardingStatus};
use crate::domain::records::{Category, Day, PersonRef};
use crate::domain::records::{FactAbout, Facts, LegalStatusVersion};
pub use crate::domain::shown::{FactView, Indicator, Shown, indicator};
use crate::domain::shown::{Surroundings, naming};
use crate::domain::{AgencySystem, Practitioner, Purpose};
use crate::error::Error;

/// The records as of one moment, as a query reads them: reads through it may be served
/// from memory while the records are unchanged (the store's read cache).
pub trait RecordsAt: Send + Sync {
    /// Every current fact naming `person_id`.
    fn facts_naming<'a>(&'a self, person_id: &'a str) -> Stored<'a, Facts>;

    /// The latest version of each legal-status fact about the child `person_id`.
    fn legal_statuses<'a>(&'a self, person_id: &'a str) -> Stored<'a, Arc<[LegalStatusVersion]>>;

    /// The resolved person of `person_id`.
    fn resolved<'a>(&'a self, person_id: &'a str) -> Stored<'a, String>;

    /// The active identity links joining the persons resolved to `resolved_id`.
    fn identity_links<'a>(&'a self, resolved_id: &'a str) -> Stored<'a, Arc<[IdentityLink]>>;
}

/// What queries need from storage, with the store's names and meanings: what the
/// identity room needs to find a subject by demographics, the records as of now, and the
/// notices a break-glass query raises. The store implements it (the only place with SQL).
pub trait QueryStorage: IdentityStorage {
    /// The records as of now: see [`RecordsAt`].
    fn records_now(&self) -> Stored<'_, Box<dyn RecordsAt + '_>>;

    /// The resolved person of `person_id`.
    fn resolved_person<'a>(&'a self, person_id: &'a str) -> Stored<'a, String>;

    /// Writes notices in their own transaction (break-glass notices follow a query, not a
    /// stored fact) and wakes subscribers.
    fn add_notices<'a>(
        &'a self,
        trigger_record_id: &'a str,
        notices: &'a [Notice],
    ) -> Stored<'a, ()>;
}

/// Whom a question is about: a person named by identifier or person id, or one found
/// by demographics (given name, family name, date of birth, optionally postcode).
#[derive(Debug, Clone)]
pub enum Subject {
    Person(PersonRef),
    Search(Box<PersonDetails>),
}

/// Who asks, about whom, and the log entry describing the request so far.
#[derive(Debug, Clone)]
pub struct Question {
    pub system: Arc<AgencySystem>,
    pub practitioner: Practitioner,
    pub subject: Subject,
    /// Stamped with the caller, context, RPC and trace id; the service fills the rest.
    pub entry: Entry,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonView {
    pub person_id: String,
    pub facts: Vec<FactView>,
    pub status: Option<SafeguardingStatus>,
    /// The links on demographics that join agencies' records into this person.
    pub identity_links: Vec<IdentityLink>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LinkedView {
    pub link_type: LinkType,
    pub subject_is_from: bool,
    pub person: PersonView,
}

/// A released answer and the entry that recorded it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub entry_id: String,
    pub policy_version: String,
    pub lawful_basis: String,
    pub break_glass: bool,
    pub subject: PersonView,
    pub linked: Vec<LinkedView>,
    pub notes: Vec<String>,
}

/// What a query would release, without releasing it.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub entry_id: String,
    pub policy_version: String,
    pub refusal: Option<(&'static str, String)>,
    pub purpose_rule_id: String,
    pub lawful_basis: String,
    pub legitimacy: String,
    pub categories: Vec<(Category, Level, String)>,
}

/// The query service.
#[derive(Debug, Clone)]
pub struct Queries {
    store: Arc<dyn QueryStorage>,
    policy: Arc<PolicyHolder>,
    ledger: Ledger,
    /// The information-governance systems told of every break-glass access.
    ig_systems: Arc<IgSystems>,
    /// How a subject named by demographics is found.
    rules: Arc<MatchRules>,
}

/// The subject, the persons one link away and every current fact naming any of them.
struct Neighbourhood {
    subject: String,
    /// (person id, link type, subject is the link's `from`), in link order.
    linked: Vec<(String, LinkType, bool)>,
    facts: Surroundings,
    /// The identity links within each person of the answer that has any.
    identity: HashMap<String, Arc<[IdentityLink]>>,
}

impl Neighbourhood {
    /// The current facts naming `person`.
    fn facts_of(&self, person: &str) -> &[FactAbout] {
        naming(&self.facts, person)
    }
}

/// Why the question is legitimate, if it is.
enum Legitimacy {
    Subject,
    Linked,
    BreakGlass,
}

impl Legitimacy {
    fn describe(&self) -> &'static str {
        match self {
            Legitimacy::Subject => "your agency system has an open involvement with the subject",
            Legitimacy::Linked => {
                "your agency system has an open involvement with a person linked to the subject"
            }
            Legitimacy::BreakGlass => "break-glass access with a written justification",
        }
    }
}

impl Queries {
    pub fn new(
        store: Arc<dyn QueryStorage>,
        policy: Arc<PolicyHolder>,
        ledger: Ledger,
        ig_systems: Arc<IgSystems>,
        rules: Arc<MatchRules>,
    ) -> Self {
        Queries {
            store,
            policy,
            ledger,
            ig_systems,
            rules,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.current()
    }

    /// Answers a question, or refuses it with the rule that decides.
    pub async fn query(&self, question: Question) -> Result<Answer, Error> {
        let mut entry = question.entry.clone();
        match self.answer(&question, &mut entry).await {
            Err(error) if error.is_refusal() => Err(self.refused(&question, entry, error).await),
            answered => answered,
        }
    }

    /// Writes a refused question's entry with its subject and the persons in scope, as
    /// far as they were found; returns the refusal (or UNAVAILABLE if it could not be
    /// written). The subject is the resolved person where the gateway knows the reference,
    /// and otherwise the reference as asked, adding nothing the request did not carry.
    async fn refused(&self, question: &Question, mut entry: Entry, error: Error) -> Error {
        entry.kind = EntryKind::Refusal;
        entry.decision = Decision::Refused;
        entry.rule_ids = vec![error.rule().to_owned()];
        entry.reason = error.to_string();
        entry.released.clear();
        entry.withheld.clear();
        if entry.subject_person_id.is_empty() {
            match &question.subject {
                Subject::Person(person) => match self.known_subject(person).await {
                    Some(resolved) => entry.subject_person_id = resolved,
                    None => entry.subject_asked = asked(person),
                },
                Subject::Search(_) => entry.subject_asked = "search by demographics".into(),
            }
        }
        match self.ledger.append(entry).await {
            Ok(_) => Error::Recorded(Box::new(error)),
            Err(unavailable) => unavailable,
        }
    }

    /// The resolved person a reference names, if the gateway knows it.
    async fn known_subject(&self, person: &PersonRef) -> Option<String> {
        let found = self.store.find_person(person).await.ok().flatten()?;
        self.store.resolved_person(&found).await.ok()
    }

    async fn answer(&self, question: &Question, entry: &mut Entry) -> Result<Answer, Error> {
        let policy = self.policy.current();
        let (purpose, lawful_basis, purpose_rule) = purpose(&policy, question)?;
        let records = self.store.records_now().await?;
        let neighbourhood = self.neighbourhood(&*records, question, entry).await?;
        entry.subject_person_id = neighbourhood.subject.clone();
        entry.linked_person_ids = neighbourhood
            .linked
            .iter()
            .map(|(p, _, _)| p.clone())
            .collect();
        let legitimacy = legitimacy(question, &neighbourhood)?;
        let today = Day::today();

        entry.kind = EntryKind::Query;
        entry.decision = Decision::Released;
        entry.purpose = purpose.as_str().into();
        entry.lawful_basis = lawful_basis.clone();
        entry.policy_version = policy.version().into();
        entry.break_glass = matches!(legitimacy, Legitimacy::BreakGlass);
        entry.identity_links = neighbourhood
            .identity
            .values()
            .flat_map(|links| links.iter().map(IdentityLink::used))
            .collect();
        entry
            .identity_links
            .sort_by(|a, b| a.link_id.cmp(&b.link_id));
        let mut rules: BTreeSet<String> = BTreeSet::from([purpose_rule]);
        let mut indicator_categories: BTreeSet<Category> = BTreeSet::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let in_answer: BTreeSet<&str> = std::iter::once(neighbourhood.subject.as_str())
            .chain(neighbourhood.linked.iter().map(|(p, _, _)| p.as_str()))
            .collect();

        let order: Vec<String> = std::iter::once(neighbourhood.subject.clone())
            .chain(neighbourhood.linked.iter().map(|(p, _, _)| p.clone()))
            .collect();
        let home = home_persons(&order, &neighbourhood.facts);
        let mut views = Vec::new();
        for person_id in order.clone() {
            let mut view = PersonView {
                person_id: person_id.clone(),
                facts: Vec::new(),
                status: None,
                identity_links: neighbourhood
                    .identity
                    .get(&person_id)
                    .map(|links| links.to_vec())
                    .unwrap_or_default(),
            };
            for about in neighbourhood.facts_of(&person_id) {
                // Each fact once, under the person it is chiefly about; links only between
                // persons in the answer, so nobody two links away is revealed.
                if home.get(&about.record_id) != Some(&person_id)
                    || !seen.insert(about.record_id.clone())
                    || !links_within(&about.fact, &in_answer)
                {
                    continue;
                }
                let category = about.fact.category();
                let cell = policy.level(&question.system.id, question.practitioner.role, category);
                rules.insert(cell.rule_id.to_owned());
                let disclosed = Disclosed {
                    person_id: person_id.clone(),
                    record_id: about.record_id.clone(),
                    category: category.as_str().into(),
                    level: cell.level.as_str().into(),
                    rule_id: cell.rule_id.into(),
                };
                let shown = match cell.level {
                    Level::Detail => Shown::Detail(about.fact.clone()),
                    Level::Indicator => {
                        indicator_categories.insert(category);
                        Shown::Indicator(indicator(about, &neighbourhood.facts))
                    }
                    Level::Nothing => {
                        entry.withheld.push(disclosed);
                        continue;
                    }
                };
                entry.released.push(disclosed);
                view.facts.push(FactView {
                    record_id: about.record_id.clone(),
                    category,
                    rule_id: cell.rule_id.into(),
                    shown,
                });
            }
            let legal_status_detail = policy
                .level(
                    &question.system.id,
                    question.practitioner.role,
                    Category::LegalStatus,
                )
                .level
                == Level::Detail;
            let has_legal_status = view
                .facts
                .iter()
                .any(|f| f.category == Category::LegalStatus);
            if legal_status_detail && has_legal_status {
                let versions = records.legal_statuses(&person_id).await?;
                view.status = Some(status::derive(&person_id, &versions, today));
            }
            views.push(view);
        }
        entry.rule_ids = rules.into_iter().collect();

        let notes = notes(&indicator_categories, question, &policy, &legitimacy);
        let entry_id = entry.entry_id.clone();
        // Fail closed: the answer exists only once its entry is committed.
        let subject_id = entry.subject_person_id.clone();
        self.ledger.append(entry.clone()).await?;
        if matches!(legitimacy, Legitimacy::BreakGlass) {
            // Rule 5: information governance is told of every break-glass access.
            let notices = crate::domain::notify::break_glass(
                &self.ig_systems.current(),
                &question.system.id,
                &subject_id,
                &entry_id,
                &policy,
            );
            self.store.add_notices(&entry_id, &notices).await?;
        }

        let mut views = views.into_iter();
        let subject = views
            .next()
            .ok_or_else(|| Error::internal("no subject view"))?;
        let linked = neighbourhood
            .linked
            .iter()
            .zip(views)
            .map(|((_, link_type, subject_is_from), person)| LinkedView {
                link_type: *link_type,
                subject_is_from: *subject_is_from,
                person,
            })
            .collect();
        Ok(Answer {
            entry_id,
            policy_version: policy.version().into(),
            lawful_basis,
            break_glass: matches!(legitimacy, Legitimacy::BreakGlass),
            subject,
            linked,
            notes,
        })
    }

    /// Says what a query would release per category, and whether it would be answered,
    /// without releasing any fact. Logged as a dry run.
    pub async fn explain(&self, question: Question) -> Result<Explanation, Error> {
        let policy = self.policy.current();
        let mut entry = question.entry.clone();
        entry.kind = EntryKind::Explain;
        entry.decision = Decision::DryRun;
        entry.policy_version = policy.version().into();
        let mut refusal = None;
        let (mut purpose_rule_id, mut lawful_basis, mut legitimacy_words) =
            (String::new(), String::new(), String::new());
        match purpose(&policy, &question) {
            Ok((purpose, basis, rule)) => {
                entry.purpose = purpose.as_str().into();
                entry.lawful_basis = basis.clone();
                entry.rule_ids.push(rule.clone());
                purpose_rule_id = rule;
                lawful_basis = basis;
            }
            Err(error) => refusal = Some((error.rule(), error.to_string())),
        }
        if refusal.is_none() {
            let neighbourhood = match self.store.records_now().await {
                Ok(records) => self.neighbourhood(&*records, &question, &mut entry).await,
                Err(error) => Err(error),
            };
            let checked = match neighbourhood {
                Ok(neighbourhood) => {
                    entry.subject_person_id = neighbourhood.subject.clone();
                    legitimacy(&question, &neighbourhood)
                }
                Err(error) => Err(error),
            };
            match checked {
                Ok(legitimacy) => {
                    entry.break_glass = matches!(legitimacy, Legitimacy::BreakGlass);
                    legitimacy_words = legitimacy.describe().into();
                }
                Err(error) if error.is_refusal() => {
                    refusal = Some((error.rule(), error.to_string()));
                }
                Err(error) => return Err(error),
            }
        }
        let categories: Vec<(Category, Level, String)> = Category::ALL
            .iter()
            .map(|category| {
                let cell = policy.level(&question.system.id, question.practitioner.role, *category);
                (*category, cell.level, cell.rule_id.to_owned())
            })
            .collect();
        if let Some((rule, reason)) = &refusal {
            entry.rule_ids.push((*rule).to_owned());
            entry.reason = format!("a query would be refused: {reason}");
        }
        if entry.subject_person_id.is_empty()
            && let Subject::Person(person) = &question.subject
        {
            match self.known_subject(person).await {
                Some(resolved) => entry.subject_person_id = resolved,
                None => entry.subject_asked = asked(person),
            }
        }
        let entry_id = entry.entry_id.clone();
        self.ledger.append(entry).await?;
        Ok(Explanation {
            entry_id,
            policy_version: policy.version().into(),
            refusal,
            purpose_rule_id,
            lawful_basis,
            legitimacy: legitimacy_words,
            categories,
        })
    }

    /// The subject's resolved person, the persons one link away and their facts. A
    /// search by demographics records every candidate it considered in `entry`.
    async fn neighbourhood(
        &self,
        records: &dyn RecordsAt,
        question: &Question,
        entry: &mut Entry,
    ) -> Result<Neighbourhood, Error> {
        let subject = match &question.subject {
            Subject::Person(person) => self.store.find_person(person).await?,
            Subject::Search(details) => self.search(details, entry).await?,
        };
        // An unknown person and a person the agency has no business with get the same
        // refusal, so the answer does not reveal who is on record.
        let Some(subject) = subject else {
            if question.practitioner.break_glass {
                return Err(Error::NotFound {
                    field: "subject".into(),
                    reason: "no person on record matches this reference".into(),
                });
            }
            return Err(no_legitimate_relationship());
        };
        let subject = records.resolved(&subject).await?;
        let subject_facts = records.facts_naming(&subject).await?;
        let mut linked: Vec<(String, LinkType, bool)> = Vec::new();
        for about in subject_facts.iter() {
            if let Fact::Link(link) = &about.fact {
                let (Some(from), Some(to)) = (link.from.person_id(), link.to.person_id()) else {
                    continue;
                };
                let (other, subject_is_from) = if from == subject {
                    (to, true)
                } else {
                    (from, false)
                };
                if other != subject && !linked.iter().any(|(p, _, _)| p == other) {
                    linked.push((other.to_owned(), link.link_type, subject_is_from));
                }
            }
        }
        let mut facts = Surroundings::from([(subject.clone(), subject_facts)]);
        for (person, _, _) in &linked {
            facts.insert(person.clone(), records.facts_naming(person).await?);
        }
        let mut identity = HashMap::new();
        for person in std::iter::once(&subject).chain(linked.iter().map(|(p, _, _)| p)) {
            let links = records.identity_links(person).await?;
            if !links.is_empty() {
                identity.insert(person.clone(), links);
            }
        }
        Ok(Neighbourhood {
            subject,
            linked,
            facts,
            identity,
        })
    }

    /// The one person the demographics name at the auto-link level, as a trace by a
    /// system with nobody at the keyboard: a unique match or nothing, and the answer
    /// never says whether there were none or several. Every candidate considered is
    /// recorded in `entry`.
    async fn search(
        &self,
        details: &PersonDetails,
        entry: &mut Entry,
    ) -> Result<Option<String>, Error> {
        let found =
            crate::domain::identity::search::unique_match(&*self.store, &self.rules, details)
                .await?;
        entry.search_candidates = found.candidates;
        match found.person_id {
            Some(person_id) => Ok(Some(person_id)),
            None => {
                let refusal = Error::NotFound {
                    field: "search".into(),
                    reason: "no single person on record matches these details closely \
                             enough; ask by NHS number, PNC id or local id"
                        .into(),
                };
                let mut refused = entry.clone();
                refused.kind = EntryKind::Refusal;
                refused.decision = Decision::Refused;
                refused.rule_ids = vec![SEARCH_RULE.into()];
                refused.reason = refusal.to_string();
                self.ledger.append(refused).await?;
                Err(Error::Recorded(Box::new(refusal)))
            }
        }
    }
}

/// A reference as asked, for the log of a refusal about a person the gateway does not
/// know: the identifier the request carried, nothing more.
fn asked(person: &PersonRef) -> String {
    match person {
        PersonRef::PersonId(id) => format!("person_id:{id}"),
        PersonRef::Identifier(identifier) => identifier.key(),
    }
}

/// The rule a search by demographics that finds no single person is refused under.
pub const SEARCH_RULE: &str = "query.search_not_unique";

fn no_legitimate_relationship() -> Error {
    Error::PermissionDenied {
        rule: "query.no_legitimate_relationship",
        reason: "your agency system has no open involvement with this person or anyone \
                 linked to them; ask with break-glass and a written justification if a child \
                 is at immediate risk"
            .into(),
    }
}

/// The purpose the practitioner gave, if their role may use it here.
fn purpose(policy: &Policy, question: &Question) -> Result<(Purpose, String, String), Error> {
    let purpose = question.practitioner.purpose.ok_or_else(|| {
        Error::invalid(
            "context.purpose",
            format!("must be set to one of: {}", Purpose::expected()),
        )
    })?;
    let grant = policy.purpose(&question.system.id, question.practitioner.role, purpose)?;
    Ok((
        purpose,
        grant.lawful_basis.to_owned(),
        grant.rule_id.to_owned(),
    ))
}

/// An open professional relationship of the asking agency system with the subject or a
/// linked person, or break-glass. The unit is the registered agency system (one
/// organisation's case system): two schools are two systems, and one school's involvement
/// does not make another school's question legitimate. Any current fact by which the
/// system says it works with the person counts: an involvement, a health involvement, an
/// education placement, an IOM membership or probation supervision.
fn legitimacy(question: &Question, neighbourhood: &Neighbourhood) -> Result<Legitimacy, Error> {
    let today = Day::today();
    let system = question.system.id.as_str();
    let open = |end: &Option<Day>| end.is_none_or(|end| end >= today);
    let involved = |person: &str| {
        neighbourhood.facts_of(person).iter().any(|about| {
            let works_with = match &about.fact {
                Fact::Involvement(f) => f.person.person_id() == Some(person) && open(&f.end),
                Fact::HealthInvolvement(f) => f.person.person_id() == Some(person) && open(&f.end),
                Fact::Education(f) => f.child.person_id() == Some(person) && open(&f.end),
                Fact::Iom(f) => f.person.person_id() == Some(person) && open(&f.end),
                Fact::ProbationSupervision(f) => {
                    f.person.person_id() == Some(person) && open(&f.end)
                }
                _ => false,
            };
            works_with && about.owner_system == system
        })
    };
    if involved(&neighbourhood.subject) {
        return Ok(Legitimacy::Subject);
    }
    if neighbourhood
        .linked
        .iter()
        .any(|(person, _, _)| involved(person))
    {
        return Ok(Legitimacy::Linked);
    }
    if question.practitioner.break_glass {
        // The justification was checked when the practitioner context was accepted.
        return Ok(Legitimacy::BreakGlass);
    }
    Err(no_legitimate_relationship())
}

/// For each fact, the person in the answer it is shown under: the first (in answer order)
/// who plays a primary part in it (subject, child, respondent, a link's `from`), else the
/// first who is named in it at all.
fn home_persons(order: &[String], facts: &Surroundings) -> HashMap<String, String> {
    let primary = |part: &Part| {
        matches!(
            part,
            Part::Subject | Part::Child | Part::Respondent | Part::From
        )
    };
    let mut home: HashMap<String, String> = HashMap::new();
    for pass_primary in [true, false] {
        for person in order {
            for about in naming(facts, person) {
                if !pass_primary || about.parts.iter().any(primary) {
                    home.entry(about.record_id.clone())
                        .or_insert_with(|| person.clone());
                }
            }
        }
    }
    home
}

/// Whether every person a link names is in the answer.
fn links_within(fact: &Fact, in_answer: &BTreeSet<&str>) -> bool {
    match fact {
        Fact::Link(link) => [&link.from, &link.to]
            .iter()
            .all(|p| p.person_id().is_some_and(|id| in_answer.contains(id))),
        _ => true,
    }
}

/// In words: which categories are indicators only, and why; and break-glass.
fn notes(
    indicator_categories: &BTreeSet<Category>,
    question: &Question,
    policy: &Policy,
    legitimacy: &Legitimacy,
) -> Vec<String> {
    let role = question.practitioner.role;
    let mut notes: Vec<String> = indicator_categories
        .iter()
        .map(|category| {
            let rule = policy.level(&question.system.id, role, *category).rule_id;
            format!(
                "{} is shown only as an indicator: your role ({}) may know that it exists \
                 and whom to contact, not what it says; contact the team named to discuss \
                 it (rule {rule}).",
                describe(*category),
                role.as_str().replace('_', " "),
            )
        })
        .collect();
    if matches!(legitimacy, Legitimacy::BreakGlass) {
        notes.push(
            "This answer rests on break-glass access: it is flagged in the disclosure log \
             and information governance will review it."
                .into(),
        );
    }
    notes
}

fn describe(category: Category) -> &'static str {
    match category {
        Category::Person => "Identity details",
        Category::Link => "A relationship",
        Category::Involvement => "Another agency's involvement",
        Category::Iom => "Integrated Offender Management (IOM) cohort membership",
        Category::CourtOrder => "A court order",
        Category::PoliceEvent => "A police event",
        Category::LegalStatus => "The child's legal status",
        Category::ContactArrangement => "A contact arrangement",
        Category::ProbationSupervision => "Probation supervision",
        Category::HealthInvolvement => "Health involvement (health visitor, GP or school nurse)",
        Category::Education => "The school or early-years setting",
    }
}
