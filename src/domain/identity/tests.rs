//! The engine's behaviour on the cases DOMAIN.md names: NHS numbers, twins, common names,
//! nicknames, swapped dates, close candidates, and explanations that name no one.

use std::collections::HashMap;

use super::*;
use crate::domain::identity::rules::tests::POLICY;
use crate::domain::records::facts::PersonDetails;

fn rules() -> MatchRules {
    MatchRules::parse(POLICY).expect("policies/matching.toml parses")
}

/// Shares of persons by name; names not listed are unknown.
#[derive(Default)]
struct Shares(HashMap<(NameField, String), f64>);

impl Shares {
    fn with(mut self, field: NameField, name: &str, share: f64) -> Self {
        self.0.insert((field, name.to_owned()), share);
        self
    }
}

impl TermFrequencies for Shares {
    fn share(&self, field: NameField, value: &str) -> Option<f64> {
        self.0.get(&(field, value.to_owned())).copied()
    }
}

fn person(given: &str, family: &str, dob: &str, postcode: &str, address: &str) -> Demographics {
    Demographics::from_details(&PersonDetails {
        identifiers: vec![],
        person: None,
        given_name: given.into(),
        family_name: family.into(),
        date_of_birth: Day::parse(dob),
        address: address.into(),
        middle_names: vec![],
        other_names: vec![],
        sex: None,
        postcode: Postcode::parse(postcode, "postcode").ok(),
        address_lines: vec![],
    })
}

fn candidate(id: &str, identifiers: Vec<Identifier>, records: Vec<Demographics>) -> Candidate {
    Candidate {
        person_id: id.into(),
        identifiers,
        records,
    }
}

fn nhs(value: &str) -> Identifier {
    Identifier::nhs_number(value, "nhs").expect("valid NHS number")
}

fn outcome(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Link { .. } => "link",
        Resolution::Review { .. } => "review",
        Resolution::New { .. } => "new",
    }
}

fn reasons(resolution: &Resolution) -> Vec<String> {
    match resolution {
        Resolution::Review { reasons, .. } => reasons.clone(),
        _ => vec![],
    }
}

fn lucy() -> Demographics {
    person(
        "Lucy",
        "Hartley",
        "2015-03-04",
        "SO23 8UJ",
        "12 Mill Road Winchester",
    )
}

#[test]
fn an_nhs_number_conflict_is_never_linked_nor_reviewed() {
    let rules = rules();
    let resolution = rules.resolve(
        &[nhs("9434765919")],
        &lucy(),
        &[candidate("p1", vec![nhs("9434765870")], vec![lucy()])],
        &Shares::default(),
    );
    assert_eq!(resolution, Resolution::New { best: None });
    let score = rules.score(
        &[nhs("9434765919")],
        &lucy(),
        &candidate("p1", vec![nhs("9434765870")], vec![lucy()]),
        &Shares::default(),
    );
    assert_eq!(
        score.vetoes,
        [Veto::IdentifierConflict {
            scheme: "nhs_number".into()
        }]
    );
    // The same NHS number, or one only on one side, is no conflict.
    for theirs in [vec![nhs("9434765919")], vec![]] {
        let resolution = rules.resolve(
            &[nhs("9434765919")],
            &lucy(),
            &[candidate("p1", theirs, vec![lucy()])],
            &Shares::default(),
        );
        assert_eq!(outcome(&resolution), "link");
    }
}

#[test]
fn local_ids_conflict_only_within_one_agency_namespace() {
    let local = |agency: &str, namespace: &str, value: &str| Identifier::Local {
        agency: agency.into(),
        namespace: namespace.into(),
        value: value.into(),
    };
    let rules = rules();
    for (theirs, conflict) in [
        (local("police", "niche", "B2"), true),
        (local("police", "custody", "B2"), false),
        (local("health", "niche", "B2"), false),
        (local("police", "niche", "A1"), false),
    ] {
        let score = rules.score(
            &[local("police", "niche", "A1")],
            &lucy(),
            &candidate("p1", vec![theirs], vec![lucy()]),
            &Shares::default(),
        );
        let found = score
            .vetoes
            .iter()
            .any(|v| matches!(v, Veto::IdentifierConflict { .. }));
        assert_eq!(found, conflict);
    }
}

#[test]
fn twins_are_not_auto_linked() {
    let rules = rules();
    let twin = person(
        "Oscar",
        "Hartley",
        "2015-03-04",
        "SO23 8UJ",
        "12 Mill Road Winchester",
    );
    let resolution = rules.resolve(
        &[],
        &twin,
        &[candidate("p1", vec![], vec![lucy()])],
        &Shares::default(),
    );
    assert_eq!(outcome(&resolution), "review", "{resolution:?}");
    assert!(reasons(&resolution).contains(&Veto::GivenNamesDiffer.describe()));
    // A twin's own later record links to the twin, not to the sibling.
    let resolution = rules.resolve(
        &[],
        &twin,
        &[
            candidate("p1", vec![], vec![lucy()]),
            candidate("p2", vec![], vec![twin.clone()]),
        ],
        &Shares::default(),
    );
    assert!(
        matches!(&resolution, Resolution::Link { person_id, .. } if person_id == "p2"),
        "{resolution:?}"
    );
}

#[test]
fn a_common_name_with_the_same_dob_elsewhere_is_not_auto_linked() {
    let rules = rules();
    let shares = Shares::default().with(NameField::Given, "john", 0.02).with(
        NameField::Family,
        "smith",
        0.012,
    );
    let here = person(
        "John",
        "Smith",
        "1984-06-01",
        "SO23 8UJ",
        "4 Kings Avenue Winchester",
    );
    let there = person(
        "John",
        "Smith",
        "1984-06-01",
        "M1 1AE",
        "77 Portland Street Manchester",
    );
    let resolution = rules.resolve(&[], &there, &[candidate("p1", vec![], vec![here])], &shares);
    assert_ne!(outcome(&resolution), "link", "{resolution:?}");
}

#[test]
fn nickname_with_the_same_dob_and_postcode_links() {
    let rules = rules();
    for (recorded, called) in [
        ("Robert", "Bobby"),
        ("Elizabeth", "Liz"),
        ("William", "Bill"),
        ("Rob", "Robert"),
        ("Beth", "Elizabeth"),
    ] {
        let on_record = person(recorded, "Pemberton", "1990-11-23", "LS6 2AB", "");
        let incoming = person(called, "Pemberton", "1990-11-23", "LS6 2AB", "");
        let resolution = rules.resolve(
            &[],
            &incoming,
            &[candidate("p1", vec![], vec![on_record])],
            &Shares::default(),
        );
        assert_eq!(
            outcome(&resolution),
            "link",
            "{recorded}/{called}: {resolution:?}"
        );
        let Resolution::Link { score, .. } = resolution else {
            continue;
        };
        assert_eq!(score.steps[0].level, "nickname");
    }
}

#[test]
fn misspelt_hyphenated_and_reordered_names_link_when_the_rest_agrees() {
    let rules = rules();
    let on_record = person(
        "Zoë",
        "O'Neill-Smith",
        "2012-07-30",
        "SO23 8UJ",
        "3 Elm Close",
    );
    for (given, family) in [
        ("Zoe", "ONeill Smith"),
        ("ZOE", "Smith-O'Neill"),
        ("Zoe", "Smith"),
        ("Zoey", "O'Neill-Smith"),
        ("Zoe", "O'Niell-Smith"),
    ] {
        let incoming = person(given, family, "2012-07-30", "SO23 8UJ", "3 Elm Close");
        let resolution = rules.resolve(
            &[],
            &incoming,
            &[candidate("p1", vec![], vec![on_record.clone()])],
            &Shares::default(),
        );
        assert_eq!(
            outcome(&resolution),
            "link",
            "{given} {family}: {resolution:?}"
        );
    }
}

/// The file allows an automatic link up to `day_month_swapped`: with names, postcode and
/// address agreeing, a keyed-in swap (04/03 for 03/04) links; a date further off (same year
/// and month only) is vetoed and goes to review.
#[test]
fn swapped_day_and_month_links_and_a_further_date_goes_to_review() {
    let rules = rules();
    for (dob, expected, level) in [
        ("2015-04-03", "link", "day_month_swapped"),
        ("2015-03-05", "link", "one_digit"),
        ("2015-03-27", "review", "year_month"),
    ] {
        let incoming = person(
            "Lucy",
            "Hartley",
            dob,
            "SO23 8UJ",
            "12 Mill Road Winchester",
        );
        let resolution = rules.resolve(
            &[],
            &incoming,
            &[candidate("p1", vec![], vec![lucy()])],
            &Shares::default(),
        );
        assert_eq!(outcome(&resolution), expected, "{dob}: {resolution:?}");
        let score = rules.score(
            &[],
            &incoming,
            &candidate("p1", vec![], vec![lucy()]),
            &Shares::default(),
        );
        assert_eq!(score.steps[2].level, level);
        assert_eq!(
            score.vetoes.contains(&Veto::DateOfBirthTooFar),
            expected == "review"
        );
    }
}

#[test]
fn a_close_runner_up_sends_the_decision_to_review() {
    let rules = rules();
    let resolution = rules.resolve(
        &[],
        &lucy(),
        &[
            candidate("p1", vec![], vec![lucy()]),
            candidate("p2", vec![], vec![lucy()]),
        ],
        &Shares::default(),
    );
    let Resolution::Review {
        candidates,
        reasons,
    } = &resolution
    else {
        panic!("expected review, got {resolution:?}");
    };
    assert_eq!(candidates.len(), 2);
    assert_eq!(candidates[0].0, "p1", "ties are ordered by person id");
    assert!(
        reasons.contains(&"the best two candidates score within 2.0 of each other".to_owned()),
        "{reasons:?}"
    );
}

#[test]
fn sex_recorded_differently_goes_to_review() {
    let rules = rules();
    let mut incoming = lucy();
    incoming.sex = Some(Sex::Male);
    let mut on_record = lucy();
    on_record.sex = Some(Sex::Female);
    let resolution = rules.resolve(
        &[],
        &incoming,
        &[candidate("p1", vec![], vec![on_record])],
        &Shares::default(),
    );
    assert_eq!(outcome(&resolution), "review");
    assert!(reasons(&resolution).contains(&"sex differs".to_owned()));
}

#[test]
fn a_candidate_scores_by_its_best_record() {
    let rules = rules();
    let moved = person("Lucy", "Hartley", "2015-03-04", "M1 1AE", "1 Other Street");
    let one = rules.score(
        &[],
        &lucy(),
        &candidate("p1", vec![], vec![moved.clone()]),
        &Shares::default(),
    );
    let both = rules.score(
        &[],
        &lucy(),
        &candidate("p1", vec![], vec![moved, lucy()]),
        &Shares::default(),
    );
    assert!(both.match_weight > one.match_weight);
    assert_eq!(both.steps[3].level, "exact");
}

#[test]
fn a_common_name_counts_for_less_than_a_rare_one() {
    let rules = rules();
    let score = |share: f64| {
        rules.score(
            &[],
            &lucy(),
            &candidate("p1", vec![], vec![lucy()]),
            &Shares::default().with(NameField::Family, "hartley", share),
        )
    };
    let (common, rare) = (score(0.05), score(0.0002));
    assert!(common.match_weight < rare.match_weight);
    assert!(common.steps[1].tf_adjusted);
    // Bounded by the file: a share below the floor counts as the floor.
    assert_eq!(score(1e-9).match_weight, score(0.0001).match_weight);
}

#[test]
fn explain_names_no_personal_value() {
    let rules = rules();
    let incoming = person("Zoë", "Pemberton", "2015-04-03", "SO23 8UJ", "12 Mill Road");
    let score = rules.score(
        &[nhs("9434765919")],
        &incoming,
        &candidate("p1", vec![nhs("9434765870")], vec![lucy()]),
        &Shares::default(),
    );
    let lines = score.explain();
    assert!(lines[0].starts_with("prior:"));
    assert_eq!(lines.len(), 1 + score.steps.len() + score.vetoes.len() + 1);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("times more likely to be a match"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("times less likely to be a match"))
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("match probability"))
    );
    let text = lines.join("\n").to_lowercase();
    for personal in [
        "lucy",
        "zoe",
        "zoë",
        "hartley",
        "pemberton",
        "2015",
        "03-04",
        "so23",
        "8uj",
        "mill",
        "9434765919",
        "9434765870",
    ] {
        assert!(
            !text.contains(personal),
            "explain() shows `{personal}`:\n{text}"
        );
    }
}

#[test]
fn blocking_keys_find_the_corrupted_copy_and_show_no_names() {
    let rules = rules();
    let original = lucy();
    let keys = rules.blocking_keys(&original);
    assert_eq!(keys, rules.blocking_keys(&original), "deterministic");
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "deduplicated");
    for key in &keys {
        let (rule, _) = key.split_once(':').expect("prefixed");
        assert!(rules.blocking.iter().any(|b| b.name == rule));
        assert!(!key.to_lowercase().contains("lucy") && !key.to_lowercase().contains("hartley"));
    }
    for (label, copy) in [
        (
            "typo in family name",
            person("Lucy", "Hartely", "2015-03-04", "SO23 8UJ", ""),
        ),
        ("nickname", person("Lucie", "Hartley", "2015-03-04", "", "")),
        (
            "swapped day and month",
            person("Lucy", "Hartley", "2015-04-03", "", ""),
        ),
        (
            "moved",
            person("Lucy", "Hartley", "2015-03-04", "M1 1AE", ""),
        ),
        (
            "wrong day, moved",
            person("Lucy", "Hartley", "2015-03-14", "M1 1AE", ""),
        ),
        (
            "wrong year",
            person("Lucy", "Hartley", "2016-03-04", "SO23 8UJ", ""),
        ),
        (
            "new family name",
            person("Lucy", "Brown", "2015-03-04", "", ""),
        ),
        (
            "hyphenated",
            person("Lucy", "Brown-Hartley", "2015-03-04", "", ""),
        ),
    ] {
        let theirs = rules.blocking_keys(&copy);
        assert!(
            theirs.iter().any(|k| keys.contains(k)),
            "{label}: no shared key"
        );
    }
    let stranger = person("Amir", "Okafor", "1971-09-30", "LS6 2AB", "");
    let theirs = rules.blocking_keys(&stranger);
    assert!(!theirs.iter().any(|k| keys.contains(k)));
}

#[test]
fn a_field_contradicting_the_candidate_vetoes_unless_another_record_agrees() {
    let rules = rules();
    let no_dob = person("Lucy", "Hartley", "", "SO23 8UJ", "12 Mill Road Winchester");
    let far = person(
        "Lucy",
        "Hartley",
        "1988-01-30",
        "SO23 8UJ",
        "12 Mill Road Winchester",
    );
    for (records, vetoed) in [
        (vec![no_dob.clone(), far.clone()], true),
        (vec![far.clone(), lucy()], false),
        (vec![no_dob], false),
    ] {
        let score = rules.score(
            &[],
            &lucy(),
            &candidate("p1", vec![], records),
            &Shares::default(),
        );
        assert_eq!(score.vetoes.contains(&Veto::DateOfBirthTooFar), vetoed);
    }
}

#[test]
fn a_move_across_postal_districts_is_for_a_person_to_judge() {
    let rules = rules();
    let none = Shares::default();
    let moved = person(
        "Lucy",
        "Hartley",
        "2015-03-04",
        "PO1 2DX",
        "5 Harbour Street",
    );
    let decided = rules.resolve(
        &[],
        &moved,
        &[candidate("lucy", vec![], vec![lucy()])],
        &none,
    );
    assert_eq!(outcome(&decided), "review", "{decided:?}");
    assert!(
        reasons(&decided).iter().any(|r| r.contains("districts")),
        "{:?}",
        reasons(&decided)
    );
    // A move within the district (same sector) is no such doubt.
    let nearby = person("Lucy", "Hartley", "2015-03-04", "SO23 8AB", "40 Mill Road");
    let near = rules.resolve(
        &[],
        &nearby,
        &[candidate("lucy", vec![], vec![lucy()])],
        &none,
    );
    let score = rules.score(
        &[],
        &nearby,
        &candidate("lucy", vec![], vec![lucy()]),
        &none,
    );
    assert!(
        !score.vetoes.contains(&Veto::PostcodeDistrictsDiffer),
        "{near:?}"
    );
    // A rare family name moving is likely the same person: no veto where its share of
    // persons on record is known to be small.
    let rare = Shares::default().with(NameField::Family, "hartley", 0.00001);
    let linked = rules.resolve(
        &[],
        &moved,
        &[candidate("lucy", vec![], vec![lucy()])],
        &rare,
    );
    assert!(
        !rules
            .score(&[], &moved, &candidate("lucy", vec![], vec![lucy()]), &rare)
            .vetoes
            .contains(&Veto::PostcodeDistrictsDiffer),
        "{linked:?}"
    );
    // And an older record of the candidate in the new district lifts the doubt.
    let both = candidate("lucy", vec![], vec![lucy(), moved.clone()]);
    let again = rules.score(&[], &moved, &both, &none);
    assert!(!again.vetoes.contains(&Veto::PostcodeDistrictsDiffer));
}
