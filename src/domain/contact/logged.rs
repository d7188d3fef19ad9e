//! The contact tables as the log says they must be. Each request, answer and escalation
//! entry carries its row whole (`ContactRecord::row`), so the log is the source of truth:
//! verify checks each stored row against the entry that records it, and a row missing
//! because the gateway stopped between logging a step and storing it is derived again
//! from the entry (see `Contacts::restore_logged`).

use crate::domain::contact::{ContactRequest, ContactStep, Outcome};
use crate::domain::ledger::{Decision, Entry, EntryKind};

/// The table contact requests are stored in.
pub const REQUEST_TABLE: &str = "contact_request";
/// The table answers and escalations are stored in.
pub const STEP_TABLE: &str = "contact_step";

/// A request or a step, as its entry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    Request(Box<ContactRequest>),
    Step(ContactStep),
}

/// What an entry says about the contact tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The entry records no contact row (a status read, or another kind of entry).
    Nothing,
    /// The entry records this row.
    Row(Box<Logged>),
    /// The entry records a row of `table` but was written before entries carried the
    /// row whole: only that the row exists can be checked.
    Unknown { table: &'static str },
}

impl Logged {
    /// The table the row is stored in.
    pub fn table(&self) -> &'static str {
        match self {
            Logged::Request(_) => REQUEST_TABLE,
            Logged::Step(_) => STEP_TABLE,
        }
    }

    /// The row's primary key.
    pub fn key(&self) -> &str {
        match self {
            Logged::Request(request) => &request.request_id,
            Logged::Step(step) => &step.step_id,
        }
    }

    /// Column name and value, as the row must be stored (the payload as JSON).
    pub fn columns(&self) -> Vec<(&'static str, String)> {
        match self {
            Logged::Request(r) => vec![
                ("request_id", r.request_id.clone()),
                ("requester_system", r.requester_system.clone()),
                ("requester_practitioner", r.requester_practitioner.clone()),
                ("client_request_id", r.client_request_id.clone()),
                ("owner_system", r.owner_system.clone()),
                ("created_at", r.created_at.clone()),
                ("due_at", r.due_at.clone()),
                ("payload", serde_json::to_string(r).unwrap_or_default()),
            ],
            Logged::Step(s) => vec![
                ("step_id", s.step_id.clone()),
                ("request_id", s.request_id.clone()),
                ("kind", s.kind.as_str().to_owned()),
                ("outcome", s.outcome.map_or("", |o| o.as_str()).to_owned()),
                ("to_system", s.passed_to().to_owned()),
                ("payload", serde_json::to_string(s).unwrap_or_default()),
                ("recorded_at", s.recorded_at.clone()),
            ],
        }
    }
}

impl ContactStep {
    /// For an answer passing the request on: the team it now sits with; else empty.
    pub fn passed_to(&self) -> &str {
        match self.outcome {
            Some(Outcome::PassedOn) => self.to_systems.first().map_or("", String::as_str),
            _ => "",
        }
    }
}

/// The contact row `entry` records, derived from its hashed text alone.
pub fn recorded(entry: &Entry) -> Recorded {
    let Some(contact) = entry
        .contact
        .as_ref()
        .filter(|_| entry.kind == EntryKind::Contact && entry.decision == Decision::Recorded)
    else {
        return Recorded::Nothing;
    };
    let table = match contact.step.as_str() {
        "requested" => REQUEST_TABLE,
        "answered" | "escalated" => STEP_TABLE,
        _ => return Recorded::Nothing,
    };
    let Some(row) = contact.row.clone() else {
        return Recorded::Unknown { table };
    };
    let logged = if table == REQUEST_TABLE {
        serde_json::from_value(row).map(|r| Logged::Request(Box::new(r)))
    } else {
        serde_json::from_value(row).map(Logged::Step)
    };
    match logged {
        Ok(logged) => Recorded::Row(Box::new(logged)),
        Err(_) => Recorded::Unknown { table },
    }
}

/// The first field of `stored` (a row's JSON payload) that differs from `expected`, or
/// `None` when they hold the same values; `Some("")` when `stored` is not JSON at all.
pub fn differing_field(stored: &str, expected: &str) -> Option<String> {
    let Ok(serde_json::Value::Object(stored)) = serde_json::from_str(stored) else {
        return Some(String::new());
    };
    let Ok(serde_json::Value::Object(expected)) = serde_json::from_str(expected) else {
        return Some(String::new());
    };
    expected
        .iter()
        .find(|(field, value)| stored.get(*field) != Some(value))
        .map(|(field, _)| field.clone())
        .or_else(|| {
            stored
                .keys()
                .find(|field| !expected.contains_key(*field))
                .cloned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_differing_in_one_field_names_it() {
        assert_eq!(
            differing_field(r#"{"a":"1","b":"x"}"#, r#"{"b":"2","a":"1"}"#),
            Some("b".into())
        );
        assert_eq!(
            differing_field(r#"{"b":"2","a":"1"}"#, r#"{"a":"1","b":"2"}"#),
            None
        );
        assert_eq!(
            differing_field(r#"{"a":"1","c":"3"}"#, r#"{"a":"1"}"#),
            Some("c".into())
        );
        assert_eq!(differing_field("not json", r#"{"a":"1"}"#), Some("".into()));
    }
}
