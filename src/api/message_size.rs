//! A request over the gateway's message size limit is refused RESOURCE_EXHAUSTED, gRPC's
//! code for it. tonic's decoder refuses it with OUT_OF_RANGE before any handler runs; this
//! layer relabels exactly that refusal, so every service (and reflection and health) answers
//! the same code. The limit itself is tonic's default, 4 MiB per decoded message.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::{Code, Status};
use tower::{Layer, Service};

/// How tonic's decoder begins the message of its size refusal (tonic 0.14,
/// `codec/decode.rs`); the test `transport::a_request_over_the_size_limit_*` keeps this in
/// step with the tonic in use.
const DECODE_LIMIT_MESSAGE: &str = "Error, decoded message length too large";

/// Relabels the decoder's size refusal as RESOURCE_EXHAUSTED.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageSizeLayer;

impl<S> Layer<S> for MessageSizeLayer {
    type Service = MessageSizeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSizeService { inner }
    }
}

/// The service [`MessageSizeLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct MessageSizeService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MessageSizeService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            relabel(&mut response);
            Ok(response)
        })
    }
}

/// Rewrites a trailers-only size refusal in place; any other response is left alone.
fn relabel<B>(response: &mut http::Response<B>) {
    // A refusal made before the handler ran is trailers-only: tonic puts the status in the
    // headers and, as a copy, in the extensions.
    let Some(refusal) = response.extensions().get::<Status>() else {
        return;
    };
    if refusal.code() != Code::OutOfRange || !refusal.message().starts_with(DECODE_LIMIT_MESSAGE) {
        return;
    }
    let relabelled = Status::resource_exhausted(refusal.message());
    let headers = response.headers_mut();
    headers.remove(Status::GRPC_STATUS);
    headers.remove(Status::GRPC_MESSAGE);
    headers.remove(Status::GRPC_STATUS_DETAILS);
    if relabelled.add_header(headers).is_ok() {
        response.extensions_mut().insert(relabelled);
    } else {
        // The message came from a header already, so it encodes; keep a bare code if not.
        headers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("8"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: Status) -> http::Response<()> {
        status.into_http()
    }

    fn code(response: &http::Response<()>) -> Option<Code> {
        Status::from_header_map(response.headers()).map(|s| s.code())
    }

    #[test]
    fn the_decoders_size_refusal_becomes_resource_exhausted() {
        let mut response = refused(Status::out_of_range(format!(
            "{DECODE_LIMIT_MESSAGE}: found 5000000 bytes, the limit is: 4194304 bytes"
        )));
        relabel(&mut response);
        assert_eq!(code(&response), Some(Code::ResourceExhausted));
        let status = Status::from_header_map(response.headers()).expect("status");
        assert!(status.message().contains("4194304"), "{}", status.message());
        assert_eq!(
            response.extensions().get::<Status>().map(Status::code),
            Some(Code::ResourceExhausted)
        );
    }

    #[test]
    fn other_refusals_are_left_alone() {
        for status in [
            Status::out_of_range("page 9 is past the end"),
            Status::invalid_argument(DECODE_LIMIT_MESSAGE),
            Status::ok(""),
        ] {
            let expected = status.code();
            let mut response = refused(status);
            relabel(&mut response);
            assert_eq!(code(&response), Some(expected));
        }
        let mut plain = http::Response::new(());
        relabel(&mut plain);
        assert!(plain.headers().is_empty());
    }
}
