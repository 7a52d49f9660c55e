//! `POST /v1/tokens`: a turn token ([`crate::tokens`]) for the tenant whose API key calls. A token
//! cannot mint another: [`auth::tenant`] takes the key alone.

use mayfly_core::{ApiError, CreateTokenRequest, ErrorCode, TokenResponse, TokenScope};
use worker::{Date, Env, Request, Response, Result};

use crate::tokens::{Claims, Secrets, MIN_SECRET_BYTES};
use crate::{auth, reply};

/// The largest body read: `{"ttl_s": N}` with room for whitespace.
const MAX_BODY_BYTES: usize = 1024;

/// `POST /v1/tokens`.
pub(crate) async fn create(mut req: Request, env: &Env) -> Result<Response> {
    let tenant = match auth::tenant(&req, env) {
        Ok(tenant) => tenant,
        Err(err) => return reply::error(&err),
    };
    let body = match crate::body::read_limited(&mut req, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(err) => return reply::error(&err),
    };
    let request: CreateTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateTokenRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                let message = format!("invalid token request: {err}");
                return reply::error(&ApiError::new(ErrorCode::InvalidJson, message));
            }
        }
    };
    let ttl_s = match request.ttl_s() {
        Ok(ttl_s) => ttl_s,
        Err(err) => return reply::error(&err),
    };
    let claims = Claims {
        tenant: tenant.0,
        scope: TokenScope::Turns,
        exp_ms: Date::now().as_millis() + u64::from(ttl_s) * 1000,
    };
    let Some(token) = Secrets::from_env(env).mint(&claims) else {
        let message = format!(
            "this deployment mints no turn tokens: MAYFLY_TOKEN_SECRET is not set to a secret of at least \
             {MIN_SECRET_BYTES} bytes"
        );
        return reply::error(&ApiError::new(ErrorCode::Internal, message));
    };
    let mut response =
        Response::from_json(&TokenResponse { token, scope: claims.scope, expires_unix_ms: claims.exp_ms })?;
    response.headers_mut().set("Cache-Control", "no-store")?;
    Ok(response)
}
