//! A witness for disclosure logs (C2SP tlog-witness) that any partner agency can run
//! with `safegate witness serve`: its own Ed25519 key, its own small database, the logs
//! it trusts by their verifier keys. It cosigns a log's checkpoint only when it extends
//! the latest one it cosigned, so a log cut short or forked behind its operator's back
//! can no longer gather cosignatures for the history it shows. The rules live in
//! `rules.rs`, HTTP in `http.rs`, storage in `store/witness.rs`.

pub mod http;
pub mod rules;

use std::sync::Arc;

pub use rules::{AddCheckpoint, Refusal, WitnessKey};

use crate::domain::ledger::note;
use crate::error::Error;
use crate::store::{WitnessStore, Witnessed};

/// A witness: its key and the logs it trusts, over its store.
#[derive(Debug, Clone)]
pub struct Witness {
    key: Arc<WitnessKey>,
    store: WitnessStore,
}

impl Witness {
    pub fn new(key: WitnessKey, store: WitnessStore) -> Self {
        Witness {
            key: Arc::new(key),
            store,
        }
    }

    /// The witness's verifier key (type 0x04).
    pub fn vkey(&self) -> note::Vkey {
        self.key.vkey()
    }

    /// `add-checkpoint`: the refusal, or the cosignature line once the new checkpoint is
    /// stored. The check against the stored checkpoint and the store are one transaction.
    pub async fn add_checkpoint(&self, body: &str) -> Result<Result<String, Refusal>, Error> {
        let request = match AddCheckpoint::parse(body) {
            Ok(request) => request,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Err(refusal) = self.key.check_signed(&request) {
            return Ok(Err(refusal));
        }
        let now = note::unix_now();
        let updated = self
            .store
            .update(&request.body.origin, |stored| {
                self.key.check_and_cosign(&request, stored, now)
            })
            .await?;
        Ok(updated.map(|witnessed| witnessed.cosignature))
    }

    /// The latest cosigned checkpoint of the log whose origin hashes (hex SHA-256) to
    /// `origin_hash`, with the log's signatures and this witness's cosignature.
    pub async fn latest(&self, origin_hash: &str) -> Result<Option<String>, Error> {
        use sha2::{Digest, Sha256};
        let Some(log) = self
            .key
            .logs
            .iter()
            .find(|log| hex::encode(Sha256::digest(log.name.as_bytes())) == origin_hash)
        else {
            return Ok(None);
        };
        Ok(self.store.latest(&log.name).await?.map(
            |Witnessed {
                 note, cosignature, ..
             }| format!("{note}{cosignature}"),
        ))
    }
}
