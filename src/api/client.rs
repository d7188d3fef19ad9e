//! The gateway's gRPC client side, as the CLI and the demo use it: a mutual-TLS channel
//! as one agency system of a dev PKI directory, and a refused call in words.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A connection to the gateway, for the generated clients.
pub use tonic::transport::Channel;

/// Opens a mutual-TLS channel to the gateway at `addr` as `system`, with its certificate
/// and key (`<system>.pem`, `<system>.key`) and the CA (`ca.pem`) from `pki_dir`.
pub async fn channel(addr: SocketAddr, pki_dir: &Path, system: &str) -> anyhow::Result<Channel> {
    let read = |name: String| {
        let path = pki_dir.join(&name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
        .identity(Identity::from_pem(
            read(format!("{system}.pem"))?,
            read(format!("{system}.key"))?,
        ))
        .domain_name("localhost");
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    Channel::from_shared(format!("https://{host}"))?
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("connecting to the gateway at {host} as {system}"))
}

/// A status the gateway answered with, as an error that prints its code and message.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}
