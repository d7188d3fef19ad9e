//! Signed checkpoints: an Ed25519 signature over the tree size and root, so anyone with
//! the public key can prove later that no entry was changed or removed.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::domain::ledger::merkle::Hash;
use crate::domain::ledger::note::{self, SignatureLine, Vkey};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The origin line of checkpoints when `log_origin` is not set.
pub const DEFAULT_ORIGIN: &str = "safegate.local/disclosure-log";

/// A signed statement of the log's size and root.
///
/// Two forms, told apart by `key_id`: checkpoints signed before witnessing carry the
/// hex SHA-256 of the public key and sign safegate's own v1 text (with `signed_at`);
/// since then `key_id` is the log key's C2SP verifier key (`<origin>+<key hash>+…`) and
/// the signature is a C2SP `signed-note` Ed25519 signature over the `tlog-checkpoint`
/// body (origin, size, root), which witnesses check and cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub root: Hash,
    pub signed_at: String,
    pub signature: Vec<u8>,
    /// Which key signed: hex SHA-256 of the public key (v1 text) or the log key's vkey
    /// (C2SP checkpoint).
    pub key_id: String,
}

/// The form a checkpoint was signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointForm {
    /// safegate's own text, `safegate disclosure log v1\n…`.
    SafegateV1,
    /// A C2SP tlog-checkpoint signed note whose origin line is the vkey's name.
    Tlog(Vkey),
}

impl Checkpoint {
    /// The exact bytes a v1 checkpoint signed: a versioned, line-based note.
    pub fn signed_text(tree_size: u64, root: &Hash, signed_at: &str) -> String {
        format!(
            "safegate disclosure log v1\n{tree_size}\n{}\n{signed_at}\n",
            B64.encode(root)
        )
    }

    /// The form this checkpoint was signed in, derived from its `key_id`.
    pub fn form(&self) -> CheckpointForm {
        match Vkey::parse(&self.key_id) {
            Some(vkey) if vkey.signature_type == note::ED25519_TYPE => CheckpointForm::Tlog(vkey),
            _ => CheckpointForm::SafegateV1,
        }
    }

    /// The text this checkpoint's signature is over.
    pub fn text(&self) -> String {
        match self.form() {
            CheckpointForm::SafegateV1 => {
                Checkpoint::signed_text(self.tree_size, &self.root, &self.signed_at)
            }
            CheckpointForm::Tlog(vkey) => {
                note::checkpoint_body(&vkey.name, self.tree_size, &self.root)
            }
        }
    }

    /// The origin line: the log's name in the C2SP form; `None` for a v1 checkpoint.
    pub fn origin(&self) -> Option<String> {
        match self.form() {
            CheckpointForm::SafegateV1 => None,
            CheckpointForm::Tlog(vkey) => Some(vkey.name),
        }
    }

    /// The C2SP signed note (body, blank line, the log's signature line); `None` for a
    /// v1 checkpoint, which witnesses cannot check.
    pub fn note(&self) -> Option<String> {
        let CheckpointForm::Tlog(vkey) = self.form() else {
            return None;
        };
        let line = SignatureLine {
            name: vkey.name.clone(),
            key_hash: vkey.key_hash(),
            signature: self.signature.clone(),
        };
        Some(format!("{}\n{}", self.text(), line.render()))
    }

    /// Whether the signature is valid under `public_key` (raw 32 bytes).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        match self.form() {
            CheckpointForm::SafegateV1 => {
                let text = Checkpoint::signed_text(self.tree_size, &self.root, &self.signed_at);
                UnparsedPublicKey::new(&ED25519, public_key)
                    .verify(text.as_bytes(), &self.signature)
                    .is_ok()
            }
            CheckpointForm::Tlog(vkey) => {
                let key = Vkey {
                    public_key: public_key.to_vec(),
                    ..vkey.clone()
                };
                let line = SignatureLine {
                    name: vkey.name.clone(),
                    key_hash: vkey.key_hash(),
                    signature: self.signature.clone(),
                };
                note::verify_ed25519(&key, &self.text(), &line)
            }
        }
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

/// Signs checkpoints with the log's Ed25519 key, as C2SP checkpoints of its origin.
pub struct CheckpointSigner {
    key: Ed25519KeyPair,
    key_id: String,
    origin: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .field("origin", &self.origin)
            .finish()
    }
}

impl CheckpointSigner {
    /// Loads a PKCS#8 PEM private key (as `safegate pki init` writes `checkpoint.key`).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        load_key(path).map(Self::from_key)
    }

    fn from_key(key: Ed25519KeyPair) -> Self {
        let key_id = key_id(key.public_key().as_ref());
        CheckpointSigner {
            key,
            key_id,
            origin: DEFAULT_ORIGIN.to_owned(),
        }
    }

    /// The same key signing for the log named `origin` (the checkpoints' first line and
    /// the signature's key name). `None` if it is not a valid key name.
    pub fn with_origin(mut self, origin: &str) -> Option<Self> {
        note::valid_name(origin).then(|| {
            self.origin = origin.to_owned();
            self
        })
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log key's C2SP verifier key, which witnesses are configured with.
    pub fn vkey(&self) -> Vkey {
        Vkey {
            name: self.origin.clone(),
            signature_type: note::ED25519_TYPE,
            public_key: self.public_key(),
        }
    }

    /// Hex SHA-256 of the public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs a C2SP checkpoint of `tree_size` entries with root `root`.
    pub fn sign(&self, tree_size: u64, root: Hash, signed_at: String) -> Checkpoint {
        let text = note::checkpoint_body(&self.origin, tree_size, &root);
        Checkpoint {
            tree_size,
            root,
            signature: self.key.sign(text.as_bytes()).as_ref().to_vec(),
            signed_at,
            key_id: self.vkey().render(),
        }
    }

    /// Signs a checkpoint in the v1 text, as checkpoints were signed before witnessing
    /// (kept so logs of that time, and tests of them, can be made and verified).
    pub fn sign_v1(&self, tree_size: u64, root: Hash, signed_at: String) -> Checkpoint {
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

/// Loads an Ed25519 PKCS#8 PEM private key (a checkpoint key, or a witness's key).
pub fn load_key(path: &Path) -> Result<Ed25519KeyPair, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let der = pem_body(&pem, "PRIVATE KEY").ok_or_else(|| KeyError::Format(path.to_owned()))?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| KeyError::Format(path.to_owned()))
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
        for checkpoint in [
            signer.sign(42, [7; 32], "2026-11-23T00:00:00Z".into()),
            signer.sign_v1(42, [7; 32], "2026-11-23T00:00:00Z".into()),
        ] {
            assert!(checkpoint.verify(&public));
            let mut forged = checkpoint.clone();
            forged.tree_size = 41;
            assert!(!forged.verify(&public));
        }
    }

    #[test]
    fn a_checkpoint_is_a_c2sp_signed_note_that_its_vkey_verifies() {
        let dir = std::env::temp_dir().join(format!("safegate-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (private, _) = generate_key_pem().expect("key");
        std::fs::write(dir.join("checkpoint.key"), private).expect("write");
        let signer = CheckpointSigner::load(&dir.join("checkpoint.key"))
            .expect("load")
            .with_origin("county.example/safegate")
            .expect("a valid origin");
        let checkpoint = signer.sign(3, [9; 32], "2026-11-23T00:00:00Z".into());
        let text = checkpoint.note().expect("a C2SP note");
        let body = format!("county.example/safegate\n3\n{}\n", B64.encode([9u8; 32]));
        assert!(text.starts_with(&format!("{body}\n\u{2014} county.example/safegate ")));
        let parsed = note::Note::parse(&text).expect("parses as a signed note");
        assert_eq!(parsed.text, body);
        let vkey = Vkey::parse(&signer.vkey().render()).expect("vkey round-trips");
        assert!(note::verify_ed25519(
            &vkey,
            &parsed.text,
            &parsed.signatures[0]
        ));
        assert_eq!(
            checkpoint.origin().as_deref(),
            Some("county.example/safegate")
        );
        assert!(signer.sign_v1(3, [9; 32], String::new()).note().is_none());
        assert!(
            CheckpointSigner::load(&dir.join("checkpoint.key"))
                .expect("load")
                .with_origin("has space")
                .is_none()
        );
    }
}
