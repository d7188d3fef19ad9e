//! The tables beside the log that IG questions are answered from, proven by the hashed
//! entries: the person index is recomputed from each entry's persons; each break-glass
//! review, subject-access release and logged identity decision must agree with the entry
//! that records it, and every such entry must have its row; so must each privacy alert
//! and each step of its case. A row edited, deleted or
//! inserted behind the gateway's back is named.

use std::collections::{HashMap, HashSet};

use crate::domain::identity::steward::rules as identity_rules;
use crate::domain::ledger::alert_rows;
use crate::domain::ledger::review::{RELEASE_RULE, REVIEW_RULE};
use crate::domain::ledger::verify::Mismatch;
use crate::domain::ledger::{Entry, EntryKind};
use crate::store::BoundRow;

/// Checks the bound tables entry by entry, in `seq` order.
#[derive(Debug, Default)]
pub struct BoundTables {
    /// Rows not yet matched to their entry, by table and log entry id.
    rows: HashMap<(&'static str, String), Vec<BoundRow>>,
    /// Decisions that have a logged row, whichever entry it names: a decision whose
    /// first entry could not be marked is logged again, and only the later entry is
    /// marked.
    logged_decisions: HashSet<String>,
}

/// What an entry says its bound row must hold.
struct Expected {
    table: &'static str,
    columns: Vec<(&'static str, String)>,
}

impl BoundTables {
    /// Starts from every stored row of the review, release and logged-decision tables.
    pub fn new(rows: Vec<BoundRow>) -> Self {
        let mut tables = BoundTables::default();
        for row in rows {
            if row.table == "identity_decision_logged" {
                tables.logged_decisions.insert(row.key.clone());
            }
            tables
                .rows
                .entry((row.table, row.log_entry_id.clone()))
                .or_default()
                .push(row);
        }
        tables
    }

    /// Checks the entry at `seq` against the person index rows stored for it and the
    /// bound rows that name it.
    pub fn check(
        &mut self,
        seq: u64,
        entry: &Entry,
        mut indexed: Vec<String>,
    ) -> Result<(), Mismatch> {
        let fail = |problem: String| Mismatch {
            seq,
            entry_id: entry.entry_id.clone(),
            problem,
        };
        // The person index: exactly the entry's persons.
        let persons = entry.persons();
        indexed.sort_unstable();
        let missing: Vec<&str> = persons
            .iter()
            .filter(|p| indexed.binary_search_by(|i| i.as_str().cmp(p)).is_err())
            .copied()
            .collect();
        let extra: Vec<&str> = indexed
            .iter()
            .map(String::as_str)
            .filter(|i| persons.binary_search(i).is_err())
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            let mut said = Vec::new();
            if !missing.is_empty() {
                said.push(format!(
                    "has no row for person {} whom the entry names (deleted or edited)",
                    missing.join(", ")
                ));
            }
            if !extra.is_empty() {
                said.push(format!(
                    "has a row for person {} whom the entry does not name (inserted or edited)",
                    extra.join(", ")
                ));
            }
            return Err(fail(format!(
                "the person index (disclosure_person) {}",
                said.join("; and ")
            )));
        }

        let expected = expected_row(entry);
        for table in [
            "break_glass_review",
            "subject_access_release",
            "identity_decision_logged",
            "privacy_alert",
            "privacy_alert_event",
        ] {
            let rows = self
                .rows
                .remove(&(table, entry.entry_id.clone()))
                .unwrap_or_default();
            let wanted = expected.as_ref().filter(|e| e.table == table);
            match (wanted, rows.as_slice()) {
                (None, []) => {}
                (None, [row, ..]) => {
                    return Err(fail(format!(
                        "{table} row {} names this entry, which records no such row: it was \
                         inserted or edited",
                        row.key
                    )));
                }
                (Some(wanted), []) => {
                    let decision = wanted
                        .columns
                        .iter()
                        .find(|(c, _)| *c == "decision_id")
                        .map(|(_, d)| d.as_str());
                    // Logged twice, the later entry marked: the decision still has its row.
                    if decision.is_some_and(|d| self.logged_decisions.contains(d)) {
                        continue;
                    }
                    let unless = if table == "identity_decision_logged" {
                        " (or the gateway stopped before marking the decision logged: it \
                         logs the decision again at its next start)"
                    } else {
                        ""
                    };
                    return Err(fail(format!(
                        "{table} has no row for what this entry records: it was deleted or \
                         edited{unless}"
                    )));
                }
                (Some(wanted), [row]) => {
                    let stored = |name: &str| {
                        row.columns
                            .iter()
                            .find(|(column, _)| *column == name)
                            .map(|(_, value)| value.as_str())
                    };
                    if let Some((column, _)) = wanted
                        .columns
                        .iter()
                        .find(|(column, expected)| stored(column) != Some(expected.as_str()))
                    {
                        return Err(fail(format!(
                            "{table} row {}: column `{column}` does not match the hashed entry \
                             that records it: it was edited",
                            row.key
                        )));
                    }
                }
                (Some(_), [_, second, ..]) => {
                    return Err(fail(format!(
                        "{table} row {} names this entry, which records only one: it was inserted",
                        second.key
                    )));
                }
            }
        }
        Ok(())
    }

    /// After the last entry (`size`): a bound row left over names an entry that does not
    /// exist, or one within the log that never had it; rows naming entries after `size`
    /// were written since verification began and are checked next time.
    pub fn finish(self, size: u64) -> Result<(), Mismatch> {
        let mut left: Vec<BoundRow> = self
            .rows
            .into_values()
            .flatten()
            .filter(|row| row.log_seq.is_none_or(|seq| seq <= size))
            .collect();
        left.sort_by(|a, b| (a.table, &a.key).cmp(&(b.table, &b.key)));
        match left.first() {
            None => Ok(()),
            Some(row) => Err(Mismatch {
                seq: row.log_seq.unwrap_or(size),
                entry_id: String::new(),
                problem: match row.log_seq {
                    None => format!(
                        "{} row {} names log entry {}, which does not exist: it was inserted \
                         or edited",
                        row.table, row.key, row.log_entry_id
                    ),
                    Some(_) => format!(
                        "{} row {} names log entry {}, which records no such row: it was \
                         inserted or edited",
                        row.table, row.key, row.log_entry_id
                    ),
                },
            }),
        }
    }
}

/// The bound row an entry records, if it records one, with the columns it determines.
fn expected_row(entry: &Entry) -> Option<Expected> {
    let rule = entry.rule_ids.first().map(String::as_str)?;
    let subject = || {
        entry
            .released
            .first()
            .map(|d| d.record_id.clone())
            .unwrap_or_default()
    };
    match (entry.kind, rule) {
        (EntryKind::Alert, _) => Some(Expected {
            table: "privacy_alert",
            columns: alert_rows::alert_recorded(entry)?,
        }),
        (EntryKind::Review, alert_rows::ASSIGN_RULE | alert_rows::CLOSE_RULE) => Some(Expected {
            table: "privacy_alert_event",
            columns: alert_rows::event_recorded(entry)?,
        }),
        (EntryKind::Review, REVIEW_RULE) => {
            // "break-glass use reviewed: <outcome>", since ledger-14 "… (review <id>)".
            let said = entry.reason.strip_prefix("break-glass use reviewed: ")?;
            let (outcome, review_id) = match said.split_once(" (review ") {
                Some((outcome, id)) => (outcome, id.strip_suffix(')')),
                None => (said, None),
            };
            let mut columns = vec![
                ("entry_id", subject()),
                ("outcome", outcome.to_owned()),
                ("note", entry.justification.clone()),
                ("reviewer_system", entry.system_id.clone()),
                ("reviewer_id", entry.practitioner_id.clone()),
                ("reviewed_at", entry.recorded_at.clone()),
            ];
            if let Some(id) = review_id {
                columns.insert(0, ("review_id", id.to_owned()));
            }
            Some(Expected {
                table: "break_glass_review",
                columns,
            })
        }
        (EntryKind::Review, RELEASE_RULE) => {
            let release_id = entry
                .reason
                .split_once(" (release ")
                .and_then(|(_, id)| id.strip_suffix(')'));
            let mut columns = vec![
                ("entry_id", subject()),
                ("note", entry.justification.clone()),
                ("released_by_system", entry.system_id.clone()),
                ("released_by_id", entry.practitioner_id.clone()),
                ("released_at", entry.recorded_at.clone()),
            ];
            if let Some(id) = release_id {
                columns.insert(0, ("release_id", id.to_owned()));
            }
            Some(Expected {
                table: "subject_access_release",
                columns,
            })
        }
        (
            EntryKind::Identity,
            identity_rules::AUTO_LINK
            | identity_rules::REVIEW_RAISED
            | identity_rules::CONFIRMED
            | identity_rules::REJECTED
            | identity_rules::SPLIT,
        ) => {
            // "<words> (decision <id>)…", as the identity room writes it.
            let (_, rest) = entry.reason.split_once("(decision ")?;
            let (decision_id, _) = rest.split_once(')')?;
            let link = entry.identity_links.first();
            Some(Expected {
                table: "identity_decision_logged",
                columns: vec![
                    ("decision_id", decision_id.to_owned()),
                    (
                        "identity_decision.kind",
                        link.map(|l| l.method.clone()).unwrap_or_default(),
                    ),
                    (
                        "identity_decision.person_id",
                        entry.subject_person_id.clone(),
                    ),
                    (
                        "identity_decision.other_person_id",
                        entry.linked_person_ids.first().cloned().unwrap_or_default(),
                    ),
                ],
            })
        }
        _ => None,
    }
}
