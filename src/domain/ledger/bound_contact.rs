//! The contact tables (`contact_request`, `contact_step`) proven by the hashed `contact`
//! entries that carry each row whole: every such entry must have its row, equal column by
//! column and field by field, and every row must name the entry that records it. A row
//! edited, deleted or inserted behind the gateway's back is named; a row missing because
//! the gateway stopped between logging a step and storing it is told apart in words (the
//! gateway restores it from the entry at its next start and before each overdue sweep).

use std::collections::HashMap;

use crate::domain::contact::logged::{Recorded, STEP_TABLE, differing_field, recorded};
use crate::domain::ledger::Entry;
use crate::domain::ledger::verify::Mismatch;
use crate::store::BoundRow;

/// Checks the contact tables entry by entry, in `seq` order.
#[derive(Debug, Default)]
pub struct ContactTables {
    /// Rows not yet matched to their entry, by table and log entry id.
    rows: HashMap<(&'static str, String), Vec<BoundRow>>,
}

impl ContactTables {
    /// Starts from every stored contact request and step row.
    pub fn new(rows: Vec<BoundRow>) -> Self {
        let mut tables = ContactTables::default();
        for row in rows {
            tables
                .rows
                .entry((row.table, row.log_entry_id.clone()))
                .or_default()
                .push(row);
        }
        tables
    }

    /// Checks the entry at `seq` against the contact rows that name it.
    pub fn check(&mut self, seq: u64, entry: &Entry) -> Result<(), Mismatch> {
        let fail = |problem: String| Mismatch {
            seq,
            entry_id: entry.entry_id.clone(),
            problem,
        };
        let recorded = recorded(entry);
        let wanted = match &recorded {
            Recorded::Nothing => None,
            Recorded::Row(logged) => Some(logged.table()),
            Recorded::Unknown { table } => Some(*table),
        };
        for table in [crate::domain::contact::logged::REQUEST_TABLE, STEP_TABLE] {
            let rows = self
                .rows
                .remove(&(table, entry.entry_id.clone()))
                .unwrap_or_default();
            match (wanted.filter(|w| *w == table), rows.as_slice()) {
                (None, []) => {}
                (None, [row, ..]) => {
                    return Err(fail(format!(
                        "{table} row {} names this entry, which records no such row: it was \
                         inserted or edited",
                        row.key
                    )));
                }
                (Some(_), []) => {
                    let restorable = if matches!(recorded, Recorded::Row(_)) {
                        "; if the gateway stopped between logging and storing it, this is \
                         logged but not stored, and the gateway restores it from this entry \
                         at its next start"
                    } else {
                        ""
                    };
                    return Err(fail(format!(
                        "{table} has no row for what this entry records: it was deleted or \
                         edited{restorable}"
                    )));
                }
                (Some(_), [row]) => {
                    let Recorded::Row(logged) = &recorded else {
                        // Written before entries carried the row: its presence is checked.
                        continue;
                    };
                    let stored = |name: &str| {
                        row.columns
                            .iter()
                            .find(|(column, _)| *column == name)
                            .map(|(_, value)| value.as_str())
                    };
                    for (column, expected) in logged.columns() {
                        let edited = match (column, stored(column)) {
                            (_, None) => Some(String::new()),
                            ("payload", Some(value)) => {
                                differing_field(value, &expected).map(|field| {
                                    if field.is_empty() {
                                        String::new()
                                    } else {
                                        format!(" (field `{field}`)")
                                    }
                                })
                            }
                            (_, Some(value)) => (value != expected).then(String::new),
                        };
                        if let Some(field) = edited {
                            return Err(fail(format!(
                                "{table} row {}: column `{column}`{field} does not match the \
                                 hashed entry that records it: it was edited",
                                row.key
                            )));
                        }
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

    /// After the last entry (`size`): a row left over names an entry that does not exist,
    /// or one within the log that never had it; rows naming entries after `size` were
    /// written since verification began and are checked next time.
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
                problem: format!(
                    "{} row {} names log entry {}, which {}: it was inserted or edited",
                    row.table,
                    row.key,
                    row.log_entry_id,
                    if row.log_seq.is_none() {
                        "does not exist"
                    } else {
                        "records no such row"
                    }
                ),
            }),
        }
    }
}
