//! A child's current safeguarding status, derived from Children's Services' legal-status
//! facts. A care order with the child placed at home is a distinct, higher-risk state: when
//! it replaces a CP plan the plan's risk is carried over, and nothing here reads as a
//! lowering of concern.

use crate::domain::records::Day;
use crate::domain::records::facts::{
    CpCategory, EndReason, LegalStatus, LegalStatusType, LookedAfterBasis, PlacementType,
};

vocabulary! {
    /// Concern, lowest first. A care order placed with a parent ranks above a CP plan.
    ConcernLevel {
        NoCurrentStatus => "no_current_status",
        ChildInNeed => "child_in_need",
        SupervisionOrder => "supervision_order",
        ChildProtectionPlan => "child_protection_plan",
        LookedAfter => "looked_after",
        LookedAfterPlacedWithParent => "looked_after_placed_with_parent",
    }
}

/// The latest version of one legal-status fact, with how it ended if it did.
#[derive(Debug, Clone)]
pub struct LegalStatusVersion {
    pub record_id: String,
    pub status: LegalStatus,
    pub ended: Option<EndReason>,
}

/// What a practitioner should understand about the child now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeguardingStatus {
    pub person_id: String,
    pub level: ConcernLevel,
    pub summary: String,
    pub carried_over_risk: Vec<CpCategory>,
    pub current_record_ids: Vec<String>,
}

fn in_force(version: &LegalStatusVersion, today: Day) -> bool {
    version.ended.is_none() && version.status.end.is_none_or(|end| end >= today)
}

fn level_of(status: &LegalStatus) -> ConcernLevel {
    match status.status_type {
        LegalStatusType::ChildInNeed => ConcernLevel::ChildInNeed,
        LegalStatusType::SupervisionOrder => ConcernLevel::SupervisionOrder,
        LegalStatusType::ChildProtectionPlan => ConcernLevel::ChildProtectionPlan,
        LegalStatusType::LookedAfter => match status.placement {
            Some(PlacementType::PlacedWithParent) => ConcernLevel::LookedAfterPlacedWithParent,
            _ => ConcernLevel::LookedAfter,
        },
    }
}

fn describe(status: &LegalStatus) -> String {
    match status.status_type {
        LegalStatusType::ChildInNeed => "Child in need".into(),
        LegalStatusType::SupervisionOrder => "Subject to a supervision order".into(),
        LegalStatusType::ChildProtectionPlan => {
            format!("Child protection plan ({})", join(&status.cp_categories))
        }
        LegalStatusType::LookedAfter => {
            let basis = match status.looked_after_basis {
                Some(LookedAfterBasis::InterimCareOrder) => "interim care order",
                Some(LookedAfterBasis::CareOrder) => "care order",
                Some(LookedAfterBasis::Section20) => "section 20 accommodation",
                None => "basis not recorded",
            };
            let placement = match status.placement {
                Some(PlacementType::PlacedWithParent) => "placed at home with parent",
                Some(PlacementType::Foster) => "in foster care",
                Some(PlacementType::Residential) => "in residential care",
                Some(PlacementType::Kinship) => "placed with kinship carers",
                None => "placement not recorded",
            };
            format!("Looked after ({basis}), {placement}")
        }
    }
}

fn join(categories: &[CpCategory]) -> String {
    categories
        .iter()
        .map(|c| c.as_str().replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Derives the child's status from the latest version of each of their legal-status facts.
pub fn derive(person_id: &str, versions: &[LegalStatusVersion], today: Day) -> SafeguardingStatus {
    let mut current: Vec<&LegalStatusVersion> =
        versions.iter().filter(|v| in_force(v, today)).collect();
    current.sort_by_key(|v| std::cmp::Reverse(level_of(&v.status)));
    let looked_after_now = current
        .iter()
        .any(|v| v.status.status_type == LegalStatusType::LookedAfter);

    // A CP plan that a care order replaced keeps its risk for as long as the child is
    // looked after: the order is a change of legal status, not a lower concern.
    let mut carried_over_risk: Vec<CpCategory> = Vec::new();
    if looked_after_now {
        for plan in versions.iter().filter(|v| {
            v.status.status_type == LegalStatusType::ChildProtectionPlan
                && v.ended == Some(EndReason::ReplacedByCareOrder)
        }) {
            for category in &plan.status.cp_categories {
                if !carried_over_risk.contains(category) {
                    carried_over_risk.push(*category);
                }
            }
        }
    }

    let level = current
        .first()
        .map(|v| level_of(&v.status))
        .unwrap_or(ConcernLevel::NoCurrentStatus);
    let mut summary = if current.is_empty() {
        "No legal status currently recorded by Children's Services".to_owned()
    } else {
        current
            .iter()
            .map(|v| describe(&v.status))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !carried_over_risk.is_empty() {
        summary.push_str(&format!(
            "; the child protection plan was replaced by a care order and its risk is carried \
             over ({}): the child remains at risk",
            join(&carried_over_risk)
        ));
    }
    if level == ConcernLevel::LookedAfterPlacedWithParent {
        summary.push_str(
            "; a care order with the child at home is a higher-risk state that needs a robust \
             multi-agency plan",
        );
    }
    SafeguardingStatus {
        person_id: person_id.to_owned(),
        level,
        summary,
        carried_over_risk,
        current_record_ids: current.iter().map(|v| v.record_id.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::PersonRef;

    fn day(s: &str) -> Day {
        Day::parse(s).expect("date")
    }

    fn status(status_type: LegalStatusType) -> LegalStatus {
        LegalStatus {
            child: PersonRef::PersonId("amy".into()),
            status_type,
            cp_categories: vec![],
            looked_after_basis: None,
            placement: None,
            placed_with: None,
            start: day("2017-06-01"),
            end: None,
            replaces_record_id: None,
        }
    }

    fn cp_plan(ended: Option<EndReason>) -> LegalStatusVersion {
        let mut plan = status(LegalStatusType::ChildProtectionPlan);
        plan.cp_categories = vec![CpCategory::Neglect, CpCategory::EmotionalAbuse];
        if ended.is_some() {
            plan.end = Some(day("2018-03-01"));
        }
        LegalStatusVersion {
            record_id: "cp".into(),
            status: plan,
            ended,
        }
    }

    fn care_order_at_home() -> LegalStatusVersion {
        let mut order = status(LegalStatusType::LookedAfter);
        order.looked_after_basis = Some(LookedAfterBasis::CareOrder);
        order.placement = Some(PlacementType::PlacedWithParent);
        order.placed_with = Some(PersonRef::PersonId("chloe".into()));
        order.start = day("2018-03-01");
        order.replaces_record_id = Some("cp".into());
        LegalStatusVersion {
            record_id: "co".into(),
            status: order,
            ended: None,
        }
    }

    #[test]
    fn a_care_order_at_home_replacing_a_cp_plan_is_never_a_downgrade() {
        let today = day("2019-05-01");
        let before = derive("amy", &[cp_plan(None)], today);
        let after = derive(
            "amy",
            &[
                cp_plan(Some(EndReason::ReplacedByCareOrder)),
                care_order_at_home(),
            ],
            today,
        );
        assert_eq!(before.level, ConcernLevel::ChildProtectionPlan);
        assert_eq!(after.level, ConcernLevel::LookedAfterPlacedWithParent);
        assert!(after.level > before.level);
        assert_eq!(
            after.carried_over_risk,
            [CpCategory::Neglect, CpCategory::EmotionalAbuse]
        );
        assert_eq!(after.current_record_ids, ["co"]);
        assert!(
            after
                .summary
                .starts_with("Looked after (care order), placed at home with parent"),
            "{}",
            after.summary
        );
        assert!(
            after.summary.contains("remains at risk"),
            "{}",
            after.summary
        );
        for lowering in ["no cp plan", "de-escalat", "stepped down", "lower"] {
            assert!(
                !after.summary.to_lowercase().contains(lowering),
                "{}",
                after.summary
            );
        }
    }

    #[test]
    fn a_plan_closed_for_another_reason_carries_nothing_over() {
        let status = derive(
            "amy",
            &[cp_plan(Some(EndReason::Closed))],
            day("2019-05-01"),
        );
        assert_eq!(status.level, ConcernLevel::NoCurrentStatus);
        assert!(status.carried_over_risk.is_empty());
        assert!(status.current_record_ids.is_empty());
    }
}
