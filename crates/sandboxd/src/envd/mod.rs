//! envd's data plane: Connect RPCs for processes and the filesystem, and `/files`.
//!
//! Routing mirrors E2B's proxy: `Host: 49983-<id>.<domain>` names the sandbox; on `localhost`,
//! an IP literal or `sandbox.<domain>`, the `E2b-Sandbox-Id`/`E2b-Sandbox-Port` headers do. A gone
//! sandbox answers 502 `{"sandboxId","message","code"}`; a secure sandbox without the right
//! `X-Access-Token` answers 401 JSON (plain HTTP, not Connect-framed, as envd's middleware does).
//!
//! File APIs never follow a path through the sandbox's directory as root on the host: a jailed
//! process could plant `/home/user/x -> /etc/shadow`. An upload is written by sandboxd itself only
//! as the sandbox's uid and through `openat2` with no link followed (`direct`); every other file
//! operation, and an upload whose path holds a link, is a small helper (`cat`, `mkdir`, `rm`,
//! `mv`, and the Python `fsinfo` script for entries and metadata) run inside the sandbox's jail as
//! the requesting user, where the worst a link can reach is what that user can already see.
//!
//! The handlers live in `process` (the process RPCs), `filesystem` (the filesystem RPCs) and
//! `files` (`/files`); `helper` runs the in-jail helpers they share.

mod direct;
mod encoding;
mod files;
mod filesystem;
mod fsinfo;
mod helper;
mod process;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use mayfly_core::wire::e2b::{ControlError, RpcError, SandboxNotFound, ENVD_PORT};
use tower::ServiceExt;

use crate::jail::JailUser;
use crate::sandbox::Sandbox;
use crate::AppState;

/// Which sandbox (and port) a request is for, when it is for one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Control,
    Sandbox { id: String, port: u16 },
    Invalid(&'static str),
}

fn target(headers: &HeaderMap, domain: &str) -> Target {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let hostname = host.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()).map_or(host, |(h, _)| h);
    let label = hostname.split('.').next().unwrap_or_default();
    if hostname.contains('.') || hostname.ends_with("localhost") {
        if let Some((port, rest)) = label.split_once('-') {
            if let Ok(port) = port.parse::<u16>() {
                let id = rest.split('-').next().unwrap_or_default();
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                    return Target::Invalid("Invalid sandbox ID");
                }
                return Target::Sandbox { id: id.to_owned(), port };
            }
        }
    }
    let header_host = hostname == "localhost"
        || hostname.parse::<std::net::IpAddr>().is_ok()
        || hostname.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok()
        || hostname == format!("sandbox.{domain}");
    let id = headers.get("e2b-sandbox-id").and_then(|v| v.to_str().ok());
    let port = headers.get("e2b-sandbox-port").and_then(|v| v.to_str().ok());
    match (header_host, id, port) {
        (true, Some(id), Some(port)) => match port.parse::<u16>() {
            Ok(port) => Target::Sandbox { id: id.to_owned(), port },
            Err(_) => Target::Invalid("Invalid sandbox port"),
        },
        (true, Some(_), None) | (true, None, Some(_)) => Target::Invalid("missing header"),
        _ => Target::Control,
    }
}

/// Middleware in front of the control plane: requests naming a sandbox go to envd instead.
pub(crate) async fn route_to_envd(
    State((state, envd)): State<(AppState, Router)>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    match target(req.headers(), &state.config.domain) {
        Target::Control => next.run(req).await,
        Target::Invalid(msg) => (StatusCode::BAD_REQUEST, msg).into_response(),
        Target::Sandbox { id, port } => {
            let Some(sb) = state.sandboxes.get(&id) else {
                return (StatusCode::BAD_GATEWAY, Json(SandboxNotFound::new(id))).into_response();
            };
            if port != ENVD_PORT {
                let body = serde_json::json!({"sandboxId": id, "message": "The sandbox is running but port is not open", "port": port, "code": 502});
                return (StatusCode::BAD_GATEWAY, Json(body)).into_response();
            }
            let path = req.uri().path();
            if path != "/health" {
                if let Some(token) = &sb.access_token {
                    let given = req.headers().get("x-access-token").and_then(|v| v.to_str().ok());
                    if !given.is_some_and(|given| crate::secret::matches(given, token)) {
                        return (
                            StatusCode::UNAUTHORIZED,
                            Json(ControlError {
                                code: 401,
                                message: "unauthorized access, please provide a valid access token or method signing if supported".into(),
                            }),
                        )
                            .into_response();
                    }
                }
            }
            req.extensions_mut().insert(sb);
            match envd.oneshot(req).await {
                Ok(res) => res,
                Err(e) => match e {},
            }
        }
    }
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "no-store")]) }))
        // `/files` bounds what it keeps itself and streams the rest: axum's 2 MB default for a
        // multipart body would refuse ordinary uploads.
        .route("/files", get(files::download).post(files::upload).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/process.Process/Start", post(process::start))
        .route("/process.Process/Connect", post(process::connect))
        .route("/process.Process/List", post(process::list))
        .route("/process.Process/SendSignal", post(process::send_signal))
        .route("/process.Process/SendInput", post(process::send_input))
        .route("/process.Process/CloseStdin", post(process::close_stdin))
        .route("/filesystem.Filesystem/Stat", post(filesystem::stat))
        .route("/filesystem.Filesystem/MakeDir", post(filesystem::make_dir))
        .route("/filesystem.Filesystem/ListDir", post(filesystem::list_dir))
        .route("/filesystem.Filesystem/Remove", post(filesystem::remove))
        .route("/filesystem.Filesystem/Move", post(filesystem::move_entry))
        .fallback(|| async { rpc_error(RpcError::new("unimplemented", "not implemented")) })
        .with_state(state)
}

type Sb = axum::Extension<Arc<Sandbox>>;

/// A unary Connect error: the code's HTTP status and `{"code","message"}`.
fn rpc_error(e: RpcError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
}

/// A unary RPC's refusal, answered as Connect answers one: its error body, at its HTTP status.
struct RpcFailure(RpcError);

impl From<RpcError> for RpcFailure {
    fn from(e: RpcError) -> RpcFailure {
        RpcFailure(e)
    }
}

impl IntoResponse for RpcFailure {
    fn into_response(self) -> Response {
        rpc_error(self.0)
    }
}

/// What a unary RPC answers.
type Unary<T> = Result<Json<T>, RpcFailure>;

/// The empty message most unary RPCs answer with.
fn empty() -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}

/// A refusal with its Connect code.
fn refuse<T>(code: &str, message: impl Into<String>) -> Result<T, RpcFailure> {
    Err(RpcFailure(RpcError::new(code, message)))
}

fn basic_user(headers: &HeaderMap) -> Result<JailUser, RpcError> {
    let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(JailUser::User);
    };
    let name = v
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.split(':').next().unwrap_or_default().to_owned())
        .ok_or_else(|| RpcError::new("unauthenticated", "invalid authorization header"))?;
    JailUser::parse(&name).ok_or_else(|| RpcError::new("unauthenticated", format!("invalid username: '{name}'")))
}

fn query_user(name: Option<&str>) -> Result<JailUser, Response> {
    match name {
        None | Some("") => Ok(JailUser::User),
        Some(n) => JailUser::parse(n)
            .ok_or_else(|| crate::control::error(StatusCode::UNAUTHORIZED, format!("error looking up user '{n}'"))),
    }
}

fn unary<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, RpcError> {
    serde_json::from_slice(body).map_err(|e| RpcError::new("invalid_argument", format!("invalid request: {e}")))
}

/// Absolute path inside the jail: relative paths and `~` are against the user's home.
fn jail_path(user: JailUser, path: &str) -> String {
    if let Some(rest) = path.strip_prefix("~/") {
        format!("{}/{rest}", user.home())
    } else if path == "~" || path.is_empty() {
        user.home().to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", user.home())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    #[test]
    fn routing_by_host_and_headers() {
        let d = "localhost";
        assert_eq!(
            target(&h(&[("host", "49983-iabc123.localhost:3000")]), d),
            Target::Sandbox { id: "iabc123".into(), port: 49983 }
        );
        assert_eq!(
            target(&h(&[("host", "8080-iabc-6532622b.e2b.local")]), d),
            Target::Sandbox { id: "iabc".into(), port: 8080 }
        );
        assert_eq!(target(&h(&[("host", "127.0.0.1:3000")]), d), Target::Control);
        assert_eq!(target(&h(&[("host", "localhost:3000")]), d), Target::Control);
        assert_eq!(
            target(&h(&[("host", "127.0.0.1:3000"), ("e2b-sandbox-id", "ix"), ("e2b-sandbox-port", "49983")]), d),
            Target::Sandbox { id: "ix".into(), port: 49983 }
        );
        assert_eq!(
            target(&h(&[("host", "localhost"), ("e2b-sandbox-id", "ix")]), d),
            Target::Invalid("missing header")
        );
        // Routing headers are ignored on any other host.
        assert_eq!(
            target(&h(&[("host", "api.example.com"), ("e2b-sandbox-id", "ix"), ("e2b-sandbox-port", "49983")]), d),
            Target::Control
        );
        assert_eq!(target(&h(&[("host", "49983-I..X.localhost")]), d), Target::Invalid("Invalid sandbox ID"));
    }

    #[test]
    fn jail_paths() {
        assert_eq!(jail_path(JailUser::User, "a/b"), "/home/user/a/b");
        assert_eq!(jail_path(JailUser::User, "~/x"), "/home/user/x");
        assert_eq!(jail_path(JailUser::Root, "x"), "/root/x");
        assert_eq!(jail_path(JailUser::User, "/tmp/x"), "/tmp/x");
    }
}
