//! The one place a client certificate becomes a caller identity. Every safegate RPC
//! runs with a [`Caller`] in its request extensions, or is refused UNAUTHENTICATED
//! before any handler runs. Health and reflection pass through: their callers have
//! still presented a certificate the TLS layer verified, and a load balancer's
//! health check should not need a registry entry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::field::Empty;

use sha2::Digest;

use crate::api::journal::{RequestMeta, refuse_certificate};
use crate::api::rpc_metrics::CallerSystem;
use crate::domain::ledger::Ledger;
use crate::error::Error;
use crate::registry::RegistryHolder;

/// gRPC services whose callers must be registered agency systems.
const PROTECTED_PACKAGE: &str = "safegate.";

/// Resolves the verified client certificate against the agency registry in force.
#[derive(Debug, Clone)]
pub struct CallerLayer {
    registry: Arc<RegistryHolder>,
    ledger: Ledger,
}

impl CallerLayer {
    /// Refusals of unregistered certificates are written to `ledger`.
    pub fn new(registry: Arc<RegistryHolder>, ledger: Ledger) -> Self {
        CallerLayer { registry, ledger }
    }
}

impl<S> Layer<S> for CallerLayer {
    type Service = CallerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerService {
            inner,
            registry: Arc::clone(&self.registry),
            ledger: self.ledger.clone(),
        }
    }
}

/// The service [`CallerLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct CallerService<S> {
    inner: S,
    registry: Arc<RegistryHolder>,
    ledger: Ledger,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallerService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);

        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (service, method) = path.split_once('/').unwrap_or((path.as_str(), ""));
        // Attributes name the system, agency, role and outcome; never personal data.
        let span = tracing::info_span!(
            "grpc",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            safegate.system = Empty,
            safegate.agency = Empty,
            safegate.role = Empty,
            rpc.grpc.status_code = Empty,
        );

        if service.starts_with(PROTECTED_PACKAGE) {
            let meta = RequestMeta {
                rpc: path.clone(),
                trace_id: trace_id(&span),
            };
            let chain = request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(TlsConnectInfo::peer_certs);
            let identified = match &chain {
                Some(chain) => self.registry.current().identify(chain),
                None => Err(Error::Unauthenticated(
                    "no client certificate was presented".into(),
                )),
            };
            // An unregistered certificate's refusal names it in its own field.
            let fingerprint = chain
                .as_ref()
                .and_then(|chain| chain.first())
                .map(|leaf| hex::encode(sha2::Sha256::digest(leaf.as_ref())));
            match identified {
                Ok(caller) => {
                    span.record("safegate.system", caller.system.id.as_str());
                    span.record("safegate.agency", caller.system.agency.as_str());
                    let system = CallerSystem(caller.system.id.clone());
                    request.extensions_mut().insert(caller);
                    request.extensions_mut().insert(meta);
                    return Box::pin(
                        async move {
                            let mut response = inner.call(request).await?;
                            record_status(&response);
                            response.extensions_mut().insert(system);
                            Ok(response)
                        }
                        .instrument(span),
                    );
                }
                Err(error) => {
                    span.in_scope(|| tracing::warn!(reason = %error, "caller refused"));
                    let ledger = self.ledger.clone();
                    return Box::pin(
                        async move {
                            let status =
                                refuse_certificate(&ledger, fingerprint, &meta, error).await;
                            tracing::Span::current()
                                .record("rpc.grpc.status_code", status.code() as i32);
                            Ok(status.into_http())
                        }
                        .instrument(span),
                    );
                }
            }
        }

        Box::pin(
            async move {
                let response = inner.call(request).await?;
                record_status(&response);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Records the response's gRPC status on the current span. Unary errors arrive
/// trailers-only, with the status in the headers; a response without one has started
/// successfully.
fn record_status<B>(response: &http::Response<B>) {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    tracing::Span::current().record("rpc.grpc.status_code", code);
}

/// The OpenTelemetry trace id of `span` when traces are exported, otherwise a new id, so
/// a disclosure-log entry can always be matched to the gateway's logs.
fn trace_id(span: &tracing::Span) -> String {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let trace_id = context.span().span_context().trace_id();
    if trace_id == opentelemetry::trace::TraceId::INVALID {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        trace_id.to_string()
    }
}
