//! Notification rules 1-5 of DOMAIN.md: who must be told when a fact is published, and
//! what each recipient's role may see of it. Planning is pure: the store gathers the
//! people around the triggering fact and writes the notices in the same transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::ledger::now;
use crate::domain::policy::{Level, Policy};
use crate::domain::records::FactAbout;
use crate::domain::records::facts::{
    CourtOrder, HealthRole, LegalStatusType, LinkType, LookedAfterBasis, PlacementType,
    PoliceEventType,
};
use crate::domain::records::{Category, ChangeKind, Fact};
pub use crate::domain::shown::Surroundings;
use crate::domain::shown::{FactView, Shown, indicator, naming};
use crate::domain::{Agency, Purpose, Role, Stored};

/// What the notify room needs from storage, with the store's names and meanings: the
/// notification outbox. The store implements it (the only place with SQL).
pub trait NotifyStorage: std::fmt::Debug + Send + Sync {
    /// Writes notices in their own transaction (break-glass notices follow a query, not a
    /// stored fact) and wakes subscribers.
    fn add_notices<'a>(
        &'a self,
        trigger_record_id: &'a str,
        notices: &'a [Notice],
    ) -> Stored<'a, ()>;

    /// The last acknowledged position of a receiving system (0 if none).
    fn acknowledged<'a>(&'a self, system: &'a str) -> Stored<'a, u64>;

    /// Notices for `system` after `after`, oldest first.
    fn notices_after<'a>(
        &'a self,
        system: &'a str,
        after: u64,
        limit: u32,
    ) -> Stored<'a, Vec<StoredNotice>>;

    /// Records that `system` has everything up to `seq`; never moves backwards.
    fn acknowledge<'a>(&'a self, system: &'a str, seq: u64, at: &'a str) -> Stored<'a, u64>;

    /// The signal this process raises whenever it commits notices. Arm a `notified()`
    /// future before reading, so a commit between the read and the wait is not missed.
    fn notice_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// A stored notice and its position.
#[derive(Debug, Clone)]
pub struct StoredNotice {
    pub seq: u64,
    pub notice: Notice,
}

/// The information-governance systems told of every break-glass access and of witness
/// lag: the registry's `ig_officer` systems, replaced when the registry is reloaded.
#[derive(Debug, Default)]
pub struct IgSystems {
    current: std::sync::RwLock<std::sync::Arc<Vec<String>>>,
}

impl IgSystems {
    /// Holds `ids` as the IG systems.
    pub fn new(ids: Vec<String>) -> Self {
        IgSystems {
            current: std::sync::RwLock::new(std::sync::Arc::new(ids)),
        }
    }

    /// The IG systems now.
    pub fn current(&self) -> std::sync::Arc<Vec<String>> {
        // The lock only guards an Arc swap, which cannot be left half done.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the IG systems for every later notice.
    pub fn replace(&self, ids: Vec<String>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(ids);
    }
}

vocabulary! {
    /// Which rule of DOMAIN.md made a notice.
    NoticeRule {
        /// Rules 1 and 2: a care order placed at home (replacing a CP plan, if it did).
        CareOrderAtHome => "care_order_at_home",
        /// Rule 3: a court order made, varied or ended.
        CourtOrder => "court_order",
        /// Rule 3: a breach of an order or a domestic-abuse incident.
        PoliceEvent => "police_event",
        /// Rule 4: a person entered an IOM cohort.
        IomCohort => "iom_cohort",
        /// Rule 5: break-glass access.
        BreakGlass => "break_glass",
        /// The disclosure log's witnesses have not cosigned its recent checkpoints for
        /// longer than the witness policy allows.
        WitnessLag => "witness_lag",
        /// A practitioner asks the team owning an indicator to get in touch (or a team
        /// passed such a request on).
        ContactRequest => "contact_request",
        /// The team answered a contact request: the notice goes back to the requester.
        ContactAnswer => "contact_answer",
        /// A contact request passed its deadline unanswered: escalated to a manager (or
        /// the team reminded), and the requester told.
        ContactOverdue => "contact_overdue",
        /// A privacy alert over the disclosure log was raised (`policies/alerts.toml`).
        PrivacyAlert => "privacy_alert",
    }
}

/// One notice for one receiving agency system, already shaped for its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub notice_id: String,
    pub rule: NoticeRule,
    pub recipient_system: String,
    pub recipient_role: Role,
    pub subject_person_id: String,
    pub headline: String,
    pub facts: Vec<FactView>,
    pub lawful_basis: String,
    pub policy_version: String,
    pub created_at: String,
    /// The identity links that joined agencies' records into the persons the notice was
    /// planned over; its delivery's log entry records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_links: Vec<crate::domain::ledger::LinkUsed>,
    /// For a contact notice: the request it is about.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contact_request_id: String,
}

impl Notice {
    /// The notice as the outbox keeps it, to be committed with what raised it.
    pub fn row(&self) -> Result<crate::domain::ledger::review::NoticeRow, crate::error::Error> {
        Ok(crate::domain::ledger::review::NoticeRow {
            notice_id: self.notice_id.clone(),
            recipient_system: self.recipient_system.clone(),
            rule: self.rule.as_str(),
            payload: serde_json::to_string(self).map_err(crate::error::Error::internal)?,
            created_at: self.created_at.clone(),
        })
    }
}

/// The fact that was just stored, as the planner sees it.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub about: FactAbout,
    pub change: ChangeKind,
}

/// Who receives a notice and as which role.
type Recipient = (String, Role);

fn current(about: &FactAbout) -> bool {
    let today = crate::domain::records::Day::today();
    let open = |end: &Option<crate::domain::records::Day>| end.is_none_or(|e| e >= today);
    match &about.fact {
        Fact::Involvement(f) => open(&f.end),
        Fact::HealthInvolvement(f) => open(&f.end),
        Fact::Education(f) => open(&f.end),
        Fact::Iom(f) => open(&f.end),
        Fact::ProbationSupervision(f) => open(&f.end),
        Fact::LegalStatus(f) => open(&f.end),
        _ => true,
    }
}

fn facts<'a>(world: &'a Surroundings, person: &str) -> impl Iterator<Item = &'a FactAbout> {
    naming(world, person).iter().filter(|f| current(f))
}

/// Persons linked to `person` by a current link.
fn linked(world: &Surroundings, person: &str) -> Vec<String> {
    let mut out = Vec::new();
    for about in facts(world, person) {
        if let Fact::Link(link) = &about.fact {
            for end in [&link.from, &link.to] {
                if let Some(id) = end.person_id()
                    && id != person
                    && !out.iter().any(|o: &String| o == id)
                {
                    out.push(id.to_owned());
                }
            }
        }
    }
    out
}

/// Whether the facts say the person is a child: the `to` of a parent or carer link, the
/// child of a legal status or an education placement, or born less than 18 years ago.
fn is_child(world: &Surroundings, person: &str) -> bool {
    let today = crate::domain::records::Day::today().to_string();
    facts(world, person).any(|about| match &about.fact {
        Fact::Link(link) => {
            matches!(link.link_type, LinkType::ParentOf | LinkType::CarerOf)
                && link.to.person_id() == Some(person)
        }
        Fact::LegalStatus(f) => f.child.person_id() == Some(person),
        Fact::Education(f) => f.child.person_id() == Some(person),
        Fact::Person(details) => details.date_of_birth.is_some_and(|born| {
            // Dates are YYYY-MM-DD: compare against the same day 18 years ago.
            let adult_from = format!(
                "{:04}{}",
                today[..4].parse::<i32>().unwrap_or(0) - 18,
                &today[4..]
            );
            born.to_string() > adult_from
        }),
        _ => false,
    })
}

/// A child known to Children's Services: a child with a current CSC involvement or
/// legal status.
fn known_to_csc(world: &Surroundings, person: &str) -> bool {
    is_child(world, person)
        && facts(world, person).any(|about| {
            about.owner == Agency::ChildrensServices
                && match &about.fact {
                    Fact::Involvement(f) => f.person.person_id() == Some(person),
                    Fact::LegalStatus(f) => f.child.person_id() == Some(person),
                    _ => false,
                }
        })
}

fn health(world: &Surroundings, person: &str, roles: &[HealthRole]) -> Vec<Recipient> {
    facts(world, person)
        .filter_map(|about| match &about.fact {
            Fact::HealthInvolvement(f)
                if f.person.person_id() == Some(person) && roles.contains(&f.role) =>
            {
                let role = match f.role {
                    HealthRole::HealthVisitor => Role::HealthVisitor,
                    HealthRole::Gp => Role::Gp,
                    HealthRole::SchoolNurse => Role::SchoolNurse,
                };
                Some((about.owner_system.clone(), role))
            }
            _ => None,
        })
        .collect()
}

fn school(world: &Surroundings, child: &str) -> Vec<Recipient> {
    facts(world, child)
        .filter_map(|about| match &about.fact {
            Fact::Education(f) if f.child.person_id() == Some(child) => {
                Some((about.owner_system.clone(), Role::SchoolDsl))
            }
            _ => None,
        })
        .collect()
}

fn social_worker(world: &Surroundings, child: &str) -> Vec<Recipient> {
    facts(world, child)
        .filter_map(|about| match &about.fact {
            Fact::Involvement(f)
                if about.owner == Agency::ChildrensServices
                    && f.person.person_id() == Some(child) =>
            {
                Some((about.owner_system.clone(), Role::SocialWorker))
            }
            _ => None,
        })
        .collect()
}

/// IOM and probation leads of a person.
fn offender_leads(world: &Surroundings, person: &str) -> Vec<Recipient> {
    facts(world, person)
        .filter_map(|about| match &about.fact {
            Fact::Iom(f) if f.person.person_id() == Some(person) => Some((
                about.owner_system.clone(),
                if about.owner == Agency::Probation {
                    Role::OffenderManager
                } else {
                    Role::IomOfficer
                },
            )),
            Fact::ProbationSupervision(f) if f.person.person_id() == Some(person) => {
                Some((about.owner_system.clone(), Role::OffenderManager))
            }
            _ => None,
        })
        .collect()
}

/// Plans the notices a stored fact raises (rules 1-4).
pub fn plan(trigger: &Trigger, world: &Surroundings, policy: &Policy) -> Vec<Notice> {
    // (recipient, subject person) -> (rule, headline, facts to show)
    let mut planned: BTreeMap<(Recipient, String), (NoticeRule, String, Vec<FactAbout>)> =
        BTreeMap::new();
    let mut add = |recipient: Recipient,
                   subject: &str,
                   rule: NoticeRule,
                   headline: &str,
                   shown: Vec<FactAbout>| {
        planned
            .entry((recipient, subject.to_owned()))
            .or_insert_with(|| (rule, headline.to_owned(), shown));
    };
    let about = &trigger.about;
    match &about.fact {
        // Rules 1 and 2: a child placed at home with a parent under an (interim) care order.
        Fact::LegalStatus(status)
            if status.status_type == LegalStatusType::LookedAfter
                && status.placement == Some(PlacementType::PlacedWithParent)
                && matches!(
                    status.looked_after_basis,
                    Some(LookedAfterBasis::CareOrder | LookedAfterBasis::InterimCareOrder)
                )
                && trigger.change != ChangeKind::Ended =>
        {
            let Some(child) = status.child.person_id() else {
                return Vec::new();
            };
            let mut headline = "A care order has been made and the child is looked after, \
                                placed at home with a parent. This is a higher-risk state \
                                than a child protection plan, never a step down; the child's \
                                health visitor, GP and school and the parent's GP and health \
                                visitor are told so that they can share what they see."
                .to_owned();
            if status.replaces_record_id.is_some() {
                headline.push_str(
                    " The child protection plan was replaced by this care order: the risks \
                     it addressed carry over and the child remains at risk.",
                );
            }
            let mut recipients = health(
                world,
                child,
                &[
                    HealthRole::HealthVisitor,
                    HealthRole::SchoolNurse,
                    HealthRole::Gp,
                ],
            );
            if let Some(parent) = status.placed_with.as_ref().and_then(|p| p.person_id()) {
                recipients.extend(health(
                    world,
                    parent,
                    &[HealthRole::HealthVisitor, HealthRole::Gp],
                ));
            }
            recipients.extend(school(world, child));
            for adult in linked(world, child) {
                recipients.extend(offender_leads(world, &adult));
            }
            for recipient in recipients {
                add(
                    recipient,
                    child,
                    NoticeRule::CareOrderAtHome,
                    &headline,
                    vec![about.clone()],
                );
            }
        }
        // Rule 3: a court order made or varied, where a protected or involved person is
        // linked to a child known to Children's Services.
        Fact::CourtOrder(order) if trigger.change != ChangeKind::Ended => {
            let headline = match trigger.change {
                ChangeKind::Updated => "A court order protecting a family member has been varied.",
                _ => {
                    "A court order protecting a family member has been made. Breaching it is an offence: tell the police if you see it breached."
                }
            };
            let persons: Vec<String> = order_persons(order);
            rule_three(
                world,
                about,
                &persons,
                NoticeRule::CourtOrder,
                headline,
                &mut add,
            );
        }
        // Rule 3: a breach of an order or a domestic-abuse incident.
        Fact::PoliceEvent(event)
            if matches!(
                event.event_type,
                PoliceEventType::BreachOfOrder | PoliceEventType::DomesticAbuseIncident
            ) && trigger.change == ChangeKind::Published =>
        {
            let headline = match event.event_type {
                PoliceEventType::BreachOfOrder => {
                    "The police have recorded a breach of a court order protecting a family member (Operation Encompass: the school and health visitor are told so they can support the child)."
                }
                _ => {
                    "The police have recorded a domestic-abuse incident in the child's family (Operation Encompass: the school and health visitor are told so they can support the child)."
                }
            };
            let persons: Vec<String> = event
                .persons
                .iter()
                .filter_map(|p| p.person_id().map(str::to_owned))
                .collect();
            rule_three(
                world,
                about,
                &persons,
                NoticeRule::PoliceEvent,
                headline,
                &mut add,
            );
        }
        // Rule 4: a person enters an IOM cohort and is linked to a child known to CSC.
        Fact::Iom(membership) if trigger.change == ChangeKind::Published => {
            let Some(person) = membership.person.person_id() else {
                return Vec::new();
            };
            let children: Vec<String> = linked(world, person)
                .into_iter()
                .filter(|c| known_to_csc(world, c))
                .collect();
            for child in &children {
                for recipient in social_worker(world, child) {
                    add(
                        recipient,
                        child,
                        NoticeRule::IomCohort,
                        "A person linked to this child has entered an Integrated Offender \
                         Management cohort; the IOM team can tell you more.",
                        vec![about.clone()],
                    );
                }
            }
            if !children.is_empty() {
                let statuses: Vec<FactAbout> = children
                    .iter()
                    .flat_map(|c| {
                        facts(world, c)
                            .filter(|f| {
                                matches!(&f.fact, Fact::LegalStatus(s) if s.child.person_id() == Some(c.as_str()))
                            })
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let lead = (about.owner_system.clone(), Role::IomOfficer);
                add(
                    lead,
                    person,
                    NoticeRule::IomCohort,
                    "This IOM nominal is linked to children known to Children's Services; \
                     their legal status follows. A care order at home is a higher-risk state.",
                    statuses,
                );
            }
        }
        _ => {}
    }

    let mut notices = Vec::new();
    for (((system, role), subject), (rule, headline, shown)) in planned {
        if let Some(notice) = shape(
            policy, &system, role, &subject, rule, headline, &shown, world,
        ) {
            notices.push(notice);
        }
    }
    notices
}

fn order_persons(order: &CourtOrder) -> Vec<String> {
    std::iter::once(&order.respondent)
        .chain(order.protected_persons.iter())
        .filter_map(|p| p.person_id().map(str::to_owned))
        .collect()
}

/// Rule 3's recipients: for each child known to CSC linked to (or among) the persons,
/// the social worker, health visitor and school DSL; and the IOM lead of the persons.
fn rule_three(
    world: &Surroundings,
    about: &FactAbout,
    persons: &[String],
    rule: NoticeRule,
    headline: &str,
    add: &mut impl FnMut(Recipient, &str, NoticeRule, &str, Vec<FactAbout>),
) {
    let mut children: Vec<String> = Vec::new();
    for person in persons {
        let candidates = std::iter::once(person.clone()).chain(linked(world, person));
        for candidate in candidates {
            if known_to_csc(world, &candidate) && !children.contains(&candidate) {
                children.push(candidate);
            }
        }
    }
    if children.is_empty() {
        return;
    }
    for child in &children {
        let mut recipients = social_worker(world, child);
        recipients.extend(health(
            world,
            child,
            &[HealthRole::HealthVisitor, HealthRole::SchoolNurse],
        ));
        recipients.extend(school(world, child));
        for recipient in recipients {
            add(recipient, child, rule, headline, vec![about.clone()]);
        }
    }
    for person in persons {
        for recipient in offender_leads(world, person)
            .into_iter()
            .filter(|(_, role)| *role == Role::IomOfficer)
        {
            add(recipient, person, rule, headline, vec![about.clone()]);
        }
    }
}

/// Shapes a notice for its recipient's role: each fact at the level the policy allows;
/// no notice at all when the role may see nothing of what triggered it, or may not act
/// for child safeguarding.
#[allow(clippy::too_many_arguments)]
fn shape(
    policy: &Policy,
    system: &str,
    role: Role,
    subject: &str,
    rule: NoticeRule,
    headline: String,
    shown: &[FactAbout],
    world: &Surroundings,
) -> Option<Notice> {
    let grant = policy
        .purpose(system, role, Purpose::ChildSafeguarding)
        .ok()?;
    let mut facts = Vec::new();
    for about in shown {
        let category = about.fact.category();
        let cell = policy.level(system, role, category);
        let shown = match cell.level {
            Level::Detail => Shown::Detail(about.fact.clone()),
            Level::Indicator => Shown::Indicator(indicator(about, world)),
            Level::Nothing => continue,
        };
        facts.push(FactView {
            record_id: about.record_id.clone(),
            category,
            rule_id: cell.rule_id.to_owned(),
            shown,
        });
    }
    if facts.is_empty() && !shown.is_empty() {
        return None;
    }
    Some(Notice {
        notice_id: uuid::Uuid::new_v4().to_string(),
        rule,
        recipient_system: system.to_owned(),
        recipient_role: role,
        subject_person_id: subject.to_owned(),
        headline,
        facts,
        lawful_basis: grant.lawful_basis.to_owned(),
        policy_version: policy.version().to_owned(),
        created_at: now(),
        identity_links: Vec::new(),
        contact_request_id: String::new(),
    })
}

/// Rule 5: a notice to each IG system that break-glass access happened.
pub fn break_glass(
    ig_systems: &[String],
    by_system: &str,
    subject: &str,
    entry_id: &str,
    policy: &Policy,
) -> Vec<Notice> {
    ig_systems
        .iter()
        .map(|system| Notice {
            notice_id: uuid::Uuid::new_v4().to_string(),
            rule: NoticeRule::BreakGlass,
            recipient_system: system.clone(),
            recipient_role: Role::IgOfficer,
            subject_person_id: subject.to_owned(),
            headline: format!(
                "Break-glass access by agency system `{by_system}`: disclosure-log entry \
                 {entry_id} is flagged for your review."
            ),
            facts: Vec::new(),
            lawful_basis: "UK GDPR Art 6(1)(c); DPA 2018 s62 (logging)".into(),
            policy_version: policy.version().to_owned(),
            created_at: now(),
            identity_links: Vec::new(),
            contact_request_id: String::new(),
        })
        .collect()
}

/// A notice to each IG system that the log's checkpoints have gone uncosigned by a
/// quorum of witnesses for longer than the policy allows: the log itself is unharmed and
/// disclosures go on, but truncation would not be caught from that point until they catch
/// up. It names sizes and witnesses, never persons.
pub fn witness_lag(
    ig_systems: &[String],
    log_size: u64,
    quorum_size: u64,
    lagging_for_secs: u64,
    witnesses_behind: &[String],
) -> Vec<Notice> {
    ig_systems
        .iter()
        .map(|system| Notice {
            notice_id: uuid::Uuid::new_v4().to_string(),
            rule: NoticeRule::WitnessLag,
            recipient_system: system.clone(),
            recipient_role: Role::IgOfficer,
            subject_person_id: String::new(),
            headline: format!(
                "Disclosure-log witnesses lag: the log holds {log_size} entries but a quorum \
                 has cosigned only {quorum_size}, for {lagging_for_secs} s; behind: {}.",
                witnesses_behind.join(", ")
            ),
            facts: Vec::new(),
            lawful_basis: "UK GDPR Art 5(1)(f), Art 32 (integrity of processing records)".into(),
            policy_version: String::new(),
            created_at: now(),
            identity_links: Vec::new(),
            contact_request_id: String::new(),
        })
        .collect()
}

/// Tells the IG systems by notice when witnessing lags (the ledger's [`LagAlarm`]).
///
/// [`LagAlarm`]: crate::domain::ledger::witnessing::LagAlarm
pub struct WitnessLagNotices {
    pub store: std::sync::Arc<dyn NotifyStorage>,
    pub ig_systems: std::sync::Arc<IgSystems>,
}

impl crate::domain::ledger::witnessing::LagAlarm for WitnessLagNotices {
    fn lagging(
        &self,
        lag: crate::domain::ledger::witnessing::WitnessLag,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let notices = witness_lag(
                &self.ig_systems.current(),
                lag.log_size,
                lag.quorum_size,
                lag.lag_secs,
                &lag.behind,
            );
            let trigger = format!("witness-lag-{}", crate::domain::ledger::now());
            if let Err(error) = self.store.add_notices(&trigger, &notices).await {
                tracing::error!(%error, "the witness-lag notice to the IG office could not be stored");
            }
        })
    }
}

/// A notice to each IG system that a privacy alert was raised: the rule and its words,
/// which name entries, systems and practitioners by id, never persons.
pub fn privacy_alert(
    ig_systems: &[String],
    alert: &crate::domain::ledger::alert_rows::Alert,
) -> Vec<Notice> {
    ig_systems
        .iter()
        .map(|system| Notice {
            notice_id: uuid::Uuid::new_v4().to_string(),
            rule: NoticeRule::PrivacyAlert,
            recipient_system: system.clone(),
            recipient_role: Role::IgOfficer,
            subject_person_id: String::new(),
            headline: format!(
                "Privacy alert {} ({}): {}",
                alert.alert_id, alert.rule_id, alert.summary
            ),
            facts: Vec::new(),
            lawful_basis: "UK GDPR Art 5(1)(f), Art 32; DPA 2018 s62 (logging)".into(),
            policy_version: alert.rules_version.clone(),
            created_at: now(),
            identity_links: Vec::new(),
            contact_request_id: String::new(),
        })
        .collect()
}

/// Whether a category's change can raise a notice, so the store gathers surroundings
/// only when it may matter.
pub fn may_notify(category: Category) -> bool {
    matches!(
        category,
        Category::LegalStatus | Category::CourtOrder | Category::PoliceEvent | Category::Iom
    )
}

/// A notice as delivered: its position, and the disclosure-log entry of this delivery.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub cursor: u64,
    pub notice: Notice,
    pub entry_id: String,
}

/// Delivery of notices to their receiving systems; every delivery is a disclosure.
#[derive(Debug, Clone)]
pub struct Deliveries {
    store: std::sync::Arc<dyn NotifyStorage>,
    ledger: crate::domain::ledger::Ledger,
}

/// Most notices one poll returns.
pub const LIST_MAX: u32 = 500;

impl Deliveries {
    pub fn new(
        store: std::sync::Arc<dyn NotifyStorage>,
        ledger: crate::domain::ledger::Ledger,
    ) -> Self {
        Deliveries { store, ledger }
    }

    /// The store notices are read from.
    pub fn store(&self) -> &std::sync::Arc<dyn NotifyStorage> {
        &self.store
    }

    /// Writes the delivery's disclosure-log entry (from `base`, who is receiving and how),
    /// and only then hands the notice over.
    pub async fn deliver(
        &self,
        base: &crate::domain::ledger::Entry,
        stored: StoredNotice,
    ) -> Result<Delivered, crate::error::Error> {
        use crate::domain::ledger::{Decision, Disclosed, Entry, EntryKind};
        let notice = stored.notice;
        let mut entry = Entry {
            entry_id: uuid::Uuid::new_v4().to_string(),
            recorded_at: now(),
            ..base.clone()
        };
        entry.kind = EntryKind::Notification;
        entry.decision = Decision::Released;
        entry.recipient_system = notice.recipient_system.clone();
        entry.role = notice.recipient_role.as_str().into();
        entry.subject_person_id = notice.subject_person_id.clone();
        entry.lawful_basis = notice.lawful_basis.clone();
        entry.policy_version = notice.policy_version.clone();
        entry.identity_links = notice.identity_links.clone();
        entry.reason = format!("notice {} ({})", notice.notice_id, notice.rule);
        entry.rule_ids = std::iter::once(format!("notify.{}", notice.rule))
            .chain(notice.facts.iter().map(|f| f.rule_id.clone()))
            .collect();
        entry.released = notice
            .facts
            .iter()
            .map(|f| Disclosed {
                person_id: notice.subject_person_id.clone(),
                record_id: f.record_id.clone(),
                category: f.category.as_str().into(),
                level: match f.shown {
                    Shown::Detail(_) => Level::Detail.as_str().into(),
                    Shown::Indicator(_) => Level::Indicator.as_str().into(),
                },
                rule_id: f.rule_id.clone(),
            })
            .collect();
        let appended = self.ledger.append(entry).await?;
        Ok(Delivered {
            cursor: stored.seq,
            notice,
            entry_id: appended.entry_id,
        })
    }

    /// The system's notices after `after` (0: after its last acknowledgement), each
    /// logged as delivered; and the acknowledged position.
    pub async fn list(
        &self,
        base: &crate::domain::ledger::Entry,
        system: &str,
        after: u64,
        limit: u32,
    ) -> Result<(Vec<Delivered>, u64), crate::error::Error> {
        let acked = self.store.acknowledged(system).await?;
        let after = if after == 0 { acked } else { after };
        let stored = self.store.notices_after(system, after, limit).await?;
        // Deliveries are logged concurrently so group commit writes them together.
        let mut pending = tokio::task::JoinSet::new();
        for (i, notice) in stored.into_iter().enumerate() {
            let this = self.clone();
            let base = base.clone();
            pending.spawn(async move { (i, this.deliver(&base, notice).await) });
        }
        let mut delivered = Vec::new();
        while let Some(joined) = pending.join_next().await {
            let (i, result) = joined.map_err(crate::error::Error::internal)?;
            delivered.push((i, result?));
        }
        delivered.sort_by_key(|(i, _)| *i);
        Ok((delivered.into_iter().map(|(_, d)| d).collect(), acked))
    }

    /// Acknowledges everything up to `cursor` for `system`.
    pub async fn acknowledge(&self, system: &str, cursor: u64) -> Result<u64, crate::error::Error> {
        self.store.acknowledge(system, cursor, &now()).await
    }
}
