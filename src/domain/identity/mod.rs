//! Identity across agencies: recognising one person in the records of agencies that know
//! them by different identifiers and slightly different details, conservatively.
//!
//! Deterministic rules come first (one NHS number is one person; two different NHS
//! numbers are two people), then a Fellegi-Sunter score over names, date of birth,
//! postcode and address, with weights from a reviewed file in `policies/` whose hash is
//! recorded with every decision. Knows nothing of SQL or tonic: the store hands it the
//! candidates found through blocking keys and the name frequencies it asks for.
//!
//! - `normalise`: [`Demographics::from_details`] and the names to count for term frequencies.
//! - `rules`: [`MatchRules`] read from `policies/matching.toml` (nickname list included),
//!   versioned by the file's SHA-256, written back by [`MatchRules::to_toml`].
//! - `compare`: blocking keys, the comparison levels, [`MatchRules::score`] with its vetoes,
//!   [`MatchRules::resolve`], and [`Score::explain`], the waterfall in words.
//! - `estimate`: [`MatchRules::estimate`], u from random pairs and m by EM, as Splink does.

pub mod bound;
mod compare;
mod estimate;
mod normalise;
mod rules;
pub mod search;
pub mod storage;

use serde::{Deserialize, Serialize};

use crate::domain::records::{Day, Identifier, Postcode, Sex};

pub use rules::{MatchRules, RulesError};

/// One agency's demographics of a person, normalised for comparison: lower case, accents
/// and punctuation removed, spacing folded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Demographics {
    /// Given names in order: the first given name, then middle names.
    pub given_names: Vec<String>,
    /// The family name; a hyphenated or double-barrelled name keeps its parts,
    /// space-separated (`smith jones`).
    pub family_name: String,
    /// Previous and alternative names: (given names space-separated, family name).
    pub other_names: Vec<(String, String)>,
    pub date_of_birth: Option<Day>,
    pub sex: Option<Sex>,
    pub postcode: Option<Postcode>,
    /// The address lines (or free-text address) without the postcode, as one line.
    pub address: String,
}

/// A person already on record who may be the same as an incoming record: every
/// identifier and every agency's demographics of the resolved person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The resolved (gateway) person id.
    pub person_id: String,
    pub identifiers: Vec<Identifier>,
    pub records: Vec<Demographics>,
}

/// Which name a term frequency is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameField {
    Given,
    Family,
}

/// How common a name is among the persons on record, so that agreeing on a common
/// name counts for less than agreeing on a rare one.
pub trait TermFrequencies {
    /// The share of persons on record with this normalised name, in (0, 1]; `None`
    /// when the name is not known (the engine then uses the level's average).
    fn share(&self, field: NameField, value: &str) -> Option<f64>;
}

/// Name frequencies read for one record: the share of person-details records with
/// each of its names.
#[derive(Debug, Default)]
pub struct NameShares(std::collections::HashMap<(NameField, String), f64>);

impl NameShares {
    /// Records the share of persons on record with `value` as their `field`.
    pub fn insert(&mut self, field: NameField, value: String, share: f64) {
        self.0.insert((field, value), share);
    }
}

impl TermFrequencies for NameShares {
    fn share(&self, field: NameField, value: &str) -> Option<f64> {
        self.0.get(&(field, value.to_owned())).copied()
    }
}

/// One row of a match's waterfall: what one comparison found and what it weighed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The comparison, e.g. `family_name`, `date_of_birth`.
    pub comparison: String,
    /// The level reached, e.g. `exact`, `jaro_winkler_0.92`, `day_month_swapped`, `null`.
    pub level: String,
    /// The level's label from the rules file, in words (`Jaro-Winkler ≥ 0.92`); never a
    /// value compared.
    #[serde(default)]
    pub description: String,
    /// m / u of the level (after any term-frequency adjustment); 1 for the null level.
    pub bayes_factor: f64,
    /// Whether the weight was adjusted for how common the value is.
    pub tf_adjusted: bool,
}

/// A reason a pair may never be linked automatically, whatever its score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "veto")]
pub enum Veto {
    /// Both carry an identifier of a scheme that names one person (NHS number, PNC id,
    /// the same agency's local id space) with different values.
    IdentifierConflict { scheme: String },
    /// Both record a sex, and they differ.
    SexDiffers,
    /// The dates of birth differ beyond the level the rules file allows.
    DateOfBirthTooFar,
    /// Both record a given name and no given name agrees in any way the rules know
    /// (exactly, as a nickname, in spelling or in sound): twins share everything else.
    GivenNamesDiffer,
    /// Both record a postcode and they are in different postal districts: a move, or
    /// another person with the same name and date of birth elsewhere; only a person can
    /// tell which.
    PostcodeDistrictsDiffer,
}

/// The comparison of an incoming record with one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// log2 of the prior odds plus every step's log2 Bayes factor.
    pub match_weight: f64,
    /// The match probability the weight stands for, in [0, 1].
    pub probability: f64,
    pub steps: Vec<Step>,
    pub vetoes: Vec<Veto>,
    /// The version (SHA-256) of the rules that scored it.
    #[serde(default)]
    pub rules_version: String,
}

/// What the engine decides for an incoming record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Resolution {
    /// One candidate at or above the auto-link threshold, none close to it, no veto.
    Link { person_id: String, score: Score },
    /// A potential match for a person to review: a candidate between the thresholds,
    /// or above with a veto, or several close candidates. Best first.
    Review {
        candidates: Vec<(String, Score)>,
        reasons: Vec<String>,
    },
    /// Nobody on record is likely to be this person.
    New { best: Option<(String, Score)> },
}

#[cfg(test)]
mod tests;

pub mod steward;
pub use steward::{
    Crossing, IdentityCard, IdentityLink, IdentityLogItem, LinkMethod, PublishedDetails,
    ReviewState, ReviewTask, Split, Steward, StewardCall, TaskView,
};
pub use storage::IdentityStorage;
