//! The witness's rules (C2SP tlog-witness `add-checkpoint`), apart from HTTP and storage:
//! a submitted checkpoint is cosigned only if a trusted key of its log signed it and it
//! extends, by a consistency proof, the latest checkpoint this witness cosigned for that
//! log. Each reason to refuse is its own variant; `http.rs` gives each its status.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::Ed25519KeyPair;

use crate::domain::ledger::merkle::{self, Hash};
use crate::domain::ledger::note::{self, Note, Vkey};
use crate::store::Witnessed;

/// Most consistency proof lines a request may carry (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the submitter believes this witness holds.
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint note as submitted.
    pub checkpoint: String,
    pub note: Note,
    pub body: note::Body,
}

/// Why a submission is not cosigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request body is malformed: {0}")]
    Malformed(&'static str),
    #[error("this witness does not witness that log")]
    UnknownLog,
    #[error("no signature by a trusted key of the log verifies")]
    NotSignedByLog,
    #[error("a signature by a trusted key of the log does not verify")]
    BadLogSignature,
    #[error("the old size is larger than the checkpoint's size")]
    OldSizeAhead,
    #[error("the submitter's old size is stale: this witness holds size {0}")]
    Stale(u64),
    #[error("a checkpoint of size zero must have the empty tree's root")]
    EmptyTreeRoot,
    #[error("a consistency proof was sent from size zero")]
    ProofFromZero,
    #[error("the consistency proof does not verify from the checkpoint this witness holds")]
    BadProof,
    #[error("a checkpoint of the same size as the one this witness holds has another root")]
    SameSizeOtherRoot,
}

impl AddCheckpoint {
    /// Parses `old <size>\n`, proof lines, a blank line, then a checkpoint note.
    pub fn parse(body: &str) -> Result<Self, Refusal> {
        let (header, checkpoint) = body
            .split_once("\n\n")
            .ok_or(Refusal::Malformed("no blank line before the checkpoint"))?;
        let mut lines = header.split('\n');
        let old = lines
            .next()
            .and_then(|line| line.strip_prefix("old "))
            .ok_or(Refusal::Malformed("the first line is not `old <size>`"))?;
        let old_size = decimal(old).ok_or(Refusal::Malformed("the old size is not a decimal"))?;
        let proof = lines
            .map(|line| {
                B64.decode(line)
                    .ok()
                    .and_then(|bytes| Hash::try_from(bytes).ok())
                    .ok_or(Refusal::Malformed("a proof line is not a base64 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(Refusal::Malformed("more than 63 proof lines"));
        }
        let note = Note::parse(checkpoint).ok_or(Refusal::Malformed("not a signed note"))?;
        let parsed =
            note::parse_body(&note.text).ok_or(Refusal::Malformed("not a checkpoint body"))?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: checkpoint.to_owned(),
            note,
            body: parsed,
        })
    }
}

/// An ASCII decimal without leading zeroes.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A witness's identity and the logs it trusts.
pub struct WitnessKey {
    /// The cosigner's key name in its signature lines.
    pub name: String,
    pub key: Ed25519KeyPair,
    /// The logs' verifier keys (type 0x01); a log is known by its key's name (origin).
    pub logs: Vec<Vkey>,
}

impl std::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessKey")
            .field("name", &self.name)
            .field("logs", &self.logs.len())
            .finish()
    }
}

impl WitnessKey {
    /// The witness's own verifier key (type 0x04), which logs and verifiers configure.
    pub fn vkey(&self) -> Vkey {
        use ring::signature::KeyPair;
        Vkey {
            name: self.name.clone(),
            signature_type: note::COSIGNATURE_TYPE,
            public_key: self.key.public_key().as_ref().to_vec(),
        }
    }

    /// Checks that a trusted key of the submission's log signed it: run before the
    /// stored state is read, as it needs none.
    pub fn check_signed(&self, request: &AddCheckpoint) -> Result<(), Refusal> {
        let keys: Vec<&Vkey> = self
            .logs
            .iter()
            .filter(|key| key.name == request.body.origin)
            .collect();
        if keys.is_empty() {
            return Err(Refusal::UnknownLog);
        }
        let mut verified = false;
        for line in &request.note.signatures {
            // Lines by unknown keys are ignored; one by a known key must verify.
            if let Some(key) = keys.iter().find(|key| key.signed(line)) {
                if !note::verify_ed25519(key, &request.note.text, line) {
                    return Err(Refusal::BadLogSignature);
                }
                verified = true;
            }
        }
        if verified {
            Ok(())
        } else {
            Err(Refusal::NotSignedByLog)
        }
    }

    /// The checks against the stored checkpoint (`None`: never cosigned one for this
    /// log) and, if they pass, the new state with this witness's cosignature at `now`
    /// (seconds since the epoch).
    pub fn check_and_cosign(
        &self,
        request: &AddCheckpoint,
        stored: Option<&Witnessed>,
        now: u64,
    ) -> Result<Witnessed, Refusal> {
        let size = request.body.tree_size;
        let root = request.body.root;
        if request.old_size > size {
            return Err(Refusal::OldSizeAhead);
        }
        let held = stored.map_or(0, |s| s.tree_size);
        if request.old_size != held {
            return Err(Refusal::Stale(held));
        }
        if size == 0 && root != merkle::empty_root() {
            return Err(Refusal::EmptyTreeRoot);
        }
        match stored {
            None => {
                if !request.proof.is_empty() {
                    return Err(Refusal::ProofFromZero);
                }
            }
            Some(stored) => {
                let held_root: Hash = B64
                    .decode(&stored.root_hash)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or(Refusal::BadProof)?;
                if size == stored.tree_size {
                    if root != held_root {
                        return Err(Refusal::SameSizeOtherRoot);
                    }
                } else if held == 0 {
                    if !request.proof.is_empty() {
                        return Err(Refusal::ProofFromZero);
                    }
                } else if !merkle::verify_consistency(held, size, &held_root, &root, &request.proof)
                {
                    return Err(Refusal::BadProof);
                }
            }
        }
        let cosignature = note::cosign(&self.key, &self.name, now.max(1), &request.note.text);
        Ok(Witnessed {
            origin: request.body.origin.clone(),
            tree_size: size,
            root_hash: B64.encode(root),
            note: request.checkpoint.clone(),
            cosignature: cosignature.render(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::merkle::{NodeSource, consistency_proof, subtree_root};
    use crate::domain::ledger::note::SignatureLine;

    struct Leaves(Vec<Hash>);
    impl NodeSource for Leaves {
        type Error = std::convert::Infallible;
        fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
            let (start, end) = (index << level, (index + 1) << level);
            Ok(reference(&self.0[start as usize..end as usize]))
        }
    }
    fn reference(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => merkle::empty_root(),
            1 => leaves[0],
            n => {
                let k = (n - 1).ilog2();
                let split = 1usize << k;
                merkle::node_hash(&reference(&leaves[..split]), &reference(&leaves[split..]))
            }
        }
    }

    fn key() -> Ed25519KeyPair {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key")
    }

    struct Log {
        key: Ed25519KeyPair,
        leaves: Leaves,
    }

    impl Log {
        fn vkey(&self) -> Vkey {
            use ring::signature::KeyPair;
            Vkey {
                name: "county.example/log".into(),
                signature_type: note::ED25519_TYPE,
                public_key: self.key.public_key().as_ref().to_vec(),
            }
        }
        fn root(&mut self, size: u64) -> Hash {
            subtree_root(&mut self.leaves, 0, size).expect("root")
        }
        fn checkpoint(&mut self, size: u64) -> String {
            let text = note::checkpoint_body("county.example/log", size, &self.root(size));
            let vkey = self.vkey();
            let line = SignatureLine {
                name: vkey.name.clone(),
                key_hash: vkey.key_hash(),
                signature: self.key.sign(text.as_bytes()).as_ref().to_vec(),
            };
            format!("{text}\n{}", line.render())
        }
        fn request(&mut self, old: u64, size: u64) -> String {
            let proof = if old == 0 {
                Vec::new()
            } else {
                consistency_proof(&mut self.leaves, old, size).expect("proof")
            };
            let mut body = format!("old {old}\n");
            for hash in proof {
                body.push_str(&B64.encode(hash));
                body.push('\n');
            }
            body.push('\n');
            body.push_str(&self.checkpoint(size));
            body
        }
    }

    fn setup() -> (Log, WitnessKey) {
        let leaves = Leaves((0..20u8).map(|i| merkle::leaf_hash(&[i])).collect());
        let log = Log { key: key(), leaves };
        let witness = WitnessKey {
            name: "police.example/witness".into(),
            key: key(),
            logs: vec![log.vkey()],
        };
        (log, witness)
    }

    fn submit(
        witness: &WitnessKey,
        stored: Option<&Witnessed>,
        body: &str,
    ) -> Result<Witnessed, Refusal> {
        let request = AddCheckpoint::parse(body)?;
        witness.check_signed(&request)?;
        witness.check_and_cosign(&request, stored, 1_700_000_000)
    }

    #[test]
    fn each_rule_of_add_checkpoint_gives_its_refusal() {
        let (mut log, witness) = setup();
        let first = submit(&witness, None, &log.request(0, 5)).expect("first is cosigned");
        let body = note::checkpoint_body("county.example/log", 5, &log.root(5));
        let line = SignatureLine::parse(first.cosignature.trim_end()).expect("a line");
        assert_eq!(
            note::verify_cosignature(&witness.vkey(), &body, &line),
            Some(1_700_000_000)
        );
        let held = Some(&first);
        let cases: Vec<(&str, String, Result<u64, Refusal>)> = vec![
            ("extends by proof", log.request(5, 9), Ok(9)),
            ("same checkpoint again", log.request(5, 5), Ok(5)),
            ("stale old size", log.request(3, 9), Err(Refusal::Stale(5))),
            (
                "old size from zero",
                log.request(0, 9),
                Err(Refusal::Stale(5)),
            ),
            (
                "old size ahead",
                log.request(5, 9).replacen("old 5", "old 10", 1),
                Err(Refusal::OldSizeAhead),
            ),
            (
                "forged proof",
                {
                    let honest = log.request(5, 9);
                    let mut lines: Vec<String> = honest.split('\n').map(str::to_owned).collect();
                    lines[1] = B64.encode([0u8; 32]);
                    lines.join("\n")
                },
                Err(Refusal::BadProof),
            ),
            (
                "unknown log",
                log.request(5, 9)
                    .replace("county.example/log", "other.example/log"),
                Err(Refusal::UnknownLog),
            ),
            (
                "malformed",
                "old 05\n\n".into(),
                Err(Refusal::Malformed("the old size is not a decimal")),
            ),
        ];
        for (case, body, expected) in cases {
            let got = submit(&witness, held, &body).map(|w| w.tree_size);
            assert_eq!(got, expected, "{case}");
        }

        // The same size with another root: a fork.
        let mut other = Log {
            key: log.key,
            leaves: Leaves((0..20u8).map(|i| merkle::leaf_hash(&[i, 1])).collect()),
        };
        assert_eq!(
            submit(&witness, held, &other.request(5, 5)).map(|w| w.tree_size),
            Err(Refusal::SameSizeOtherRoot)
        );
        // A checkpoint the log's key did not sign.
        let unsigned = log_with_other_key(&mut other);
        assert_eq!(
            submit(&witness, held, &unsigned).map(|w| w.tree_size),
            Err(Refusal::NotSignedByLog)
        );
    }

    fn log_with_other_key(log: &mut Log) -> String {
        let mut impostor = Log {
            key: key(),
            leaves: Leaves(log.leaves.0.clone()),
        };
        impostor.request(5, 9)
    }
}
