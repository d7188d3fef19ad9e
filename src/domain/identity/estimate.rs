//! Re-estimating the model from records, as Splink does: u from random pairs (two records
//! picked at random are almost never one person), then m by expectation maximisation over
//! the pairs the blocking rules bring together, u held fixed.

use std::collections::{HashMap, HashSet};

use super::Demographics;
use super::rules::{Field, KeyPart, MatchRules, RulesError};

/// Random pairs drawn for u.
const U_PAIRS: usize = 200_000;
/// The largest block whose pairs are all used for EM (larger blocks are sampled in order).
const BLOCK_PAIRS_MAX: usize = 50;
/// The smallest m or u written back: a level never seen still may happen.
const FLOOR: f64 = 1e-6;

/// A small deterministic generator (SplitMix64), so an estimate is reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl MatchRules {
    /// The level each comparison reaches for a pair, in comparison order.
    fn levels_of(&self, a: &Demographics, b: &Demographics) -> Vec<usize> {
        self.comparisons
            .iter()
            .map(|c| self.level_index(c, a, b))
            .collect()
    }

    /// Normalises counts per level (the null level excluded) into probabilities that sum
    /// to 1, each at least FLOOR.
    fn shares(counts: &[f64]) -> Vec<f64> {
        let floored: Vec<f64> = counts[1..].iter().map(|c| c.max(FLOOR)).collect();
        let total: f64 = floored.iter().sum();
        floored.iter().map(|c| c / total).collect()
    }

    /// EM re-estimation of the levels' m (and every u from random pairs, as Splink does)
    /// from `records`, starting from these rules: over the pairs the date-of-birth blocking
    /// rules bring together, so the date of birth's m is kept from the file. The names'
    /// m are biased towards agreement by the sounds those rules block on; review them
    /// before adopting them.
    /// Returns new rules whose `to_toml()` round-trips through `parse()`.
    pub fn estimate(
        &self,
        records: &[Demographics],
        iterations: usize,
    ) -> Result<MatchRules, RulesError> {
        if records.len() < 2 {
            return Err(RulesError(
                "estimate: at least two records are needed".into(),
            ));
        }
        let mut rng = SplitMix(0x5AFE_6A7E);

        // u: the levels two random records reach.
        let mut u_counts: Vec<Vec<f64>> = self
            .comparisons
            .iter()
            .map(|c| vec![0.0; c.levels.len()])
            .collect();
        let all_pairs = records.len() * (records.len() - 1) / 2;
        for _ in 0..U_PAIRS.min(all_pairs.max(1) * 4) {
            let a = rng.below(records.len());
            let b = rng.below(records.len());
            if a == b {
                continue;
            }
            for (c, level) in self.levels_of(&records[a], &records[b]).iter().enumerate() {
                u_counts[c][*level] += 1.0;
            }
        }

        // The pairs the date-of-birth blocking rules bring together, as Splink's EM
        // session blocked on date of birth: household members (same family name, postcode
        // and address) rarely share a date of birth, and would otherwise pass for matches
        // under the independence assumption once the share of matches in the blocks is
        // learnt. The date of birth's own m is therefore not re-estimated.
        let dob_rules: Vec<String> = self
            .blocking
            .iter()
            .filter(|b| {
                b.parts
                    .iter()
                    .any(|p| matches!(p, KeyPart::DateOfBirth | KeyPart::DateOfBirthUnordered))
            })
            .map(|b| format!("{}:", b.name))
            .collect();
        let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            for key in self.blocking_keys(record) {
                if dob_rules
                    .iter()
                    .any(|prefix| key.starts_with(prefix.as_str()))
                {
                    blocks.entry(key).or_default().push(i);
                }
            }
        }
        let mut keys: Vec<&String> = blocks.keys().collect();
        keys.sort();
        let mut pairs: HashSet<(usize, usize)> = HashSet::new();
        for key in keys {
            let members = &blocks[key];
            let mut taken = 0;
            'block: for (x, a) in members.iter().enumerate() {
                for b in &members[x + 1..] {
                    if taken == BLOCK_PAIRS_MAX {
                        break 'block;
                    }
                    pairs.insert((*a.min(b), *a.max(b)));
                    taken += 1;
                }
            }
        }
        let mut pairs: Vec<(usize, usize)> = pairs.into_iter().collect();
        pairs.sort_unstable();
        let gammas: Vec<Vec<usize>> = pairs
            .iter()
            .map(|(a, b)| self.levels_of(&records[*a], &records[*b]))
            .collect();
        if gammas.is_empty() {
            return Err(RulesError(
                "estimate: the blocking rules bring no two records together".into(),
            ));
        }

        let u: Vec<Vec<f64>> = u_counts.iter().map(|c| Self::shares(c)).collect();
        let mut m: Vec<Vec<f64>> = self
            .comparisons
            .iter()
            .map(|c| c.levels[1..].iter().map(|l| l.m).collect())
            .collect();
        // Splink starts from the model's prior; the first E-step then sorts the pairs
        // by the file's weights.
        let mut lambda: f64 = self.file.prior;
        for _ in 0..iterations {
            let mut m_counts: Vec<Vec<f64>> = self
                .comparisons
                .iter()
                .map(|c| vec![0.0; c.levels.len()])
                .collect();
            let mut matched = 0.0;
            for gamma in &gammas {
                let mut log_odds = (lambda / (1.0 - lambda)).ln();
                for (c, level) in gamma.iter().enumerate() {
                    if *level > 0 {
                        log_odds += (m[c][level - 1] / u[c][level - 1]).ln();
                    }
                }
                let p = 1.0 / (1.0 + (-log_odds).exp());
                matched += p;
                for (c, level) in gamma.iter().enumerate() {
                    m_counts[c][*level] += p;
                }
            }
            for (c, counts) in m_counts.iter().enumerate() {
                if self.comparisons[c].field != Field::DateOfBirth {
                    m[c] = Self::shares(counts);
                }
            }
            lambda = (matched / gammas.len() as f64).clamp(FLOOR, 1.0 - FLOOR);
        }

        let mut file = self.file.clone();
        for (c, spec) in file.comparisons.iter_mut().enumerate() {
            for (l, level) in spec.levels.iter_mut().enumerate().skip(1) {
                level.m = Some(m[c][l - 1]);
                level.u = Some(u[c][l - 1]);
            }
        }
        let provisional = MatchRules::compile(file, String::new())?;
        MatchRules::parse(&provisional.to_toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::rules::tests::POLICY;
    use crate::domain::records::Day;

    const GIVEN: [&str; 12] = [
        "oliver", "amelia", "harry", "isla", "george", "ava", "noah", "mia", "leo", "ivy", "oscar",
        "freya",
    ];
    const FAMILY: [&str; 12] = [
        "hartley",
        "pemberton",
        "okafor",
        "lindqvist",
        "marsh",
        "quigley",
        "delacroix",
        "brennan",
        "whitfield",
        "novak",
        "castellano",
        "ashdown",
    ];

    /// 300 persons with two records each; the second record's first given name is an
    /// unrelated name in half of the persons, so the data say m(exact given) is about 0.5.
    fn synthetic() -> Vec<Demographics> {
        let mut rng = SplitMix(7);
        let mut records = Vec::new();
        for i in 0..300 {
            let person = Demographics {
                given_names: vec![GIVEN[rng.below(GIVEN.len())].to_owned()],
                family_name: format!("{}{}", FAMILY[rng.below(FAMILY.len())], i % 25),
                date_of_birth: Day::from_ymd(
                    1950 + rng.below(60) as i32,
                    1 + rng.below(12) as u8,
                    1 + rng.below(28) as u8,
                ),
                ..Demographics::default()
            };
            let mut copy = person.clone();
            if i % 2 == 0 {
                copy.given_names = vec![format!("zz{}", rng.below(1_000_000))];
            }
            records.push(person);
            records.push(copy);
        }
        records
    }

    #[test]
    fn estimate_moves_m_towards_the_data() {
        let rules = MatchRules::parse(POLICY).expect("parses");
        let exact = |r: &MatchRules| {
            r.comparisons[0]
                .levels
                .iter()
                .find(|l| l.code == "exact")
                .cloned()
                .expect("an exact level")
        };
        let exact_m = |r: &MatchRules| exact(r).m;
        let before = exact_m(&rules);
        let estimated = rules.estimate(&synthetic(), 10).expect("estimates");
        let after = exact_m(&estimated);
        assert!(
            (after - 0.5).abs() < (before - 0.5).abs() && (after - 0.5).abs() < 0.1,
            "m(exact given name) {before} -> {after}, the data say 0.5"
        );
        // Three records in four carry one of 12 names: random pairs agree about
        // 0.75 * 0.75 / 12 = 1 time in 21.
        let u = exact(&estimated).u;
        assert!((0.035..0.06).contains(&u), "u(exact given) = {u}");
        let again = MatchRules::parse(&estimated.to_toml()).expect("round-trips");
        assert_eq!(again.to_toml(), estimated.to_toml());
        assert_eq!(again.version(), estimated.version());
    }

    #[test]
    fn estimate_needs_records() {
        let rules = MatchRules::parse(POLICY).expect("parses");
        assert!(rules.estimate(&[], 3).is_err());
    }
}
