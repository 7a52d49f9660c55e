//! E2B's control plane: create, get, list, kill and the three ways of moving `endAt`.
//!
//! Bodies are parsed by hand from bytes so that every client mistake answers with E2B's
//! `{"code","message"}` body and a 4xx, never axum's plain-text rejections.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mayfly_core::e2b::{
    ControlError, ListedSandbox, NewSandbox, RefreshRequest, Sandbox as WireSandbox, SandboxState, StringMap,
    TimeoutRequest, CLIENT_ID,
};

use crate::sandbox::{CreateError, CreateSpec, Sandbox, Template};
use crate::AppState;

/// E2B's default when create has no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// `/refreshes` never extends by less than this.
const MIN_REFRESH: Duration = Duration::from_secs(15);

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { (StatusCode::OK, "Health check successful") }))
        .route("/sandboxes", post(create).get(list_v1))
        // SDKs since 2.6x create through v2, whose body has no `secure`: envd access is always secured.
        .route("/v2/sandboxes", get(list_v2).post(create_v2))
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

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
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
        started_at: rfc3339(sb.started_at),
        end_at: rfc3339(sb.end_at()),
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
    let secs = req.timeout.max(0) as u64;
    let limit = sb.started_at + state.config.max_timeout;
    let end = (SystemTime::now() + Duration::from_secs(secs)).min(limit);
    sb.set_end_at(end);
    StatusCode::NO_CONTENT.into_response()
}

fn extend(sb: &Sandbox, state: &AppState, by: Duration) {
    let limit = sb.started_at + state.config.max_timeout;
    let wanted = (SystemTime::now() + by).min(limit);
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

async fn connect(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let req: TimeoutRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if req.timeout as u64 > state.config.max_timeout.as_secs() && req.timeout > 0 {
        return error(StatusCode::BAD_REQUEST, format!("Timeout cannot be greater than {} hours", max_hours(&state)));
    }
    let Some(sb) = state.sandboxes.get(&id) else { return not_found(&id) };
    extend(&sb, &state, Duration::from_secs(req.timeout.max(0) as u64));
    (StatusCode::OK, Json(wire(&state, &sb))).into_response()
}

/// Undoes one level of URL encoding; `None` on a malformed escape.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// E2B's metadata filter: the (already query-decoded) value is unescaped again, split on `&`
/// and `=`, and each key and value unescaped once more.
pub(crate) fn parse_metadata_filter(raw: &str) -> Option<StringMap> {
    let whole = percent_decode(raw)?;
    let mut map = StringMap::new();
    for pair in whole.split('&').filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let (Some(k), Some(v), None) = (parts.next(), parts.next(), parts.next()) else { return None };
        map.insert(percent_decode(k)?, percent_decode(v)?);
    }
    Some(map)
}

fn matches(sb: &Sandbox, filter: &StringMap) -> bool {
    filter.iter().all(|(k, v)| sb.metadata.get(k) == Some(v))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ListQuery {
    metadata: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
}

async fn list_v1(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let filter = match q.metadata.as_deref().map(parse_metadata_filter) {
        None => StringMap::new(),
        Some(Some(f)) => f,
        Some(None) => return error(StatusCode::BAD_REQUEST, "invalid metadata filter"),
    };
    let items: Vec<ListedSandbox> =
        state.sandboxes.all().iter().filter(|s| matches(s, &filter)).map(|s| listed(&state, s, false)).collect();
    Json(items).into_response()
}

/// The cursor names the last item returned; the next page starts after it in list order.
fn cursor(sb: &Sandbox) -> String {
    let nanos = sb.started_at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{nanos}.{}", sb.id)
}

async fn list_v2(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let filter = match q.metadata.as_deref().map(parse_metadata_filter) {
        None => StringMap::new(),
        Some(Some(f)) => f,
        Some(None) => return error(StatusCode::BAD_REQUEST, "invalid metadata filter"),
    };
    let want_running = match q.state.as_deref() {
        None | Some("") => true,
        Some(s) => {
            let states: Vec<&str> = s.split(',').collect();
            if states.iter().any(|s| *s != "running" && *s != "paused") {
                return error(StatusCode::BAD_REQUEST, format!("invalid state '{s}'"));
            }
            states.contains(&"running")
        }
    };
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 100"),
    };
    let all: Vec<Arc<Sandbox>> =
        if want_running { state.sandboxes.all().into_iter().filter(|s| matches(s, &filter)).collect() } else { vec![] };
    let total = all.len();
    let start = match q.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(tok) => {
            let Some((nanos, _)) = tok.split_once('.') else {
                return error(StatusCode::BAD_REQUEST, "invalid next token");
            };
            let Ok(nanos) = nanos.parse::<u128>() else {
                return error(StatusCode::BAD_REQUEST, "invalid next token");
            };
            // Items strictly after the cursor in (startedAt desc, id asc) order, even if it was killed since.
            all.iter().position(|s| cursor(s).as_str() != tok && after(s, nanos, tok)).unwrap_or(all.len())
        }
    };
    let page: Vec<&Arc<Sandbox>> = all.iter().skip(start).take(limit).collect();
    let mut headers = HeaderMap::new();
    if start + page.len() < all.len() {
        if let Some(last) = page.last() {
            if let Ok(v) = cursor(last).parse() {
                headers.insert("x-next-token", v);
            }
        }
    }
    if want_running {
        headers.insert("x-total-running", total.into());
    }
    let items: Vec<ListedSandbox> = page.iter().map(|s| listed(&state, s, false)).collect();
    (headers, Json(items)).into_response()
}

fn after(sb: &Sandbox, cursor_nanos: u128, tok: &str) -> bool {
    let nanos = sb.started_at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let id = tok.split_once('.').map(|(_, id)| id).unwrap_or_default();
    nanos < cursor_nanos || (nanos == cursor_nanos && sb.id.as_str() > id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filter_encodings() {
        // What the query extractor leaves of `?metadata=owner%3Dturnbot%26turn%3Dt-42`.
        let f = parse_metadata_filter("owner=turnbot&turn=t-42").unwrap();
        assert_eq!(f.get("owner").map(String::as_str), Some("turnbot"));
        assert_eq!(f.get("turn").map(String::as_str), Some("t-42"));
        // The JS SDK's triple encoding of a value with `=` and space in it.
        let f = parse_metadata_filter("k%3Da%253Db%2520c").unwrap();
        assert_eq!(f.get("k").map(String::as_str), Some("a=b c"));
        assert!(parse_metadata_filter("novalue").is_none());
        assert!(parse_metadata_filter("a=b=c").is_none());
        assert!(parse_metadata_filter("%zz").is_none());
    }
}
