//! The tables beside the log that IG questions are answered from, proven by the hashed
//! entries: the person index is recomputed from each entry's persons; each row of a
//! bound table must agree with the entry that records it, and every such entry must have
//! its row. A row edited, deleted or inserted behind the gateway's back is named.
//!
//! The ledger keeps some of these tables itself (break-glass reviews, subject-access
//! releases, privacy alerts and their case steps: [`LogTables`]); other rooms keep
//! theirs (the identity room its logged decisions, the contact room its requests and
//! steps). So that the ledger imports none of those rooms, it says here what it needs
//! from a table bound to the log, [`BoundTable`], and each room implements it in its own
//! room. Verification is handed the other rooms' tables by its caller (the gateway's
//! startup, the CLI); [`BoundRows`] checks all of them, the ledger's own always included,
//! with one set of rules and words.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::domain::ledger::alert_rows;
use crate::domain::ledger::review::{RELEASE_RULE, REVIEW_RULE};
use crate::domain::ledger::verify::Mismatch;
use crate::domain::ledger::{Entry, EntryKind};
use crate::error::Error;
use crate::store::Store;

/// A row of a table bound to a log entry, as stored: its key, the entry it names and the
/// columns the entry's hashed text must agree with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundRow {
    pub table: &'static str,
    /// The row's primary key.
    pub key: String,
    /// The disclosure-log entry the row says records it.
    pub log_entry_id: String,
    /// That entry's position; `None` when no entry has that id.
    pub log_seq: Option<u64>,
    /// Column name and stored value, for the columns the entry determines.
    pub columns: Vec<(&'static str, String)>,
}

/// The stored rows of a room's bound tables, as [`BoundTable::rows`] reads them.
pub type RowsRead<'a> = Pin<Box<dyn Future<Output = Result<Vec<BoundRow>, Error>> + Send + 'a>>;

/// A table (or tables) beside the log whose rows the log's entries prove: what the
/// ledger needs to verify them, implemented by the room that keeps them.
pub trait BoundTable: std::fmt::Debug + Send + Sync {
    /// The tables, in the order each entry is checked against them.
    fn tables(&self) -> &'static [&'static str];

    /// Every stored row of the tables, each with the entry it names (read from the
    /// storage the table was built over).
    fn rows(&self) -> RowsRead<'_>;

    /// The row `entry` records in one of the tables, if it records one.
    fn expected(&self, entry: &Entry) -> Option<Expected>;

    /// How stored `column` differs from what the entry says: `None` when equal, else
    /// words to name the difference after the column (empty for the whole value).
    fn edited(&self, column: &str, stored: &str, expected: &str) -> Option<String> {
        let _ = column;
        (stored != expected).then(String::new)
    }
}

/// What an entry says its bound row must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub table: &'static str,
    /// The columns the entry determines; `None` for an entry written before entries
    /// carried them, whose row is checked for presence only.
    pub columns: Option<Vec<(&'static str, String)>>,
    /// A row of the table with this key, whichever entry it names, stands for this one
    /// (an identity decision whose first entry could not be marked is logged again, and
    /// only the later entry is marked).
    pub stands_for: Option<String>,
    /// Said after "it was deleted or edited" when the row is missing.
    pub if_missing: &'static str,
}

/// The ledger's own bound tables: break-glass reviews, subject-access releases, privacy
/// alerts and the steps of their cases, as stored in the store.
#[derive(Debug, Clone)]
pub struct LogTables(pub Store);

impl BoundTable for LogTables {
    fn tables(&self) -> &'static [&'static str] {
        &[
            "break_glass_review",
            "subject_access_release",
            "privacy_alert",
            "privacy_alert_event",
        ]
    }

    fn rows(&self) -> RowsRead<'_> {
        Box::pin(self.0.bound_rows())
    }

    fn expected(&self, entry: &Entry) -> Option<Expected> {
        let rule = entry.rule_ids.first().map(String::as_str)?;
        let subject = || {
            entry
                .released
                .first()
                .map(|d| d.record_id.clone())
                .unwrap_or_default()
        };
        let (table, columns) = match (entry.kind, rule) {
            (EntryKind::Alert, _) => ("privacy_alert", alert_rows::alert_recorded(entry)?),
            (EntryKind::Review, alert_rows::ASSIGN_RULE | alert_rows::CLOSE_RULE) => {
                ("privacy_alert_event", alert_rows::event_recorded(entry)?)
            }
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
                ("break_glass_review", columns)
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
                ("subject_access_release", columns)
            }
            _ => return None,
        };
        Some(Expected {
            table,
            columns: Some(columns),
            stands_for: None,
            if_missing: "",
        })
    }
}

/// The rows of every bound table, checked entry by entry in `seq` order.
#[derive(Debug)]
pub struct BoundRows {
    /// The ledger's own tables first, then those its caller handed it.
    tables: Vec<Arc<dyn BoundTable>>,
    /// Rows not yet matched to their entry, by table and log entry id, each with the
    /// position in `tables` of the one that keeps it.
    rows: HashMap<(&'static str, String), Vec<(usize, BoundRow)>>,
    /// The key of every stored row, by table, whichever entry it names.
    keys: HashSet<(&'static str, String)>,
}

impl BoundRows {
    /// Reads every stored row of the ledger's own tables and of `others`.
    pub async fn read(store: &Store, others: &[Arc<dyn BoundTable>]) -> Result<Self, Error> {
        let mut tables: Vec<Arc<dyn BoundTable>> = vec![Arc::new(LogTables(store.clone()))];
        tables.extend(others.iter().cloned());
        let mut bound = BoundRows {
            tables,
            rows: HashMap::new(),
            keys: HashSet::new(),
        };
        for (owner, table) in bound.tables.iter().enumerate() {
            for row in table.rows().await? {
                bound.keys.insert((row.table, row.key.clone()));
                bound
                    .rows
                    .entry((row.table, row.log_entry_id.clone()))
                    .or_default()
                    .push((owner, row));
            }
        }
        Ok(bound)
    }

    /// Checks the entry at `seq` against the person index rows stored for it and the
    /// bound rows that name it.
    pub fn check(&mut self, seq: u64, entry: &Entry, indexed: Vec<String>) -> Result<(), Mismatch> {
        let fail = |problem: String| Mismatch {
            seq,
            entry_id: entry.entry_id.clone(),
            problem,
        };
        person_index(entry, indexed).map_err(fail)?;
        for table in &self.tables {
            let expected = table.expected(entry);
            for &name in table.tables() {
                let rows = self
                    .rows
                    .remove(&(name, entry.entry_id.clone()))
                    .unwrap_or_default();
                let wanted = expected.as_ref().filter(|e| e.table == name);
                check_rows(table.as_ref(), &self.keys, name, wanted, &rows).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// After the last entry (`size`): a bound row left over names an entry that does not
    /// exist, or one within the log that never had it; rows naming entries after `size`
    /// were written since verification began and are checked next time.
    pub fn finish(self, size: u64) -> Result<(), Mismatch> {
        let mut left: Vec<(usize, BoundRow)> = self
            .rows
            .into_values()
            .flatten()
            .filter(|(_, row)| row.log_seq.is_none_or(|seq| seq <= size))
            .collect();
        left.sort_by(|(a_owner, a), (b_owner, b)| {
            (a_owner, a.table, &a.key).cmp(&(b_owner, b.table, &b.key))
        });
        match left.first() {
            None => Ok(()),
            Some((_, row)) => Err(Mismatch {
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

/// The person index holds exactly the entry's persons.
fn person_index(entry: &Entry, mut indexed: Vec<String>) -> Result<(), String> {
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
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
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
    Err(format!(
        "the person index (disclosure_person) {}",
        said.join("; and ")
    ))
}

/// The rows of `name` that name one entry, against what the entry records there.
fn check_rows(
    table: &dyn BoundTable,
    keys: &HashSet<(&'static str, String)>,
    name: &'static str,
    wanted: Option<&Expected>,
    rows: &[(usize, BoundRow)],
) -> Result<(), String> {
    match (wanted, rows) {
        (None, []) => Ok(()),
        (None, [(_, row), ..]) => Err(format!(
            "{name} row {} names this entry, which records no such row: it was inserted or \
             edited",
            row.key
        )),
        (Some(wanted), []) => match &wanted.stands_for {
            Some(key) if keys.contains(&(name, key.clone())) => Ok(()),
            _ => Err(format!(
                "{name} has no row for what this entry records: it was deleted or \
                     edited{}",
                wanted.if_missing
            )),
        },
        (Some(wanted), [(_, row)]) => {
            // Without columns (written before entries carried them) the row's presence
            // is what is checked.
            for (column, expected) in wanted.columns.iter().flatten() {
                let stored = row
                    .columns
                    .iter()
                    .find(|(c, _)| c == column)
                    .map(|(_, value)| value.as_str());
                let edited = match stored {
                    None => Some(String::new()),
                    Some(value) => table.edited(column, value, expected),
                };
                if let Some(detail) = edited {
                    return Err(format!(
                        "{name} row {}: column `{column}`{detail} does not match the hashed \
                         entry that records it: it was edited",
                        row.key
                    ));
                }
            }
            Ok(())
        }
        (Some(_), [_, (_, second), ..]) => Err(format!(
            "{name} row {} names this entry, which records only one: it was inserted",
            second.key
        )),
    }
}
