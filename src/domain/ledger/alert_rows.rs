//! The rows of a privacy alert case (`privacy_alert`, `privacy_alert_event`), each
//! committed with the disclosure-log entry that records it. The entry's hashed text says
//! what its row must hold (see [`alert_recorded`] and [`event_recorded`]), so verify
//! proves the rows as it proves break-glass reviews. The rules that raise alerts live in
//! `domain::alerts`; the ledger only knows the shape of what it binds.

use crate::domain::ledger::Entry;

/// Rule id of an entry recording an assignment of an alert case.
pub const ASSIGN_RULE: &str = "audit.alert_assign";
/// Rule id of an entry recording the closing of an alert case.
pub const CLOSE_RULE: &str = "audit.alert_close";

vocabulary! {
    /// A step in an alert case's history.
    CaseAction {
        /// Given to an IG officer to investigate (again, to another officer).
        Assigned => "assigned",
        /// Investigated and closed, with an outcome and a note.
        Closed => "closed",
    }
}

vocabulary! {
    /// What an investigation found.
    CaseOutcome {
        /// The access was legitimate; the note says what explains it.
        Explained => "explained",
        /// The access was inappropriate: a data-protection breach, referred on.
        Breach => "breach",
        /// The rule fired on something it should not have; the note says why, for the
        /// next review of the rules.
        FalsePositive => "false_positive",
    }
}

/// A privacy alert as raised: the rule, why in words, and the log entries it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub alert_id: String,
    /// What the alert is about (rule, practitioner, day or entry): one alert per key.
    pub alert_key: String,
    pub rule_id: String,
    /// SHA-256 of the rules file whose thresholds raised it.
    pub rules_version: String,
    pub raised_at: String,
    pub system_id: String,
    pub practitioner_id: String,
    /// Why, in words; ids and counts, never personal data.
    pub summary: String,
    /// The disclosure-log entries the alert rests on.
    pub entry_ids: Vec<String>,
    /// The disclosure-log entry that records the alert.
    pub log_entry_id: String,
}

/// One step of an alert case; never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    pub event_id: String,
    pub alert_id: String,
    /// 1 for the first step after the alert was raised, and so on.
    pub step: u32,
    pub action: CaseAction,
    pub assignee: String,
    /// For a closing step.
    pub outcome: Option<CaseOutcome>,
    pub note: String,
    pub by_system: String,
    pub by_id: String,
    pub at: String,
    /// The disclosure-log entry that records the step.
    pub log_entry_id: String,
}

/// The words an alert's recording entry carries after the summary, naming the row.
fn alert_tail(alert: &Alert) -> String {
    format!(
        " (alert {}; key {}; entries {})",
        alert.alert_id,
        alert.alert_key,
        alert.entry_ids.join(",")
    )
}

/// The `reason` of the entry recording `alert`: its summary and the row's identity.
pub fn alert_reason(alert: &Alert) -> String {
    format!("{}{}", alert.summary, alert_tail(alert))
}

/// The columns of the `privacy_alert` row an alert entry records, from its hashed text.
pub fn alert_recorded(entry: &Entry) -> Option<Vec<(&'static str, String)>> {
    let (summary, tail) = entry.reason.rsplit_once(" (alert ")?;
    let tail = tail.strip_suffix(')')?;
    let (alert_id, rest) = tail.split_once("; key ")?;
    let (key, entries) = rest.rsplit_once("; entries ")?;
    Some(vec![
        ("alert_id", alert_id.to_owned()),
        ("alert_key", key.to_owned()),
        (
            "rule_id",
            entry.rule_ids.first().cloned().unwrap_or_default(),
        ),
        ("rules_version", entry.policy_version.clone()),
        ("raised_at", entry.recorded_at.clone()),
        ("system_id", entry.system_id.clone()),
        ("practitioner_id", entry.practitioner_id.clone()),
        ("summary", summary.to_owned()),
        ("entry_ids", entries.to_owned()),
    ])
}

/// The `reason` of the entry recording `event`.
pub fn event_reason(event: &AlertEvent) -> String {
    let what = match (event.action, event.outcome) {
        (CaseAction::Closed, Some(outcome)) => format!("closed: {outcome}"),
        _ => format!("assigned to {}", event.assignee),
    };
    format!(
        "alert {} {what} (event {}; step {}; assignee {})",
        event.alert_id, event.event_id, event.step, event.assignee
    )
}

/// The columns of the `privacy_alert_event` row an entry records, from its hashed text.
pub fn event_recorded(entry: &Entry) -> Option<Vec<(&'static str, String)>> {
    let action = match entry.rule_ids.first().map(String::as_str)? {
        ASSIGN_RULE => CaseAction::Assigned,
        CLOSE_RULE => CaseAction::Closed,
        _ => return None,
    };
    let rest = entry.reason.strip_prefix("alert ")?;
    let (alert_id, rest) = rest.split_once(' ')?;
    let (said, tail) = rest.rsplit_once(" (event ")?;
    let tail = tail.strip_suffix(')')?;
    let (event_id, tail) = tail.split_once("; step ")?;
    let (step, assignee) = tail.split_once("; assignee ")?;
    let outcome = match action {
        CaseAction::Closed => said.strip_prefix("closed: ")?.to_owned(),
        CaseAction::Assigned => String::new(),
    };
    Some(vec![
        ("event_id", event_id.to_owned()),
        ("alert_id", alert_id.to_owned()),
        ("step", step.to_owned()),
        ("action", action.as_str().to_owned()),
        ("assignee", assignee.to_owned()),
        ("outcome", outcome),
        ("note", entry.justification.clone()),
        ("by_system", entry.system_id.clone()),
        ("by_id", entry.practitioner_id.clone()),
        ("at", entry.recorded_at.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{Decision, EntryKind};

    #[test]
    fn an_alert_entry_names_every_column_of_its_row() {
        let alert = Alert {
            alert_id: "a-1".into(),
            alert_key: "refusals:s:p:e-1".into(),
            rule_id: "alerts.repeated_refusals".into(),
            rules_version: "abc".into(),
            raised_at: "2025-01-01T00:00:00.000000Z".into(),
            system_id: "s".into(),
            practitioner_id: "p".into(),
            summary: "5 refusals (in 10 minutes)".into(),
            entry_ids: vec!["e-1".into(), "e-2".into()],
            log_entry_id: "l".into(),
        };
        let mut entry = Entry::new(EntryKind::Alert, Decision::Recorded);
        entry.reason = alert_reason(&alert);
        entry.rule_ids = vec![alert.rule_id.clone()];
        entry.policy_version = alert.rules_version.clone();
        entry.recorded_at = alert.raised_at.clone();
        entry.system_id = "s".into();
        entry.practitioner_id = "p".into();
        let columns = alert_recorded(&entry).expect("parses");
        let get = |name: &str| {
            columns
                .iter()
                .find(|(c, _)| *c == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("alert_id"), Some("a-1"));
        assert_eq!(get("alert_key"), Some("refusals:s:p:e-1"));
        assert_eq!(get("summary"), Some("5 refusals (in 10 minutes)"));
        assert_eq!(get("entry_ids"), Some("e-1,e-2"));
    }

    #[test]
    fn a_closing_entry_names_its_outcome_and_step() {
        let event = AlertEvent {
            event_id: "ev".into(),
            alert_id: "a-1".into(),
            step: 2,
            action: CaseAction::Closed,
            assignee: "IG-0002".into(),
            outcome: Some(CaseOutcome::FalsePositive),
            note: "covering a colleague".into(),
            by_system: "ig-office".into(),
            by_id: "IG-0002".into(),
            at: "t".into(),
            log_entry_id: "l".into(),
        };
        let mut entry = Entry::new(EntryKind::Review, Decision::Recorded);
        entry.rule_ids = vec![CLOSE_RULE.into()];
        entry.reason = event_reason(&event);
        entry.justification = event.note.clone();
        let columns = event_recorded(&entry).expect("parses");
        let get = |name: &str| {
            columns
                .iter()
                .find(|(c, _)| *c == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("outcome"), Some("false_positive"));
        assert_eq!(get("step"), Some("2"));
        assert_eq!(get("assignee"), Some("IG-0002"));
        assert_eq!(get("alert_id"), Some("a-1"));
    }
}
