//! The HTTP surface: instanode's routes, shapes, status codes and error envelope.
//!
//! Every client mistake is a 4xx with instanode's stable `error` code; a 503 (with
//! `retry_after_seconds`) means Postgres itself failed. Nothing here answers 500.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use mayfly_core::wire::instanode::{
    ClaimPreview, Claimed, Credentials, DatabaseLimits, DeleteAnswer, Envelope, ErrorAnswer, Healthz, NewDatabase,
    NewDatabaseAnswer, ResourceAnswer, ResourceItem, ResourceList, RotateAnswer, Whoami,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{ANON_CONNECTIONS, ANON_STORAGE_MB};
use crate::hosted::Gate;
use crate::limits::SUSPENDED;
use crate::registry::Row;
use crate::service::{sha256_hex, Caller, Created, NewResource, Service, ServiceError};

/// The envelope every error answer uses.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    error_code: Option<&'static str>,
    agent_action: Option<&'static str>,
    claim_url: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), error_code: None, agent_action: None, claim_url: None }
    }
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Resource not found")
    }
    fn unauthorized(error_code: &'static str) -> Self {
        Self {
            error_code: Some(error_code),
            agent_action: Some("send Authorization: Bearer <token> with a token this server was started with"),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
        }
    }
    fn unavailable(code: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, "the postgres server is unavailable; retry shortly")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = (self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(30);
        let body = ErrorAnswer {
            error: Some(self.code.to_string()),
            message: Some(self.message),
            retry_after_seconds: retry,
            error_code: self.error_code.map(str::to_string),
            agent_action: self.agent_action.map(str::to_string),
            claim_url: self.claim_url,
        };
        let mut resp = (self.status, Json(Envelope::failure(body))).into_response();
        if let Some(r) = retry {
            resp.headers_mut().insert("retry-after", HeaderValue::from(r));
        }
        resp
    }
}

fn from_service(e: ServiceError, unavailable_code: &'static str) -> ApiError {
    match e {
        ServiceError::NotFound => ApiError::not_found(),
        ServiceError::IdempotencyConflict => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_conflict",
            "this Idempotency-Key was used with a different body",
        ),
        ServiceError::InvalidClaim => ApiError::bad("invalid_token", "the claim token is unknown or expired"),
        ServiceError::AlreadyClaimed => ApiError::new(StatusCode::CONFLICT, "already_claimed", "already claimed"),
        ServiceError::Admin(err) => {
            tracing::error!(error = %err, "postgres operation failed");
            ApiError::unavailable(unavailable_code)
        }
        ServiceError::BadSchema => ApiError::unavailable(unavailable_code),
    }
}

/// The routes, ready to serve. The request log line is added here so every route gets one.
///
/// Serve them with peer addresses (`into_make_service_with_connect_info::<SocketAddr>()`, as
/// [`crate::serve`] does): anonymous idempotency keys are scoped per address, and without one an
/// anonymous key is not honoured at all.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/db/new", post(db_new))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/resources", get(list))
        .route("/api/v1/resources/{token}", delete(delete_resource).get(get_resource))
        .route("/api/v1/resources/{token}/credentials", get(credentials))
        .route("/api/v1/resources/{token}/rotate-credentials", post(rotate))
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

async fn healthz(State(svc): State<Service>) -> Response {
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
async fn whoami(State(svc): State<Service>, headers: HeaderMap) -> Result<Response, ApiError> {
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

/// The address a request came from, when the server was given it.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Strict optional auth: no header is anonymous (from `peer`), a header that is not a known token is 401.
async fn caller(svc: &Service, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Caller, ApiError> {
    caller_with(svc, headers, peer, false).await
}

/// [`caller`], but with `unknown_is_anonymous` a token this server does not know makes the caller
/// anonymous instead of a 401 (hosted instanode's way with a create, see `crate::hosted`).
async fn caller_with(
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

async fn owner(svc: &Service, headers: &HeaderMap) -> Result<String, ApiError> {
    match caller(svc, headers, None).await? {
        Caller::Owner(o) => Ok(o),
        Caller::Anonymous(_) => Err(ApiError::unauthorized("missing_credentials")),
    }
}

fn check_token(token: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(token).map(|_| ()).map_err(|_| ApiError::bad("invalid_id", "the id is not a uuid"))
}

pub(crate) fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=64).contains(&n)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'))
}

fn valid_env(env: &str) -> bool {
    (1..=32).contains(&env.len()) && env.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// JSON with object keys sorted at every level, so key order does not change an idempotency hash.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[k.as_str()]))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// `24h`, `90m`, `45s`: the shape instanode uses for `expires_in`.
fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[derive(Deserialize)]
struct EnvQuery {
    env: Option<String>,
}

async fn db_new(
    State(svc): State<Service>,
    Query(q): Query<EnvQuery>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let like_hosted = svc.config().like_hosted.is_some();
    let who = caller_with(&svc, &headers, peer.map(|Extension(ConnectInfo(a))| a.ip()), like_hosted).await?;
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&body).map_err(|_| ApiError::bad("invalid_body", "the body is not valid JSON"))?
    };
    let Value::Object(fields) = &value else {
        return Err(ApiError::bad("invalid_body", "the body must be a JSON object"));
    };
    let name = match fields.get("name") {
        None | Some(Value::Null) => return Err(ApiError::bad("name_required", "name is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(ApiError::bad("name_required", "name is required"))
        }
        Some(Value::String(s)) if valid_name(s.trim()) => s.trim().to_string(),
        Some(_) => {
            return Err(ApiError::bad(
                "invalid_name",
                "name must be 1-64 characters matching ^[A-Za-z0-9][A-Za-z0-9 _-]*$",
            ))
        }
    };
    let env_override_reason = q.env.is_none() && fields.get("env").is_none();
    let env = match (q.env.as_deref(), fields.get("env")) {
        (Some(e), _) => e.to_string(),
        (None, None | Some(Value::Null)) => "development".to_string(),
        (None, Some(Value::String(e))) => e.clone(),
        (None, Some(_)) => String::new(),
    };
    if !valid_env(&env) {
        return Err(ApiError::bad("invalid_env", "env must match ^[a-z0-9-]{1,32}$"));
    }
    let wants_dedicated = fields.get("dedicated").and_then(Value::as_bool) == Some(true);
    let wants_parent = fields.get("parent_resource_id").is_some_and(|v| !v.is_null());
    match who {
        Caller::Anonymous(_) if wants_dedicated || wants_parent => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "auth_required",
                "dedicated and parent_resource_id need a bearer token",
            ))
        }
        Caller::Owner(_) if wants_dedicated => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "upgrade_required",
                "dedicated databases are not offered by this server",
            ))
        }
        _ => {}
    }
    let mut ignored: Vec<String> =
        fields.keys().filter(|k| !NewDatabase::FIELDS.contains(&k.as_str())).cloned().collect();
    ignored.sort();
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)))
                .ok_or_else(|| {
                    ApiError::bad("invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII")
                })?;
            let hash = sha256_hex(&format!("{}|env={env}", canonical(&value)));
            Some((key.to_string(), hash))
        }
    };
    let gate = match &who {
        Caller::Anonymous(address) => {
            svc.hosted_gate(*address).await.map_err(|e| from_service(e, "provision_failed"))?
        }
        Caller::Owner(_) => Gate::Proceed,
    };
    let earlier = matches!(gate, Gate::Earlier(_));
    let created = match gate {
        Gate::Proceed => svc.create(&who, NewResource { name, env, idempotency }).await.map_err(|e| match e {
            ServiceError::NotFound => ApiError::unavailable("provision_failed"),
            other => from_service(other, "provision_failed"),
        })?,
        // Hosted's answer past the daily share: `200` and an earlier database, with its data.
        Gate::Earlier(row) => Created { row: *row, idempotent: false, replay: false },
        Gate::CapReached => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "provision_limit_reached",
                "this caller has made its anonymous databases for today",
            ))
        }
        Gate::ClaimFirst => {
            let claim_url = format!("{}/claim", public_base(&svc, &headers));
            return Err(ApiError {
                claim_url: Some(claim_url),
                ..ApiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "free_tier_recycle_requires_claim",
                    "Your previous free resource expired. Free tier resources require a one-time email claim \
                     before provisioning a replacement.",
                )
            });
        }
    };
    let (row, explicit) = (created.row, created.idempotent);
    let mut body = NewDatabaseAnswer {
        id: Some(row.id.clone()),
        token: row.token.clone(),
        name: Some(row.name.clone()),
        connection_url: svc.connection_url(&row),
        tier: Some(row.tier.clone()),
        env: Some(row.env.clone()),
        dedicated: None,
        limits: None,
        note: None,
        upgrade: None,
        upgrade_jwt: None,
        claim_url: None,
        expires_at: None,
        env_override_reason: env_override_reason.then(|| "default_no_env_specified".to_string()),
        ignored_fields: (!ignored.is_empty()).then_some(ignored),
    };
    let mut upgrade_header = None;
    if row.owner.is_none() {
        let base = public_base(&svc, &headers);
        let claim_token = row.claim_token.clone().unwrap_or_default();
        let claim_url = format!("{base}/claim/preview?t={claim_token}");
        let expires_in = short_duration(svc.config().anonymous_ttl);
        body.note = Some(format!(
            "Works for {expires_in}. Claim to keep: POST {base}/claim with {{\"token\": upgrade_jwt, \"email\": ...}}"
        ));
        body.limits = Some(DatabaseLimits {
            storage_mb: i64::from(ANON_STORAGE_MB),
            connections: i64::from(ANON_CONNECTIONS),
            expires_in: Some(expires_in),
        });
        body.upgrade = Some(claim_url.clone());
        body.upgrade_jwt = Some(claim_token);
        body.claim_url = Some(claim_url.clone());
        body.expires_at = row.expires_at;
        upgrade_header = Some(claim_url);
    } else {
        body.dedicated = Some(false);
        body.limits = Some(DatabaseLimits {
            storage_mb: i64::from(row.storage_mb),
            connections: i64::from(row.connections),
            expires_in: None,
        });
    }
    let status = if earlier { StatusCode::OK } else { StatusCode::CREATED };
    let mut resp = (status, Json(Envelope::success(body))).into_response();
    let h = resp.headers_mut();
    h.insert("x-idempotency-source", HeaderValue::from_static(if explicit { "explicit" } else { "miss" }));
    if created.replay {
        h.insert("x-idempotent-replay", HeaderValue::from_static("true"));
    }
    if let Some(u) = upgrade_header.and_then(|u| HeaderValue::from_str(&u).ok()) {
        h.insert("x-instant-upgrade", u);
    }
    Ok(resp)
}

/// Where this server is reached, for the links it hands out.
fn public_base(svc: &Service, headers: &HeaderMap) -> String {
    match &svc.config().public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1")),
    }
}

fn item(row: &Row, storage_bytes: i64) -> ResourceItem {
    let limit = i64::from(row.storage_mb) * 1024 * 1024;
    ResourceItem {
        id: Some(row.id.clone()),
        token: row.token.clone(),
        resource_type: Some("postgres".to_string()),
        env: Some(row.env.clone()),
        tier: Some(row.tier.clone()),
        status: Some(row.status.clone()),
        created_at: Some(row.created_at.clone()),
        name: Some(row.name.clone()),
        storage_bytes: Some(storage_bytes),
        connections_limit: Some(i64::from(row.connections)),
        storage_limit_bytes: u64::try_from(limit).ok(),
        // A stopped database was over its limit when stopped, whatever its size reads now.
        storage_exceeded: row.status == SUSPENDED || storage_bytes > limit,
        expires_at: row.expires_at.clone(),
    }
}

async fn list(State(svc): State<Service>, Query(q): Query<EnvQuery>, headers: HeaderMap) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    let rows = svc.list(&owner, q.env.as_deref()).await.map_err(|e| from_service(e, "fetch_failed"))?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(item(r, svc.storage_bytes(&r.token).await));
    }
    let list = ResourceList { total: Some(items.len() as u64), items, next_cursor: None };
    Ok(Json(Envelope::success(list)).into_response())
}

/// The caller's resource `token`, after checking who the caller is and what the token looks like.
async fn owned_resource(svc: &Service, headers: &HeaderMap, token: &str) -> Result<Row, ApiError> {
    let owner = owner(svc, headers).await?;
    check_token(token)?;
    svc.get(&owner, token).await.map_err(|e| from_service(e, "fetch_failed"))
}

async fn get_resource(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = owned_resource(&svc, &headers, &token).await?;
    let size = svc.storage_bytes(&row.token).await;
    Ok(Json(Envelope::success(ResourceAnswer { item: item(&row, size) })).into_response())
}

async fn credentials(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = owned_resource(&svc, &headers, &token).await?;
    let credentials = Credentials {
        connection_url: svc.connection_url(&row),
        id: row.id,
        token: row.token,
        resource_type: "postgres".to_string(),
        env: row.env,
    };
    Ok(Json(Envelope::success(credentials)).into_response())
}

async fn rotate(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    check_token(&token)?;
    let row = svc.rotate(&owner, &token).await.map_err(|e| from_service(e, "rotate_failed"))?;
    Ok(Json(Envelope::success(RotateAnswer { connection_url: svc.connection_url(&row) })).into_response())
}

async fn delete_resource(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    check_token(&token)?;
    let fresh = svc.delete(&owner, &token).await.map_err(|e| from_service(e, "delete_failed"))?;
    let message = if fresh { "Resource deleted" } else { "Resource already deleted" };
    let answer = DeleteAnswer { message: Some(message.to_string()), status: None };
    Ok(Json(Envelope::success(answer)).into_response())
}

#[derive(Deserialize)]
struct ClaimQuery {
    t: Option<String>,
}

async fn claim_preview(State(svc): State<Service>, Query(q): Query<ClaimQuery>) -> Result<Response, ApiError> {
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

async fn claim(State(svc): State<Service>, body: Bytes) -> Result<Response, ApiError> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad("invalid_body", "the body is not valid JSON"))?;
    let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let token =
        field("token").or_else(|| field("jwt")).ok_or_else(|| ApiError::bad("missing_token", "token is required"))?;
    let email = field("email").ok_or_else(|| ApiError::bad("missing_email", "email is required"))?;
    let well_formed = email
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace));
    if !well_formed {
        return Err(ApiError::bad("invalid_email_format", "email is not a valid address"));
    }
    let claimed = svc.claim(token, email).await.map_err(|e| from_service(e, "claim_failed"))?;
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
