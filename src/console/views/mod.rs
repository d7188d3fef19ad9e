//! One module per screen; handlers are named `view_<page>_get` / `_post`.

pub mod alerts;
pub mod break_glass;
pub mod charts;
pub mod entry;
pub mod exports;
pub mod identity;
pub mod search;
pub mod subject_access;
pub mod verify;

use axum::http::HeaderMap;

use crate::console::ConsoleState;
use crate::console::csrf::CSRF_RULE;
use crate::console::officer::Officer;
use crate::domain::ledger::StoredEntry;
use crate::domain::records::PersonRef;
use crate::domain::records::identifiers::Identifier;
use crate::error::Error;

/// A confirmation named in the query after a recorded step, such as `?done=closed`
/// (a word the page turns into its banner, never free text).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Done {
    pub done: String,
}

/// A problem with one form field, shown in the error summary and beside the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The id of the input it is about (the summary links to it).
    pub field: &'static str,
    pub message: String,
}

/// The error of `field` among `errors`, or an empty string.
pub fn error_for(errors: &[FieldError], field: &str) -> String {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// Refuses a form that did not come from this officer's own console page.
pub fn check_form(
    state: &ConsoleState,
    officer: &Officer,
    headers: &HeaderMap,
    token: &str,
) -> Result<(), Error> {
    if state
        .csrf
        .check(&officer.signed_in.certificate_sha256, headers, token)
    {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            rule: CSRF_RULE,
            reason: "the form did not come from your own console page (it may be stale or \
                     sent from another site); open the page again and resend it"
                .into(),
        })
    }
}

/// A person as an officer names them: an NHS number, a PNC id or the gateway's person id.
pub fn person_reference(text: &str) -> Result<PersonRef, String> {
    let text = text.trim();
    let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 10 && digits.chars().all(|c| c.is_ascii_digit()) {
        return Identifier::nhs_number(&digits, "person")
            .map(PersonRef::Identifier)
            .map_err(|v| format!("Enter a valid NHS number: {}", v.description));
    }
    if text.contains('/') {
        return Identifier::pnc_id(text, "person")
            .map(PersonRef::Identifier)
            .map_err(|v| format!("Enter a valid PNC id: {}", v.description));
    }
    match uuid::Uuid::parse_str(text) {
        Ok(id) => Ok(PersonRef::PersonId(id.to_string())),
        Err(_) => Err(
            "Enter an NHS number (10 digits), a PNC id (such as 18/0012345R) or a person id".into(),
        ),
    }
}

/// How the log shows a time: `2026-12-01 10:32:49 UTC` from its RFC 3339 text.
pub fn display_time(recorded_at: &str) -> String {
    match (recorded_at.get(..10), recorded_at.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => recorded_at.to_owned(),
    }
}

/// One row of a table of entries.
pub struct EntryRow {
    pub seq: u64,
    pub entry_id: String,
    pub recorded_at: String,
    pub kind: String,
    pub decision: String,
    pub agency: String,
    pub system_id: String,
    pub practitioner_id: String,
    pub break_glass: bool,
    pub reviewed: String,
}

impl From<&StoredEntry> for EntryRow {
    fn from(stored: &StoredEntry) -> Self {
        let e = &stored.entry;
        EntryRow {
            seq: stored.seq,
            entry_id: e.entry_id.clone(),
            recorded_at: display_time(&e.recorded_at),
            kind: e.kind.as_str().replace('_', " "),
            decision: e.decision.as_str().replace('_', " "),
            agency: e.agency.replace('_', " "),
            system_id: e.system_id.clone(),
            practitioner_id: e.practitioner_id.clone(),
            break_glass: e.break_glass,
            reviewed: stored
                .latest_review
                .as_ref()
                .map(|r| r.outcome.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// A choice of a select or radio group.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Choices of `values`, the one equal to `current` selected, after an "any" choice.
pub fn choices(values: &[&str], current: &str, any: &str) -> Vec<Choice> {
    std::iter::once(Choice {
        value: String::new(),
        label: any.to_owned(),
        selected: current.is_empty(),
    })
    .chain(values.iter().map(|v| Choice {
        value: (*v).to_owned(),
        label: v.replace('_', " "),
        selected: *v == current,
    }))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_named_by_nhs_number_pnc_id_or_person_id() {
        assert!(matches!(
            person_reference("943 476 5919"),
            Ok(PersonRef::Identifier(Identifier::NhsNumber { .. }))
        ));
        assert!(person_reference("943 476 5918").is_err(), "bad check digit");
        assert!(matches!(
            person_reference("18/0012345R"),
            Ok(PersonRef::Identifier(Identifier::PncId { .. }))
        ));
        assert!(matches!(
            person_reference("0190d9a2-1111-7000-8000-000000000001"),
            Ok(PersonRef::PersonId(_))
        ));
        assert!(person_reference("Amy Carter").is_err());
    }

    #[test]
    fn times_are_shown_in_utc_words() {
        assert_eq!(
            display_time("2026-12-01T10:32:49.123456Z"),
            "2026-12-01 10:32:49 UTC"
        );
    }
}
