//! A development PKI: one CA, a server certificate for localhost and one client
//! certificate per agency system. For demos and tests only; production certificates
//! come from the partnership's own CA.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The systems of the demo agency registry (`policies/registry.toml`).
pub const DEMO_SYSTEMS: &[&str] = &[
    "police-iom",
    "probation",
    "health-visiting",
    "gp-practice",
    "childrens-services",
    "nursery",
    "primary-school",
    "ig-office",
    "mash",
];

/// The demo officers of the registry (`[[officer]]`), by their certificate's file stem
/// and SAN URI suffix: two IG officers, the MASH's identity steward and a health visitor
/// (who may not use the console).
pub const DEMO_OFFICERS: &[&str] = &["ig-0001", "ig-0002", "mash-0001", "hv-0001"];

/// The password of the demo officers' PKCS#12 bundles (`officer-<id>.p12`).
pub const DEMO_P12_PASSWORD: &str = "safegate-demo";

/// The SAN URI a dev officer certificate carries.
pub fn officer_uri(officer: &str) -> String {
    format!("urn:safegate:officer:{officer}")
}

/// The file stem of a demo officer's certificate, key and PKCS#12 bundle.
pub fn officer_stem(officer: &str) -> String {
    format!("officer-{officer}")
}

/// The SAN URI a dev client certificate carries for a system id.
pub fn system_uri(system_id: &str) -> String {
    format!("urn:safegate:system:{system_id}")
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl IssuedCertificate {
    /// Writes `<stem>.pem` and `<stem>.key` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        std::fs::write(dir.join(format!("{stem}.pem")), &self.certificate_pem)?;
        write_private(&dir.join(format!("{stem}.key")), &self.key_pem)
    }
}

impl IssuedCertificate {
    /// The certificate, its key and the issuing CA as a PKCS#12 bundle under `password`
    /// (PBES2 with AES-256 and an HMAC-SHA256 MAC), as browsers import a personal
    /// certificate.
    pub fn pkcs12(&self, ca_pem: &str, alias: &str, password: &str) -> Result<Vec<u8>, PkiError> {
        use rustls_pki_types::pem::PemObject;
        let bundle = |reason: String| PkiError::Bundle(reason);
        let der = |pem: &str| {
            rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| bundle(format!("certificate PEM: {e}")))
                .and_then(|der| {
                    p12_keystore::Certificate::from_der(der.as_ref())
                        .map_err(|e| bundle(format!("certificate DER: {e}")))
                })
        };
        let key = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| bundle(format!("private key PEM: {e}")))?;
        let local_key_id =
            ring::digest::digest(&ring::digest::SHA256, self.certificate_pem.as_bytes());
        let chain = p12_keystore::PrivateKeyChain::new(
            key.secret_pkcs8_der(),
            &local_key_id.as_ref()[..20],
            [der(&self.certificate_pem)?, der(ca_pem)?],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(alias, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        store
            .writer(password)
            .write()
            .map_err(|e| bundle(e.to_string()))
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from an hour ago (clock skew) for `days` days.
    pub fn days(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }

    /// Valid for a period that ended yesterday.
    pub fn expired() -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
        }
    }
}

/// A certificate authority that can issue server and client certificates.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

impl CertificateAuthority {
    /// Generates a new CA with the given common name.
    pub fn generate(common_name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let validity = Validity::days(5 * 365);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = KeyPair::generate()?;
        let certificate_pem = params.self_signed(&key)?.pem();
        Ok(CertificateAuthority {
            issuer: Issuer::new(params, key),
            certificate_pem,
        })
    }

    /// The CA a dev PKI directory holds (`ca.pem` and `ca.key`), to issue more from.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        Self::load_named(dir, "ca")
    }

    /// The CA a dev PKI directory holds as `<stem>.pem` and `<stem>.key`.
    pub fn load_named(dir: &Path, stem: &str) -> Result<Self, PkiError> {
        let read = |name: String| {
            std::fs::read_to_string(dir.join(&name)).map_err(|source| PkiError::Write {
                path: dir.join(&name),
                source,
            })
        };
        let certificate_pem = read(format!("{stem}.pem"))?;
        let key = KeyPair::from_pem(&read(format!("{stem}.key"))?)?;
        Ok(CertificateAuthority {
            issuer: Issuer::from_ca_cert_pem(&certificate_pem, key)?,
            certificate_pem,
        })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        self.certificate_pem.clone()
    }

    /// The CA's private key, PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCertificate, rcgen::Error> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = name("safegate dev server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, Validity::days(365))
    }

    /// Issues a client certificate for an agency system: SAN URI `urn:safegate:system:<id>`
    /// and subject CN `<id>`.
    pub fn issue_client(
        &self,
        system_id: &str,
        validity: Validity,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(system_id);
        params.subject_alt_names = vec![SanType::URI(system_uri(system_id).try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, validity)
    }

    /// Issues an officer's personal client certificate: SAN URI
    /// `urn:safegate:officer:<id>` and subject CN `<ID>`.
    pub fn issue_officer(
        &self,
        officer: &str,
        validity: Validity,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&officer.to_ascii_uppercase());
        params.subject_alt_names = vec![SanType::URI(officer_uri(officer).try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, validity)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        validity: Validity,
    ) -> Result<IssuedCertificate, rcgen::Error> {
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "safegate development");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?
    };
    #[cfg(not(unix))]
    let mut file = std::fs::File::create(path)?;
    file.write_all(contents.as_ref())
}

/// Why `pki init` could not write a PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0} already holds a PKI (ca.pem exists); pass --force to replace it")]
    Exists(PathBuf),
    #[error("generating certificates")]
    Generate(#[from] rcgen::Error),
    #[error("generating the checkpoint signing key")]
    Key(#[from] crate::domain::ledger::checkpoint::KeyError),
    #[error("writing a PKCS#12 bundle: {0}")]
    Bundle(String),
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes a dev PKI into `dir`: `ca.pem`, `ca.key`, `server.pem`, `server.key`,
/// `<system-id>.pem` / `<system-id>.key` for each system, and the disclosure log's
/// checkpoint signing key `checkpoint.key` with its public key `checkpoint.pub`. Refuses
/// to replace an existing PKI unless `force`.
pub fn init(dir: &Path, systems: &[&str], force: bool) -> Result<Vec<PathBuf>, PkiError> {
    if dir.join("ca.pem").exists() && !force {
        return Err(PkiError::Exists(dir.to_owned()));
    }
    let write_error = |source| PkiError::Write {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let ca = CertificateAuthority::generate("safegate development CA")?;
    std::fs::write(dir.join("ca.pem"), ca.certificate_pem()).map_err(write_error)?;
    write_private(&dir.join("ca.key"), ca.key_pem()).map_err(write_error)?;
    let mut written = vec![dir.join("ca.pem"), dir.join("ca.key")];
    ca.issue_server(&["localhost", "127.0.0.1", "::1"])?
        .write(dir, "server")
        .map_err(write_error)?;
    written.extend([dir.join("server.pem"), dir.join("server.key")]);
    write_checkpoint_key(dir).map_err(|e| match e {
        PkiError::Write { source, .. } => write_error(source),
        other => other,
    })?;
    written.extend([dir.join("checkpoint.key"), dir.join("checkpoint.pub")]);
    for system in systems {
        ca.issue_client(system, Validity::days(365))?
            .write(dir, system)
            .map_err(write_error)?;
        written.extend([
            dir.join(format!("{system}.pem")),
            dir.join(format!("{system}.key")),
        ]);
    }
    // Replacing a PKI replaces the officers' CA and bundles too.
    for stale in std::iter::once("officers-ca.pem".to_owned()).chain(
        DEMO_OFFICERS
            .iter()
            .map(|o| format!("{}.p12", officer_stem(o))),
    ) {
        match std::fs::remove_file(dir.join(&stale)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(write_error(source)),
        }
    }
    for officer in ensure_officers(dir, DEMO_OFFICERS)? {
        let stem = officer_stem(&officer);
        written.extend(["pem", "key", "p12"].map(|ext| dir.join(format!("{stem}.{ext}"))));
    }
    Ok(written)
}

/// Makes the officers' CA in `dir` (`officers-ca.pem`, `officers-ca.key`) if absent, and
/// issues each of `officers` without one a certificate (`officer-<id>.pem`, `.key`) and
/// a PKCS#12 bundle (`officer-<id>.p12`, password [`DEMO_P12_PASSWORD`]); returns those
/// issued now.
pub fn ensure_officers(dir: &Path, officers: &[&str]) -> Result<Vec<String>, PkiError> {
    let write_error = |source| PkiError::Write {
        path: dir.to_owned(),
        source,
    };
    let ca = if dir.join("officers-ca.pem").exists() {
        CertificateAuthority::load_named(dir, "officers-ca")?
    } else {
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let ca = CertificateAuthority::generate("safegate development IG office CA")?;
        std::fs::write(dir.join("officers-ca.pem"), ca.certificate_pem()).map_err(write_error)?;
        write_private(&dir.join("officers-ca.key"), ca.key_pem()).map_err(write_error)?;
        ca
    };
    let mut issued = Vec::new();
    for officer in officers {
        let stem = officer_stem(officer);
        if dir.join(format!("{stem}.p12")).exists() {
            continue;
        }
        let certificate = ca.issue_officer(officer, Validity::days(365))?;
        certificate.write(dir, &stem).map_err(write_error)?;
        let p12 = certificate.pkcs12(&ca.certificate_pem(), &stem, DEMO_P12_PASSWORD)?;
        write_private(&dir.join(format!("{stem}.p12")), &p12).map_err(write_error)?;
        issued.push((*officer).to_owned());
    }
    Ok(issued)
}

/// Issues a client certificate, from the CA in `dir`, to each of `systems` that has none
/// there yet (a dev PKI made before a system joined the demo registry); returns them.
pub fn add_missing_clients(dir: &Path, systems: &[&str]) -> Result<Vec<String>, PkiError> {
    let missing: Vec<String> = systems
        .iter()
        .filter(|system| !dir.join(format!("{system}.pem")).exists())
        .map(|system| (*system).to_owned())
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let ca = CertificateAuthority::load(dir)?;
    for system in &missing {
        ca.issue_client(system, Validity::days(365))?
            .write(dir, system)
            .map_err(|source| PkiError::Write {
                path: dir.to_owned(),
                source,
            })?;
    }
    Ok(missing)
}

/// Writes a new checkpoint signing key pair: `checkpoint.key` (private, mode 0600) and
/// `checkpoint.pub` (SPKI PEM, for offline verification).
pub fn write_checkpoint_key(dir: &Path) -> Result<(), PkiError> {
    let (private, public) = crate::domain::ledger::checkpoint::generate_key_pem()?;
    let write_error = |source| PkiError::Write {
        path: dir.to_owned(),
        source,
    };
    write_private(&dir.join("checkpoint.key"), &private).map_err(write_error)?;
    std::fs::write(dir.join("checkpoint.pub"), public).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_officers_bundle_holds_their_certificate_key_and_ca() {
        let dir = std::env::temp_dir().join(format!("safegate-pki-{}", uuid::Uuid::new_v4()));
        let issued = ensure_officers(&dir, &["ig-0001"]).expect("officers");
        assert_eq!(issued, ["ig-0001"]);
        let bytes = std::fs::read(dir.join("officer-ig-0001.p12")).expect("bundle");
        let store = p12_keystore::KeyStore::from_pkcs12(&bytes, DEMO_P12_PASSWORD)
            .expect("the bundle opens with the demo password");
        let (_, chain) = store.private_key_chain().expect("a key with its chain");
        assert_eq!(
            chain.chain().len(),
            2,
            "the officer's certificate and the CA"
        );
        assert!(chain.chain()[0].subject().contains("IG-0001"));
        assert!(p12_keystore::KeyStore::from_pkcs12(&bytes, "wrong").is_err());
        // A second call issues nothing new: the bundles are kept.
        assert!(
            ensure_officers(&dir, &["ig-0001"])
                .expect("again")
                .is_empty()
        );
    }
}
