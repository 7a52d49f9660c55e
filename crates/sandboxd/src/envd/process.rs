//! envd's `process.Process` service: `Start` and `Connect` stream a process's events as Connect
//! envelopes; `List`, `SendSignal`, `SendInput` and `CloseStdin` are unary.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mayfly_core::wire::connect::{self, Decoder, FLAG_END_STREAM};
use mayfly_core::wire::e2b::{
    ConnectRequest, EndStream, KeepAlive, ListResponse, ProcessEvent, ProcessInfo, ProcessInput, RpcError,
    SendInputRequest, SendSignalRequest, StartEvent, StartRequest, StreamMessage,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{basic_user, empty, refuse, unary, Sb, Unary};
use crate::error::SandboxError;
use crate::process::Proc;
use crate::sandbox::Sandbox;

/// envd's default keepalive interval when the header is absent or unparsable.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(90);
/// The longest keepalive interval or Connect deadline a client's header may ask for; longer is
/// past any sandbox's life (and, unchecked, would overflow the clock).
const MAX_HEADER_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The largest request body a Connect call may have.
const MAX_RPC_BODY: usize = 4 << 20;
const CONNECT_JSON: &str = "application/connect+json";

/// The keepalive interval a stream's client asks for (`keepalive-ping-interval`, seconds).
fn keepalive(headers: &HeaderMap) -> Duration {
    header_u64(headers, "keepalive-ping-interval")
        .filter(|s| *s > 0)
        .map_or(DEFAULT_KEEPALIVE, |s| Duration::from_secs(s).min(MAX_HEADER_DURATION))
}

fn frame(ev: ProcessEvent) -> Bytes {
    connect::encode_json(&StreamMessage { event: ev })
}

fn end_frame(error: Option<RpcError>) -> Bytes {
    connect::encode(FLAG_END_STREAM, &serde_json::to_vec(&EndStream { error }).unwrap_or_default())
}

/// A piece of a streamed body; an `Err` breaks the transfer off, as a vanished VM does.
type Piece = Result<Bytes, std::io::Error>;

fn stream_response(rx: mpsc::Receiver<Piece>) -> Response {
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([(header::CONTENT_TYPE, CONNECT_JSON)], body).into_response()
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
///
/// When the sandbox is killed under a running process, E2B's client sees the connection drop with
/// no end event, and learns from a health check that the sandbox is gone (docs/protocols/envd-rules.md,
/// "A sandbox killed mid-command"); so the stream is broken off rather than ended.
fn spawn_streamer(
    sb: Arc<Sandbox>,
    proc: Arc<Proc>,
    mut events: mpsc::Receiver<ProcessEvent>,
    keepalive: Duration,
    deadline: Option<tokio::time::Instant>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Piece>(16);
    tokio::spawn(async move {
        let send = |bytes: Bytes| tx.send(Ok(bytes));
        let cut = || tx.send(Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the sandbox was killed")));
        if send(frame(ProcessEvent::Start(StartEvent { pid: proc.pid }))).await.is_err() {
            return;
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        let deadline_at = deadline.unwrap_or(far);
        let mut ping = tokio::time::Instant::now() + keepalive;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(_) | None if sb.is_gone() => {
                        let _ = cut().await;
                        return;
                    }
                    Some(ev) => {
                        if matches!(ev, ProcessEvent::Data(_)) {
                            ping = tokio::time::Instant::now() + keepalive;
                        }
                        if send(frame(ev)).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        let _ = send(end_frame(None)).await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(ping) => {
                    ping = tokio::time::Instant::now() + keepalive;
                    if send(frame(ProcessEvent::Keepalive(KeepAlive {}))).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline_at) => {
                    proc.kill();
                    let _ = send(end_frame(Some(RpcError::new("deadline_exceeded", "context deadline exceeded")))).await;
                    return;
                }
            }
        }
    });
    stream_response(rx)
}

pub(super) async fn start(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
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
    let keepalive = keepalive(&headers);
    // A deadline past any sandbox's life is none; a client's number never overflows the clock.
    let deadline = header_u64(&headers, "connect-timeout-ms")
        .filter(|ms| *ms <= MAX_HEADER_DURATION.as_millis() as u64)
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let stdin = req.stdin.unwrap_or(true);
    let (proc, events) = match sb.start(user, req.process, req.tag, stdin).await {
        Ok(p) => p,
        Err(e @ SandboxError::Invalid(_)) => return stream_error(RpcError::new("invalid_argument", e.to_string())),
        Err(e) => return stream_error(RpcError::new("internal", e.to_string())),
    };
    tracing::info!(sandbox = %sb.id, pid = proc.pid, "process started");
    spawn_streamer(sb.clone(), proc, events, keepalive, deadline)
}

pub(super) async fn connect(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Response {
    let req: ConnectRequest = match streaming_request(&headers, &body) {
        Ok(r) => r,
        Err(res) => return res,
    };
    let Some(proc) = sb.find(&req.process) else {
        return stream_error(RpcError::new("not_found", "process not found"));
    };
    let keepalive = keepalive(&headers);
    match proc.subscribe() {
        Some(events) => spawn_streamer(sb, proc, events, keepalive, None),
        None => {
            let end = proc.end.borrow().clone().unwrap_or_default();
            let mut body = frame(ProcessEvent::Start(StartEvent { pid: proc.pid })).to_vec();
            body.extend_from_slice(&frame(ProcessEvent::End(end)));
            body.extend_from_slice(&end_frame(None));
            ([(header::CONTENT_TYPE, CONNECT_JSON)], body).into_response()
        }
    }
}

pub(super) async fn list(axum::Extension(sb): Sb) -> Response {
    let procs: Vec<Arc<Proc>> = sb.procs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let processes = procs
        .iter()
        .filter(|p| p.is_running())
        .map(|p| ProcessInfo { config: p.config.clone(), pid: p.pid, tag: p.tag.clone() })
        .collect();
    Json(ListResponse { processes }).into_response()
}

pub(super) async fn send_signal(axum::Extension(sb): Sb, body: Bytes) -> Unary<serde_json::Value> {
    let req: SendSignalRequest = unary(&body)?;
    let Some(proc) = sb.find(&req.process).filter(|p| p.is_running()) else {
        return refuse("not_found", "process not found");
    };
    match req.signal.as_str() {
        "SIGNAL_SIGKILL" | "9" => proc.kill(),
        "SIGNAL_SIGTERM" | "15" => proc.terminate(),
        other => return refuse("unimplemented", format!("invalid signal: {other}")),
    }
    Ok(empty())
}

pub(super) async fn send_input(axum::Extension(sb): Sb, body: Bytes) -> Unary<serde_json::Value> {
    let req: SendInputRequest = unary(&body)?;
    let Some(proc) = sb.find(&req.process).filter(|p| p.is_running()) else {
        return refuse("not_found", "process not found");
    };
    let ProcessInput::Stdin(data) = req.input else {
        return refuse("failed_precondition", "pty not enabled");
    };
    let mut stdin = proc.stdin.lock().await;
    let Some(pipe) = stdin.as_mut() else {
        return refuse("failed_precondition", "stdin not enabled or closed");
    };
    if let Err(e) = pipe.write_all(&data.0).await {
        return refuse("internal", format!("error writing to stdin: {e}"));
    }
    Ok(empty())
}

pub(super) async fn close_stdin(axum::Extension(sb): Sb, body: Bytes) -> Unary<serde_json::Value> {
    let req: ConnectRequest = unary(&body)?;
    let Some(proc) = sb.find(&req.process) else {
        return refuse("not_found", "process not found");
    };
    *proc.stdin.lock().await = None;
    Ok(empty())
}
