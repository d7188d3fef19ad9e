//! The agency registry: which client certificates identify which agency systems, and
//! which practitioner roles each system may assert.
//!
//! A system is matched by the certificate authority that issued its certificate together
//! with either a SAN URI or the subject common name. The TLS layer has already verified
//! the chain against the registry's authorities; here the gateway only decides *who* the
//! verified certificate belongs to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::{CertificateDer, pem::PemObject};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use crate::domain::{Agency, AgencySystem, Role};
use crate::error::Error;

/// What is wrong with a registry file; each message names the entry and the key.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read agency registry {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agency registry {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("agency registry {path}: {entry}: {message}")]
    Entry {
        path: PathBuf,
        entry: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default, rename = "authority")]
    authorities: Vec<AuthorityEntry>,
    #[serde(default, rename = "system")]
    systems: Vec<SystemEntry>,
    #[serde(default, rename = "officer")]
    officers: Vec<OfficerEntry>,
}

/// A person who signs in to the IG console with a personal certificate, acting for a
/// registered system (whose agency and roles bound what they may assert).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficerEntry {
    practitioner_id: String,
    name: String,
    system: String,
    role: String,
    authority: String,
    san_uri: Option<String>,
    subject_cn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityEntry {
    id: String,
    certificate: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemEntry {
    id: String,
    name: String,
    agency: String,
    roles: Vec<String>,
    authority: String,
    san_uri: Option<String>,
    subject_cn: Option<String>,
    contact_route: String,
    #[serde(default)]
    admin: bool,
}

/// How a certificate names the system it was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CertificateName {
    SanUri(String),
    SubjectCn(String),
}

impl CertificateName {
    fn describe(&self) -> String {
        match self {
            CertificateName::SanUri(uri) => format!("uri:{uri}"),
            CertificateName::SubjectCn(cn) => format!("cn:{cn}"),
        }
    }
}

#[derive(Debug)]
struct Authority {
    id: String,
    pem: String,
    subject: Vec<u8>,
    key_id: Option<Vec<u8>>,
    /// When its certificate expires, seconds since the Unix epoch.
    not_after: i64,
}

/// The loaded registry.
#[derive(Debug)]
pub struct Registry {
    authorities: Vec<Authority>,
    systems: HashMap<(String, CertificateName), Arc<AgencySystem>>,
    /// Officers, by the authority that issues their certificate and its name.
    officers: HashMap<(String, CertificateName), Arc<Officer>>,
    /// Callers already resolved, by their end-entity certificate's DER, so a connection's
    /// certificate is parsed and fingerprinted once rather than on every call. The TLS
    /// layer still verifies every connection; this only remembers who a verified
    /// certificate belongs to, which cannot change while the registry is loaded.
    resolved: RwLock<HashMap<Vec<u8>, Caller>>,
}

/// A person registered to sign in to the IG console, as the registry describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    /// The practitioner id the disclosure log records for them.
    pub practitioner_id: String,
    /// Their name, shown to them on the console's pages (never logged).
    pub name: String,
    /// The registered system they act for: its agency and id go into the log.
    pub system: Arc<AgencySystem>,
    pub role: Role,
    /// Registry id of the authority that issues their certificate.
    pub authority: String,
}

/// An officer as resolved from the certificate presented on a console connection.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub officer: Arc<Officer>,
    /// SHA-256 of the officer's certificate DER, lower-case hex.
    pub certificate_sha256: String,
}

/// Most certificates remembered in [`Registry::identify`]'s cache before it starts over.
const RESOLVED_MAX: usize = 4096;

/// The verified caller of an RPC: an agency system, as resolved from its client certificate.
#[derive(Debug, Clone)]
pub struct Caller {
    pub system: Arc<AgencySystem>,
    /// SHA-256 of the client certificate's DER, lower-case hex.
    pub certificate_sha256: String,
    /// The certificate name that matched, e.g. `uri:urn:safegate:system:police-iom`.
    pub certificate_identity: String,
    /// Registry id of the authority that issued the certificate.
    pub authority: String,
}

impl Registry {
    /// Loads a registry file. Relative authority certificate paths resolve against
    /// `certificate_dir` when given (the PKI directory), otherwise against the registry
    /// file's own directory.
    pub fn load(path: &Path, certificate_dir: Option<&Path>) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: RegistryFile = toml::from_str(&text).map_err(|e| RegistryError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = certificate_dir
            .map(Path::to_owned)
            .or_else(|| path.parent().map(Path::to_owned))
            .unwrap_or_default();
        let entry_error = |entry: String, message: String| RegistryError::Entry {
            path: path.to_owned(),
            entry,
            message,
        };

        let mut authorities: Vec<Authority> = Vec::new();
        for entry in file.authorities {
            let label = format!("authority `{}`", entry.id);
            if authorities.iter().any(|a| a.id == entry.id) {
                return Err(entry_error(label, "id is used twice".into()));
            }
            let cert_path = base.join(&entry.certificate);
            let pem = std::fs::read_to_string(&cert_path).map_err(|e| {
                entry_error(
                    label.clone(),
                    format!("certificate {}: {e}", cert_path.display()),
                )
            })?;
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
                entry_error(
                    label.clone(),
                    format!("certificate {}: {e}", cert_path.display()),
                )
            })?;
            let names = authority_names(&der).map_err(|m| entry_error(label, m))?;
            authorities.push(Authority {
                id: entry.id,
                pem,
                subject: names.subject,
                key_id: names.key_id,
                not_after: names.not_after,
            });
        }
        if authorities.is_empty() {
            return Err(RegistryError::Syntax {
                path: path.to_owned(),
                message: "no [[authority]] entries: no client could ever be verified".into(),
            });
        }

        let mut systems = HashMap::new();
        let mut ids = Vec::new();
        for entry in file.systems {
            let label = format!("system `{}`", entry.id);
            if entry.id.trim().is_empty() || ids.contains(&entry.id) {
                return Err(entry_error(label, "id must be non-empty and unique".into()));
            }
            let agency = Agency::parse(&entry.agency).ok_or_else(|| {
                entry_error(
                    label.clone(),
                    format!(
                        "agency `{}` is not one of: {}",
                        entry.agency,
                        Agency::expected()
                    ),
                )
            })?;
            let mut roles = Vec::new();
            for word in &entry.roles {
                let role = Role::parse(word).ok_or_else(|| {
                    entry_error(
                        label.clone(),
                        format!("role `{word}` is not one of: {}", Role::expected()),
                    )
                })?;
                if !agency.permits_role(role) {
                    return Err(entry_error(
                        label.clone(),
                        format!("agency `{agency}` may not assert role `{role}`"),
                    ));
                }
                roles.push(role);
            }
            if roles.is_empty() {
                return Err(entry_error(
                    label,
                    "roles must list at least one role".into(),
                ));
            }
            if entry.contact_route.trim().is_empty() {
                return Err(entry_error(
                    label,
                    "contact_route must say how practitioners reach this system's team".into(),
                ));
            }
            if !authorities.iter().any(|a| a.id == entry.authority) {
                return Err(entry_error(
                    label,
                    format!("authority `{}` is not declared", entry.authority),
                ));
            }
            let name = match (entry.san_uri, entry.subject_cn) {
                (Some(uri), None) => CertificateName::SanUri(uri),
                (None, Some(cn)) => CertificateName::SubjectCn(cn),
                _ => {
                    return Err(entry_error(
                        label,
                        "set exactly one of `san_uri` or `subject_cn`".into(),
                    ));
                }
            };
            let key = (entry.authority, name);
            if systems.contains_key(&key) {
                return Err(entry_error(
                    label,
                    "another system already has this authority and certificate name".into(),
                ));
            }
            ids.push(entry.id.clone());
            systems.insert(
                key,
                Arc::new(AgencySystem {
                    id: entry.id,
                    name: entry.name,
                    agency,
                    roles,
                    contact_route: entry.contact_route.trim().to_owned(),
                    admin: entry.admin,
                }),
            );
        }
        let mut officers = HashMap::new();
        let mut officer_ids: Vec<String> = Vec::new();
        for entry in file.officers {
            let label = format!("officer `{}`", entry.practitioner_id);
            let id = entry.practitioner_id.trim().to_owned();
            if id.is_empty() || officer_ids.contains(&id) {
                return Err(entry_error(
                    label,
                    "practitioner_id must be non-empty and unique".into(),
                ));
            }
            if entry.name.trim().is_empty() {
                return Err(entry_error(label, "name must be set".into()));
            }
            let system = systems
                .values()
                .find(|s| s.id == entry.system)
                .cloned()
                .ok_or_else(|| {
                    entry_error(
                        label.clone(),
                        format!("system `{}` is not registered", entry.system),
                    )
                })?;
            let role = Role::parse(&entry.role).ok_or_else(|| {
                entry_error(
                    label.clone(),
                    format!("role `{}` is not one of: {}", entry.role, Role::expected()),
                )
            })?;
            if !system.roles.contains(&role) {
                return Err(entry_error(
                    label,
                    format!("system `{}` may not assert role `{role}`", system.id),
                ));
            }
            if !authorities.iter().any(|a| a.id == entry.authority) {
                return Err(entry_error(
                    label,
                    format!("authority `{}` is not declared", entry.authority),
                ));
            }
            let name = match (entry.san_uri, entry.subject_cn) {
                (Some(uri), None) => CertificateName::SanUri(uri),
                (None, Some(cn)) => CertificateName::SubjectCn(cn),
                _ => {
                    return Err(entry_error(
                        label,
                        "set exactly one of `san_uri` or `subject_cn`".into(),
                    ));
                }
            };
            let key = (entry.authority.clone(), name);
            if systems.contains_key(&key) || officers.contains_key(&key) {
                return Err(entry_error(
                    label,
                    "a system or officer already has this authority and certificate name".into(),
                ));
            }
            officer_ids.push(id.clone());
            officers.insert(
                key,
                Arc::new(Officer {
                    practitioner_id: id,
                    name: entry.name.trim().to_owned(),
                    system,
                    role,
                    authority: entry.authority,
                }),
            );
        }
        Ok(Registry {
            authorities,
            systems,
            officers,
            resolved: RwLock::new(HashMap::new()),
        })
    }

    /// The authorities' certificates, concatenated as PEM: the TLS layer's client trust roots.
    pub fn client_ca_pem(&self) -> String {
        self.authorities
            .iter()
            .map(|a| a.pem.trim_end())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The certificates of the authorities that issue officers' certificates, as PEM:
    /// the console's client trust roots (empty when no officer is registered).
    pub fn officer_ca_pem(&self) -> String {
        self.authorities
            .iter()
            .filter(|a| self.officers.values().any(|o| o.authority == a.id))
            .map(|a| a.pem.trim_end())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Number of registered officers.
    pub fn officers(&self) -> usize {
        self.officers.len()
    }

    /// Whether `practitioner_id` is a registered officer's with the `ig_officer` role
    /// (someone an alert case may be assigned to).
    pub fn is_ig_officer(&self, practitioner_id: &str) -> bool {
        self.officers.values().any(|o| {
            o.role == crate::domain::Role::IgOfficer && o.practitioner_id == practitioner_id
        })
    }

    /// Resolves a verified console client certificate (end-entity first) to the officer
    /// it was issued to; UNAUTHENTICATED, quoting its fingerprint, when it names none.
    pub fn identify_officer(&self, chain: &[CertificateDer<'_>]) -> Result<SignedIn, Error> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::Unauthenticated("no client certificate was presented".into()))?;
        let (fingerprint, found) = self.find(leaf, |key| self.officers.get(key).cloned())?;
        match found {
            Some((officer, _, _)) => Ok(SignedIn {
                officer,
                certificate_sha256: fingerprint,
            }),
            None => Err(Error::Unauthenticated(format!(
                "client certificate sha256:{fingerprint} is not registered to any officer"
            ))),
        }
    }

    /// Ids of the registered systems that may assert `role`, sorted.
    pub fn systems_with_role(&self, role: crate::domain::Role) -> Vec<String> {
        let mut ids: Vec<String> = self
            .systems
            .values()
            .filter(|s| s.roles.contains(&role))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Every registered system once, sorted by id.
    pub fn systems(&self) -> Vec<AgencySystem> {
        let mut systems: Vec<AgencySystem> =
            self.systems.values().map(|s| s.as_ref().clone()).collect();
        systems.sort_by(|a, b| a.id.cmp(&b.id));
        systems.dedup_by(|a, b| a.id == b.id);
        systems
    }

    /// Number of registered systems.
    pub fn len(&self) -> usize {
        self.systems.len()
    }

    /// Each trusted authority's id and when its certificate expires (Unix seconds).
    pub fn authority_expiry(&self) -> Vec<(String, i64)> {
        self.authorities
            .iter()
            .map(|a| (a.id.clone(), a.not_after))
            .collect()
    }

    /// Number of trusted certificate authorities.
    pub fn authority_count(&self) -> usize {
        self.authorities.len()
    }

    /// Whether no system is registered.
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty()
    }

    /// Resolves a verified client certificate chain (end-entity first) to the registered
    /// system it identifies; UNAUTHENTICATED when it identifies none.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Result<Caller, Error> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::Unauthenticated("no client certificate was presented".into()))?;
        let remembered = self
            .resolved
            .read()
            .ok()
            .and_then(|resolved| resolved.get(leaf.as_ref()).cloned());
        if let Some(caller) = remembered {
            return Ok(caller);
        }
        let caller = self.resolve(leaf)?;
        if let Ok(mut resolved) = self.resolved.write() {
            if resolved.len() >= RESOLVED_MAX {
                resolved.clear();
            }
            resolved.insert(leaf.as_ref().to_vec(), caller.clone());
        }
        Ok(caller)
    }

    /// [`Registry::identify`] for one end-entity certificate, without the cache.
    fn resolve(&self, leaf: &CertificateDer<'_>) -> Result<Caller, Error> {
        let (fingerprint, found) = self.find(leaf, |key| self.systems.get(key).cloned())?;
        match found {
            Some((system, name, authority)) => Ok(Caller {
                system,
                certificate_sha256: fingerprint,
                certificate_identity: name.describe(),
                authority,
            }),
            None => Err(Error::Unauthenticated(format!(
                "client certificate sha256:{fingerprint} is not registered to any agency system"
            ))),
        }
    }

    /// The certificate's fingerprint and what `lookup` finds under the first of its
    /// names issued by a registered authority (with that name and authority).
    #[allow(clippy::type_complexity)]
    fn find<T>(
        &self,
        leaf: &CertificateDer<'_>,
        lookup: impl Fn(&(String, CertificateName)) -> Option<T>,
    ) -> Result<(String, Option<(T, CertificateName, String)>), Error> {
        let fingerprint = hex::encode(Sha256::digest(leaf.as_ref()));
        let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|_| {
            Error::Unauthenticated(format!(
                "client certificate sha256:{fingerprint} could not be parsed"
            ))
        })?;
        let issuer_key_id = cert
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            });
        let names = certificate_names(&cert);
        for authority in &self.authorities {
            let same_issuer = authority.subject == cert.issuer().as_raw()
                && match (&authority.key_id, &issuer_key_id) {
                    (Some(ours), Some(theirs)) => ours == theirs,
                    _ => true,
                };
            if !same_issuer {
                continue;
            }
            for name in &names {
                let key = (authority.id.clone(), name.clone());
                if let Some(found) = lookup(&key) {
                    return Ok((
                        fingerprint,
                        Some((found, name.clone(), authority.id.clone())),
                    ));
                }
            }
        }
        Ok((fingerprint, None))
    }
}

/// What the registry keeps of an authority's certificate.
struct AuthorityNames {
    /// Its subject, raw DER: the issuer its client certificates name.
    subject: Vec<u8>,
    /// Its subject key identifier, if it has one.
    key_id: Option<Vec<u8>>,
    /// When it expires, seconds since the Unix epoch.
    not_after: i64,
}

/// The subject, key identifier and expiry of an authority's certificate.
fn authority_names(der: &CertificateDer<'_>) -> Result<AuthorityNames, String> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("certificate cannot be parsed: {e}"))?;
    if !cert.is_ca() {
        return Err("certificate is not a CA certificate".into());
    }
    let key_id = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
    Ok(AuthorityNames {
        subject: cert.subject().as_raw().to_vec(),
        key_id,
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The names a certificate could be registered under: its SAN URIs, then its subject CNs.
fn certificate_names(cert: &X509Certificate<'_>) -> Vec<CertificateName> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for general_name in &san.value.general_names {
            if let GeneralName::URI(uri) = general_name {
                names.push(CertificateName::SanUri((*uri).to_owned()));
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            names.push(CertificateName::SubjectCn(cn.to_owned()));
        }
    }
    names
}

/// The registry in force; a reload replaces it whole, so a request sees one registry.
#[derive(Debug)]
pub struct RegistryHolder {
    current: RwLock<Arc<Registry>>,
}

impl RegistryHolder {
    /// Holds `registry` as the registry in force.
    pub fn new(registry: impl Into<Arc<Registry>>) -> Self {
        RegistryHolder {
            current: RwLock::new(registry.into()),
        }
    }

    /// The registry in force now; keep the returned `Arc` for the whole request.
    pub fn current(&self) -> Arc<Registry> {
        // The lock only guards an Arc swap, which cannot be left half done.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts `registry` in force for every later request.
    pub fn replace(&self, registry: Registry) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry file in a fresh directory with a CA certificate beside it.
    fn registry_with(officers: &str) -> Result<Registry, RegistryError> {
        let dir = std::env::temp_dir().join(format!("safegate-registry-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = crate::pki::CertificateAuthority::generate("test CA").expect("CA");
        std::fs::write(dir.join("ca.pem"), ca.certificate_pem()).expect("CA file");
        let text = format!(
            "[[authority]]\nid = \"ca\"\ncertificate = \"ca.pem\"\n\n\
             [[system]]\nid = \"ig-office\"\nname = \"IG\"\nagency = \"information_governance\"\n\
             roles = [\"ig_officer\"]\nauthority = \"ca\"\nsan_uri = \"urn:s:ig\"\n\
             contact_route = \"ig@example.test\"\n\n{officers}"
        );
        std::fs::write(dir.join("registry.toml"), text).expect("registry file");
        Registry::load(&dir.join("registry.toml"), None)
    }

    #[test]
    fn an_officer_acts_for_a_registered_system_in_a_role_it_may_assert() {
        let officer = |system: &str, role: &str, id: &str| {
            format!(
                "[[officer]]\npractitioner_id = \"{id}\"\nname = \"A Person\"\nsystem = \"{system}\"\n\
                 role = \"{role}\"\nauthority = \"ca\"\nsan_uri = \"urn:o:{id}\"\n\n"
            )
        };
        let registry = registry_with(&officer("ig-office", "ig_officer", "IG-1")).expect("valid");
        assert_eq!(registry.officers(), 1);
        assert!(registry.officer_ca_pem().contains("BEGIN CERTIFICATE"));

        let message = |officers: String| match registry_with(&officers) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("accepted: {officers}"),
        };
        let unknown = message(officer("nowhere", "ig_officer", "IG-1"));
        assert!(
            unknown.contains("officer `IG-1`") && unknown.contains("`nowhere`"),
            "{unknown}"
        );
        let role = message(officer("ig-office", "gp", "IG-1"));
        assert!(role.contains("may not assert role `gp`"), "{role}");
        let twice = message(
            officer("ig-office", "ig_officer", "IG-1")
                + officer("ig-office", "ig_officer", "IG-1").as_str(),
        );
        assert!(twice.contains("unique"), "{twice}");
    }

    #[test]
    fn without_officers_no_authority_is_trusted_for_the_console() {
        let registry = registry_with("").expect("valid");
        assert_eq!(registry.officers(), 0);
        assert_eq!(registry.officer_ca_pem(), "");
    }
}
