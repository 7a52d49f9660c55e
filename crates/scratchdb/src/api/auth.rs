//! Who is asking: a Bearer token this server knows, or nobody from an address. Auth is strict
//! optional, as instanode's: a missing header is anonymous, a header that is not a known token is a
//! 401, except on a `--like-hosted` create (see `crate::hosted`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::Extension;

use super::error::{from_service, ApiError};
use crate::service::{Caller, Service};

/// The address a request came from, when the server was given it.
pub(super) type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Strict optional auth: no header is anonymous (from `peer`), a header that is not a known token is 401.
async fn caller(svc: &Service, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Caller, ApiError> {
    caller_with(svc, headers, peer, false).await
}

/// [`caller`], but with `unknown_is_anonymous` a token this server does not know makes the caller
/// anonymous instead of a 401 (hosted instanode's way with a create, see `crate::hosted`).
pub(super) async fn caller_with(
    svc: &Service,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    unknown_is_anonymous: bool,
) -> Result<Caller, ApiError> {
    let Some(value) = headers.get("authorization") else { return Ok(Caller::Anonymous(peer)) };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("malformed_token"))?;
    match svc.authenticate(token).await {
        Ok(Some(owner)) => Ok(Caller::Owner(owner)),
        Ok(None) if unknown_is_anonymous => Ok(Caller::Anonymous(peer)),
        Ok(None) => Err(ApiError::unauthorized("invalid_claims")),
        Err(e) => Err(from_service(e, "service_unavailable")),
    }
}

pub(super) async fn owner(svc: &Service, headers: &HeaderMap) -> Result<String, ApiError> {
    match caller(svc, headers, None).await? {
        Caller::Owner(o) => Ok(o),
        Caller::Anonymous(_) => Err(ApiError::unauthorized("missing_credentials")),
    }
}
