//! Person identifiers: NHS number, PNC id and agency-local ids. Each has one canonical
//! key, so publishing by identifier resolves to the same person every time.

use serde::{Deserialize, Serialize};

use crate::domain::Agency;
use crate::error::FieldViolation;

/// A validated identifier in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum Identifier {
    /// Ten digits whose last is the modulus-11 check digit.
    NhsNumber { value: String },
    /// `YY/NNNNNNNL`: year, seven-digit serial (zero-padded), check letter.
    PncId { value: String },
    /// An agency system's own id, namespaced by the agency that published it.
    Local {
        agency: String,
        namespace: String,
        value: String,
    },
}

/// Longest local namespace or value accepted.
const LOCAL_MAX: usize = 64;

impl Identifier {
    /// The unique key the store indexes: one person per key.
    pub fn key(&self) -> String {
        match self {
            Identifier::NhsNumber { value } => format!("nhs:{value}"),
            Identifier::PncId { value } => format!("pnc:{value}"),
            Identifier::Local {
                agency,
                namespace,
                value,
            } => format!("local:{agency}:{namespace}:{value}"),
        }
    }

    /// The identifier a [`Identifier::key`] was made from; `None` for anything else.
    pub fn from_key(key: &str) -> Option<Self> {
        let (scheme, rest) = key.split_once(':')?;
        match scheme {
            "nhs" => Some(Identifier::NhsNumber {
                value: rest.to_owned(),
            }),
            "pnc" => Some(Identifier::PncId {
                value: rest.to_owned(),
            }),
            "local" => {
                let mut parts = rest.splitn(3, ':');
                let (agency, namespace, value) = (parts.next()?, parts.next()?, parts.next()?);
                Some(Identifier::Local {
                    agency: agency.to_owned(),
                    namespace: namespace.to_owned(),
                    value: value.to_owned(),
                })
            }
            _ => None,
        }
    }

    /// The scheme's name, for messages that must not show the value.
    pub fn scheme_name(&self) -> &'static str {
        match self {
            Identifier::NhsNumber { .. } => "nhs_number",
            Identifier::PncId { .. } => "pnc_id",
            Identifier::Local { .. } => "local",
        }
    }

    /// Parses an NHS number, ignoring spaces and hyphens; `field` names it in errors.
    pub fn nhs_number(raw: &str, field: &str) -> Result<Self, FieldViolation> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() != 10 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldViolation::new(
                field,
                "an NHS number has exactly 10 digits",
            ));
        }
        if !nhs_check_digit_valid(&digits) {
            return Err(FieldViolation::new(
                field,
                "not a valid NHS number: the modulus-11 check digit does not match",
            ));
        }
        Ok(Identifier::NhsNumber { value: digits })
    }

    /// Parses a PNC id such as `19/1234567J` (the serial may be shorter; it is zero-padded).
    /// The check letter must be the one [`pnc_check_letter`] gives for the year and serial.
    pub fn pnc_id(raw: &str, field: &str) -> Result<Self, FieldViolation> {
        let raw = raw.trim().to_ascii_uppercase();
        let bad = || {
            FieldViolation::new(
                field,
                "a PNC id is YY/NNNNNNNL: two-digit year, slash, up to seven digits, check letter",
            )
        };
        let (year, rest) = raw.split_once('/').ok_or_else(bad)?;
        // By characters, not bytes: the input may hold any UTF-8.
        let mut chars = rest.chars();
        let letter = chars.next_back().ok_or_else(bad)?;
        let serial = chars.as_str();
        let year_ok = year.len() == 2 && year.chars().all(|c| c.is_ascii_digit());
        let serial_ok =
            (1..=7).contains(&serial.len()) && serial.chars().all(|c| c.is_ascii_digit());
        if !(letter.is_ascii_uppercase() && year_ok && serial_ok) {
            return Err(bad());
        }
        let serial = format!("{serial:0>7}");
        if pnc_check_letter(year, &serial) != Some(letter) {
            return Err(FieldViolation::new(
                field,
                "not a valid PNC id: the check letter does not match the year and serial",
            ));
        }
        Ok(Identifier::PncId {
            value: format!("{year}/{serial}{letter}"),
        })
    }

    /// An agency-local id, namespaced by the publishing agency.
    pub fn local(
        agency: Agency,
        namespace: &str,
        value: &str,
        field: &str,
    ) -> Result<Self, FieldViolation> {
        let namespace = namespace.trim();
        let value = value.trim();
        let well_formed = |s: &str| {
            !s.is_empty()
                && s.chars().count() <= LOCAL_MAX
                && s.chars().all(|c| !c.is_control() && c != ':')
        };
        if !well_formed(namespace) {
            return Err(FieldViolation::new(
                format!("{field}.namespace"),
                format!("must be 1-{LOCAL_MAX} characters without ':' for a local identifier"),
            ));
        }
        if !well_formed(value) {
            return Err(FieldViolation::new(
                format!("{field}.value"),
                format!("must be 1-{LOCAL_MAX} characters without ':'"),
            ));
        }
        Ok(Identifier::Local {
            agency: agency.as_str().to_owned(),
            namespace: namespace.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// NHS number check: weights 10..2 over the first nine digits; 11 minus the remainder
/// mod 11 is the check digit (11 means 0, 10 means the number is invalid).
fn nhs_check_digit_valid(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = d[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match 11 - (sum % 11) {
        11 => d[9] == 0,
        10 => false,
        check => d[9] == check,
    }
}

/// The letters a PNC check character is drawn from: the alphabet without I, O and S,
/// which read as digits, with Z for a remainder of zero.
const PNC_CHECK_LETTERS: &[u8; 23] = b"ZABCDEFGHJKLMNPQRTUVWXY";

/// The check letter of a PNC id: the number formed by the two-digit year and the
/// seven-digit zero-padded serial, modulo 23, indexes [`PNC_CHECK_LETTERS`]. `None` when
/// `year` and `serial` are not two and seven ASCII digits.
pub fn pnc_check_letter(year: &str, serial: &str) -> Option<char> {
    if year.len() != 2 || serial.len() != 7 {
        return None;
    }
    let mut number: u64 = 0;
    for digit in year.bytes().chain(serial.bytes()) {
        if !digit.is_ascii_digit() {
            return None;
        }
        number = number * 10 + u64::from(digit - b'0');
    }
    // The remainder is below 23, so the index is in range.
    PNC_CHECK_LETTERS
        .get(usize::try_from(number % 23).ok()?)
        .map(|&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_with_a_matching_check_digit_are_accepted() {
        let id = Identifier::nhs_number("943 476 5919", "f").expect("valid");
        assert_eq!(id.key(), "nhs:9434765919");
        // 999000005: weighted sum 253, remainder 0, so 11 - 0 = 11 means check digit 0.
        assert!(Identifier::nhs_number("9990000050", "f").is_ok());
        assert!(Identifier::nhs_number("9990000051", "f").is_err());
        assert!(Identifier::nhs_number("999-000-0026", "f").is_ok());
    }

    #[test]
    fn nhs_numbers_with_a_wrong_check_digit_are_rejected() {
        let err = Identifier::nhs_number("9434765918", "person.identifiers[0].value")
            .expect_err("invalid");
        assert_eq!(err.field, "person.identifiers[0].value");
        assert!(err.description.contains("check digit"));
        assert!(Identifier::nhs_number("94347659", "f").is_err());
        assert!(Identifier::nhs_number("94347659AB", "f").is_err());
    }

    #[test]
    fn an_nhs_number_whose_check_would_be_ten_is_invalid() {
        // 0000000060: sum = 6*2 = 12, 12 % 11 = 1, 11 - 1 = 10 -> never valid.
        assert!(Identifier::nhs_number("0000000060", "f").is_err());
    }

    #[test]
    fn pnc_ids_are_format_checked_and_canonical() {
        let id = Identifier::pnc_id("19/1234e", "f").expect("valid");
        assert_eq!(id.key(), "pnc:19/0001234E");
        assert!(Identifier::pnc_id("2019/1234567J", "f").is_err());
        assert!(Identifier::pnc_id("19/12345678J", "f").is_err());
        assert!(Identifier::pnc_id("19-1234567J", "f").is_err());
        assert!(Identifier::pnc_id("19/1234567", "f").is_err());
        assert!(Identifier::pnc_id("19/", "f").is_err());
        // Not ASCII: refused, never split inside a character.
        assert!(Identifier::pnc_id("19/12é", "f").is_err());
        assert!(Identifier::pnc_id("19/é", "f").is_err());
    }

    #[test]
    fn pnc_ids_are_checked_by_their_check_letter() {
        // 12/394773H is a published example of a well-formed PNC id (HMPPS mock data):
        // 120394773 mod 23 = 8, the ninth letter of the check alphabet.
        assert_eq!(pnc_check_letter("12", "0394773"), Some('H'));
        assert!(Identifier::pnc_id("12/394773H", "f").is_ok());
        // A remainder of zero is Z: 23 * 5 = 115 as year 00, serial 0000115.
        assert_eq!(pnc_check_letter("00", "0000115"), Some('Z'));
        let wrong = Identifier::pnc_id("12/394773J", "p.identifiers[0].value")
            .expect_err("wrong check letter");
        assert_eq!(wrong.field, "p.identifiers[0].value");
        assert!(wrong.description.contains("check letter"));
        assert!(!wrong.description.contains("394773"), "value leaked");
        // Every other letter in place of the right one is refused.
        let refused = ('A'..='Z')
            .filter(|&l| Identifier::pnc_id(&format!("18/0012345{l}"), "f").is_err())
            .count();
        assert_eq!(refused, 25);
        assert!(Identifier::pnc_id("18/0012345R", "f").is_ok());
        assert_eq!(pnc_check_letter("1", "0012345"), None);
        assert_eq!(pnc_check_letter("18", "00123x5"), None);
    }

    #[test]
    fn local_ids_are_namespaced_by_agency() {
        let csc = Identifier::local(Agency::ChildrensServices, "mosaic", "C-1", "f").expect("ok");
        let police = Identifier::local(Agency::Police, "mosaic", "C-1", "f").expect("ok");
        assert_ne!(csc.key(), police.key());
        assert_eq!(csc.key(), "local:childrens_services:mosaic:C-1");
        assert_eq!(Identifier::from_key(&csc.key()), Some(csc.clone()));
        let nhs = Identifier::nhs_number("9434765919", "f").expect("valid");
        assert_eq!(Identifier::from_key(&nhs.key()), Some(nhs));
        assert_eq!(Identifier::from_key("passport:123"), None);
        let err = Identifier::local(Agency::Police, "", "x", "p.identifiers[1]").expect_err("bad");
        assert_eq!(err.field, "p.identifiers[1].namespace");
    }
}
