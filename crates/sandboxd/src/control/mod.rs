//! E2B's control plane: create, get, list, kill and the three ways of moving `endAt`.
//!
//! Bodies are parsed by hand from bytes so that every client mistake answers with E2B's
//! `{"code","message"}` body and a 4xx, never axum's plain-text rejections.

mod list;

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mayfly_core::wire::e2b::{
    ControlError, ListedSandbox, NewSandbox, RefreshRequest, Sandbox as WireSandbox, SandboxState, TimeoutRequest,
    CLIENT_ID,
};

use crate::jail::Template;
use crate::sandbox::{CreateError, CreateSpec, Sandbox};
use crate::AppState;

/// E2B's default when create has no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// `/refreshes` never extends by less than this.
const MIN_REFRESH: Duration = Duration::from_secs(15);

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { (StatusCode::OK, "Health check successful") }))
        .route("/sandboxes", post(create).get(list::list_v1))
        // SDKs since 2.6x create through v2, whose body has no `secure`: envd access is always secured.
        .route("/v2/sandboxes", get(list::list_v2).post(create_v2))
        .route("/sandboxes/{id}", get(get_one).delete(kill))
        .route("/sandboxes/{id}/timeout", post(set_timeout))
        .route("/sandboxes/{id}/refreshes", post(refresh))
        .route("/sandboxes/{id}/connect", post(connect))
        .route("/v2/sandboxes/{id}/connect", post(connect))
        .route("/templates/aliases/{alias}", get(template_alias))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_api_key))
        .with_state(state)
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ControlError { code: status.as_u16(), message: message.into() })).into_response()
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("Sandbox \"{id}\" doesn't exist or you don't have access to it"))
}

async fn require_api_key(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let keys = &state.config.api_keys;
    if req.uri().path() == "/health" || keys.is_empty() {
        return next.run(req).await;
    }
    let given = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
    match given {
        Some(k) if crate::secret::matches_any(k, keys) => next.run(req).await,
        Some(_) => error(StatusCode::UNAUTHORIZED, "Invalid API key"),
        None => error(StatusCode::UNAUTHORIZED, "Missing API key, please provide it in the X-API-Key header"),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid request body: {e}")))
}

fn wire(state: &AppState, sb: &Sandbox) -> WireSandbox {
    WireSandbox {
        template_id: sb.template.name().into(),
        sandbox_id: sb.id.clone(),
        alias: Some(sb.template.name().into()),
        client_id: CLIENT_ID.into(),
        envd_version: crate::ENVD_VERSION.into(),
        envd_access_token: sb.access_token.clone(),
        traffic_access_token: None,
        domain: Some(state.config.domain.clone()),
    }
}

fn listed(state: &AppState, sb: &Sandbox, with_token: bool) -> ListedSandbox {
    ListedSandbox {
        template_id: sb.template.name().into(),
        alias: Some(sb.template.name().into()),
        sandbox_id: sb.id.clone(),
        client_id: CLIENT_ID.into(),
        started_at: list::rfc3339_micros(sb.started_at),
        end_at: list::rfc3339_micros(sb.end_at()),
        cpu_count: 1,
        memory_mb: state.config.limits.address_space_bytes >> 20,
        disk_size_mb: state.config.limits.disk_bytes >> 20,
        metadata: sb.metadata.clone(),
        state: SandboxState::Running,
        envd_version: crate::ENVD_VERSION.into(),
        envd_access_token: if with_token { sb.access_token.clone() } else { None },
        domain: with_token.then(|| state.config.domain.clone()),
    }
}

fn max_hours(state: &AppState) -> u64 {
    state.config.max_timeout.as_secs().div_ceil(3600)
}

/// Whether a template exists, as E2B answers the SDKs' `Template.exists`: `200` for the team's own,
/// `403` for one that exists but is another team's (E2B's public `base` among them), `404` for
/// none (docs/templates.md).
async fn template_alias(Path(alias): Path<String>) -> Response {
    match Template::parse(&alias) {
        Some(t) if t.is_callers() => Json(serde_json::json!({"templateID": t.name(), "public": false})).into_response(),
        Some(_) => error(StatusCode::FORBIDDEN, "You don't have access to this template alias"),
        None => error(StatusCode::NOT_FOUND, format!("template '{alias}' not found")),
    }
}

async fn create(State(state): State<AppState>, body: Bytes) -> Response {
    match parse_json::<NewSandbox>(&body) {
        Ok(req) => create_sandbox(state, req).await,
        Err(e) => e,
    }
}

async fn create_v2(State(state): State<AppState>, body: Bytes) -> Response {
    match parse_json::<NewSandbox>(&body) {
        Ok(req) => create_sandbox(state, NewSandbox { secure: Some(true), ..req }).await,
        Err(e) => e,
    }
}

async fn create_sandbox(state: AppState, req: NewSandbox) -> Response {
    let Some(template) = Template::parse(&req.template_id) else {
        return error(StatusCode::NOT_FOUND, format!("template '{}' not found", req.template_id));
    };
    let timeout = match req.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) if t <= 0 => return error(StatusCode::BAD_REQUEST, "Timeout must be greater than 0"),
        Some(t) if t as u64 > state.config.max_timeout.as_secs() => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Timeout cannot be greater than {} hours", max_hours(&state)),
            )
        }
        Some(t) => Duration::from_secs(t as u64),
    };
    let env_vars = req.env_vars.unwrap_or_default();
    // Refused here, not at the first process: these are set inside every jail of the sandbox.
    if let Some(err) = env_vars.iter().find_map(|(name, value)| crate::jail::check_env(name, value).err()) {
        return error(StatusCode::BAD_REQUEST, err.to_string());
    }
    let spec = CreateSpec {
        template,
        timeout,
        env_vars,
        metadata: req.metadata.unwrap_or_default(),
        secure: req.secure.unwrap_or(false),
    };
    match state.sandboxes.create(spec).await {
        Ok(sb) => (StatusCode::CREATED, Json(wire(&state, &sb))).into_response(),
        Err(e @ CreateError::Capacity(_)) => error(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        Err(CreateError::Sandbox(e)) => {
            tracing::error!(error = %e, "sandbox create failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "failed to create sandbox")
        }
    }
}

async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.sandboxes.get(&id) {
        Some(sb) => Json(listed(&state, &sb, true)).into_response(),
        None => not_found(&id),
    }
}

async fn kill(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if state.sandboxes.kill(&id, "killed by request").await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&id)
    }
}

async fn set_timeout(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let req: TimeoutRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(sb) = state.sandboxes.get(&id) else { return not_found(&id) };
    // E2B clamps silently to the maximum lifetime counted from the start, and treats negatives as 0.
    sb.set_end_at(end_within_limit(&sb, &state, Duration::from_secs(req.timeout.max(0) as u64)));
    StatusCode::NO_CONTENT.into_response()
}

/// Now plus `by`, but never past the sandbox's maximum lifetime (a client's number, however large,
/// never overflows the clock).
fn end_within_limit(sb: &Sandbox, state: &AppState, by: Duration) -> SystemTime {
    let limit = sb.started_at + state.config.max_timeout;
    SystemTime::now().checked_add(by).map_or(limit, |end| end.min(limit))
}

fn extend(sb: &Sandbox, state: &AppState, by: Duration) {
    let wanted = end_within_limit(sb, state, by);
    if wanted > sb.end_at() {
        sb.set_end_at(wanted);
    }
}

async fn refresh(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let req: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        match parse_json(&body) {
            Ok(r) => r,
            Err(e) => return e,
        }
    };
    let secs = req.duration.unwrap_or(0);
    if !(0..=3600).contains(&secs) {
        return error(StatusCode::BAD_REQUEST, "duration must be between 0 and 3600 seconds");
    }
    let Some(sb) = state.sandboxes.get(&id) else { return not_found(&id) };
    extend(&sb, &state, Duration::from_secs(secs as u64).max(MIN_REFRESH));
    StatusCode::NO_CONTENT.into_response()
}

/// Connect's body. Its `timeout` may be left out, as the SDKs' `Sandbox.connect(id)` does: E2B's
/// API reads that as 0, which keeps the sandbox's end where it is (docs/protocols/envd-rules.md,
/// "Connect").
#[derive(Debug, serde::Deserialize)]
struct ConnectBody {
    #[serde(default)]
    timeout: i32,
}

async fn connect(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let req: ConnectBody = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if req.timeout > 0 && req.timeout as u64 > state.config.max_timeout.as_secs() {
        return error(StatusCode::BAD_REQUEST, format!("Timeout cannot be greater than {} hours", max_hours(&state)));
    }
    let Some(sb) = state.sandboxes.get(&id) else { return not_found(&id) };
    extend(&sb, &state, Duration::from_secs(req.timeout.max(0) as u64));
    (StatusCode::OK, Json(wire(&state, &sb))).into_response()
}
