//! Recomputes the whole disclosure log: every entry's encoding, the columns filters use,
//! leaf and chain hashes, sequence numbers, the Merkle root and the signed checkpoint.
//! Reports the first entry that does not match.

use crate::domain::ledger::merkle::{Hash, leaf_hash, node_hash};
use crate::domain::ledger::{Checkpoint, Entry, chain_hash};
use crate::store::{COLUMN_SEPARATOR, FILTER_COLUMNS, RawLogRow};

/// The first problem found, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The position of the entry at fault (or where one is missing).
    pub seq: u64,
    pub entry_id: String,
    pub problem: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.entry_id.is_empty() {
            write!(f, "entry {}: {}", self.seq, self.problem)
        } else {
            write!(
                f,
                "entry {} ({}): {}",
                self.seq, self.entry_id, self.problem
            )
        }
    }
}

/// Whether `stored` is the lower-case hex of `hash`, without allocating.
fn same_hash(hash: &Hash, stored: &str) -> bool {
    let mut text = [0u8; 64];
    hex::encode_to_slice(hash, &mut text).is_ok() && text == stored.as_bytes()
}

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub root: Hash,
    pub checkpoint_size: u64,
}

/// Incremental verification over rows in `seq` order.
#[derive(Debug, Default)]
pub struct Verifier {
    size: u64,
    previous_chain: Hash,
    /// Roots of the perfect subtrees so far, largest first, with their levels.
    frontier: Vec<(u32, Hash)>,
}

impl Verifier {
    pub fn new() -> Self {
        Verifier::default()
    }

    /// How many entries have been checked so far.
    pub fn entries(&self) -> u64 {
        self.size
    }

    /// Checks the next stored row; returns the entry it holds.
    pub fn push_row(&mut self, row: &RawLogRow) -> Result<Entry, Mismatch> {
        let entry: Entry = serde_json::from_str(&row.entry).map_err(|_| Mismatch {
            seq: row.seq,
            entry_id: row
                .filter_columns
                .split(COLUMN_SEPARATOR)
                .next()
                .unwrap_or_default()
                .to_owned(),
            problem: "the stored entry is not a valid entry encoding".into(),
        })?;
        let fail = |problem: String| Mismatch {
            seq: row.seq,
            entry_id: entry.entry_id.clone(),
            problem,
        };
        let hashed: [&str; FILTER_COLUMNS.len()] = [
            &entry.entry_id,
            &entry.recorded_at,
            entry.kind.as_str(),
            entry.decision.as_str(),
            &entry.agency,
            &entry.system_id,
            &entry.practitioner_id,
            &entry.purpose,
            if entry.break_glass { "1" } else { "0" },
            &entry.subject_person_id,
        ];
        let mut stored = [""; FILTER_COLUMNS.len()];
        let mut parts = row.filter_columns.split(COLUMN_SEPARATOR);
        for slot in stored.iter_mut() {
            *slot = parts.next().unwrap_or_default();
        }
        if parts.next().is_some() {
            return Err(fail(
                "a filter column holds a separator character the gateway never writes: it \
                 was edited"
                    .into(),
            ));
        }
        if let Some((column, _)) = FILTER_COLUMNS
            .iter()
            .zip(stored.iter().zip(hashed))
            .find(|(_, (stored, hashed))| **stored != *hashed)
        {
            return Err(fail(format!(
                "column `{column}` does not match the hashed entry: it was edited"
            )));
        }
        self.push_entry(
            row.seq,
            &entry,
            row.entry.as_bytes(),
            &row.leaf_hash,
            &row.chain_hash,
        )?;
        Ok(entry)
    }

    /// Checks the next entry given its canonical bytes and stored hashes (hex).
    pub fn push_entry(
        &mut self,
        seq: u64,
        entry: &Entry,
        text: &[u8],
        stored_leaf: &str,
        stored_chain: &str,
    ) -> Result<(), Mismatch> {
        let fail = |problem: String| Mismatch {
            seq,
            entry_id: entry.entry_id.clone(),
            problem,
        };
        let expected = self.size + 1;
        if seq != expected {
            return Err(Mismatch {
                seq: expected,
                entry_id: String::new(),
                problem: format!(
                    "missing: the next stored entry is {seq}, so entries were removed or reordered"
                ),
            });
        }
        if entry.canonical() != text {
            return Err(fail(
                "the entry's bytes are not its canonical encoding: it was edited".into(),
            ));
        }
        let leaf = leaf_hash(text);
        if !same_hash(&leaf, stored_leaf) {
            return Err(fail(
                "the entry does not hash to its stored leaf hash: it was edited".into(),
            ));
        }
        let chain = chain_hash(&self.previous_chain, &leaf);
        if !same_hash(&chain, stored_chain) {
            return Err(fail(
                "the hash chain breaks here: an entry before it, or this one, was changed, \
                 removed or moved"
                    .into(),
            ));
        }
        self.previous_chain = chain;
        self.size = seq;
        let (mut level, mut hash) = (0u32, leaf);
        while let Some(&(top_level, top)) = self.frontier.last() {
            if top_level != level {
                break;
            }
            self.frontier.pop();
            hash = node_hash(&top, &hash);
            level += 1;
        }
        self.frontier.push((level, hash));
        Ok(())
    }

    /// The Merkle root of everything pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.frontier.iter().rev();
        let Some(&(_, mut root)) = iter.next() else {
            return crate::domain::ledger::merkle::empty_root();
        };
        for (_, left) in iter {
            root = node_hash(left, &root);
        }
        root
    }

    /// Compares the recomputed log with the signed checkpoint.
    pub fn finish(
        self,
        checkpoint: Option<&Checkpoint>,
        public_key: &[u8],
    ) -> Result<Verified, Mismatch> {
        let root = self.root();
        let Some(checkpoint) = checkpoint else {
            if self.size == 0 {
                return Ok(Verified {
                    entries: 0,
                    root,
                    checkpoint_size: 0,
                });
            }
            return Err(Mismatch {
                seq: self.size,
                entry_id: String::new(),
                problem: "the log has entries but no signed checkpoint".into(),
            });
        };
        if !checkpoint.verify(public_key) {
            return Err(Mismatch {
                seq: checkpoint.tree_size,
                entry_id: String::new(),
                problem: "the checkpoint's signature does not verify with this public key".into(),
            });
        }
        if checkpoint.tree_size > self.size {
            return Err(Mismatch {
                seq: self.size + 1,
                entry_id: String::new(),
                problem: format!(
                    "missing: the signed checkpoint covers {} entries but the log ends at {}: \
                     the tail was removed",
                    checkpoint.tree_size, self.size
                ),
            });
        }
        if checkpoint.tree_size < self.size {
            return Err(Mismatch {
                seq: checkpoint.tree_size + 1,
                entry_id: String::new(),
                problem: "entries after the latest signed checkpoint were never signed".into(),
            });
        }
        if checkpoint.root != root {
            return Err(Mismatch {
                seq: self.size,
                entry_id: String::new(),
                problem: "the Merkle root differs from the signed checkpoint's root".into(),
            });
        }
        Ok(Verified {
            entries: self.size,
            root,
            checkpoint_size: checkpoint.tree_size,
        })
    }
}
