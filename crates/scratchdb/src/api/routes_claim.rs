//! `GET /claim/preview` and `POST /claim`: what a claim token names, and handing that resource to
//! a new owner. No bearer token here: the claim token is the credential.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mayfly_core::wire::instanode::{ClaimPreview, Claimed, Envelope};
use serde::Deserialize;

use super::error::{from_service, ApiError};
use super::request::{self, ClaimBody};
use super::routes_resources::item;
use crate::service::Service;

#[derive(Deserialize)]
pub(super) struct ClaimQuery {
    pub(super) t: Option<String>,
}

pub(super) async fn claim_preview(
    State(svc): State<Service>,
    Query(q): Query<ClaimQuery>,
) -> Result<Response, ApiError> {
    let t = q.t.filter(|t| !t.is_empty()).ok_or_else(|| ApiError::bad("missing_token", "t is required"))?;
    let found = svc.claim_preview(&t).await.map_err(|e| from_service(e, "fetch_failed"))?;
    let preview = match found {
        Some((row, expires_at)) => {
            let size = svc.storage_bytes(&row.token).await;
            let items = vec![item(&row, size)];
            ClaimPreview { token_valid: true, resources: items.clone(), items, expires_at: Some(expires_at) }
        }
        None => ClaimPreview { token_valid: false, items: Vec::new(), resources: Vec::new(), expires_at: None },
    };
    Ok(Json(Envelope::success(preview)).into_response())
}

pub(super) async fn claim(State(svc): State<Service>, body: Bytes) -> Result<Response, ApiError> {
    let ClaimBody { token, email } = request::claim_body(&body)?;
    let claimed = svc.claim(&token, &email).await.map_err(|e| from_service(e, "claim_failed"))?;
    Ok((
        StatusCode::CREATED,
        Json(Envelope::success(Claimed {
            team_id: claimed.team_id,
            user_id: claimed.user_id,
            message: "Account created. Your resource tokens have been transferred.".to_string(),
            session_token: claimed.session_token,
        })),
    )
        .into_response())
}
