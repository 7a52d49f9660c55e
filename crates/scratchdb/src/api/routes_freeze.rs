//! `POST /api/v1/resources/{token}/freeze`: scratchdb's own extension, which hosted instanode does
//! not have (docs/protocols/instanode.md §12). An owner route like delete: the same auth, the same
//! `404` for what is not the caller's, and `200 {"ok": true}` once nobody can log in.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::owner;
use super::error::{from_service, ApiError};
use super::routes_fork::EXTENSION_HEADER;
use super::routes_resources::check_token;
use crate::service::Service;

pub(super) async fn freeze(State(svc): State<Service>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let mut resp = match freeze_resource(&svc, &token, &headers).await {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(EXTENSION_HEADER, HeaderValue::from_static("freeze"));
    resp
}

async fn freeze_resource(svc: &Service, token: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let owner = owner(svc, headers).await?;
    check_token(token)?;
    svc.freeze(&owner, token).await.map_err(|e| from_service(e, "freeze_failed"))
}
