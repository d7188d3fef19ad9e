//! Signed notes as C2SP specifies them (`signed-note`, `tlog-checkpoint`,
//! `tlog-cosignature`): the checkpoint body (origin, size, base64 root), note signature
//! lines `— <name> base64(key hash || signature)`, verifier keys
//! (`<name>+<hex key hash>+base64(type || public key)`) and timestamped Ed25519
//! `cosignature/v1` signatures. Written here because the crates that exist lack the
//! cosignature; it is a few dozen lines over `ring`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::domain::ledger::merkle::Hash;

/// Signature type of an Ed25519 note signature (signed-note).
pub const ED25519_TYPE: u8 = 0x01;
/// Signature type of a timestamped Ed25519 checkpoint cosignature (tlog-cosignature).
pub const COSIGNATURE_TYPE: u8 = 0x04;
/// The em dash and space that open a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// `SHA-256(name || 0x0A || type || public key)[:4]`: the key hash a signature line
/// carries, naming the key and the algorithm.
pub fn key_hash(name: &str, signature_type: u8, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', signature_type]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name is non-empty, without spaces or `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The checkpoint body: origin, tree size and base64 root, each on its own line.
pub fn checkpoint_body(origin: &str, tree_size: u64, root: &Hash) -> String {
    format!("{origin}\n{tree_size}\n{}\n", B64.encode(root))
}

/// A parsed checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
}

/// Parses a checkpoint body (extension lines are refused: this log writes none).
pub fn parse_body(text: &str) -> Option<Body> {
    let mut lines = text.strip_suffix('\n')?.split('\n');
    let origin = lines.next().filter(|o| !o.is_empty())?;
    let size = lines.next()?;
    if size.is_empty() || (size.len() > 1 && size.starts_with('0')) {
        return None;
    }
    let tree_size = size.parse().ok()?;
    let root = B64.decode(lines.next()?).ok()?.try_into().ok()?;
    if lines.next().is_some() {
        return None;
    }
    Some(Body {
        origin: origin.to_owned(),
        tree_size,
        root,
    })
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    pub key_hash: [u8; 4],
    /// The signature bytes after the key hash.
    pub signature: Vec<u8>,
}

impl SignatureLine {
    /// `— <name> base64(key hash || signature)` with its newline.
    pub fn render(&self) -> String {
        let mut bytes = self.key_hash.to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, B64.encode(bytes))
    }

    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix(SIGNATURE_PREFIX)?;
        let (name, signature) = rest.split_once(' ')?;
        if !valid_name(name) {
            return None;
        }
        let bytes = B64.decode(signature).ok()?;
        if bytes.len() < 5 {
            return None;
        }
        Some(SignatureLine {
            name: name.to_owned(),
            key_hash: [bytes[0], bytes[1], bytes[2], bytes[3]],
            signature: bytes[4..].to_vec(),
        })
    }
}

/// Most signature lines accepted on one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 32;

/// A note split into its text (with its final newline) and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<SignatureLine>,
}

impl Note {
    /// Parses a signed note: the text is separated from the signatures by the last
    /// blank line. `None` if malformed (control characters, no signature, a bad line).
    pub fn parse(note: &str) -> Option<Note> {
        if note.chars().any(|c| c.is_control() && c != '\n') || !note.ends_with('\n') {
            return None;
        }
        let split = note.rfind("\n\n")?;
        let text = &note[..=split];
        let lines = &note[split + 2..];
        let signatures = lines
            .strip_suffix('\n')?
            .split('\n')
            .map(SignatureLine::parse)
            .collect::<Option<Vec<_>>>()?;
        if signatures.is_empty() || signatures.len() > MAX_SIGNATURES {
            return None;
        }
        Some(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as text: its text, a blank line, its signature lines.
    pub fn render(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for line in &self.signatures {
            out.push_str(&line.render());
        }
        out
    }
}

/// A verifier key: a name, and an Ed25519 public key for one signature type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    pub name: String,
    pub signature_type: u8,
    pub public_key: Vec<u8>,
}

impl Vkey {
    /// The key hash its signatures carry.
    pub fn key_hash(&self) -> [u8; 4] {
        key_hash(&self.name, self.signature_type, &self.public_key)
    }

    /// `<name>+<hex key hash>+base64(type || public key)`.
    pub fn render(&self) -> String {
        let mut material = vec![self.signature_type];
        material.extend_from_slice(&self.public_key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash()),
            B64.encode(material)
        )
    }

    /// Parses a vkey of an Ed25519 type; its key hash must match its name and key.
    pub fn parse(text: &str) -> Option<Vkey> {
        // The base64 key material may itself hold `+`: split off the name and hash only.
        let mut parts = text.trim().splitn(3, '+');
        let (name, hash, material) = (parts.next()?, parts.next()?, parts.next()?);
        if !valid_name(name) {
            return None;
        }
        let material = B64.decode(material).ok()?;
        let (&signature_type, public_key) = material.split_first()?;
        if public_key.len() != 32 || ![ED25519_TYPE, COSIGNATURE_TYPE].contains(&signature_type) {
            return None;
        }
        let vkey = Vkey {
            name: name.to_owned(),
            signature_type,
            public_key: public_key.to_vec(),
        };
        (hex::decode(hash).ok()? == vkey.key_hash()).then_some(vkey)
    }

    /// Whether `line` is by this key (same name and key hash): only then is it checked.
    pub fn signed(&self, line: &SignatureLine) -> bool {
        line.name == self.name && line.key_hash == self.key_hash()
    }
}

/// Whether an Ed25519 note signature by `key` (type 0x01) over `text` verifies.
pub fn verify_ed25519(key: &Vkey, text: &str, line: &SignatureLine) -> bool {
    key.signature_type == ED25519_TYPE
        && key.signed(line)
        && UnparsedPublicKey::new(&ED25519, &key.public_key)
            .verify(text.as_bytes(), &line.signature)
            .is_ok()
}

/// The message a `cosignature/v1` signs: header, time line, then the checkpoint body.
fn cosigned_message(timestamp: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A timestamped Ed25519 cosignature by a witness key named `name` over `body`.
pub fn cosign(key: &Ed25519KeyPair, name: &str, timestamp: u64, body: &str) -> SignatureLine {
    let signature = key.sign(cosigned_message(timestamp, body).as_bytes());
    let mut bytes = timestamp.to_be_bytes().to_vec();
    bytes.extend_from_slice(signature.as_ref());
    SignatureLine {
        name: name.to_owned(),
        key_hash: key_hash(name, COSIGNATURE_TYPE, key.public_key().as_ref()),
        signature: bytes,
    }
}

/// The cosignature's timestamp if `line` is a valid `cosignature/v1` by `key` over
/// `body`.
pub fn verify_cosignature(key: &Vkey, body: &str, line: &SignatureLine) -> Option<u64> {
    if key.signature_type != COSIGNATURE_TYPE || !key.signed(line) || line.signature.len() != 72 {
        return None;
    }
    let (time, signature) = line.signature.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().ok()?);
    if timestamp == 0 || timestamp > i64::MAX as u64 {
        return None;
    }
    UnparsedPublicKey::new(&ED25519, &key.public_key)
        .verify(cosigned_message(timestamp, body).as_bytes(), signature)
        .ok()
        .map(|()| timestamp)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example vkey and note of the signed-note specification.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo \
        Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn the_specifications_example_note_verifies_and_an_edit_does_not() {
        let vkey = Vkey::parse(SPEC_VKEY).expect("the spec's vkey parses");
        assert_eq!(vkey.render(), SPEC_VKEY);
        let note = Note::parse(SPEC_NOTE).expect("the spec's note parses");
        assert_eq!(note.render(), SPEC_NOTE);
        assert!(verify_ed25519(&vkey, &note.text, &note.signatures[0]));
        assert!(!verify_ed25519(
            &vkey,
            "This is an edited message.\n",
            &note.signatures[0]
        ));
        // A vkey whose hash does not match its name and key is refused.
        assert!(Vkey::parse(&SPEC_VKEY.replace("530d903a", "530d903b")).is_none());
    }

    #[test]
    fn a_cosignature_verifies_only_over_its_body_and_key() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let vkey = Vkey {
            name: "witness.example/w1".into(),
            signature_type: COSIGNATURE_TYPE,
            public_key: key.public_key().as_ref().to_vec(),
        };
        let body = checkpoint_body("example.com/log", 5, &[3; 32]);
        let line = cosign(&key, &vkey.name, 1_679_315_147, &body);
        let parsed = SignatureLine::parse(line.render().trim_end()).expect("parses");
        assert_eq!(
            verify_cosignature(&vkey, &body, &parsed),
            Some(1_679_315_147)
        );
        let other = checkpoint_body("example.com/log", 6, &[3; 32]);
        assert_eq!(verify_cosignature(&vkey, &other, &parsed), None);
        let as_log_key = Vkey {
            signature_type: ED25519_TYPE,
            ..vkey.clone()
        };
        assert_eq!(verify_cosignature(&as_log_key, &body, &parsed), None);
        assert_eq!(
            parse_body(&body),
            Some(Body {
                origin: "example.com/log".into(),
                tree_size: 5,
                root: [3; 32]
            })
        );
        assert!(parse_body("example.com/log\n05\nAAAA\n").is_none());
    }
}
