//! The contact tables (`contact_request`, `contact_step`) as tables bound to the log,
//! proven by the hashed `contact` entries that carry each row whole: every such entry
//! must have its row, equal column by column and field by field, and every row must name
//! the entry that records it. A row missing because the gateway stopped between logging
//! a step and storing it is told apart in words (the gateway restores it from the entry
//! at its next start and before each overdue sweep). The ledger's verification is handed
//! this by its caller (see `domain::ledger::bound`), so the ledger does not import this
//! room.

use std::sync::Arc;

use crate::domain::contact::ContactStore;
use crate::domain::contact::logged::{
    REQUEST_TABLE, Recorded, STEP_TABLE, differing_field, recorded,
};
use crate::domain::ledger::Entry;
use crate::domain::ledger::bound::{BoundTable, Expected, RowsRead};

/// The contact requests and steps, checked against the entries that record them, as
/// stored in the storage given.
#[derive(Debug, Clone)]
pub struct ContactTables(pub Arc<dyn ContactStore>);

impl BoundTable for ContactTables {
    fn tables(&self) -> &'static [&'static str] {
        &[REQUEST_TABLE, STEP_TABLE]
    }

    fn rows(&self) -> RowsRead<'_> {
        self.0.contact_bound_rows()
    }

    fn expected(&self, entry: &Entry) -> Option<Expected> {
        match recorded(entry) {
            Recorded::Nothing => None,
            Recorded::Row(logged) => Some(Expected {
                table: logged.table(),
                columns: Some(logged.columns()),
                stands_for: None,
                if_missing: "; if the gateway stopped between logging and storing it, this is \
                             logged but not stored, and the gateway restores it from this \
                             entry at its next start",
            }),
            // Written before entries carried the row: its presence is checked.
            Recorded::Unknown { table } => Some(Expected {
                table,
                columns: None,
                stands_for: None,
                if_missing: "",
            }),
        }
    }

    fn edited(&self, column: &str, stored: &str, expected: &str) -> Option<String> {
        match column {
            "payload" => differing_field(stored, expected).map(|field| {
                if field.is_empty() {
                    String::new()
                } else {
                    format!(" (field `{field}`)")
                }
            }),
            _ => (stored != expected).then(String::new),
        }
    }
}
