//! The witness's HTTP interface (C2SP tlog-witness): `POST /add-checkpoint` and the
//! monitoring `GET /<origin hash>/checkpoint`, each refusal given the status the spec
//! names. Plain HTTP: the witness is run behind the agency's own TLS front end, or on
//! loopback in tests.

use std::future::Future;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::witness::{Refusal, Witness};

/// Content type of a 409's body: the size the witness holds.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The witness's routes.
pub fn router(witness: Witness) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .with_state(witness)
}

/// Serves `witness` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    witness: Witness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The status and body of each refusal.
fn refused(refusal: &Refusal) -> Response {
    let status = match refusal {
        Refusal::Malformed(_) | Refusal::OldSizeAhead => StatusCode::BAD_REQUEST,
        Refusal::UnknownLog => StatusCode::NOT_FOUND,
        Refusal::NotSignedByLog | Refusal::BadLogSignature => StatusCode::FORBIDDEN,
        Refusal::Stale(size) => {
            return (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                format!("{size}\n"),
            )
                .into_response();
        }
        Refusal::EmptyTreeRoot
        | Refusal::ProofFromZero
        | Refusal::BadProof
        | Refusal::SameSizeOtherRoot => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, format!("{refusal}\n")).into_response()
}

fn internal(error: &crate::error::Error) -> Response {
    tracing::error!(%error, "witness storage failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the witness could not read or store its state\n",
    )
        .into_response()
}

async fn add_checkpoint(State(witness): State<Witness>, body: String) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(Ok(cosignature)) => cosignature.into_response(),
        Ok(Err(refusal)) => {
            tracing::info!(%refusal, "checkpoint not cosigned");
            refused(&refusal)
        }
        Err(error) => internal(&error),
    }
}

async fn checkpoint(State(witness): State<Witness>, Path(origin_hash): Path<String>) -> Response {
    match witness.latest(&origin_hash).await {
        Ok(Some(note)) => note.into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no checkpoint cosigned for that log\n",
        )
            .into_response(),
        Err(error) => internal(&error),
    }
}
