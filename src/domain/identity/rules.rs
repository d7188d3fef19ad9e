//! The rules file (`policies/matching.toml`): the Fellegi-Sunter model as Splink declares
//! it (per comparison ordered levels, the null level first, exact next, thresholds
//! descending, `else` last, each with m and u), the thresholds, the vetoes, the blocking
//! rules and the nickname list. Its version is the SHA-256 of its text, recorded with every
//! decision.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What is wrong with a rules file, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matching rules: {0}")]
pub struct RulesError(pub String);

/// The file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesFile {
    pub prior: f64,
    pub auto_link_probability: f64,
    pub review_probability: f64,
    pub close_margin: f64,
    pub auto_link_max_dob_level: String,
    #[serde(default)]
    pub veto_sex_differs: bool,
    #[serde(default)]
    pub veto_given_names_differ: bool,
    #[serde(default)]
    pub veto_postcode_districts_differ: bool,
    /// The family-name share of persons at or above which the postcode-district veto
    /// applies; a name whose share is not known counts as common.
    #[serde(default)]
    pub postcode_veto_min_family_share: f64,
    pub term_frequency: TfSpec,
    pub nicknames: NicknameSpec,
    pub blocking: Vec<BlockingSpec>,
    pub comparisons: Vec<ComparisonSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TfSpec {
    pub min_share: f64,
    pub max_share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NicknameSpec {
    pub groups: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockingSpec {
    pub name: String,
    pub on: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComparisonSpec {
    pub field: String,
    /// Compared only when both postcodes are recorded and agree (the null level
    /// otherwise), with u then conditional on that agreement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_when_postcodes_agree: bool,
    pub levels: Vec<LevelSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LevelSpec {
    pub label: String,
    pub test: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tf: bool,
}

/// The field a comparison reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    GivenName,
    FamilyName,
    DateOfBirth,
    Postcode,
    Address,
    Sex,
}

impl Field {
    const ALL: [(Field, &'static str, &'static str); 6] = [
        (Field::GivenName, "given_name", "given name"),
        (Field::FamilyName, "family_name", "family name"),
        (Field::DateOfBirth, "date_of_birth", "date of birth"),
        (Field::Postcode, "postcode", "postcode"),
        (Field::Address, "address", "address"),
        (Field::Sex, "sex", "sex"),
    ];

    fn parse(word: &str) -> Option<Field> {
        Field::ALL.iter().find(|(_, w, _)| *w == word).map(|f| f.0)
    }

    pub fn name(self) -> &'static str {
        Field::ALL.iter().find(|f| f.0 == self).map_or("", |f| f.1)
    }

    /// The comparison in words, for explanations.
    pub fn words(self) -> &'static str {
        Field::ALL.iter().find(|f| f.0 == self).map_or("", |f| f.2)
    }

    fn tests(self) -> &'static [&'static str] {
        match self {
            Field::GivenName | Field::FamilyName => &[
                "null",
                "exact_with_middle_names",
                "exact",
                "exact_any_name",
                "nickname",
                "jaro_winkler",
                "phonetic",
                "else",
            ],
            Field::DateOfBirth => &[
                "null",
                "exact",
                "one_digit",
                "day_month_swapped",
                "year_month",
                "year",
                "else",
            ],
            Field::Postcode => &["null", "exact", "sector", "district", "else"],
            Field::Address => &["null", "exact", "jaro_winkler", "token_overlap", "else"],
            Field::Sex => &["null", "exact", "else"],
        }
    }
}

/// What a level tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Test {
    Null,
    ExactWithMiddleNames,
    Exact,
    ExactAnyName,
    Nickname,
    JaroWinkler(f64),
    Phonetic,
    OneDigit,
    DayMonthSwapped,
    YearMonth,
    Year,
    Sector,
    District,
    TokenOverlap(f64),
    Else,
}

/// One level, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub code: String,
    pub label: String,
    pub test: Test,
    pub m: f64,
    pub u: f64,
    pub tf: bool,
}

/// One comparison, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub field: Field,
    pub only_when_postcodes_agree: bool,
    pub levels: Vec<Level>,
}

/// A part of a blocking key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyPart {
    DateOfBirth,
    DateOfBirthUnordered,
    BirthYear,
    FamilyPhonetic,
    GivenPhonetic,
    GivenInitial,
    BirthMonthDay,
    Postcode,
    PostcodeSector,
    PostcodeDistrict,
}

impl KeyPart {
    const ALL: [(KeyPart, &'static str); 10] = [
        (KeyPart::DateOfBirth, "date_of_birth"),
        (KeyPart::DateOfBirthUnordered, "date_of_birth_unordered"),
        (KeyPart::BirthYear, "birth_year"),
        (KeyPart::FamilyPhonetic, "family_phonetic"),
        (KeyPart::GivenPhonetic, "given_phonetic"),
        (KeyPart::GivenInitial, "given_initial"),
        (KeyPart::BirthMonthDay, "birth_month_day"),
        (KeyPart::Postcode, "postcode"),
        (KeyPart::PostcodeSector, "postcode_sector"),
        (KeyPart::PostcodeDistrict, "postcode_district"),
    ];
}

/// One blocking rule, compiled.
#[derive(Debug, Clone)]
pub(crate) struct BlockingRule {
    pub name: String,
    pub parts: Vec<KeyPart>,
}

/// The matching rules: a Fellegi-Sunter model with its thresholds, vetoes, blocking rules
/// and nickname list, versioned by the SHA-256 of the file's text.
#[derive(Debug, Clone)]
pub struct MatchRules {
    pub(crate) file: RulesFile,
    pub(crate) version: String,
    pub(crate) comparisons: Vec<Comparison>,
    pub(crate) blocking: Vec<BlockingRule>,
    /// Normalised name → the nickname groups it belongs to.
    pub(crate) nicknames: HashMap<String, Vec<u32>>,
    /// log2 of the prior odds.
    pub(crate) prior_weight: f64,
    /// The last date-of-birth level (index) at which an automatic link is still allowed.
    pub(crate) dob_auto_link_max: Option<usize>,
}

fn err(message: impl Into<String>) -> RulesError {
    RulesError(message.into())
}

fn probability(key: &str, value: f64) -> Result<f64, RulesError> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(err(format!(
            "`{key}` must be a probability strictly between 0 and 1, not {value}"
        )))
    }
}

impl MatchRules {
    /// Parses the rules file; the version is the lowercase hex SHA-256 of `text`.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| err(e.message().to_owned()))?;
        let version = hex::encode(Sha256::digest(text.as_bytes()));
        Self::compile(file, version)
    }

    /// Reads and parses the rules file at `path` (the nickname list is a table in it).
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| err(format!("{}: {}", path.display(), e.0)))
    }

    /// The rules' version: the lowercase hex SHA-256 of the file's text.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The probability at or above which a candidate is linked without review.
    pub fn auto_link_probability(&self) -> f64 {
        self.file.auto_link_probability
    }

    /// The probability at or above which a candidate is proposed for review.
    pub fn review_probability(&self) -> f64 {
        self.file.review_probability
    }

    /// The rules written as a file that [`MatchRules::parse`] reads back to the same model
    /// (comments are not kept).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.file).unwrap_or_else(|e| format!("# cannot be written: {e}\n"))
    }

    pub(crate) fn compile(file: RulesFile, version: String) -> Result<Self, RulesError> {
        probability("prior", file.prior)?;
        probability("auto_link_probability", file.auto_link_probability)?;
        probability("review_probability", file.review_probability)?;
        if file.review_probability >= file.auto_link_probability {
            return Err(err(
                "`review_probability` must be below `auto_link_probability`",
            ));
        }
        if !(file.close_margin >= 0.0 && file.close_margin.is_finite()) {
            return Err(err("`close_margin` must be a match weight of 0 or more"));
        }
        let tf = &file.term_frequency;
        if !(tf.min_share > 0.0 && tf.min_share <= tf.max_share && tf.max_share <= 1.0) {
            return Err(err(
                "`term_frequency.min_share` and `max_share` must satisfy 0 < min_share <= max_share <= 1",
            ));
        }

        let mut comparisons: Vec<Comparison> = Vec::new();
        for (i, spec) in file.comparisons.iter().enumerate() {
            let at = format!("comparisons[{i}]");
            let field = Field::parse(&spec.field).ok_or_else(|| {
                err(format!(
                    "{at}.field: `{}` is not one of: {}",
                    spec.field,
                    Field::ALL.map(|f| f.1).join(", ")
                ))
            })?;
            if comparisons.iter().any(|c| c.field == field) {
                return Err(err(format!(
                    "{at}.field: `{}` is compared twice",
                    spec.field
                )));
            }
            if spec.only_when_postcodes_agree && field == Field::Postcode {
                return Err(err(format!(
                    "{at}.only_when_postcodes_agree: the postcode comparison cannot depend on itself"
                )));
            }
            comparisons.push(Comparison {
                field,
                only_when_postcodes_agree: spec.only_when_postcodes_agree,
                levels: compile_levels(&at, field, &spec.levels)?,
            });
        }
        if comparisons.is_empty() {
            return Err(err("`comparisons`: at least one comparison is needed"));
        }

        let dob_auto_link_max = match comparisons
            .iter()
            .find(|c| c.field == Field::DateOfBirth)
        {
            None => None,
            Some(dob) => Some(
                dob.levels
                    .iter()
                    .position(|l| l.code == file.auto_link_max_dob_level)
                    .ok_or_else(|| {
                        err(format!(
                            "`auto_link_max_dob_level`: `{}` is not a level of the date_of_birth comparison (one of: {})",
                            file.auto_link_max_dob_level,
                            dob.levels.iter().map(|l| l.code.as_str()).collect::<Vec<_>>().join(", ")
                        ))
                    })?,
            ),
        };

        let mut blocking: Vec<BlockingRule> = Vec::new();
        for (i, spec) in file.blocking.iter().enumerate() {
            let at = format!("blocking[{i}]");
            let name_ok = !spec.name.is_empty()
                && spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !name_ok {
                return Err(err(format!(
                    "{at}.name: `{}` must be lower-case letters, digits and underscores",
                    spec.name
                )));
            }
            if blocking.iter().any(|b| b.name == spec.name) {
                return Err(err(format!("{at}.name: `{}` is used twice", spec.name)));
            }
            if spec.on.is_empty() {
                return Err(err(format!("{at}.on: at least one part is needed")));
            }
            let parts = spec
                .on
                .iter()
                .map(|word| {
                    KeyPart::ALL
                        .iter()
                        .find(|(_, w)| w == word)
                        .map(|p| p.0)
                        .ok_or_else(|| {
                            err(format!(
                                "{at}.on: `{word}` is not one of: {}",
                                KeyPart::ALL.map(|p| p.1).join(", ")
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            blocking.push(BlockingRule {
                name: spec.name.clone(),
                parts,
            });
        }
        if blocking.is_empty() {
            return Err(err("`blocking`: at least one blocking rule is needed"));
        }

        let mut nicknames: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, group) in file.nicknames.groups.iter().enumerate() {
            if group.len() < 2 {
                return Err(err(format!(
                    "nicknames.groups[{i}]: a group needs at least two names"
                )));
            }
            let id = u32::try_from(i).map_err(|_| err("nicknames.groups: too many groups"))?;
            for name in group {
                let normalised = super::normalise::normalise_text(name);
                let groups = nicknames.entry(normalised).or_default();
                if !groups.contains(&id) {
                    groups.push(id);
                }
            }
        }

        let prior_weight = (file.prior / (1.0 - file.prior)).log2();
        Ok(MatchRules {
            file,
            version,
            comparisons,
            blocking,
            nicknames,
            prior_weight,
            dob_auto_link_max,
        })
    }
}

fn compile_levels(at: &str, field: Field, specs: &[LevelSpec]) -> Result<Vec<Level>, RulesError> {
    if specs.len() < 3 {
        return Err(err(format!(
            "{at}.levels: needs the null level, at least one agreement level and else"
        )));
    }
    let mut levels: Vec<Level> = Vec::new();
    let mut last_threshold: HashMap<&str, f64> = HashMap::new();
    for (j, spec) in specs.iter().enumerate() {
        let at = format!("{at}.levels[{j}]");
        if !field.tests().contains(&spec.test.as_str()) {
            return Err(err(format!(
                "{at}.test: `{}` is not a test for {} (one of: {})",
                spec.test,
                field.name(),
                field.tests().join(", ")
            )));
        }
        let first = j == 0;
        let last = j + 1 == specs.len();
        if first != (spec.test == "null") {
            return Err(err(format!(
                "{at}.test: the null level comes first, and only there"
            )));
        }
        if last != (spec.test == "else") {
            return Err(err(format!(
                "{at}.test: the else level comes last, and only there"
            )));
        }
        let thresholded = matches!(spec.test.as_str(), "jaro_winkler" | "token_overlap");
        let threshold = match (thresholded, spec.threshold) {
            (true, Some(t)) if t > 0.0 && t <= 1.0 => {
                if let Some(previous) = last_threshold.insert(spec.test.as_str(), t)
                    && t >= previous
                {
                    return Err(err(format!(
                        "{at}.threshold: thresholds of `{}` must descend ({t} follows {previous})",
                        spec.test
                    )));
                }
                t
            }
            (true, _) => {
                return Err(err(format!(
                    "{at}.threshold: `{}` needs a threshold in (0, 1]",
                    spec.test
                )));
            }
            (false, Some(_)) => {
                return Err(err(format!(
                    "{at}.threshold: `{}` takes no threshold",
                    spec.test
                )));
            }
            (false, None) => 0.0,
        };
        let (m, u) = if first {
            if spec.m.is_some() || spec.u.is_some() {
                return Err(err(format!(
                    "{at}: the null level has no m or u (it weighs nothing)"
                )));
            }
            (1.0, 1.0)
        } else {
            let m = spec
                .m
                .ok_or_else(|| err(format!("{at}.m: missing")))
                .and_then(|m| in_unit(&format!("{at}.m"), m))?;
            let u = spec
                .u
                .ok_or_else(|| err(format!("{at}.u: missing")))
                .and_then(|u| in_unit(&format!("{at}.u"), u))?;
            (m, u)
        };
        let names = matches!(field, Field::GivenName | Field::FamilyName);
        if spec.tf
            && !(names
                && matches!(
                    spec.test.as_str(),
                    "exact" | "exact_any_name" | "exact_with_middle_names"
                ))
        {
            return Err(err(format!(
                "{at}.tf: term-frequency adjustment applies only to exact name levels"
            )));
        }
        let test = match spec.test.as_str() {
            "null" => Test::Null,
            "exact_with_middle_names" => Test::ExactWithMiddleNames,
            "exact" => Test::Exact,
            "exact_any_name" => Test::ExactAnyName,
            "nickname" => Test::Nickname,
            "jaro_winkler" => Test::JaroWinkler(threshold),
            "phonetic" => Test::Phonetic,
            "one_digit" => Test::OneDigit,
            "day_month_swapped" => Test::DayMonthSwapped,
            "year_month" => Test::YearMonth,
            "year" => Test::Year,
            "sector" => Test::Sector,
            "district" => Test::District,
            "token_overlap" => Test::TokenOverlap(threshold),
            _ => Test::Else,
        };
        let code = if thresholded {
            format!("{}_{threshold}", spec.test)
        } else {
            spec.test.clone()
        };
        if levels.iter().any(|l| l.code == code) {
            return Err(err(format!("{at}.test: level `{code}` appears twice")));
        }
        levels.push(Level {
            code,
            label: spec.label.clone(),
            test,
            m,
            u,
            tf: spec.tf,
        });
    }
    for (key, total) in [
        ("m", levels[1..].iter().map(|l| l.m).sum::<f64>()),
        ("u", levels[1..].iter().map(|l| l.u).sum::<f64>()),
    ] {
        if (total - 1.0).abs() > 0.02 {
            return Err(err(format!(
                "{at}.levels: the {key} values of the non-null levels must sum to 1 (they sum to {total:.4})"
            )));
        }
    }
    Ok(levels)
}

fn in_unit(key: &str, value: f64) -> Result<f64, RulesError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(err(format!("{key}: must be in (0, 1], not {value}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const POLICY: &str = include_str!("../../../policies/matching.toml");

    #[test]
    fn the_policy_file_parses_and_is_versioned_by_its_hash() {
        let rules = MatchRules::parse(POLICY).expect("policies/matching.toml parses");
        assert_eq!(
            rules.version(),
            hex::encode(Sha256::digest(POLICY.as_bytes()))
        );
        assert_eq!(rules.version().len(), 64);
        assert!(rules.review_probability() < rules.auto_link_probability());
        let loaded = MatchRules::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/matching.toml"
        )))
        .expect("loads");
        assert_eq!(loaded.version(), rules.version());
    }

    #[test]
    fn to_toml_round_trips() {
        let rules = MatchRules::parse(POLICY).expect("parses");
        let written = rules.to_toml();
        let again = MatchRules::parse(&written).expect("to_toml output parses");
        assert_eq!(again.to_toml(), written);
        assert_eq!(again.comparisons.len(), rules.comparisons.len());
        for (a, b) in again.comparisons.iter().zip(&rules.comparisons) {
            for (la, lb) in a.levels.iter().zip(&b.levels) {
                assert_eq!(
                    (la.code.as_str(), la.m, la.u),
                    (lb.code.as_str(), lb.m, lb.u)
                );
            }
        }
        assert_eq!(again.auto_link_probability(), rules.auto_link_probability());
        assert_eq!(again.nicknames, rules.nicknames);
    }

    #[test]
    fn parse_errors_name_the_key() {
        let cases: [(&str, &str, &str); 9] = [
            ("prior = 0.000001", "prior = 2.0", "`prior`"),
            ("prior = 0.000001", "", "prior"),
            (
                "auto_link_probability = 0.95",
                "auto_link_probability = 0.5",
                "review_probability",
            ),
            (
                "auto_link_max_dob_level = \"day_month_swapped\"",
                "auto_link_max_dob_level = \"tomorrow\"",
                "auto_link_max_dob_level",
            ),
            (
                "name = \"dob_any_order_family\"",
                "name = \"dob_any_order_family\"\nspeed = 3",
                "speed",
            ),
            (
                "on = [\"date_of_birth_unordered\", \"family_phonetic\"]",
                "on = [\"date_of_birth_unordered\", \"shoe_size\"]",
                "blocking[0].on",
            ),
            (
                "test = \"sector\"",
                "test = \"jaro_winkler\"",
                "comparisons[3].levels[2].test",
            ),
            ("m = 0.9\n", "", "comparisons[2].levels[1].m"),
            (
                "field = \"postcode\"",
                "field = \"shoe\"",
                "comparisons[3].field",
            ),
        ];
        for (from, to, key) in cases {
            assert!(POLICY.contains(from), "the policy has `{from}`");
            let broken = POLICY.replacen(from, to, 1);
            let error = MatchRules::parse(&broken).expect_err(from);
            assert!(error.0.contains(key), "`{}` should name {key}", error.0);
        }
    }
}
