//! Per-RPC metrics: one histogram, `rpc.server.call.duration` (seconds), whose count is
//! the number of calls, with the RPC's service, method and gRPC status code and the
//! calling agency system. It wraps everything else, so calls refused before a handler
//! runs (an unregistered certificate) are counted too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use tower::{Layer, Service};

/// The calling system as the caller layer resolved it, left in the response extensions
/// for the metrics (a system id, never a practitioner).
#[derive(Debug, Clone)]
pub struct CallerSystem(pub String);

/// gRPC's UNIMPLEMENTED: the path named no RPC of ours.
const UNIMPLEMENTED: i64 = 12;

/// Records each call's duration, status and caller.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    duration: Histogram<f64>,
}

impl RpcMetricsLayer {
    /// The instrument comes from the global meter provider: a no-op unless metrics are
    /// exported.
    pub fn new() -> Self {
        RpcMetricsLayer {
            duration: crate::metrics::meter()
                .f64_histogram("rpc.server.call.duration")
                .with_description(
                    "Duration of each RPC until its response headers (streams: until they start)",
                )
                .with_unit("s")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
        }
    }
}

impl Default for RpcMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            duration: self.duration.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around the rest.
#[derive(Debug, Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    duration: Histogram<f64>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcMetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let duration = self.duration.clone();
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let started = Instant::now();
        Box::pin(async move {
            let result = inner.call(request).await;
            // Unary errors arrive trailers-only, with the status in the headers; a
            // response without one has started successfully. A failure of the transport
            // itself is UNKNOWN.
            let (code, system) = match &result {
                Ok(response) => (
                    response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0),
                    response
                        .extensions()
                        .get::<CallerSystem>()
                        .map(|s| s.0.clone()),
                ),
                Err(_) => (2, None),
            };
            duration.record(
                started.elapsed().as_secs_f64(),
                &attributes(&path, code, system),
            );
            result
        })
    }
}

/// The call's attributes. A path that named no RPC is reported as `_OTHER`, so a client
/// cannot grow the number of series by inventing method names.
fn attributes(path: &str, code: i64, system: Option<String>) -> Vec<KeyValue> {
    let (service, method) = match path.split_once('/') {
        Some((service, method)) if code != UNIMPLEMENTED => (service.to_owned(), method.to_owned()),
        _ => ("_OTHER".to_owned(), "_OTHER".to_owned()),
    };
    let mut attributes = vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", service),
        KeyValue::new("rpc.method", method),
        KeyValue::new("rpc.grpc.status_code", code),
    ];
    if let Some(system) = system {
        attributes.push(KeyValue::new("safegate.system", system));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    #[test]
    fn an_unknown_path_is_reported_as_other_and_a_known_one_by_name() {
        let unknown = attributes("made.Up/AnythingAtAll", UNIMPLEMENTED, None);
        assert_eq!(value(&unknown, "rpc.service").as_deref(), Some("_OTHER"));
        assert_eq!(value(&unknown, "rpc.method").as_deref(), Some("_OTHER"));
        assert_eq!(value(&unknown, "safegate.system"), None);
        let known = attributes(
            "safegate.v1.QueryService/Query",
            7,
            Some("primary-school".into()),
        );
        assert_eq!(
            value(&known, "rpc.service").as_deref(),
            Some("safegate.v1.QueryService")
        );
        assert_eq!(value(&known, "rpc.method").as_deref(), Some("Query"));
        assert_eq!(value(&known, "rpc.grpc.status_code").as_deref(), Some("7"));
        assert_eq!(
            value(&known, "safegate.system").as_deref(),
            Some("primary-school")
        );
    }
}
