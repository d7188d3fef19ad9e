//! The record of which identity decisions reached the disclosure log
//! (`identity_decision_logged`, with the decision it names), as a table bound to the log:
//! each logging entry must have its row, agreeing with the entry, and each row must name
//! the entry that logged it. The ledger's verification is handed this by its caller
//! (see `domain::ledger::bound`), so the ledger does not import this room.

use std::sync::Arc;

use crate::domain::identity::steward::rules;
use crate::domain::identity::storage::IdentityStorage;
use crate::domain::ledger::bound::{BoundTable, Expected, RowsRead};
use crate::domain::ledger::{Entry, EntryKind};

/// The logged identity decisions, checked against the entries that logged them.
#[derive(Debug, Clone)]
pub struct LoggedDecisions(pub Arc<dyn IdentityStorage>);

impl BoundTable for LoggedDecisions {
    fn tables(&self) -> &'static [&'static str] {
        &["identity_decision_logged"]
    }

    fn rows(&self) -> RowsRead<'_> {
        self.0.identity_bound_rows()
    }

    fn expected(&self, entry: &Entry) -> Option<Expected> {
        let rule = entry.rule_ids.first().map(String::as_str)?;
        if entry.kind != EntryKind::Identity
            || ![
                rules::AUTO_LINK,
                rules::REVIEW_RAISED,
                rules::CONFIRMED,
                rules::REJECTED,
                rules::SPLIT,
            ]
            .contains(&rule)
        {
            return None;
        }
        // "<words> (decision <id>)…", as the steward writes it.
        let (_, rest) = entry.reason.split_once("(decision ")?;
        let (decision_id, _) = rest.split_once(')')?;
        let link = entry.identity_links.first();
        Some(Expected {
            table: "identity_decision_logged",
            columns: Some(vec![
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
            ]),
            // Logged twice, the later entry marked: the decision still has its row.
            stands_for: Some(decision_id.to_owned()),
            if_missing: " (or the gateway stopped before marking the decision logged: it \
                         logs the decision again at its next start)",
        })
    }
}
