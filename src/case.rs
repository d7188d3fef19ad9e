//! The synthetic case of DOMAIN.md (Amy and Ben Carter, their mother Chloe Carter, their
//! father Dean Mills), published through the public gRPC API as each agency system would,
//! so the demo exercises the real path. Every publish carries a fixed client request id:
//! loading the case twice stores it once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::api::proto::{
    self, CpCategory, Fact, GetSafeguardingStatusRequest, Identifier, IdentifierScheme, PersonRef,
    PractitionerContext, PublishRequest, Role, SafeguardingStatus, fact::Category,
    records_service_client::RecordsServiceClient,
};

/// Synthetic identifiers: NHS numbers in the 999 test range with valid check digits.
pub const AMY_NHS: &str = "9990000018";
pub const BEN_NHS: &str = "9990000026";
pub const CHLOE_NHS: &str = "9990000034";
pub const DEAN_NHS: &str = "9990000042";
pub const DEAN_PNC: &str = "18/0012345D";

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
}

/// Opens a mutual-TLS channel to the gateway as a demo agency system.
pub async fn channel(addr: SocketAddr, pki_dir: &Path, system: &str) -> anyhow::Result<Channel> {
    let read = |name: String| {
        let path = pki_dir.join(&name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
        .identity(Identity::from_pem(
            read(format!("{system}.pem"))?,
            read(format!("{system}.key"))?,
        ))
        .domain_name("localhost");
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    Channel::from_shared(format!("https://{host}"))?
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("connecting to the gateway at {host} as {system}"))
}

/// The practitioner each demo system acts for.
fn practitioner(system: &str) -> PractitionerContext {
    let (id, role) = match system {
        "police-iom" => ("IOM-0001", Role::IomOfficer),
        "probation" => ("OM-0001", Role::OffenderManager),
        "health-visiting" => ("HV-0001", Role::HealthVisitor),
        "gp-practice" => ("GP-0001", Role::Gp),
        "childrens-services" => ("SW-0001", Role::SocialWorker),
        _ => ("DSL-0001", Role::SchoolDsl),
    };
    PractitionerContext {
        practitioner_id: id.into(),
        role: role.into(),
        ..Default::default()
    }
}

fn nhs(value: &str) -> Option<PersonRef> {
    identifier(IdentifierScheme::NhsNumber, value)
}

fn identifier(scheme: IdentifierScheme, value: &str) -> Option<PersonRef> {
    Some(PersonRef {
        r#ref: Some(proto::person_ref::Ref::Identifier(Identifier {
            scheme: scheme.into(),
            value: value.into(),
            namespace: String::new(),
        })),
    })
}

fn person(
    identifiers: &[(IdentifierScheme, &str)],
    given: &str,
    family: &str,
    born: &str,
) -> Category {
    Category::Person(proto::PersonDetails {
        identifiers: identifiers
            .iter()
            .map(|(scheme, value)| Identifier {
                scheme: (*scheme).into(),
                value: (*value).into(),
                namespace: String::new(),
            })
            .collect(),
        given_name: given.into(),
        family_name: family.into(),
        date_of_birth: born.into(),
        address: "14 Synthetic Close, Exampletown".into(),
        ..Default::default()
    })
}

struct Loader {
    addr: SocketAddr,
    pki_dir: std::path::PathBuf,
    clients: HashMap<&'static str, RecordsServiceClient<Channel>>,
    records: HashMap<&'static str, String>,
    persons: HashMap<&'static str, String>,
    counts: Vec<(&'static str, usize)>,
}

impl Loader {
    async fn publish(
        &mut self,
        system: &'static str,
        label: &'static str,
        category: Category,
    ) -> anyhow::Result<proto::FactReceipt> {
        if !self.clients.contains_key(system) {
            let channel = channel(self.addr, &self.pki_dir, system).await?;
            self.clients
                .insert(system, RecordsServiceClient::new(channel));
        }
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
    };

    // Persons: the police know Dean; Children's Services know the mother and children.
    let dean = l
        .publish(
            "police-iom",
            "dean",
            person(
                &[(PncId, DEAN_PNC), (NhsNumber, DEAN_NHS)],
                "Dean",
                "Mills",
                "1990-04-12",
            ),
        )
        .await?;
    let chloe = l
        .publish(
            "childrens-services",
            "chloe",
            person(&[(NhsNumber, CHLOE_NHS)], "Chloe", "Carter", "1995-08-23"),
        )
        .await?;
    let ben = l
        .publish(
            "childrens-services",
            "ben",
            person(&[(NhsNumber, BEN_NHS)], "Ben", "Carter", "2016-09-05"),
        )
        .await?;
    let amy = l
        .publish(
            "childrens-services",
            "amy",
            person(&[(NhsNumber, AMY_NHS)], "Amy", "Carter", "2017-09-14"),
        )
        .await?;
    for (name, receipt) in [
        ("Dean", &dean),
        ("Chloe", &chloe),
        ("Ben", &ben),
        ("Amy", &amy),
    ] {
        l.persons.insert(name, receipt.person_ids[0].clone());
    }

    // Links, asserted by Children's Services.
    let link = |from: &str, to: &str, link_type: proto::LinkType| {
        Category::Link(proto::Link {
            from: nhs(from),
            to: nhs(to),
            r#type: link_type.into(),
        })
    };
    l.publish(
        "childrens-services",
        "link-chloe-amy",
        link(CHLOE_NHS, AMY_NHS, proto::LinkType::ParentOf),
    )
    .await?;
    l.publish(
        "childrens-services",
        "link-chloe-ben",
        link(CHLOE_NHS, BEN_NHS, proto::LinkType::ParentOf),
    )
    .await?;
    l.publish(
        "childrens-services",
        "link-dean-amy",
        link(DEAN_NHS, AMY_NHS, proto::LinkType::ParentOf),
    )
    .await?;
    l.publish(
        "childrens-services",
        "link-dean-ben",
        link(DEAN_NHS, BEN_NHS, proto::LinkType::ParentOf),
    )
    .await?;
    l.publish(
        "childrens-services",
        "link-chloe-dean",
        link(CHLOE_NHS, DEAN_NHS, proto::LinkType::ExPartnerOf),
    )
    .await?;
    l.publish(
        "childrens-services",
        "link-ben-amy",
        link(BEN_NHS, AMY_NHS, proto::LinkType::SiblingOf),
    )
    .await?;

    // Open involvements: what makes each agency's questions legitimate.
    let involvement = |who: &str, team: &str, route: &str, start: &str| {
        Category::Involvement(proto::Involvement {
            person: nhs(who),
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
    l.publish(
        "childrens-services",
        "csc-involved-amy",
        involvement(AMY_NHS, csc.0, csc.1, "2017-09-14"),
    )
    .await?;
    l.publish(
        "childrens-services",
        "csc-involved-ben",
        involvement(BEN_NHS, csc.0, csc.1, "2016-06-01"),
    )
    .await?;
    l.publish(
        "childrens-services",
        "csc-involved-chloe",
        involvement(CHLOE_NHS, csc.0, csc.1, "2016-06-01"),
    )
    .await?;
    let iom = (
        "Police IOM team (domestic abuse cohort)",
        "iom.team@police.example.test",
    );
    l.publish(
        "police-iom",
        "iom-involved-dean",
        involvement(DEAN_NHS, iom.0, iom.1, "2019-01-07"),
    )
    .await?;
    l.publish(
        "probation",
        "probation-involved-dean",
        involvement(
            DEAN_NHS,
            "Probation, North delivery unit",
            "north.pdu@probation.example.test",
            "2019-01-07",
        ),
    )
    .await?;
    let hv = ("Health visiting team West", "hv.west@nhs.example.test");
    l.publish(
        "health-visiting",
        "hv-involved-chloe",
        involvement(CHLOE_NHS, hv.0, hv.1, "2016-09-05"),
    )
    .await?;
    l.publish(
        "health-visiting",
        "hv-involved-amy",
        involvement(AMY_NHS, hv.0, hv.1, "2017-09-14"),
    )
    .await?;
    l.publish(
        "health-visiting",
        "hv-involved-ben",
        involvement(BEN_NHS, hv.0, hv.1, "2016-09-05"),
    )
    .await?;
    l.publish(
        "nursery",
        "nursery-involved-ben",
        involvement(
            BEN_NHS,
            "Little Acorns Nursery",
            "dsl@acorns.example.test",
            "2018-09-03",
        ),
    )
    .await?;

    // Health: who is responsible, never clinical notes.
    let health = |who: &str, role: proto::HealthRole, team: &str, route: &str, start: &str| {
        Category::HealthInvolvement(proto::HealthInvolvement {
            person: nhs(who),
            role: role.into(),
            team: team.into(),
            contact_route: route.into(),
            start_date: start.into(),
            end_date: String::new(),
        })
    };
    l.publish(
        "health-visiting",
        "hv-amy",
        health(
            AMY_NHS,
            proto::HealthRole::HealthVisitor,
            hv.0,
            hv.1,
            "2017-09-14",
        ),
    )
    .await?;
    l.publish(
        "health-visiting",
        "hv-ben",
        health(
            BEN_NHS,
            proto::HealthRole::HealthVisitor,
            hv.0,
            hv.1,
            "2016-09-05",
        ),
    )
    .await?;
    l.publish(
        "health-visiting",
        "hv-chloe",
        health(
            CHLOE_NHS,
            proto::HealthRole::HealthVisitor,
            hv.0,
            hv.1,
            "2016-09-05",
        ),
    )
    .await?;
    let gp = ("Riverside Surgery", "safeguarding@riverside.example.test");
    for (label, who, start) in [
        ("gp-amy", AMY_NHS, "2017-09-20"),
        ("gp-ben", BEN_NHS, "2016-09-12"),
        ("gp-chloe", CHLOE_NHS, "2013-01-01"),
        ("gp-dean", DEAN_NHS, "2012-01-01"),
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
            child: nhs(BEN_NHS),
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
                respondent: identifier(PncId, DEAN_PNC),
                protected_persons: vec![nhs(CHLOE_NHS).context("ref")?],
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
                    identifier(PncId, DEAN_PNC).context("ref")?,
                    nhs(CHLOE_NHS).context("ref")?,
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
            person: identifier(PncId, DEAN_PNC),
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
            person: nhs(DEAN_NHS),
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
    for (child, nhs_number, plan_start) in [
        ("ben", BEN_NHS, "2016-06-20"),
        ("amy", AMY_NHS, "2017-09-20"),
    ] {
        let plan_label = if child == "ben" {
            "ben-cp-plan"
        } else {
            "amy-cp-plan"
        };
        let order_label = if child == "ben" {
            "ben-care-order"
        } else {
            "amy-care-order"
        };
        let contact_label = if child == "ben" {
            "ben-contact"
        } else {
            "amy-contact"
        };
        l.publish(
            "childrens-services",
            plan_label,
            Category::LegalStatus(proto::LegalStatus {
                child: nhs(nhs_number),
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
                child: nhs(nhs_number),
                r#type: proto::LegalStatusType::LookedAfter.into(),
                looked_after_basis: proto::LookedAfterBasis::CareOrder.into(),
                placement: proto::PlacementType::PlacedWithParent.into(),
                placed_with: nhs(CHLOE_NHS),
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
                child: nhs(nhs_number),
                with_person: nhs(DEAN_NHS),
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
            child: nhs(AMY_NHS),
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
    })
}
