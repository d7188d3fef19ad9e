//! The console's own TLS accept loop. The client certificate is requested but not
//! required (a browser without one gets a 403 page that says why, rather than a failed
//! handshake); one that is presented must chain to an authority that issues officers'
//! certificates. The verified chain travels to the handlers in the request extensions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The certificate chain a console connection presented, end-entity first; `None` when
/// the browser presented none.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Option<Arc<Vec<CertificateDer<'static>>>>);

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The console's TLS settings: the server certificate and key (PEM), and the officers'
/// authorities (PEM, from the registry) as the trust roots for client certificates.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    officer_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the server certificate is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the server key is not PEM: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(officer_ca_pem.as_bytes()) {
        let der = der.map_err(|e| format!("an officers' authority is not PEM: {e}"))?;
        roots
            .add(der)
            .map_err(|e| format!("an officers' authority cannot be trusted: {e}"))?;
    }
    if roots.is_empty() {
        return Err(
            "the registry lists no [[officer]], so nobody could sign in to the console".into(),
        );
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client certificate verification: {e}"))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("the server certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections until `shutdown`, then asks open ones to close once their
/// current request is answered.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (socket, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "console: accepting a connection failed");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                    Ok(Ok(stream)) => stream,
                    // A refused certificate or a client that went away: nothing to serve.
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "console: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let peer =
                PeerCertificates(
                    stream.get_ref().1.peer_certificates().map(|chain| {
                        Arc::new(chain.iter().map(|c| c.clone().into_owned()).collect())
                    }),
                );
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(peer.clone());
                let mut router = router.clone();
                async move {
                    tower::Service::call(&mut router, request.map(axum::body::Body::new)).await
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "console: connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
}
