//! Comparing records: blocking keys, each comparison's level, the score with its vetoes,
//! the decision and its explanation in words.

use std::cell::OnceCell;

use rphonetic::DoubleMetaphone;

use super::rules::{Comparison, Field, KeyPart, Level, MatchRules, Test};
use super::{Candidate, Demographics, NameField, Resolution, Score, Step, TermFrequencies, Veto};
use crate::domain::records::{Day, Identifier};

/// The Double Metaphone codes (primary, alternate) of a name written without spaces.
fn phonetic(name: &str) -> (String, String) {
    let compact: String = name.chars().filter(|c| *c != ' ').collect();
    let result = DoubleMetaphone::default().double_metaphone(&compact);
    (result.primary(), result.alternate())
}

fn codes_equal((pa, aa): &(String, String), (pb, ab): &(String, String)) -> bool {
    !pa.is_empty() && (pa == pb || pa == ab || aa == pb || (!aa.is_empty() && aa == ab))
}

/// A record with what comparing it costs most to work out (sounds, family-name forms),
/// each computed at most once: the incoming record is compared with every candidate.
pub(crate) struct Prepared<'a> {
    d: &'a Demographics,
    given_code: OnceCell<(String, String)>,
    family_code: OnceCell<(String, String)>,
    family_forms: OnceCell<Vec<String>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(d: &'a Demographics) -> Self {
        Prepared {
            d,
            given_code: OnceCell::new(),
            family_code: OnceCell::new(),
            family_forms: OnceCell::new(),
        }
    }

    fn given_code(&self) -> &(String, String) {
        self.given_code
            .get_or_init(|| phonetic(self.d.given_names.first().map_or("", String::as_str)))
    }

    fn family_code(&self) -> &(String, String) {
        self.family_code
            .get_or_init(|| phonetic(&self.d.family_name))
    }

    fn family_forms(&self) -> &[String] {
        self.family_forms.get_or_init(|| self.d.family_forms())
    }
}

/// The day as eight digits, for counting digits that differ.
fn digits(day: Day) -> [u8; 8] {
    let text = format!("{:04}{:02}{:02}", day.year(), day.month(), day.day());
    let mut out = [0u8; 8];
    for (slot, byte) in out.iter_mut().zip(text.bytes()) {
        *slot = byte;
    }
    out
}

/// The share of common words between two addresses (Jaccard).
fn token_overlap(a: &str, b: &str) -> f64 {
    let a: std::collections::BTreeSet<&str> = a.split(' ').collect();
    let b: std::collections::BTreeSet<&str> = b.split(' ').collect();
    let common = a.intersection(&b).count() as f64;
    let all = a.union(&b).count() as f64;
    if all == 0.0 { 0.0 } else { common / all }
}

/// The words of an address that carry a digit (house and flat numbers).
fn numbers(address: &str) -> Vec<&str> {
    address
        .split(' ')
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .collect()
}

/// What one comparison found for a pair: the level's index, its Bayes factor, whether it
/// was adjusted for how common the name is.
type Reading = (usize, f64, bool);

/// The level one comparison reaches, and the value agreed on where the level is an exact
/// name agreement (for the term-frequency adjustment).
struct Reached {
    index: usize,
    agreed: Option<String>,
}

impl MatchRules {
    fn nickname_groups(&self, name: &str) -> &[u32] {
        self.nicknames.get(name).map_or(&[], Vec::as_slice)
    }

    fn reach(&self, comparison: &Comparison, pa: &Prepared, pb: &Prepared) -> Reached {
        let (a, b) = (pa.d, pb.d);
        // The null level is decided before any test runs (a field not recorded on both).
        let holds = |test: Test| -> Option<Option<String>> {
            let yes = |ok: bool| ok.then_some(None);
            match comparison.field {
                Field::GivenName => {
                    let (x, y) = (a.given_names.first()?, b.given_names.first()?);
                    match test {
                        // First and middle names all agree, and there are middle names.
                        Test::ExactWithMiddleNames => (a.given_names.len() > 1
                            && a.given_names == b.given_names)
                            .then(|| Some(x.clone())),
                        Test::Exact => (x == y).then(|| Some(x.clone())),
                        Test::ExactAnyName => a
                            .all_given_names()
                            .find(|n| b.all_given_names().any(|m| m == *n))
                            .map(|n| Some(n.to_owned())),
                        Test::Nickname => yes(self
                            .nickname_groups(x)
                            .iter()
                            .any(|g| self.nickname_groups(y).contains(g))),
                        Test::JaroWinkler(t) => yes(strsim::jaro_winkler(x, y) >= t),
                        Test::Phonetic => yes(codes_equal(pa.given_code(), pb.given_code())),
                        Test::Else => Some(None),
                        _ => None,
                    }
                }
                Field::FamilyName => {
                    let (x, y) = (a.family_name.as_str(), b.family_name.as_str());
                    if x.is_empty() || y.is_empty() {
                        return None;
                    }
                    match test {
                        Test::Exact => (x == y).then(|| Some(x.to_owned())),
                        Test::ExactAnyName => {
                            let theirs = pb.family_forms();
                            pa.family_forms()
                                .iter()
                                .find(|f| theirs.contains(f))
                                .map(|f| Some(f.clone()))
                        }
                        Test::Nickname => yes(self
                            .nickname_groups(x)
                            .iter()
                            .any(|g| self.nickname_groups(y).contains(g))),
                        Test::JaroWinkler(t) => yes(strsim::jaro_winkler(x, y) >= t),
                        Test::Phonetic => yes(codes_equal(pa.family_code(), pb.family_code())),
                        Test::Else => Some(None),
                        _ => None,
                    }
                }
                Field::DateOfBirth => {
                    let (x, y) = (a.date_of_birth?, b.date_of_birth?);
                    match test {
                        Test::Exact => yes(x == y),
                        Test::OneDigit => {
                            let (dx, dy) = (digits(x), digits(y));
                            yes(dx.iter().zip(&dy).filter(|(p, q)| p != q).count() == 1)
                        }
                        Test::DayMonthSwapped => yes(x.year() == y.year()
                            && x.day() == y.month()
                            && x.month() == y.day()),
                        Test::YearMonth => yes(x.year() == y.year() && x.month() == y.month()),
                        Test::Year => yes(x.year() == y.year()),
                        Test::Else => Some(None),
                        _ => None,
                    }
                }
                Field::Postcode => {
                    let (x, y) = (a.postcode.as_ref()?, b.postcode.as_ref()?);
                    match test {
                        Test::Exact => yes(x == y),
                        Test::Sector => yes(x.sector() == y.sector()),
                        Test::District => yes(x.district() == y.district()),
                        Test::Else => Some(None),
                        _ => None,
                    }
                }
                Field::Address => {
                    let (x, y) = (a.address.as_str(), b.address.as_str());
                    if x.is_empty() || y.is_empty() {
                        return None;
                    }
                    match test {
                        Test::Exact => yes(x == y),
                        // Near agreement is the same house written differently, never
                        // a neighbour: the house numbers must agree.
                        Test::JaroWinkler(t) => {
                            yes(numbers(x) == numbers(y) && strsim::jaro_winkler(x, y) >= t)
                        }
                        Test::TokenOverlap(t) => {
                            yes(numbers(x) == numbers(y) && token_overlap(x, y) >= t)
                        }
                        Test::Else => Some(None),
                        _ => None,
                    }
                }
                Field::Sex => {
                    let (x, y) = (a.sex?, b.sex?);
                    match test {
                        Test::Exact => yes(x == y),
                        Test::Else => Some(None),
                        _ => None,
                    }
                }
            }
        };
        let recorded = match comparison.field {
            Field::GivenName => !a.given_names.is_empty() && !b.given_names.is_empty(),
            Field::FamilyName => !a.family_name.is_empty() && !b.family_name.is_empty(),
            Field::DateOfBirth => a.date_of_birth.is_some() && b.date_of_birth.is_some(),
            Field::Postcode => a.postcode.is_some() && b.postcode.is_some(),
            Field::Address => !a.address.is_empty() && !b.address.is_empty(),
            Field::Sex => a.sex.is_some() && b.sex.is_some(),
        };
        let postcodes_agree = a.postcode.is_some() && a.postcode == b.postcode;
        if !recorded || (comparison.only_when_postcodes_agree && !postcodes_agree) {
            return Reached {
                index: 0,
                agreed: None,
            };
        }
        for (index, level) in comparison.levels.iter().enumerate().skip(1) {
            if let Some(agreed) = holds(level.test) {
                return Reached { index, agreed };
            }
        }
        Reached {
            index: comparison.levels.len() - 1,
            agreed: None,
        }
    }

    /// The index of the level a pair reaches in one comparison.
    pub(crate) fn level_index(
        &self,
        comparison: &Comparison,
        a: &Demographics,
        b: &Demographics,
    ) -> usize {
        self.reach(comparison, &Prepared::new(a), &Prepared::new(b))
            .index
    }

    /// The Bayes factor of a level, adjusted Splink's way where the level asks for it:
    /// u replaced by the agreed value's share of persons on record, bounded by the file.
    fn bayes_factor(
        &self,
        field: Field,
        level: &Level,
        agreed: Option<&str>,
        tf: &dyn TermFrequencies,
    ) -> (f64, bool) {
        let name_field = match field {
            Field::GivenName => Some(NameField::Given),
            Field::FamilyName => Some(NameField::Family),
            _ => None,
        };
        if level.tf
            && let (Some(name_field), Some(value)) = (name_field, agreed)
            && let Some(share) = tf.share(name_field, value)
        {
            let bounds = &self.file.term_frequency;
            let u = share.clamp(bounds.min_share, bounds.max_share);
            return (level.m / u, true);
        }
        (level.m / level.u, false)
    }

    /// One record against another: the summed log2 Bayes factors, each comparison's
    /// reading, the vetoes.
    /// Whether the record's family name is common enough (or of unknown frequency) that
    /// a namesake elsewhere is as likely as a move.
    fn commonly_named(&self, a: &Prepared, tf: &dyn TermFrequencies) -> bool {
        tf.share(NameField::Family, &a.d.family_name)
            .is_none_or(|share| share >= self.file.postcode_veto_min_family_share)
    }

    fn compare_records(
        &self,
        a: &Prepared,
        b: &Prepared,
        tf: &dyn TermFrequencies,
    ) -> (f64, Vec<Reading>, Vec<Veto>) {
        let mut weight = 0.0;
        let mut steps = Vec::with_capacity(self.comparisons.len());
        let mut vetoes = Vec::new();
        for comparison in &self.comparisons {
            let reached = self.reach(comparison, a, b);
            let level = &comparison.levels[reached.index];
            let (bayes_factor, tf_adjusted) = if reached.index == 0 {
                (1.0, false)
            } else {
                self.bayes_factor(comparison.field, level, reached.agreed.as_deref(), tf)
            };
            weight += bayes_factor.log2();
            let is_else = reached.index + 1 == comparison.levels.len();
            match comparison.field {
                Field::DateOfBirth
                    if reached.index > 0
                        && self
                            .dob_auto_link_max
                            .is_some_and(|max| reached.index > max) =>
                {
                    vetoes.push(Veto::DateOfBirthTooFar);
                }
                Field::GivenName if is_else && self.file.veto_given_names_differ => {
                    vetoes.push(Veto::GivenNamesDiffer);
                }
                Field::Postcode
                    if reached.index > 0
                        && is_else
                        && self.file.veto_postcode_districts_differ
                        && self.commonly_named(a, tf) =>
                {
                    vetoes.push(Veto::PostcodeDistrictsDiffer);
                }
                _ => {}
            }
            steps.push((reached.index, bayes_factor, tf_adjusted));
        }
        if self.file.veto_sex_differs
            && let (Some(x), Some(y)) = (a.d.sex, b.d.sex)
            && x != y
        {
            vetoes.push(Veto::SexDiffers);
        }
        (weight, steps, vetoes)
    }

    /// Best score of the incoming record against any of the candidate's records, with
    /// vetoes: identifier conflict (same scheme, different value), sex recorded on both and
    /// different, date of birth beyond the level the file allows for an automatic link,
    /// given names entirely different.
    pub fn score(
        &self,
        identifiers: &[Identifier],
        incoming: &Demographics,
        candidate: &Candidate,
        tf: &dyn TermFrequencies,
    ) -> Score {
        self.score_prepared(identifiers, &Prepared::new(incoming), candidate, tf)
    }

    fn score_prepared(
        &self,
        identifiers: &[Identifier],
        prepared: &Prepared,
        candidate: &Candidate,
        tf: &dyn TermFrequencies,
    ) -> Score {
        let incoming = prepared.d;
        let mut best: Option<(f64, Vec<Reading>, Vec<Veto>)> = None;
        // A date of birth or sex stands against the candidate when one of its records
        // contradicts it and none agrees, even when its best record lacks the field.
        let (mut dob_far, mut dob_near, mut sex_differs, mut sex_agrees) =
            (false, false, false, false);
        // Likewise a postcode: any record of the candidate in the same district stands.
        let (mut moved_far, mut moved_near) = (false, false);
        for record in &candidate.records {
            let compared = self.compare_records(prepared, &Prepared::new(record), tf);
            let far = compared.2.contains(&Veto::DateOfBirthTooFar);
            let dob_recorded = incoming.date_of_birth.is_some() && record.date_of_birth.is_some();
            dob_far |= far;
            dob_near |= dob_recorded && !far;
            if let (Some(x), Some(y)) = (incoming.sex, record.sex) {
                sex_differs |= x != y;
                sex_agrees |= x == y;
            }
            if incoming.postcode.is_some() && record.postcode.is_some() {
                let far = compared.2.contains(&Veto::PostcodeDistrictsDiffer);
                moved_far |= far;
                moved_near |= !far;
            }
            // Among records of equal weight, the one with fewer vetoes stands.
            let better = best.as_ref().is_none_or(|(w, _, v)| {
                compared.0 > *w || (compared.0 == *w && compared.2.len() < v.len())
            });
            if better {
                best = Some(compared);
            }
        }
        let (weight, readings, mut vetoes) = best.unwrap_or_default();
        // The steps are written out for the best record only.
        let steps = self
            .comparisons
            .iter()
            .zip(readings)
            .map(|(comparison, (index, bayes_factor, tf_adjusted))| {
                let level = &comparison.levels[index];
                Step {
                    comparison: comparison.field.name().to_owned(),
                    level: level.code.clone(),
                    description: level.label.clone(),
                    bayes_factor,
                    tf_adjusted,
                }
            })
            .collect();
        vetoes.retain(|v| {
            !matches!(
                v,
                Veto::DateOfBirthTooFar | Veto::SexDiffers | Veto::PostcodeDistrictsDiffer
            )
        });
        if moved_far && !moved_near {
            vetoes.push(Veto::PostcodeDistrictsDiffer);
        }
        if dob_far && !dob_near {
            vetoes.push(Veto::DateOfBirthTooFar);
        }
        if self.file.veto_sex_differs && sex_differs && !sex_agrees {
            vetoes.push(Veto::SexDiffers);
        }
        for scheme in identifier_conflicts(identifiers, &candidate.identifiers) {
            vetoes.insert(0, Veto::IdentifierConflict { scheme });
        }
        let match_weight = self.prior_weight + weight;
        Score {
            match_weight,
            probability: probability_of(match_weight),
            steps,
            vetoes,
            rules_version: self.version.clone(),
        }
    }

    /// The decision. Link only when the best candidate is at or above the auto-link
    /// threshold with no veto, no other candidate could be linked automatically, and the
    /// runner-up is not within the file's margin; Review for a candidate between the
    /// thresholds, or above with a veto, or several close candidates; New otherwise. A
    /// candidate with a conflicting identifier is never proposed.
    pub fn resolve(
        &self,
        identifiers: &[Identifier],
        incoming: &Demographics,
        candidates: &[Candidate],
        tf: &dyn TermFrequencies,
    ) -> Resolution {
        let prepared = Prepared::new(incoming);
        let mut scored: Vec<(String, Score)> = candidates
            .iter()
            .map(|c| {
                (
                    c.person_id.clone(),
                    self.score_prepared(identifiers, &prepared, c, tf),
                )
            })
            .filter(|(_, s)| {
                !s.vetoes
                    .iter()
                    .any(|v| matches!(v, Veto::IdentifierConflict { .. }))
            })
            .collect();
        scored.sort_by(|(pa, a), (pb, b)| {
            b.match_weight
                .total_cmp(&a.match_weight)
                .then_with(|| pa.cmp(pb))
        });
        let auto = self.file.auto_link_probability;
        let review = self.file.review_probability;
        let Some((_, best)) = scored.first() else {
            return Resolution::New { best: None };
        };
        if best.probability < review {
            return Resolution::New {
                best: scored.into_iter().next(),
            };
        }
        let mut reasons: Vec<String> = Vec::new();
        if best.probability < auto {
            reasons.push(
                "the best candidate scores between the review and auto-link thresholds".into(),
            );
        }
        reasons.extend(best.vetoes.iter().map(Veto::describe));
        let eligible = |s: &Score| s.probability >= auto && s.vetoes.is_empty();
        if scored[1..].iter().any(|(_, s)| eligible(s)) && eligible(best) {
            reasons.push("more than one candidate scores above the auto-link threshold".into());
        }
        if let Some((_, runner_up)) = scored.get(1)
            && runner_up.probability >= review
            && best.match_weight - runner_up.match_weight < self.file.close_margin
        {
            reasons.push(format!(
                "the best two candidates score within {:.1} of each other",
                self.file.close_margin
            ));
        }
        if reasons.is_empty() {
            let (person_id, score) = scored.swap_remove(0);
            return Resolution::Link { person_id, score };
        }
        scored.retain(|(_, s)| s.probability >= review);
        Resolution::Review {
            candidates: scored,
            reasons,
        }
    }

    /// Blocking keys: the persons sharing at least one key with a record are its
    /// candidates. Deterministic, deduplicated, each prefixed by its rule's name; names
    /// appear only as phonetic codes and initials.
    pub fn blocking_keys(&self, d: &Demographics) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for rule in &self.blocking {
            let mut combos: Vec<String> = vec![String::new()];
            for part in &rule.parts {
                let values = self.key_values(*part, d);
                if values.is_empty() {
                    combos.clear();
                    break;
                }
                combos = combos
                    .iter()
                    .flat_map(|prefix| {
                        values.iter().map(move |v| {
                            if prefix.is_empty() {
                                v.clone()
                            } else {
                                format!("{prefix}|{v}")
                            }
                        })
                    })
                    .collect();
            }
            for combo in combos {
                let key = format!("{}:{combo}", rule.name);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    fn key_values(&self, part: KeyPart, d: &Demographics) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        let mut add = |v: String| {
            if !v.is_empty() && !values.contains(&v) {
                values.push(v);
            }
        };
        match part {
            KeyPart::DateOfBirth => {
                if let Some(day) = d.date_of_birth {
                    add(day.to_string());
                }
            }
            KeyPart::DateOfBirthUnordered => {
                if let Some(day) = d.date_of_birth {
                    let (lo, hi) = if day.day() < day.month() {
                        (day.day(), day.month())
                    } else {
                        (day.month(), day.day())
                    };
                    add(format!("{:04}-{lo:02}/{hi:02}", day.year()));
                }
            }
            KeyPart::BirthYear => {
                if let Some(day) = d.date_of_birth {
                    add(format!("{:04}", day.year()));
                }
            }
            KeyPart::FamilyPhonetic => {
                for form in d.family_forms() {
                    let (primary, _) = phonetic(&form);
                    add(primary);
                }
            }
            KeyPart::GivenPhonetic => {
                // Every given name, so reordered given names still meet.
                for name in d.given_names.iter().take(3) {
                    add(phonetic(name).0);
                }
                if let Some(first) = d.given_names.first() {
                    for group in self.nickname_groups(first) {
                        add(format!("nickname{group}"));
                    }
                }
            }
            KeyPart::BirthMonthDay => {
                if let Some(day) = d.date_of_birth {
                    add(format!("{:02}-{:02}", day.month(), day.day()));
                }
            }
            KeyPart::PostcodeDistrict => {
                if let Some(postcode) = &d.postcode {
                    add(postcode.district().to_owned());
                }
            }
            KeyPart::GivenInitial => {
                if let Some(initial) = d.given_names.first().and_then(|g| g.chars().next()) {
                    add(initial.to_string());
                }
            }
            KeyPart::Postcode => {
                if let Some(postcode) = &d.postcode {
                    add(postcode.as_str().to_owned());
                }
            }
            KeyPart::PostcodeSector => {
                if let Some(postcode) = &d.postcode {
                    add(postcode.sector().to_owned());
                }
            }
        }
        values
    }
}

/// log2 odds to a probability.
pub(crate) fn probability_of(match_weight: f64) -> f64 {
    let odds = match_weight.exp2();
    if odds.is_infinite() {
        1.0
    } else {
        odds / (1.0 + odds)
    }
}

/// The schemes in which the two carry identifiers that name one person each, with
/// different values (NHS number, PNC id, or one agency's local namespace).
fn identifier_conflicts(ours: &[Identifier], theirs: &[Identifier]) -> Vec<String> {
    fn space(id: &Identifier) -> (String, &str) {
        match id {
            Identifier::NhsNumber { value } | Identifier::PncId { value } => {
                (id.scheme_name().to_owned(), value.as_str())
            }
            Identifier::Local {
                agency,
                namespace,
                value,
            } => (format!("local ({agency} {namespace})"), value.as_str()),
        }
    }
    let mut schemes: Vec<String> = Vec::new();
    for a in ours {
        let (scheme_a, value_a) = space(a);
        let conflict = theirs.iter().any(|b| {
            let (scheme_b, value_b) = space(b);
            scheme_a == scheme_b && value_a != value_b
        }) && !theirs.iter().any(|b| b == a);
        if conflict && !schemes.contains(&scheme_a) {
            schemes.push(scheme_a);
        }
    }
    schemes
}

impl Veto {
    /// The veto in plain words, naming no personal values.
    pub fn describe(&self) -> String {
        match self {
            Veto::IdentifierConflict { scheme } => {
                let scheme = match scheme.as_str() {
                    "nhs_number" => "NHS number",
                    "pnc_id" => "PNC id",
                    other => other,
                };
                format!("the two carry different identifiers of one scheme ({scheme})")
            }
            Veto::SexDiffers => "sex differs".into(),
            Veto::DateOfBirthTooFar => {
                "the dates of birth differ more than the rules allow for an automatic link".into()
            }
            Veto::GivenNamesDiffer => "the given names differ entirely (as twins' do)".into(),
            Veto::PostcodeDistrictsDiffer => {
                "the postcodes are in different districts: a move, or another person with the \
                 same details elsewhere"
                    .into()
            }
        }
    }
}

impl Score {
    /// The waterfall in words: the prior, one sentence per step, each veto, the final
    /// probability. Names the levels reached, never a value compared.
    pub fn explain(&self) -> Vec<String> {
        let steps_weight: f64 = self.steps.iter().map(|s| s.bayes_factor.log2()).sum();
        let prior_weight = self.match_weight - steps_weight;
        let prior = probability_of(prior_weight);
        let mut lines = vec![format!(
            "prior: two records picked at random are the same person with probability 1 in {:.0} (match weight {prior_weight:.2})",
            1.0 / prior
        )];
        for step in &self.steps {
            let field = Field::words_of(&step.comparison);
            let adjusted = if step.tf_adjusted {
                " (weighed by how common the name is)"
            } else {
                ""
            };
            let line = if step.level == "null" {
                format!("{field}: not recorded on both: no effect")
            } else if step.bayes_factor >= 1.0 {
                format!(
                    "{field}: {}{adjusted}: {:.1} times more likely to be a match",
                    step.description, step.bayes_factor
                )
            } else {
                format!(
                    "{field}: {}{adjusted}: {:.1} times less likely to be a match",
                    step.description,
                    1.0 / step.bayes_factor
                )
            };
            lines.push(line);
        }
        for veto in &self.vetoes {
            lines.push(format!("veto: {}", veto.describe()));
        }
        let version: String = self.rules_version.chars().take(12).collect();
        lines.push(format!(
            "match probability {:.4} (match weight {:.2}), rules {version}",
            self.probability, self.match_weight
        ));
        lines
    }
}

impl Field {
    fn words_of(name: &str) -> &'static str {
        [
            Field::GivenName,
            Field::FamilyName,
            Field::DateOfBirth,
            Field::Postcode,
            Field::Address,
            Field::Sex,
        ]
        .into_iter()
        .find(|f| f.name() == name)
        .map_or("comparison", Field::words)
    }
}
