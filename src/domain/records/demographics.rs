//! The demographic parts of person details that identity matching reads: sex, other
//! names and the UK postcode, each checked when published.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::FieldViolation;

vocabulary! {
    /// A person's sex as the publishing agency records it (NHS PDS codes); absent when
    /// not known.
    Sex {
        Female => "female",
        Male => "male",
        Indeterminate => "indeterminate",
    }
}

vocabulary! {
    /// Why a person is also known by another name.
    NameKind {
        /// A name the person was known by before (e.g. before marriage).
        Previous => "previous",
        /// An alias or alternative spelling the person uses.
        Alternative => "alternative",
    }
}

/// A name the person is, or was, also known by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherName {
    pub kind: NameKind,
    /// Given names in order, space-separated; may be empty for a family-name change.
    pub given_names: String,
    pub family_name: String,
}

/// A UK postcode in its canonical form: upper case, outward and inward code separated
/// by one space (`SO23 8UJ`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

impl Postcode {
    /// Parses a UK postcode written in any case, with or without spaces or punctuation;
    /// `field` names it in errors.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldViolation> {
        let compact: String = raw
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bad = || {
            FieldViolation::new(
                field,
                "not a UK postcode: expected an outward code (e.g. SO23) and an inward code \
                 (e.g. 8UJ)",
            )
        };
        if !(5..=7).contains(&compact.len()) {
            return Err(bad());
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        let inward_ok = inward.chars().enumerate().all(|(i, c)| {
            if i == 0 {
                c.is_ascii_digit()
            } else {
                c.is_ascii_uppercase()
            }
        });
        if !inward_ok || !outward_well_formed(outward) {
            return Err(bad());
        }
        Ok(Postcode(format!("{outward} {inward}")))
    }

    /// The whole postcode, e.g. `SO23 8UJ`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The postal district (outward code), e.g. `SO23`.
    pub fn district(&self) -> &str {
        self.0.split(' ').next().unwrap_or_default()
    }

    /// The postal sector: the district and the inward code's digit, e.g. `SO23 8`.
    pub fn sector(&self) -> &str {
        &self.0[..self.0.len() - 2]
    }
}

/// An outward code: one or two letters, a digit, then an optional digit or letter
/// (`A9`, `A99`, `AA9`, `AA99`, `A9A`, `AA9A`).
fn outward_well_formed(outward: &str) -> bool {
    let letters = outward.chars().take_while(char::is_ascii_uppercase).count();
    let rest = &outward[letters..];
    let mut rest_chars = rest.chars();
    let digit_first = rest_chars.next().is_some_and(|c| c.is_ascii_digit());
    let tail: Vec<char> = rest_chars.collect();
    (1..=2).contains(&letters)
        && digit_first
        && tail.len() <= 1
        && tail.iter().all(char::is_ascii_alphanumeric)
}

impl fmt::Display for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Postcode {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Postcode::parse(&value, "postcode").map_err(|e| e.description)
    }
}

impl From<Postcode> for String {
    fn from(postcode: Postcode) -> Self {
        postcode.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes_are_written_in_one_canonical_form() {
        let p = Postcode::parse(" so238uj ", "f").expect("valid");
        assert_eq!(p.as_str(), "SO23 8UJ");
        assert_eq!(p.district(), "SO23");
        assert_eq!(p.sector(), "SO23 8");
        assert_eq!(Postcode::parse("SO23 8UJ", "f"), Ok(p));
        assert_eq!(
            Postcode::parse("ec1a-1bb", "f").map(|p| p.to_string()),
            Ok("EC1A 1BB".to_owned())
        );
        assert_eq!(
            Postcode::parse("M1 1AE", "f").map(|p| p.sector().to_owned()),
            Ok("M1 1".to_owned())
        );
    }

    #[test]
    fn malformed_postcodes_are_refused_naming_the_field() {
        for bad in ["", "SO23", "SO23 UJ8", "123 4AB", "SOO23 8UJ", "S-O"] {
            let err = Postcode::parse(bad, "person.postcode").expect_err(bad);
            assert_eq!(err.field, "person.postcode");
        }
    }
}
