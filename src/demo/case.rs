//! The synthetic case of DOMAIN.md (Amy and Ben Carter, their mother Chloe Carter, their
//! father Dean Mills), published through the public gRPC API as each agency system would,
//! so the demo exercises the real path. Every publish carries a fixed client request id:
//! loading the case twice stores it once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use crate::api::client::{self, Channel};

use crate::api::proto::{
    self, CpCategory, Fact, GetSafeguardingStatusRequest, Identifier, IdentifierScheme, PersonRef,
    PractitionerContext, PublishRequest, Role, SafeguardingStatus, fact::Category,
    identity_resolution_service_client::IdentityResolutionServiceClient,
    records_service_client::RecordsServiceClient,
};

/// Synthetic identifiers: NHS numbers in the 999 test range with valid check digits.
pub const AMY_NHS: &str = "9990000018";
pub const BEN_NHS: &str = "9990000026";
pub const CHLOE_NHS: &str = "9990000034";
pub const DEAN_NHS: &str = "9990000042";
pub const DEAN_PNC: &str = "18/0012345R";
/// The police's own id for Chloe, Children's Services' case ids, probation's reference.
pub const CHLOE_POLICE: &str = "NICHE-P-5512";
pub const CHLOE_CSC: &str = "CSC-C-0001";
pub const AMY_CSC: &str = "CSC-A-0002";
pub const BEN_CSC: &str = "CSC-B-0003";
pub const DEAN_CSC: &str = "CSC-D-0419";
pub const DEAN_PROBATION: &str = "X123456";

/// What loading the case stored.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// Gateway person ids by first name.
    pub persons: HashMap<&'static str, String>,
    /// Record ids by a short label (e.g. `amy-care-order`).
    pub records: HashMap<&'static str, String>,
    /// Facts published, by agency system.
    pub published_by: Vec<(&'static str, usize)>,
    /// Amy's derived safeguarding status, as Children's Services read it.
    pub amy_status: SafeguardingStatus,
    /// The review tasks the MASH confirmed while loading (none when loaded before).
    pub confirmed: Vec<proto::ReviewTask>,
    /// Each agency system's own person record: (system, person id), in publishing order.
    pub agency_persons: Vec<(&'static str, String)>,
}

/// The MASH, as the demo's identity steward, confirms every open review task: in the
/// demo's case the only one is Children's Services' record of Dean. Returns the tasks
/// confirmed (none when the case was loaded before).
async fn confirm_pending_matches(
    addr: SocketAddr,
    pki_dir: &Path,
) -> anyhow::Result<Vec<proto::ReviewTask>> {
    let mut mash =
        IdentityResolutionServiceClient::new(client::channel(addr, pki_dir, "mash").await?);
    let tasks = mash
        .list_review_tasks(proto::ListReviewTasksRequest {
            context: Some(practitioner("mash")),
            include_closed: false,
        })
        .await
        .context("the MASH listing review tasks")?
        .into_inner()
        .tasks;
    for task in &tasks {
        mash.confirm_match(proto::ConfirmMatchRequest {
            context: Some(practitioner("mash")),
            task_id: task.task_id.clone(),
            note: "MASH checked both records: same man, same date of birth, known old address"
                .into(),
        })
        .await
        .context("the MASH confirming a match")?;
    }
    Ok(tasks)
}

/// The practitioner each demo system acts for.
fn practitioner(system: &str) -> PractitionerContext {
    let (id, role) = match system {
        "police-iom" => ("IOM-0001", Role::IomOfficer),
        "probation" => ("OM-0001", Role::OffenderManager),
        "health-visiting" => ("HV-0001", Role::HealthVisitor),
        "gp-practice" => ("GP-0001", Role::Gp),
        "childrens-services" => ("SW-0001", Role::SocialWorker),
        "mash" => ("MASH-0001", Role::IdentitySteward),
        _ => ("DSL-0001", Role::SchoolDsl),
    };
    PractitionerContext {
        practitioner_id: id.into(),
        role: role.into(),
        ..Default::default()
    }
}

/// Who someone is, as one agency system records them.
struct Known<'a> {
    identifiers: Vec<Identifier>,
    given: &'a str,
    family: &'a str,
    born: &'a str,
    sex: proto::Sex,
    postcode: &'a str,
    address: &'a [&'a str],
}

fn person(known: Known<'_>) -> Category {
    Category::Person(proto::PersonDetails {
        identifiers: known.identifiers,
        given_name: known.given.into(),
        family_name: known.family.into(),
        date_of_birth: known.born.into(),
        sex: known.sex.into(),
        postcode: known.postcode.into(),
        address_lines: known.address.iter().map(|l| (*l).to_owned()).collect(),
        ..Default::default()
    })
}

fn id(scheme: IdentifierScheme, value: &str) -> Identifier {
    Identifier {
        scheme: scheme.into(),
        value: value.into(),
        namespace: String::new(),
    }
}

/// An agency system's own id in its namespace (e.g. Children's Services' case system).
fn local_id(namespace: &str, value: &str) -> Identifier {
    Identifier {
        scheme: IdentifierScheme::Local.into(),
        value: value.into(),
        namespace: namespace.into(),
    }
}

fn by(identifier: &Identifier) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(identifier.clone())),
    })
}

struct Loader {
    addr: SocketAddr,
    pki_dir: std::path::PathBuf,
    clients: HashMap<&'static str, RecordsServiceClient<Channel>>,
    records: HashMap<&'static str, String>,
    persons: HashMap<&'static str, String>,
    counts: Vec<(&'static str, usize)>,
    agency_persons: Vec<(&'static str, String)>,
}

impl Loader {
    async fn publish(
        &mut self,
        system: &'static str,
        label: &'static str,
        category: Category,
    ) -> anyhow::Result<proto::FactReceipt> {
        if !self.clients.contains_key(system) {
            let channel = client::channel(self.addr, &self.pki_dir, system).await?;
            self.clients
                .insert(system, RecordsServiceClient::new(channel));
        }
        let is_person = matches!(category, Category::Person(_));
        let client = self.clients.get_mut(system).context("client")?;
        let receipt = client
            .publish(PublishRequest {
                context: Some(practitioner(system)),
                client_request_id: format!("demo-case/{label}"),
                fact: Some(Fact {
                    category: Some(category),
                }),
            })
            .await
            .with_context(|| format!("{system} publishing {label}"))?
            .into_inner()
            .receipt
            .context("publish returned no receipt")?;
        match self.counts.iter_mut().find(|(s, _)| *s == system) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((system, 1)),
        }
        self.records.insert(label, receipt.record_id.clone());
        if let (true, Some(person)) = (is_person, receipt.person_ids.first()) {
            self.agency_persons.push((system, person.clone()));
        }
        Ok(receipt)
    }

    fn record(&self, label: &str) -> String {
        self.records.get(label).cloned().unwrap_or_default()
    }
}

/// Publishes the synthetic case through the gateway at `addr` with the dev certificates
/// in `pki_dir`.
pub async fn load(addr: SocketAddr, pki_dir: &Path) -> anyhow::Result<LoadedCase> {
    use IdentifierScheme::{NhsNumber, PncId};
    let mut l = Loader {
        addr,
        pki_dir: pki_dir.to_owned(),
        clients: HashMap::new(),
        records: HashMap::new(),
        persons: HashMap::new(),
        counts: Vec::new(),
        agency_persons: Vec::new(),
    };

    // Each agency publishes the family as its own system holds them. Health knows the
    // mother and children by NHS number; the police know Dean by his PNC id and Chloe by
    // their own id; probation knows Dean by the PNC id and its case reference; the GP has
    // Dean's NHS number; Children's Services use their own case ids (with the children's
    // NHS numbers), took Dean's name down as "Milles" and have his old address.
    let home: &[&str] = &["3 Willow Row", "Exampletown"];
    let chloe_as = |identifiers| Known {
        identifiers,
        given: "Chloe",
        family: "Carter",
        born: "1995-08-23",
        sex: proto::Sex::Female,
        postcode: "SO22 5PL",
        address: home,
    };
    let child = |identifiers, given, born, sex| Known {
        identifiers,
        given,
        family: "Carter",
        born,
        sex,
        postcode: "SO22 5PL",
        address: home,
    };
    let dean_as = |identifiers| Known {
        identifiers,
        given: "Dean",
        family: "Mills",
        born: "1990-04-12",
        sex: proto::Sex::Male,
        postcode: "SO23 8UJ",
        address: &["14 Synthetic Close", "Exampletown"],
    };
    let chloe_nhs = id(NhsNumber, CHLOE_NHS);
    let amy_nhs = id(NhsNumber, AMY_NHS);
    let ben_nhs = id(NhsNumber, BEN_NHS);
    let dean_pnc = id(PncId, DEAN_PNC);
    let chloe_police = local_id("niche", CHLOE_POLICE);
    let chloe_csc = local_id("mosaic", CHLOE_CSC);
    let amy_csc = local_id("mosaic", AMY_CSC);
    let ben_csc = local_id("mosaic", BEN_CSC);
    let dean_csc = local_id("mosaic", DEAN_CSC);

    let chloe = l
        .publish(
            "health-visiting",
            "chloe",
            person(chloe_as(vec![chloe_nhs.clone()])),
        )
        .await?;
    let ben = l
        .publish(
            "health-visiting",
            "ben",
            person(child(
                vec![ben_nhs.clone()],
                "Ben",
                "2016-09-05",
                proto::Sex::Male,
            )),
        )
        .await?;
    let amy = l
        .publish(
            "health-visiting",
            "amy",
            person(child(
                vec![amy_nhs.clone()],
                "Amy",
                "2017-09-14",
                proto::Sex::Female,
            )),
        )
        .await?;
    let dean = l
        .publish(
            "police-iom",
            "dean",
            person(dean_as(vec![dean_pnc.clone()])),
        )
        .await?;
    // The same details under the police's own id for Chloe: linked automatically.
    l.publish(
        "police-iom",
        "chloe-police",
        person(chloe_as(vec![chloe_police.clone()])),
    )
    .await?;
    l.publish(
        "probation",
        "dean-probation",
        person(dean_as(vec![
            dean_pnc.clone(),
            local_id("ndelius", DEAN_PROBATION),
        ])),
    )
    .await?;
    l.publish(
        "gp-practice",
        "dean-gp",
        person(dean_as(vec![id(NhsNumber, DEAN_NHS)])),
    )
    .await?;
    for (label, known) in [
        (
            "amy-csc",
            child(
                vec![amy_nhs.clone(), amy_csc.clone()],
                "Amy",
                "2017-09-14",
                proto::Sex::Female,
            ),
        ),
        (
            "ben-csc",
            child(
                vec![ben_nhs.clone(), ben_csc.clone()],
                "Ben",
                "2016-09-05",
                proto::Sex::Male,
            ),
        ),
        ("chloe-csc", chloe_as(vec![chloe_csc.clone()])),
        (
            "dean-csc",
            Known {
                family: "Milles",
                postcode: "SO22 6RT",
                address: &["Flat 2, 88 Station Road", "Exampletown"],
                ..dean_as(vec![dean_csc.clone()])
            },
        ),
    ] {
        l.publish("childrens-services", label, person(known))
            .await?;
    }
    for (name, receipt) in [
        ("Dean", &dean),
        ("Chloe", &chloe),
        ("Ben", &ben),
        ("Amy", &amy),
    ] {
        l.persons.insert(name, receipt.person_ids[0].clone());
    }
    // Children's Services' Dean is only a potential match (another spelling, another
    // address): the MASH confirms it before the case goes on.
    let confirmed = confirm_pending_matches(addr, pki_dir).await?;

    // Links, asserted by Children's Services with their own ids.
    let link = |from: &Identifier, to: &Identifier, link_type: proto::LinkType| {
        Category::Link(proto::Link {
            from: by(from),
            to: by(to),
            r#type: link_type.into(),
        })
    };
    for (label, from, to, link_type) in [
        (
            "link-chloe-amy",
            &chloe_csc,
            &amy_csc,
            proto::LinkType::ParentOf,
        ),
        (
            "link-chloe-ben",
            &chloe_csc,
            &ben_csc,
            proto::LinkType::ParentOf,
        ),
        (
            "link-dean-amy",
            &dean_csc,
            &amy_csc,
            proto::LinkType::ParentOf,
        ),
        (
            "link-dean-ben",
            &dean_csc,
            &ben_csc,
            proto::LinkType::ParentOf,
        ),
        (
            "link-chloe-dean",
            &chloe_csc,
            &dean_csc,
            proto::LinkType::ExPartnerOf,
        ),
        (
            "link-ben-amy",
            &ben_csc,
            &amy_csc,
            proto::LinkType::SiblingOf,
        ),
    ] {
        l.publish("childrens-services", label, link(from, to, link_type))
            .await?;
    }

    // Open involvements: what makes each agency's questions legitimate.
    let involvement = |who: &Identifier, team: &str, route: &str, start: &str| {
        Category::Involvement(proto::Involvement {
            person: by(who),
            team: team.into(),
            contact_route: route.into(),
            practitioner_id: String::new(),
            start_date: start.into(),
            end_date: String::new(),
        })
    };
    let csc = (
        "Children's Services, Family Safeguarding Team 3",
        "fst3@csc.example.test",
    );
    for (label, who, start) in [
        ("csc-involved-amy", &amy_csc, "2017-09-14"),
        ("csc-involved-ben", &ben_csc, "2016-06-01"),
        ("csc-involved-chloe", &chloe_csc, "2016-06-01"),
    ] {
        l.publish(
            "childrens-services",
            label,
            involvement(who, csc.0, csc.1, start),
        )
        .await?;
    }
    let iom = (
        "Police IOM team (domestic abuse cohort)",
        "iom.team@police.example.test",
    );
    l.publish(
        "police-iom",
        "iom-involved-dean",
        involvement(&dean_pnc, iom.0, iom.1, "2019-01-07"),
    )
    .await?;
    l.publish(
        "probation",
        "probation-involved-dean",
        involvement(
            &dean_pnc,
            "Probation, North delivery unit",
            "north.pdu@probation.example.test",
            "2019-01-07",
        ),
    )
    .await?;
    let hv = ("Health visiting team West", "hv.west@nhs.example.test");
    for (label, who, start) in [
        ("hv-involved-chloe", &chloe_nhs, "2016-09-05"),
        ("hv-involved-amy", &amy_nhs, "2017-09-14"),
        ("hv-involved-ben", &ben_nhs, "2016-09-05"),
    ] {
        l.publish(
            "health-visiting",
            label,
            involvement(who, hv.0, hv.1, start),
        )
        .await?;
    }
    l.publish(
        "nursery",
        "nursery-involved-ben",
        involvement(
            &ben_nhs,
            "Little Acorns Nursery",
            "dsl@acorns.example.test",
            "2018-09-03",
        ),
    )
    .await?;

    // Health: who is responsible, never clinical notes.
    let health =
        |who: &Identifier, role: proto::HealthRole, team: &str, route: &str, start: &str| {
            Category::HealthInvolvement(proto::HealthInvolvement {
                person: by(who),
                role: role.into(),
                team: team.into(),
                contact_route: route.into(),
                start_date: start.into(),
                end_date: String::new(),
            })
        };
    for (label, who, start) in [
        ("hv-amy", &amy_nhs, "2017-09-14"),
        ("hv-ben", &ben_nhs, "2016-09-05"),
        ("hv-chloe", &chloe_nhs, "2016-09-05"),
    ] {
        l.publish(
            "health-visiting",
            label,
            health(who, proto::HealthRole::HealthVisitor, hv.0, hv.1, start),
        )
        .await?;
    }
    let gp = ("Riverside Surgery", "safeguarding@riverside.example.test");
    let dean_nhs = id(NhsNumber, DEAN_NHS);
    for (label, who, start) in [
        ("gp-amy", &amy_nhs, "2017-09-20"),
        ("gp-ben", &ben_nhs, "2016-09-12"),
        ("gp-chloe", &chloe_nhs, "2013-01-01"),
        ("gp-dean", &dean_nhs, "2012-01-01"),
    ] {
        l.publish(
            "gp-practice",
            label,
            health(who, proto::HealthRole::Gp, gp.0, gp.1, start),
        )
        .await?;
    }

    // Education: Ben's nursery and its DSL.
    l.publish(
        "nursery",
        "nursery-ben",
        Category::Education(proto::Education {
            child: by(&ben_nhs),
            setting_type: proto::SettingType::EarlyYears.into(),
            setting_name: "Little Acorns Nursery".into(),
            dsl_contact_route: "dsl@acorns.example.test".into(),
            start_date: "2018-09-03".into(),
            end_date: String::new(),
        }),
    )
    .await?;

    // Police: the non-molestation order protecting Chloe, its breaches, Dean's IOM cohort.
    let order = l
        .publish(
            "police-iom",
            "non-molestation-order",
            Category::CourtOrder(proto::CourtOrder {
                r#type: proto::CourtOrderType::NonMolestationOrder.into(),
                respondent: by(&dean_pnc),
                protected_persons: vec![by(&chloe_police).context("ref")?],
                conditions: "Dean Mills must not use or threaten violence against Chloe Carter, \
                             contact her, or go within 100 metres of her home"
                    .into(),
                made_date: "2018-01-15".into(),
                served_date: "2018-01-17".into(),
                expires_date: "2028-01-15".into(),
                status: proto::CourtOrderStatus::InForce.into(),
            }),
        )
        .await?;
    for (label, day) in [("breach-1", "2018-11-02"), ("breach-2", "2019-02-14")] {
        l.publish(
            "police-iom",
            label,
            Category::PoliceEvent(proto::PoliceEvent {
                r#type: proto::PoliceEventType::BreachOfOrder.into(),
                occurred_date: day.into(),
                persons: vec![
                    by(&dean_pnc).context("ref")?,
                    by(&chloe_police).context("ref")?,
                ],
                court_order_record_id: order.record_id.clone(),
                summary: "Arrested for breaching the non-molestation order".into(),
            }),
        )
        .await?;
    }
    l.publish(
        "police-iom",
        "iom-dean",
        Category::Iom(proto::IomMembership {
            person: by(&dean_pnc),
            cohort: proto::IomCohort::DomesticAbusePerpetrator.into(),
            lead_officer: "PC 4471".into(),
            offender_manager: "OM-0001".into(),
            contact_route: iom.1.into(),
            start_date: "2019-01-07".into(),
            end_date: String::new(),
        }),
    )
    .await?;
    l.publish(
        "probation",
        "probation-dean",
        Category::ProbationSupervision(proto::ProbationSupervision {
            person: by(&dean_pnc),
            r#type: proto::SupervisionType::CommunityOrder.into(),
            conditions: "Building Better Relationships programme; rehabilitation activity days"
                .into(),
            offender_manager: "OM-0001".into(),
            contact_route: "north.pdu@probation.example.test".into(),
            start_date: "2019-01-07".into(),
            end_date: String::new(),
        }),
    )
    .await?;

    // Children's Services: CP plans, then care orders placed at home with Chloe that
    // replace them; Dean's contact supervised only.
    for (child, child_id, plan_start) in [
        ("ben", &ben_csc, "2016-06-20"),
        ("amy", &amy_csc, "2017-09-20"),
    ] {
        let (plan_label, order_label, contact_label) = if child == "ben" {
            ("ben-cp-plan", "ben-care-order", "ben-contact")
        } else {
            ("amy-cp-plan", "amy-care-order", "amy-contact")
        };
        l.publish(
            "childrens-services",
            plan_label,
            Category::LegalStatus(proto::LegalStatus {
                child: by(child_id),
                r#type: proto::LegalStatusType::ChildProtectionPlan.into(),
                cp_categories: vec![
                    CpCategory::PhysicalAbuse.into(),
                    CpCategory::EmotionalAbuse.into(),
                ],
                start_date: plan_start.into(),
                ..Default::default()
            }),
        )
        .await?;
        let plan_id = l.record(plan_label);
        l.publish(
            "childrens-services",
            order_label,
            Category::LegalStatus(proto::LegalStatus {
                child: by(child_id),
                r#type: proto::LegalStatusType::LookedAfter.into(),
                looked_after_basis: proto::LookedAfterBasis::CareOrder.into(),
                placement: proto::PlacementType::PlacedWithParent.into(),
                placed_with: by(&chloe_csc),
                start_date: "2018-03-08".into(),
                replaces_record_id: plan_id,
                ..Default::default()
            }),
        )
        .await?;
        l.publish(
            "childrens-services",
            contact_label,
            Category::ContactArrangement(proto::ContactArrangement {
                child: by(child_id),
                with_person: by(&dean_csc),
                supervision: proto::ContactSupervision::SupervisedOnly.into(),
                conditions: "Father's contact with the children supervised only".into(),
                start_date: "2018-03-08".into(),
                end_date: String::new(),
            }),
        )
        .await?;
    }

    let amy_status = l
        .clients
        .get_mut("childrens-services")
        .context("client")?
        .get_safeguarding_status(GetSafeguardingStatusRequest {
            context: Some(practitioner("childrens-services")),
            child: by(&amy_csc),
        })
        .await
        .context("reading Amy's safeguarding status")?
        .into_inner()
        .status
        .context("no status")?;
    Ok(LoadedCase {
        persons: l.persons,
        records: l.records,
        published_by: l.counts,
        amy_status,
        confirmed,
        agency_persons: l.agency_persons,
    })
}
