//! The server side of mutual TLS: the certificate the gateway presents and the
//! authorities whose client certificates it accepts, held so that a reload can replace
//! them while the gateway serves.
//!
//! Each accepted connection takes the configuration in force at that moment for its
//! handshake; connections already open keep theirs, so calls in flight finish, and the
//! next handshake sees the new certificate and authorities.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Longest a client may take over its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the gRPC server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// Why a server certificate, key or set of client authorities cannot be put in force.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {setting} {path}: {source}")]
    Read {
        setting: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{setting} {path} holds no PEM {expected}: {reason}")]
    Pem {
        setting: &'static str,
        path: PathBuf,
        expected: &'static str,
        reason: String,
    },
    #[error("`tls_key` {key} does not belong to `tls_cert` {cert}, or cannot be used: {reason}")]
    Key {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("`tls_cert` {path} cannot be parsed: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("the registry's authorities cannot verify clients: {0}")]
    Authorities(String),
}

/// A TLS configuration the gateway can serve with, and what it presents.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    /// SHA-256 of the server certificate's DER, lower-case hex.
    pub certificate_sha256: String,
    /// When the server certificate expires, seconds since the Unix epoch.
    pub certificate_not_after: i64,
}

impl ServerTls {
    /// Reads the server certificate chain and key (`tls_cert`, `tls_key`) and trusts client
    /// certificates issued by `client_authorities` (PEM, one or more). Every check a
    /// handshake would otherwise fail on later is made here: PEM that parses, a key that
    /// matches the certificate, authorities that form a trust store.
    pub fn load(cert: &Path, key: &Path, client_authorities: &str) -> Result<Self, TlsError> {
        let read = |setting, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                setting,
                path: path.to_owned(),
                source,
            })
        };
        let cert_pem = read("`tls_cert`", cert)?;
        let key_pem = read("`tls_key`", key)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                setting: "`tls_cert`",
                path: cert.to_owned(),
                expected: "certificate",
                reason: e.to_string(),
            })?;
        let Some(leaf) = chain.first().cloned() else {
            return Err(TlsError::Pem {
                setting: "`tls_cert`",
                path: cert.to_owned(),
                expected: "certificate",
                reason: "no CERTIFICATE block".into(),
            });
        };
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
            setting: "`tls_key`",
            path: key.to_owned(),
            expected: "private key",
            reason: e.to_string(),
        })?;
        let certificate_not_after = not_after(&leaf).map_err(|reason| TlsError::Certificate {
            path: cert.to_owned(),
            reason,
        })?;

        let mut roots = rustls::RootCertStore::empty();
        for authority in CertificateDer::pem_slice_iter(client_authorities.as_bytes()) {
            let authority = authority.map_err(|e| TlsError::Authorities(e.to_string()))?;
            roots
                .add(authority)
                .map_err(|e| TlsError::Authorities(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| TlsError::Authorities(e.to_string()))?;
        // rustls refuses a key whose public half is not the certificate's.
        let mut config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, private_key)
            .map_err(|e| TlsError::Key {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            certificate_sha256: hex::encode(Sha256::digest(leaf.as_ref())),
            certificate_not_after,
        })
    }
}

/// When a certificate expires, seconds since the Unix epoch.
pub fn not_after(der: &CertificateDer<'_>) -> Result<i64, String> {
    use x509_parser::prelude::FromDer;
    let (_, certificate) = x509_parser::certificate::X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(certificate.validity().not_after.timestamp())
}

/// The TLS configuration in force; replaced whole, never edited.
#[derive(Debug)]
pub struct TlsHolder {
    current: RwLock<ServerTls>,
}

impl TlsHolder {
    /// Holds `tls` as the configuration in force.
    pub fn new(tls: ServerTls) -> Self {
        TlsHolder {
            current: RwLock::new(tls),
        }
    }

    /// The configuration the next handshake uses.
    pub fn current(&self) -> ServerTls {
        // The lock only guards a swap of reference-counted values: never half done.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `tls` in force for every later handshake.
    pub fn replace(&self, tls: ServerTls) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = tls;
    }
}

/// Accepts TCP connections from `tcp` and completes each one's TLS handshake, in its own
/// task, with the configuration `holder` has in force when the connection arrives. The
/// stream yields the connections whose handshake succeeded; a failed handshake is the
/// client's problem and is logged at debug level only. Dropping the stream stops
/// accepting and closes the listening socket.
pub fn incoming<S>(
    mut tcp: S,
    holder: Arc<TlsHolder>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>>
where
    S: tokio_stream::Stream<Item = Result<TcpStream, io::Error>> + Unpin + Send + 'static,
{
    let (accepted, receiver) = mpsc::channel(ACCEPTED_QUEUE);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                () = accepted.closed() => break,
                next = tcp.next() => next,
            };
            let stream = match next {
                Some(Ok(stream)) => stream,
                Some(Err(error)) => {
                    tracing::warn!(%error, "accepting a TCP connection failed");
                    continue;
                }
                None => break,
            };
            let acceptor = TlsAcceptor::from(Arc::clone(&holder.current().config));
            let accepted = accepted.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = accepted.send(Ok(tls)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake refused"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
