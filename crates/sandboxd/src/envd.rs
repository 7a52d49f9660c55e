//! envd's data plane: Connect RPCs for processes and the filesystem, and `/files`.
//!
//! Routing mirrors E2B's proxy: `Host: 49983-<id>.<domain>` names the sandbox; on `localhost`,
//! an IP literal or `sandbox.<domain>`, the `E2b-Sandbox-Id`/`E2b-Sandbox-Port` headers do. A gone
//! sandbox answers 502 `{"sandboxId","message","code"}`; a secure sandbox without the right
//! `X-Access-Token` answers 401 JSON (plain HTTP, not Connect-framed, as envd's middleware does).
//!
//! File APIs never touch the sandbox's directory as root on the host: a jailed process could
//! plant `/home/user/x -> /etc/shadow`. Every file operation is a small helper (`cat`, `find`,
//! `mkdir`, `rm`, `mv`) run inside the sandbox's jail as the requesting user, where the worst a
//! link can reach is what that user can already see.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use mayfly_core::connect::{self, Decoder, FLAG_END_STREAM};
use mayfly_core::e2b::{
    ConnectRequest, ControlError, EndStream, EntryInfo, EntryResponse, KeepAlive, ListDirRequest, ListDirResponse,
    ListResponse, PathRequest, ProcessEvent, ProcessInfo, ProcessInput, RpcError, SandboxNotFound, SendInputRequest,
    SendSignalRequest, StartEvent, StartRequest, StreamMessage, WriteInfo, ENVD_PORT,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::jail::JailUser;
use crate::sandbox::{Proc, Sandbox, SandboxError};
use crate::AppState;

/// envd's default keepalive interval when the header is absent or unparsable.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(90);
/// The largest request body a Connect call may have.
const MAX_RPC_BODY: usize = 4 << 20;
/// The largest file `/files` accepts or returns in one request.
const MAX_FILE: usize = 256 << 20;
const CONNECT_JSON: &str = "application/connect+json";

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
        .route("/files", get(download).post(upload))
        .route("/process.Process/Start", post(start))
        .route("/process.Process/Connect", post(connect_rpc))
        .route("/process.Process/List", post(list))
        .route("/process.Process/SendSignal", post(send_signal))
        .route("/process.Process/SendInput", post(send_input))
        .route("/process.Process/CloseStdin", post(close_stdin))
        .route("/filesystem.Filesystem/Stat", post(stat))
        .route("/filesystem.Filesystem/MakeDir", post(make_dir))
        .route("/filesystem.Filesystem/ListDir", post(list_dir))
        .route("/filesystem.Filesystem/Remove", post(remove))
        .route("/filesystem.Filesystem/Move", post(move_entry))
        .fallback(|| async { rpc_error(RpcError::new("unimplemented", "not implemented")) })
        .with_state(state)
}

type Sb = axum::Extension<Arc<Sandbox>>;

/// A unary Connect error: the code's HTTP status and `{"code","message"}`.
fn rpc_error(e: RpcError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
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

// ---------------------------------------------------------------- streaming process RPCs

fn frame(ev: ProcessEvent) -> Bytes {
    connect::encode_json(&StreamMessage { event: ev })
}

fn end_frame(error: Option<RpcError>) -> Bytes {
    connect::encode(FLAG_END_STREAM, &serde_json::to_vec(&EndStream { error }).unwrap_or_default())
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map_ok());
    ([(header::CONTENT_TYPE, CONNECT_JSON)], body).into_response()
}

type OkStream<S> = futures_util::stream::Map<S, fn(Bytes) -> Result<Bytes, Infallible>>;

trait MapOk {
    fn map_ok(self) -> OkStream<Self>
    where
        Self: Sized;
}

impl<S: futures_util::Stream<Item = Bytes>> MapOk for S {
    fn map_ok(self) -> OkStream<Self> {
        futures_util::StreamExt::map(self, Ok as fn(Bytes) -> Result<Bytes, Infallible>)
    }
}

/// A stream that is only an end-of-stream error, with HTTP 200 as connect-go answers.
fn stream_error(e: RpcError) -> Response {
    ([(header::CONTENT_TYPE, CONNECT_JSON)], end_frame(Some(e))).into_response()
}

/// Parses the single enveloped request message of a server-streaming call.
fn streaming_request<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, Response> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ct.starts_with("application/connect+json") {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported content type").into_response());
    }
    let mut d = Decoder::new(MAX_RPC_BODY);
    d.push(body);
    let frame = match d.next_frame() {
        Ok(Some(f)) => f,
        Ok(None) => return Err(stream_error(RpcError::new("invalid_argument", "request message is incomplete"))),
        Err(e) => return Err(stream_error(RpcError::new("invalid_argument", e.to_string()))),
    };
    serde_json::from_slice(&frame.payload)
        .map_err(|e| stream_error(RpcError::new("invalid_argument", format!("invalid request: {e}"))))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// Forwards a process's events as envelopes, with keepalives and the Connect deadline.
fn spawn_streamer(
    proc: Arc<Proc>,
    mut events: mpsc::Receiver<ProcessEvent>,
    keepalive: Duration,
    deadline: Option<tokio::time::Instant>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if tx.send(frame(ProcessEvent::Start(StartEvent { pid: proc.pid }))).await.is_err() {
            return;
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        let deadline_at = deadline.unwrap_or(far);
        let mut ping = tokio::time::Instant::now() + keepalive;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => {
                        if matches!(ev, ProcessEvent::Data(_)) {
                            ping = tokio::time::Instant::now() + keepalive;
                        }
                        if tx.send(frame(ev)).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        let _ = tx.send(end_frame(None)).await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(ping) => {
                    ping = tokio::time::Instant::now() + keepalive;
                    if tx.send(frame(ProcessEvent::Keepalive(KeepAlive {}))).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline_at) => {
                    proc.kill();
                    let _ = tx.send(end_frame(Some(RpcError::new("deadline_exceeded", "context deadline exceeded")))).await;
                    return;
                }
            }
        }
    });
    stream_response(rx)
}

async fn start(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let req: StartRequest = match streaming_request(&headers, &body) {
        Ok(r) => r,
        Err(res) => return res,
    };
    let user = match basic_user(&headers) {
        Ok(u) => u,
        Err(e) => return stream_error(e),
    };
    if req.process.cmd.is_empty() {
        return stream_error(RpcError::new("invalid_argument", "cmd is empty"));
    }
    let keepalive = header_u64(&headers, "keepalive-ping-interval")
        .filter(|s| *s > 0)
        .map_or(DEFAULT_KEEPALIVE, Duration::from_secs);
    let deadline =
        header_u64(&headers, "connect-timeout-ms").map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let stdin = req.stdin.unwrap_or(true);
    let (proc, events) = match sb.start(user, req.process, req.tag, stdin).await {
        Ok(p) => p,
        Err(e @ SandboxError::Invalid(_)) => return stream_error(RpcError::new("invalid_argument", e.to_string())),
        Err(e) => return stream_error(RpcError::new("internal", e.to_string())),
    };
    tracing::info!(sandbox = %sb.id, pid = proc.pid, "process started");
    spawn_streamer(proc, events, keepalive, deadline)
}

async fn connect_rpc(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let req: ConnectRequest = match streaming_request(&headers, &body) {
        Ok(r) => r,
        Err(res) => return res,
    };
    let Some(proc) = sb.find(&req.process) else {
        return stream_error(RpcError::new("not_found", "process not found"));
    };
    let keepalive = header_u64(&headers, "keepalive-ping-interval")
        .filter(|s| *s > 0)
        .map_or(DEFAULT_KEEPALIVE, Duration::from_secs);
    match proc.subscribe() {
        Some(events) => spawn_streamer(proc, events, keepalive, None),
        None => {
            let end = proc.end.borrow().clone().unwrap_or_default();
            let mut body = frame(ProcessEvent::Start(StartEvent { pid: proc.pid })).to_vec();
            body.extend_from_slice(&frame(ProcessEvent::End(end)));
            body.extend_from_slice(&end_frame(None));
            ([(header::CONTENT_TYPE, CONNECT_JSON)], body).into_response()
        }
    }
}

// ---------------------------------------------------------------- unary process RPCs

async fn list(axum::Extension(sb): Sb) -> Response {
    let procs: Vec<Arc<Proc>> = sb.procs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let processes = procs
        .iter()
        .filter(|p| p.is_running())
        .map(|p| ProcessInfo { config: p.config.clone(), pid: p.pid, tag: p.tag.clone() })
        .collect();
    Json(ListResponse { processes }).into_response()
}

async fn send_signal(axum::Extension(sb): Sb, body: Bytes) -> Response {
    let req: SendSignalRequest = match unary(&body) {
        Ok(r) => r,
        Err(e) => return rpc_error(e),
    };
    let Some(proc) = sb.find(&req.process).filter(|p| p.is_running()) else {
        return rpc_error(RpcError::new("not_found", "process not found"));
    };
    match req.signal.as_str() {
        "SIGNAL_SIGKILL" | "9" => proc.kill(),
        "SIGNAL_SIGTERM" | "15" => proc.terminate(),
        other => return rpc_error(RpcError::new("unimplemented", format!("invalid signal: {other}"))),
    }
    Json(serde_json::json!({})).into_response()
}

async fn send_input(axum::Extension(sb): Sb, body: Bytes) -> Response {
    let req: SendInputRequest = match unary(&body) {
        Ok(r) => r,
        Err(e) => return rpc_error(e),
    };
    let Some(proc) = sb.find(&req.process).filter(|p| p.is_running()) else {
        return rpc_error(RpcError::new("not_found", "process not found"));
    };
    let ProcessInput::Stdin(data) = req.input else {
        return rpc_error(RpcError::new("failed_precondition", "pty not enabled"));
    };
    let mut stdin = proc.stdin.lock().await;
    let Some(pipe) = stdin.as_mut() else {
        return rpc_error(RpcError::new("failed_precondition", "stdin not enabled or closed"));
    };
    if let Err(e) = pipe.write_all(&data.0).await {
        return rpc_error(RpcError::new("internal", format!("error writing to stdin: {e}")));
    }
    Json(serde_json::json!({})).into_response()
}

async fn close_stdin(axum::Extension(sb): Sb, body: Bytes) -> Response {
    let req: ConnectRequest = match unary(&body) {
        Ok(r) => r,
        Err(e) => return rpc_error(e),
    };
    let Some(proc) = sb.find(&req.process) else {
        return rpc_error(RpcError::new("not_found", "process not found"));
    };
    *proc.stdin.lock().await = None;
    Json(serde_json::json!({})).into_response()
}

// ---------------------------------------------------------------- helpers run inside the jail

/// Output of a helper run in the jail.
struct Helper {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

async fn helper(
    sb: &Sandbox,
    user: JailUser,
    script: &str,
    args: &[&str],
    input: Option<Bytes>,
) -> Result<Helper, RpcError> {
    let mut argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned(), "sh".to_owned()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    let mut cmd = sb.helper(user, &argv).await.map_err(|e| RpcError::new("internal", e.to_string()))?;
    cmd.stdin(if input.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| RpcError::new("internal", e.to_string()))?;
    if let (Some(data), Some(mut pipe)) = (input, child.stdin.take()) {
        // A helper that fails early closes its stdin; its exit code tells why.
        tokio::spawn(async move {
            let _ = pipe.write_all(&data).await;
        });
    }
    let out = child.wait_with_output().await.map_err(|e| RpcError::new("internal", e.to_string()))?;
    Ok(Helper {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// `find -printf` format: type, size, octal mode, symbolic mode, owner, group, mtime, path, link target.
const FIND_FMT: &str = "%y\\0%s\\0%m\\0%M\\0%u\\0%g\\0%T@\\0%p\\0%l\\0";
const FIELDS: usize = 9;

fn parse_entries(out: &[u8]) -> Vec<EntryInfo> {
    let fields: Vec<String> = out.split(|b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    fields
        .chunks(FIELDS)
        .filter(|c| c.len() == FIELDS)
        .map(|c| {
            let kind = match c[0].as_str() {
                "d" => "FILE_TYPE_DIRECTORY",
                "l" => "FILE_TYPE_SYMLINK",
                _ => "FILE_TYPE_FILE",
            };
            let secs = c[6].split('.').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            let mtime = std::time::UNIX_EPOCH + Duration::from_secs(secs);
            let path = c[7].clone();
            EntryInfo {
                name: path.rsplit('/').next().unwrap_or_default().to_owned(),
                kind: kind.into(),
                path,
                size: c[1].clone(),
                mode: u32::from_str_radix(&c[2], 8).unwrap_or(0),
                permissions: c[3].clone(),
                owner: c[4].clone(),
                group: c[5].clone(),
                modified_time: humantime::format_rfc3339_seconds(mtime).to_string(),
                symlink_target: (c[0] == "l").then(|| c[8].clone()),
            }
        })
        .collect()
}

/// Exit codes the helper scripts use to say why they refused.
const NOT_FOUND: i32 = 4;
const NOT_DIR: i32 = 5;
const IS_DIR: i32 = 6;
const EXISTS: i32 = 7;

async fn stat_entry(sb: &Sandbox, user: JailUser, path: &str) -> Result<EntryInfo, RpcError> {
    let script = format!(
        "[ -e \"$1\" ] || [ -L \"$1\" ] || exit {NOT_FOUND}; exec find \"$1\" -maxdepth 0 -printf '{FIND_FMT}'"
    );
    let out = helper(sb, user, &script, &[path], None).await?;
    match out.code {
        0 => parse_entries(&out.stdout)
            .into_iter()
            .next()
            .ok_or_else(|| RpcError::new("internal", "stat produced no entry")),
        NOT_FOUND => Err(RpcError::new("not_found", format!("path '{path}' does not exist"))),
        _ => Err(RpcError::new("internal", format!("error stating '{path}': {}", out.stderr))),
    }
}

async fn stat(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let req: PathRequest = unary(&body)?;
        let user = basic_user(&headers)?;
        stat_entry(&sb, user, &jail_path(user, &req.path)).await
    }
    .await;
    match result {
        Ok(entry) => Json(EntryResponse { entry }).into_response(),
        Err(e) => rpc_error(e),
    }
}

async fn make_dir(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let req: PathRequest = unary(&body)?;
        let user = basic_user(&headers)?;
        let path = jail_path(user, &req.path);
        let script =
            format!("[ -d \"$1\" ] && exit {EXISTS}; [ -e \"$1\" ] && exit {NOT_DIR}; exec mkdir -p -- \"$1\"");
        let out = helper(&sb, user, &script, &[&path], None).await?;
        match out.code {
            0 => stat_entry(&sb, user, &path).await,
            EXISTS => Err(RpcError::new("already_exists", format!("directory '{path}' already exists"))),
            NOT_DIR => Err(RpcError::new("invalid_argument", format!("path '{path}' exists but is not a directory"))),
            _ => Err(RpcError::new("permission_denied", format!("error creating directory '{path}': {}", out.stderr))),
        }
    }
    .await;
    match result {
        Ok(entry) => Json(EntryResponse { entry }).into_response(),
        Err(e) => rpc_error(e),
    }
}

async fn list_dir(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let req: ListDirRequest = unary(&body)?;
        let user = basic_user(&headers)?;
        let path = jail_path(user, &req.path);
        let depth = req.depth.max(1).to_string();
        let script = format!(
            "[ -e \"$1\" ] || exit {NOT_FOUND}; [ -d \"$1\" ] || exit {NOT_DIR}; exec find \"$1\" -mindepth 1 -maxdepth \"$2\" -printf '{FIND_FMT}'"
        );
        let out = helper(&sb, user, &script, &[&path, &depth], None).await?;
        match out.code {
            0 => Ok(parse_entries(&out.stdout)),
            NOT_FOUND => Err(RpcError::new("not_found", format!("directory '{path}' does not exist"))),
            NOT_DIR => Err(RpcError::new("invalid_argument", format!("path '{path}' is not a directory"))),
            _ => Err(RpcError::new("internal", format!("error listing '{path}': {}", out.stderr))),
        }
    }
    .await;
    match result {
        Ok(entries) => Json(ListDirResponse { entries }).into_response(),
        Err(e) => rpc_error(e),
    }
}

async fn remove(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let req: PathRequest = unary(&body)?;
        let user = basic_user(&headers)?;
        let path = jail_path(user, &req.path);
        let out = helper(&sb, user, "exec rm -rf -- \"$1\"", &[&path], None).await?;
        if out.code == 0 {
            Ok(())
        } else {
            Err(RpcError::new("permission_denied", format!("error removing '{path}': {}", out.stderr)))
        }
    }
    .await;
    match result {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(e) => rpc_error(e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct MoveRequest {
    source: String,
    destination: String,
}

async fn move_entry(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let req: MoveRequest = unary(&body)?;
        let user = basic_user(&headers)?;
        let (src, dst) = (jail_path(user, &req.source), jail_path(user, &req.destination));
        let script = format!(
            "[ -e \"$1\" ] || exit {NOT_FOUND}; mkdir -p -- \"$(dirname -- \"$2\")\" && exec mv -- \"$1\" \"$2\""
        );
        let out = helper(&sb, user, &script, &[&src, &dst], None).await?;
        match out.code {
            0 => stat_entry(&sb, user, &dst).await,
            NOT_FOUND => Err(RpcError::new("not_found", format!("path '{src}' does not exist"))),
            _ => Err(RpcError::new("permission_denied", format!("error moving '{src}': {}", out.stderr))),
        }
    }
    .await;
    match result {
        Ok(entry) => Json(EntryResponse { entry }).into_response(),
        Err(e) => rpc_error(e),
    }
}

// ---------------------------------------------------------------- /files

#[derive(Debug, serde::Deserialize)]
struct FileQuery {
    path: Option<String>,
    username: Option<String>,
}

fn file_error(status: StatusCode, message: impl Into<String>) -> Response {
    crate::control::error(status, message)
}

async fn download(axum::Extension(sb): Sb, Query(q): Query<FileQuery>) -> Response {
    let user = match query_user(q.username.as_deref()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(path) = q.path.as_deref().filter(|p| !p.is_empty()) else {
        return file_error(StatusCode::BAD_REQUEST, "path query parameter is required");
    };
    let path = jail_path(user, path);
    let script = format!("[ -e \"$1\" ] || exit {NOT_FOUND}; [ -d \"$1\" ] && exit {IS_DIR}; exec cat -- \"$1\"");
    let out = match helper(&sb, user, &script, &[&path], None).await {
        Ok(o) => o,
        Err(e) => return file_error(StatusCode::INTERNAL_SERVER_ERROR, e.message),
    };
    match out.code {
        0 if out.stdout.len() <= MAX_FILE => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], out.stdout).into_response()
        }
        0 => file_error(StatusCode::PAYLOAD_TOO_LARGE, "file is too large"),
        NOT_FOUND => file_error(StatusCode::NOT_FOUND, format!("path '{path}' does not exist")),
        IS_DIR => file_error(StatusCode::BAD_REQUEST, format!("path '{path}' is a directory")),
        _ => file_error(StatusCode::FORBIDDEN, format!("error reading '{path}': {}", out.stderr)),
    }
}

async fn write_file(sb: &Sandbox, user: JailUser, path: &str, data: Bytes) -> Result<WriteInfo, Response> {
    let script = format!("[ -d \"$1\" ] && exit {IS_DIR}; mkdir -p -- \"$(dirname -- \"$1\")\" && exec cat > \"$1\"");
    let out = helper(sb, user, &script, &[path], Some(data))
        .await
        .map_err(|e| file_error(StatusCode::INTERNAL_SERVER_ERROR, e.message))?;
    match out.code {
        0 => Ok(WriteInfo {
            path: path.to_owned(),
            name: path.rsplit('/').next().unwrap_or_default().to_owned(),
            kind: "file".into(),
        }),
        IS_DIR => Err(file_error(StatusCode::BAD_REQUEST, format!("path '{path}' is a directory"))),
        _ if out.stderr.contains("No space left") || out.stderr.contains("File too large") => {
            Err(file_error(StatusCode::INSUFFICIENT_STORAGE, format!("not enough space to write '{path}'")))
        }
        _ => Err(file_error(StatusCode::FORBIDDEN, format!("error writing '{path}': {}", out.stderr))),
    }
}

async fn upload(axum::Extension(sb): Sb, Query(q): Query<FileQuery>, req: Request) -> Response {
    let user = match query_user(q.username.as_deref()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let query_path = q.path.filter(|p| !p.is_empty()).map(|p| jail_path(user, &p));
    let mut written = Vec::new();
    if ct.starts_with("application/octet-stream") {
        let Some(path) = query_path else {
            return file_error(StatusCode::BAD_REQUEST, "path query parameter is required for raw body upload");
        };
        if req.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v != "identity") {
            return file_error(StatusCode::BAD_REQUEST, "unsupported content encoding");
        }
        let Ok(data) = axum::body::to_bytes(req.into_body(), MAX_FILE).await else {
            return file_error(StatusCode::PAYLOAD_TOO_LARGE, "file is too large");
        };
        match write_file(&sb, user, &path, data).await {
            Ok(w) => written.push(w),
            Err(r) => return r,
        }
    } else if ct.starts_with("multipart/form-data") {
        let mut mp = match Multipart::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => return file_error(StatusCode::BAD_REQUEST, e.body_text()),
        };
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return file_error(StatusCode::BAD_REQUEST, e.body_text()),
            };
            if field.name() != Some("file") {
                continue;
            }
            let path = match (&query_path, field.file_name()) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) if !f.is_empty() => jail_path(user, f),
                _ => return file_error(StatusCode::BAD_REQUEST, "path is required"),
            };
            if written.iter().any(|w: &WriteInfo| w.path == path) {
                return file_error(StatusCode::BAD_REQUEST, format!("path '{path}' is given more than once"));
            }
            let data = match field.bytes().await {
                Ok(d) => d,
                Err(e) => return file_error(StatusCode::BAD_REQUEST, e.body_text()),
            };
            match write_file(&sb, user, &path, data).await {
                Ok(w) => written.push(w),
                Err(r) => return r,
            }
        }
    } else {
        return file_error(StatusCode::BAD_REQUEST, "unsupported content type");
    }
    Json(written).into_response()
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

    #[test]
    fn find_output_parses() {
        let out = b"f\x0012\x00644\x00-rw-r--r--\x00user\x00user\x001700000000.5\x00/home/user/a.txt\x00\x00l\x000\x00777\x00lrwxrwxrwx\x00user\x00user\x001700000000.0\x00/home/user/l\x00/etc/shadow\x00";
        let e = parse_entries(out);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "a.txt");
        assert_eq!(e[0].kind, "FILE_TYPE_FILE");
        assert_eq!(e[0].size, "12");
        assert_eq!(e[0].mode, 0o644);
        assert_eq!(e[0].modified_time, "2023-11-14T22:13:20Z");
        assert_eq!(e[1].kind, "FILE_TYPE_SYMLINK");
        assert_eq!(e[1].symlink_target.as_deref(), Some("/etc/shadow"));
    }
}
