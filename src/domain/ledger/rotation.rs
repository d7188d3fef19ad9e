//! Changing the checkpoint signing key. The change is itself a log entry, appended and
//! checkpointed under the old key; every checkpoint of a larger size is signed by the new
//! one. Older checkpoints keep verifying with the key that signed them, and a verifier that
//! holds only the first key follows the recorded changes to the key now in force.

use crate::domain::ledger::note::Vkey;
use crate::domain::ledger::verify::Mismatch;
use crate::domain::ledger::{Checkpoint, CheckpointSigner, Decision, Entry, EntryKind, KeyChange};
use crate::error::Error;
use crate::store::Store;

/// Rule id of a key change entry.
pub const KEY_CHANGE_RULE: &str = "audit.checkpoint_key_change";

/// If the log's latest checkpoint is `previous`'s, records the change to `next` in the
/// log under `previous` and returns the entry's position; `None` if `next` already signs
/// (or the log is empty). Run before `next` signs anything.
pub async fn rotate(
    store: &Store,
    previous: &CheckpointSigner,
    next: &CheckpointSigner,
) -> Result<Option<u64>, Error> {
    let Some(latest) = store.latest_checkpoint().await? else {
        return Ok(None);
    };
    if latest.verify(&next.public_key()) {
        return Ok(None);
    }
    if !latest.verify(&previous.public_key()) {
        return Err(Error::FailedPrecondition {
            rule: "audit.key_change_from_unknown_key",
            reason: "the latest checkpoint is signed by neither the previous nor the new \
                     checkpoint key"
                .into(),
        });
    }
    let mut entry = Entry::new(EntryKind::KeyChange, Decision::Recorded);
    entry.rpc = "safegate serve".into();
    entry.system_id = "gateway".into();
    entry.role = "operator".into();
    entry.purpose = "audit".into();
    entry.rule_ids = vec![KEY_CHANGE_RULE.into()];
    entry.reason = format!(
        "checkpoint key changed from {} to {}: checkpoints after this entry are signed by \
         the new key",
        previous.key_id(),
        next.key_id()
    );
    entry.key_change = Some(KeyChange {
        old_key: previous.vkey().render(),
        new_key: next.vkey().render(),
    });
    let seqs = store.append_entries(&[entry], previous).await?;
    Ok(seqs.first().copied())
}

/// The key changes a verified log records, in order, with their positions.
#[derive(Debug, Clone, Default)]
pub struct KeyChanges(Vec<(u64, Vkey, Vkey)>);

impl KeyChanges {
    /// Notes `entry` at `seq` if it records a key change.
    pub fn push(&mut self, seq: u64, entry: &Entry) -> Result<(), Mismatch> {
        let Some(change) = &entry.key_change else {
            return Ok(());
        };
        let keys = Vkey::parse(&change.old_key).zip(Vkey::parse(&change.new_key));
        let Some((old, new)) = keys else {
            return Err(Mismatch {
                seq,
                entry_id: entry.entry_id.clone(),
                problem: "the key change names a key that is not a verifier key".into(),
            });
        };
        self.0.push((seq, old, new));
        Ok(())
    }

    /// The key in force after the recorded changes, for a verifier that starts from
    /// `public_key` (the first key, or any key along the way).
    pub fn in_force(&self, public_key: &[u8]) -> Vec<u8> {
        self.0
            .iter()
            .fold(public_key.to_vec(), |key, (_, old, new)| {
                if old.public_key == key {
                    new.public_key.clone()
                } else {
                    key
                }
            })
    }

    /// Checks each change against the stored checkpoints: the one at the change's own
    /// position is the old key's, and the next one the new key's.
    pub async fn check(
        &self,
        store: &Store,
        latest: &Checkpoint,
    ) -> Result<Result<(), Mismatch>, Error> {
        for (seq, old, new) in &self.0 {
            let own = store.checkpoint_at(*seq).await?;
            if !own.is_some_and(|c| c.verify(&old.public_key)) {
                return Ok(Err(Mismatch {
                    seq: *seq,
                    entry_id: String::new(),
                    problem: "the checkpoint recording the key change is not signed by the \
                              old key it names"
                        .into(),
                }));
            }
            if let Some(after) = store.checkpoint_after(*seq).await?
                && after.tree_size <= latest.tree_size
                && !after.verify(&new.public_key)
            {
                return Ok(Err(Mismatch {
                    seq: after.tree_size,
                    entry_id: String::new(),
                    problem: "a checkpoint after the key change is not signed by the new key"
                        .into(),
                }));
            }
        }
        Ok(Ok(()))
    }
}
