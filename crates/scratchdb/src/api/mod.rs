//! The HTTP surface: instanode's routes, shapes, status codes and error envelope, and two routes of
//! scratchdb's own (`routes_fork`, `routes_freeze`).
//!
//! Every client mistake is a 4xx with instanode's stable `error` code; a 503 (with
//! `retry_after_seconds`) means Postgres itself failed. Nothing here answers 500.
//!
//! This module is only the route table and the request log. The handlers live by resource in the
//! `routes_*` modules, which share `error` (the envelope), `auth` (who is asking) and `request`
//! (body and header checks) and never import this module back.

mod auth;
mod error;
mod request;
mod routes_claim;
mod routes_db;
mod routes_fork;
mod routes_freeze;
mod routes_resources;
mod routes_server;

use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;

use error::ApiError;
use routes_claim::{claim, claim_preview};
use routes_db::db_new;
use routes_fork::fork;
use routes_freeze::freeze;
use routes_resources::{credentials, delete_resource, get_resource, list, rotate};
use routes_server::{healthz, whoami};

use crate::service::Service;

/// The routes, ready to serve. The request log line is added here so every route gets one.
///
/// Serve them with peer addresses (`into_make_service_with_connect_info::<SocketAddr>()`, as
/// [`crate::serve`] does): anonymous idempotency keys are scoped per address, and without one an
/// anonymous key is not honoured at all.
pub fn router(service: Service) -> Router {
    // Hosted instanode has neither extension: a scratchdb answering as it does (`--like-hosted`)
    // answers their routes as it would, with a plain `404` (`docs/protocols/instanode.md` §12).
    let extensions = if service.config().like_hosted.is_some() {
        Router::new()
    } else {
        Router::new()
            .route("/api/v1/resources/{token}/fork", post(fork))
            .route("/api/v1/resources/{token}/freeze", post(freeze))
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/db/new", post(db_new))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/resources", get(list))
        .route("/api/v1/resources/{token}", delete(delete_resource).get(get_resource))
        .route("/api/v1/resources/{token}/credentials", get(credentials))
        .route("/api/v1/resources/{token}/rotate-credentials", post(rotate))
        .merge(extensions)
        .route("/claim/preview", get(claim_preview))
        .route("/claim", post(claim))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn(log_request))
        .with_state(service)
}

/// One line per request. The query string is left out: `?t=` carries a claim token.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    resp
}
