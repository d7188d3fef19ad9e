//! Normalisation: one agency's spelling of a person's details turned into the form the
//! comparisons read, so that case, accents, punctuation and spacing never decide a match.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::{Demographics, NameField};
use crate::domain::records::facts::PersonDetails;

/// Lower case, accents removed, apostrophes dropped (`O'Neill` is `oneill`), every other
/// mark of punctuation (hyphens included) a space, runs of spaces folded to one.
pub(crate) fn normalise_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    let push = |out: &mut String, text: &str, space: &mut bool| {
        if *space && !out.is_empty() {
            out.push(' ');
        }
        *space = false;
        out.push_str(text);
    };
    for c in raw.nfkd() {
        if is_combining_mark(c) || matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ' | '´') {
            continue;
        }
        // Letters that do not decompose into a base letter and a mark.
        let folded = match c {
            'ß' => "ss",
            'æ' | 'Æ' => "ae",
            'œ' | 'Œ' => "oe",
            'ø' | 'Ø' => "o",
            'ł' | 'Ł' => "l",
            'đ' | 'Đ' => "d",
            'þ' | 'Þ' => "th",
            'ı' => "i",
            _ => "",
        };
        if !folded.is_empty() {
            push(&mut out, folded, &mut space);
        } else if c.is_alphanumeric() {
            let mut buf = [0u8; 4];
            for lower in c.to_lowercase() {
                push(&mut out, lower.encode_utf8(&mut buf), &mut space);
            }
        } else {
            space = true;
        }
    }
    out
}

/// Common street words written one way, so `12 High St.` and `12 high street` agree.
fn expand_street_word(word: &str) -> &str {
    match word {
        "st" => "street",
        "rd" => "road",
        "ave" | "av" => "avenue",
        "ln" => "lane",
        "cl" => "close",
        "cres" => "crescent",
        "dr" => "drive",
        "ct" => "court",
        "pl" => "place",
        "sq" => "square",
        "gdns" => "gardens",
        "flt" => "flat",
        _ => word,
    }
}

impl Demographics {
    /// Normalises one agency's person details (case, accents, punctuation, spacing;
    /// hyphenated and reordered names kept comparable: a hyphenated family name keeps its
    /// parts space-separated, and every given name is kept in order).
    pub fn from_details(details: &PersonDetails) -> Self {
        let given_names = std::iter::once(details.given_name.as_str())
            .chain(details.middle_names.iter().map(String::as_str))
            .flat_map(|name| {
                normalise_text(name)
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let other_names = details
            .other_names
            .iter()
            .map(|o| {
                (
                    normalise_text(&o.given_names),
                    normalise_text(&o.family_name),
                )
            })
            .filter(|(given, family)| !given.is_empty() || !family.is_empty())
            .collect();
        let raw_address = if details.address_lines.is_empty() {
            details.address.clone()
        } else {
            details.address_lines.join(" ")
        };
        let mut address = normalise_text(&raw_address);
        if let Some(postcode) = &details.postcode {
            // A free-text address often ends with the postcode, which is compared apart.
            for written in [
                normalise_text(postcode.as_str()),
                postcode.as_str().replace(' ', "").to_lowercase(),
            ] {
                if let Some(stripped) = address.strip_suffix(&written) {
                    address = stripped.trim_end().to_owned();
                }
            }
        }
        let address = address
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(expand_street_word)
            .collect::<Vec<_>>()
            .join(" ");
        Demographics {
            given_names,
            family_name: normalise_text(&details.family_name),
            other_names,
            date_of_birth: details.date_of_birth,
            sex: details.sex,
            postcode: details.postcode.clone(),
            address,
        }
    }

    /// The names whose term frequencies the store must count for this record and look up
    /// for it: the first given name, the family name, each part of a hyphenated family
    /// name, and other names' family names; (field, normalised value), deduplicated.
    pub fn tf_terms(&self) -> Vec<(NameField, String)> {
        let mut terms: Vec<(NameField, String)> = Vec::new();
        let mut add = |field: NameField, value: &str| {
            if !value.is_empty() && !terms.iter().any(|(f, v)| *f == field && v == value) {
                terms.push((field, value.to_owned()));
            }
        };
        if let Some(first) = self.given_names.first() {
            add(NameField::Given, first);
        }
        for family in self.family_forms() {
            add(NameField::Family, &family);
        }
        terms
    }

    /// Every form of the family name an exact agreement may be on: the whole name, each
    /// part of a hyphenated name, the parts in sorted order (so reordered parts agree),
    /// and the same of every other name's family name.
    pub(crate) fn family_forms(&self) -> Vec<String> {
        let mut forms: Vec<String> = Vec::new();
        let names = std::iter::once(self.family_name.as_str())
            .chain(self.other_names.iter().map(|(_, family)| family.as_str()));
        for name in names.filter(|n| !n.is_empty()) {
            let mut push = |form: String| {
                if !forms.contains(&form) {
                    forms.push(form);
                }
            };
            push(name.to_owned());
            let mut parts: Vec<&str> = name.split(' ').collect();
            if parts.len() > 1 {
                for part in &parts {
                    push((*part).to_owned());
                }
                parts.sort_unstable();
                push(parts.join(" "));
            }
        }
        forms
    }

    /// Every given name, the other names' given names included.
    pub(crate) fn all_given_names(&self) -> impl Iterator<Item = &str> {
        self.given_names.iter().map(String::as_str).chain(
            self.other_names
                .iter()
                .flat_map(|(given, _)| given.split(' ').filter(|w| !w.is_empty())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::{Day, NameKind, OtherName, Postcode};

    fn details(given: &str, family: &str) -> PersonDetails {
        PersonDetails {
            identifiers: vec![],
            person: None,
            given_name: given.into(),
            family_name: family.into(),
            date_of_birth: Day::parse("2015-03-04"),
            address: String::new(),
            middle_names: vec![],
            other_names: vec![],
            sex: None,
            postcode: None,
            address_lines: vec![],
        }
    }

    #[test]
    fn text_is_folded_to_one_comparable_form() {
        for (raw, expected) in [
            ("Zoë", "zoe"),
            ("O'Neill", "oneill"),
            ("O’Neill", "oneill"),
            ("Smith-Jones", "smith jones"),
            ("  MARY   Ann ", "mary ann"),
            ("José-María", "jose maria"),
            ("Strauß", "strauss"),
            ("Søren", "soren"),
            ("St. John", "st john"),
            ("", ""),
        ] {
            assert_eq!(normalise_text(raw), expected, "{raw}");
        }
    }

    #[test]
    fn details_become_demographics() {
        let mut d = details("  Zoë  ", "O'Neill-SMITH");
        d.middle_names = vec!["Anne-Marie".into()];
        d.other_names = vec![OtherName {
            kind: NameKind::Previous,
            given_names: String::new(),
            family_name: "Brown".into(),
        }];
        d.postcode = Postcode::parse("so23 8uj", "p").ok();
        d.address = "12, High St. Winchester SO23 8UJ".into();
        let demo = Demographics::from_details(&d);
        assert_eq!(demo.given_names, ["zoe", "anne", "marie"]);
        assert_eq!(demo.family_name, "oneill smith");
        assert_eq!(demo.other_names, [(String::new(), "brown".to_owned())]);
        assert_eq!(demo.address, "12 high street winchester");
        assert_eq!(
            demo.tf_terms(),
            [
                (NameField::Given, "zoe".to_owned()),
                (NameField::Family, "oneill smith".to_owned()),
                (NameField::Family, "oneill".to_owned()),
                (NameField::Family, "smith".to_owned()),
                (NameField::Family, "brown".to_owned()),
            ]
        );
    }

    #[test]
    fn address_lines_are_preferred_to_the_free_text_address() {
        let mut d = details("a", "b");
        d.address = "ignored".into();
        d.address_lines = vec!["Flat 2".into(), "3 Mill Rd".into()];
        assert_eq!(Demographics::from_details(&d).address, "flat 2 3 mill road");
    }

    #[test]
    fn reordered_hyphenated_parts_share_a_form() {
        let a = Demographics::from_details(&details("x", "Smith-Jones"));
        let b = Demographics::from_details(&details("x", "Jones Smith"));
        assert!(a.family_forms().contains(&"jones smith".to_owned()));
        assert!(b.family_forms().contains(&"jones smith".to_owned()));
    }
}
