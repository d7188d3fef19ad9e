//! Signed checkpoints: an Ed25519 signature over the tree size and root, so anyone with
//! the public key can prove later that no entry was changed or removed.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::domain::ledger::merkle::Hash;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A signed statement of the log's size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub root: Hash,
    pub signed_at: String,
    pub signature: Vec<u8>,
    /// Hex SHA-256 of the public key, so a verifier knows which key to use.
    pub key_id: String,
}

impl Checkpoint {
    /// The exact bytes signed: a versioned, line-based note.
    pub fn signed_text(tree_size: u64, root: &Hash, signed_at: &str) -> String {
        format!(
            "safegate disclosure log v1\n{tree_size}\n{}\n{signed_at}\n",
            B64.encode(root)
        )
    }

    /// Whether the signature is valid under `public_key` (raw 32 bytes).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let text = Checkpoint::signed_text(self.tree_size, &self.root, &self.signed_at);
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(text.as_bytes(), &self.signature)
            .is_ok()
    }
}

/// Why a checkpoint key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading checkpoint key {path}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint key {0} is not an Ed25519 PKCS#8 PEM private key")]
    Format(std::path::PathBuf),
    #[error("generating a checkpoint key failed")]
    Generate,
}

/// Signs checkpoints with the log's Ed25519 key.
pub struct CheckpointSigner {
    key: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl CheckpointSigner {
    /// Loads a PKCS#8 PEM private key (as `safegate pki init` writes `checkpoint.key`).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let der = pem_body(&pem, "PRIVATE KEY").ok_or_else(|| KeyError::Format(path.to_owned()))?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| KeyError::Format(path.to_owned()))?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: Ed25519KeyPair) -> Self {
        let key_id = key_id(key.public_key().as_ref());
        CheckpointSigner { key, key_id }
    }

    /// Signs a checkpoint of `tree_size` entries with root `root`.
    pub fn sign(&self, tree_size: u64, root: Hash, signed_at: String) -> Checkpoint {
        let text = Checkpoint::signed_text(tree_size, &root, &signed_at);
        Checkpoint {
            tree_size,
            root,
            signature: self.key.sign(text.as_bytes()).as_ref().to_vec(),
            signed_at,
            key_id: self.key_id.clone(),
        }
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }
}

/// Hex SHA-256 of a raw public key.
pub fn key_id(public_key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(public_key))
}

/// Generates a new key, returning (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_key_pem() -> Result<(String, String), KeyError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Generate)?;
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(key.public_key().as_ref());
    Ok((pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki)))
}

/// Reads an SPKI PEM public key (as `checkpoint.pub`) to its raw 32 bytes.
pub fn public_key_from_pem(text: &str) -> Option<Vec<u8>> {
    let der = pem_body(text, "PUBLIC KEY")?;
    der.strip_prefix(&SPKI_PREFIX[..])
        .filter(|raw| raw.len() == 32)
        .map(<[u8]>::to_vec)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let body: String = text[start..stop].split_whitespace().collect();
    B64.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_only_unchanged() {
        let dir = std::env::temp_dir().join(format!("safegate-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (private, public) = generate_key_pem().expect("key");
        std::fs::write(dir.join("checkpoint.key"), private).expect("write");
        let signer = CheckpointSigner::load(&dir.join("checkpoint.key")).expect("load");
        let public = public_key_from_pem(&public).expect("public key");
        assert_eq!(public, signer.public_key());
        let checkpoint = signer.sign(42, [7; 32], "2026-11-23T00:00:00Z".into());
        assert!(checkpoint.verify(&public));
        let mut forged = checkpoint.clone();
        forged.tree_size = 41;
        assert!(!forged.verify(&public));
    }
}
