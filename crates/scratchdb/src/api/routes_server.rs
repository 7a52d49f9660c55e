//! `GET /healthz` and `GET /api/v1/whoami`: questions about the server and the caller rather than
//! about any one resource.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mayfly_core::wire::instanode::{Envelope, Healthz, Whoami};

use super::auth::owner;
use super::error::{from_service, ApiError};
use crate::service::Service;

pub(super) async fn healthz(State(svc): State<Service>) -> Response {
    match svc.pool_ready().await {
        Ok(n) => {
            let health = Healthz { service: Some("scratchdb".to_string()), pool_ready: Some(n as u64) };
            Json(Envelope::success(health)).into_response()
        }
        Err(e) => from_service(e, "service_unavailable").into_response(),
    }
}

/// Whose a token is, as hosted instanode tells it: `401` for a token it does not take, else the
/// account's team (here, the owner) and its tier (owned resources get the `pro` tier's limits).
pub(super) async fn whoami(State(svc): State<Service>, headers: HeaderMap) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    // The owner id is a hash of the token; a short prefix names the account well enough.
    let team = format!("team_{}", &owner[..12]);
    let me = Whoami {
        user_id: Some(team.clone()),
        team_id: team,
        team_name: Some("scratchdb".to_string()),
        plan_tier: Some("pro".to_string()),
    };
    Ok(Json(Envelope::success(me)).into_response())
}
