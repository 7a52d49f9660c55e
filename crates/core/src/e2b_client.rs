//! The E2B client: [`SandboxProvider`] over core's [`HttpClient`], following
//! `docs/protocols/e2b.md` (§1 control plane, §2 envd's Connect protocol, §3 files, §7 the
//! checklist).
//!
//! The control plane (`X-API-Key`) creates, lists, times out and kills sandboxes; the data plane
//! (envd, port 49983, `X-Access-Token`) takes files and runs processes. envd is reached either at
//! `https://49983-<id>.<domain>` (every E2B-compatible provider) or, when `envd_url` is set, at that
//! one base URL routed by the `E2b-Sandbox-Id`/`E2b-Sandbox-Port` headers (the local stand-in,
//! plain HTTP on the API's own host:port). Every HTTP status becomes a typed [`E2bError`] in one
//! function, [`error_for_status`].

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use serde::Deserialize;
use thiserror::Error;

use crate::connect::{self, Decoder};
use crate::e2b::{self, DataEvent, EndStream, NewSandbox, ProcessConfig, RpcError, StartRequest, StreamMessage};
use crate::http::{HttpBody, HttpClient, HttpRequest, HttpResponse, Method, StatusCode};
use crate::provider::{
    Clock, ProcessEvent, ProcessEvents, ProcessRequest, ProviderError, SandboxHandle, SandboxInfo, SandboxProvider,
    SandboxRequest, MAYFLY_METADATA_KEY, MAYFLY_METADATA_VALUE,
};
use crate::retry::{
    error_body, header_name, header_value, join_url, percent_encode, send_with_retry, send_within, RetryPolicy,
};

const PROVIDER: &str = "e2b";
/// A list answer is at most 100 small items; a create answer is a few hundred bytes.
const MAX_JSON_BODY: usize = 4 * 1024 * 1024;
/// A listing that keeps handing out cursors is a broken server, not a big account.
const MAX_LIST_PAGES: usize = 100;

/// Where and as whom the client talks to an E2B-compatible provider.
#[derive(Clone, PartialEq, Eq)]
pub struct E2bConfig {
    /// The control plane, e.g. `https://api.e2b.app`.
    pub api_url: String,
    /// The sandbox domain, e.g. `e2b.app`: envd is `https://49983-<id>.<domain>` unless the sandbox
    /// names its own domain or `envd_url` is set.
    pub domain: String,
    pub api_key: String,
    /// One base URL for every sandbox's envd, routed by headers (a local plain-HTTP stand-in).
    pub envd_url: Option<String>,
    /// The Linux user processes run as and files belong to; sent explicitly because envd before
    /// 0.4.0 has no default user.
    pub user: String,
    /// Seconds of output silence after which envd sends a keepalive event.
    pub keepalive_interval_s: u32,
    /// How long a create waits for its answer. A create is never sent twice once it may have
    /// reached E2B (a second would make a second sandbox), so it gets the official SDK's patience
    /// (60 s) rather than the other calls' shorter one.
    pub create_timeout_ms: u64,
}

impl E2bConfig {
    /// E2B's hosted service with the SDKs' defaults.
    pub fn new(api_key: impl Into<String>) -> E2bConfig {
        E2bConfig {
            api_url: "https://api.e2b.app".into(),
            domain: "e2b.app".into(),
            api_key: api_key.into(),
            envd_url: None,
            user: "user".into(),
            keepalive_interval_s: 30,
            create_timeout_ms: 60_000,
        }
    }
}

impl fmt::Debug for E2bConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key is a credential: Debug output ends up in logs.
        f.debug_struct("E2bConfig")
            .field("api_url", &self.api_url)
            .field("domain", &self.domain)
            .field("api_key", &"***")
            .field("envd_url", &self.envd_url)
            .field("user", &self.user)
            .field("keepalive_interval_s", &self.keepalive_interval_s)
            .field("create_timeout_ms", &self.create_timeout_ms)
            .finish()
    }
}

/// What kind of failure an HTTP status means, after the Python SDK's table for envd plus the
/// control plane's statuses (`docs/protocols/e2b.md` §1.2, §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E2bErrorKind {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    ResourceExhausted,
    RateLimited,
    Canceled,
    Internal,
    Unimplemented,
    /// 502: through the proxy, the sandbox is gone (killed or expired) or its port is closed.
    SandboxGone,
    Unavailable,
    DeadlineExceeded,
    InsufficientStorage,
    /// Any other 4xx.
    Client,
    /// Any other 5xx.
    Server,
    /// 1xx or 3xx, which no E2B endpoint answers.
    Unexpected,
}

impl fmt::Display for E2bErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            E2bErrorKind::InvalidArgument => "invalid argument",
            E2bErrorKind::Unauthenticated => "unauthenticated",
            E2bErrorKind::PermissionDenied => "permission denied",
            E2bErrorKind::NotFound => "not found",
            E2bErrorKind::Conflict => "conflict",
            E2bErrorKind::ResourceExhausted => "resource exhausted",
            E2bErrorKind::RateLimited => "rate limited",
            E2bErrorKind::Canceled => "canceled",
            E2bErrorKind::Internal => "internal error",
            E2bErrorKind::Unimplemented => "unimplemented",
            E2bErrorKind::SandboxGone => "sandbox gone",
            E2bErrorKind::Unavailable => "unavailable",
            E2bErrorKind::DeadlineExceeded => "deadline exceeded",
            E2bErrorKind::InsufficientStorage => "insufficient storage",
            E2bErrorKind::Client => "client error",
            E2bErrorKind::Server => "server error",
            E2bErrorKind::Unexpected => "unexpected status",
        })
    }
}

/// A failure E2B (or envd, or the proxy in front of it) reported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} ({status}): {message}")]
pub struct E2bError {
    pub kind: E2bErrorKind,
    pub status: u16,
    pub message: String,
}

impl From<E2bError> for ProviderError {
    fn from(error: E2bError) -> ProviderError {
        ProviderError::Status {
            provider: PROVIDER,
            status: error.status,
            message: format!("{}: {}", error.kind, error.message),
        }
    }
}

/// A create refused because its template does not exist (`404`) or belongs to another team
/// (`403` naming the template), told in words that say how to get one.
fn missing_template(error: ProviderError, template: &str) -> ProviderError {
    match error {
        ProviderError::Status { provider, status, message }
            if status == 404 || (status == 403 && message.contains("template")) =>
        {
            ProviderError::Status {
                provider,
                status,
                message: crate::templates::missing_template_message(template, &message),
            }
        }
        other => other,
    }
}

/// The one mapping from an answer's status to a typed error: `None` for 2xx, an error for every
/// other status. The message is the body's JSON `message` (control plane, envd REST, proxy and
/// unary Connect errors all carry one), else the body's text, else the status's reason phrase.
pub fn error_for_status(status: StatusCode, body: &[u8]) -> Option<E2bError> {
    let code = status.as_u16();
    let kind = match code {
        200..=299 => return None,
        400 => E2bErrorKind::InvalidArgument,
        401 => E2bErrorKind::Unauthenticated,
        403 => E2bErrorKind::PermissionDenied,
        404 => E2bErrorKind::NotFound,
        409 => E2bErrorKind::Conflict,
        413 => E2bErrorKind::ResourceExhausted,
        429 => E2bErrorKind::RateLimited,
        499 => E2bErrorKind::Canceled,
        500 => E2bErrorKind::Internal,
        501 | 505 => E2bErrorKind::Unimplemented,
        502 => E2bErrorKind::SandboxGone,
        503 => E2bErrorKind::Unavailable,
        504 => E2bErrorKind::DeadlineExceeded,
        507 => E2bErrorKind::InsufficientStorage,
        _ if status.is_client_error() => E2bErrorKind::Client,
        _ if status.is_server_error() => E2bErrorKind::Server,
        _ => E2bErrorKind::Unexpected,
    };
    #[derive(Deserialize)]
    struct WithMessage {
        message: String,
    }
    let message = match serde_json::from_slice::<WithMessage>(body) {
        Ok(parsed) => parsed.message,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no reason given").to_lowercase()
            } else {
                // A proxy's HTML page can be long; the first line or so is what says why.
                text.chars().take(200).collect()
            }
        }
    };
    Some(E2bError { kind, status: code, message })
}

/// A Connect error from an end-stream frame, typed through the same table as its HTTP status.
fn rpc_error(error: &RpcError) -> ProviderError {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut typed = error_for_status(status, b"").unwrap_or(E2bError {
        kind: E2bErrorKind::Internal,
        status: 500,
        message: String::new(),
    });
    typed.message = format!("{}: {}", error.code, error.message);
    typed.into()
}

fn protocol(message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol { provider: PROVIDER, message: message.into() }
}

/// The parts of `POST /sandboxes`' answer the client needs; read leniently because compatible
/// providers differ in the rest (`clientID`, `envdVersion`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedSandbox {
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(default)]
    envd_access_token: Option<String>,
    #[serde(default)]
    domain: Option<String>,
}

/// The parts of a `GET /v2/sandboxes` item the sweep needs.
#[derive(Debug, Deserialize)]
struct ListedItem {
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// The `metadata` query value for `GET /v2/sandboxes`, exactly as the JS SDK builds it: each key and
/// value `encodeURIComponent`-ed, the pairs form-encoded (which escapes them again), and the whole
/// escaped once more as a query value. The server unescapes three times (`docs/protocols/e2b.md`
/// §1.6), so any text survives; for mayfly's `[A-Za-z0-9_.-]` tags it collapses to `mayfly%3D1`.
pub fn metadata_filter(metadata: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = metadata
        .iter()
        .map(|(key, value)| {
            format!("{}={}", percent_encode(&percent_encode(key)), percent_encode(&percent_encode(value)))
        })
        .collect();
    percent_encode(&pairs.join("&"))
}

/// The E2B client, generic over the HTTP client and the clock its retries wait on.
pub struct E2bClient<H, C> {
    http: H,
    clock: C,
    config: E2bConfig,
    retry: RetryPolicy,
}

impl<H, C> fmt::Debug for E2bClient<H, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("E2bClient").field("config", &self.config).field("retry", &self.retry).finish()
    }
}

impl<H: HttpClient, C: Clock> E2bClient<H, C> {
    pub fn new(http: H, clock: C, config: E2bConfig) -> E2bClient<H, C> {
        E2bClient { http, clock, config, retry: RetryPolicy::default() }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> E2bClient<H, C> {
        self.retry = retry;
        self
    }

    pub fn config(&self) -> &E2bConfig {
        &self.config
    }

    /// Sets the sandbox's remaining life to `timeout_s` from now (it may shorten it), for a turn
    /// that needs longer than it first asked for.
    pub async fn set_timeout(&self, sandbox_id: &str, timeout_s: u32) -> Result<(), ProviderError> {
        let body = serde_json::to_vec(&e2b::TimeoutRequest { timeout: i64::from(timeout_s) }).unwrap_or_default();
        let path = format!("sandboxes/{}/timeout", percent_encode(sandbox_id));
        let request = self.control(Method::POST, &path)?.with_body(body);
        let response = self.send(&request, true).await?;
        self.expect_success(response).await.map(drop)
    }

    /// A control-plane request with the API key.
    fn control(&self, method: Method, path: &str) -> Result<HttpRequest, ProviderError> {
        let mut request = HttpRequest::new(method.clone(), join_url(&self.config.api_url, path))
            .with_header(header_name("x-api-key"), header_value(PROVIDER, "X-API-Key", &self.config.api_key)?)
            .with_header(header_name("accept"), "application/json".parse().expect("static header"));
        if method == Method::POST {
            request = request.with_header(header_name("content-type"), "application/json".parse().expect("static"));
        }
        Ok(request)
    }

    /// The base URL of a sandbox's envd.
    fn envd_base(&self, sandbox: &SandboxHandle) -> String {
        match &self.config.envd_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let domain = sandbox.domain.as_deref().unwrap_or(&self.config.domain);
                format!("https://{}-{}.{}", e2b::ENVD_PORT, sandbox.sandbox_id, domain)
            }
        }
    }

    /// A data-plane request: the routing headers always (harmless on a per-sandbox host, needed on
    /// a shared one) and the access token when the sandbox is secure.
    fn envd(&self, method: Method, sandbox: &SandboxHandle, path: &str) -> Result<HttpRequest, ProviderError> {
        let mut request = HttpRequest::new(method, join_url(&self.envd_base(sandbox), path))
            .with_header(header_name("e2b-sandbox-id"), header_value(PROVIDER, "E2b-Sandbox-Id", &sandbox.sandbox_id)?)
            .with_header(header_name("e2b-sandbox-port"), e2b::ENVD_PORT.into());
        if let Some(token) = &sandbox.envd_access_token {
            request =
                request.with_header(header_name("x-access-token"), header_value(PROVIDER, "X-Access-Token", token)?);
        }
        Ok(request)
    }

    async fn send(&self, request: &HttpRequest, idempotent: bool) -> Result<HttpResponse, ProviderError> {
        send_with_retry(&self.http, &self.clock, &self.retry, request, idempotent, PROVIDER).await
    }

    /// The body of a 2xx answer, or the typed error of any other.
    async fn expect_success(&self, response: HttpResponse) -> Result<Bytes, ProviderError> {
        let status = response.status;
        if status.is_success() {
            return response
                .collect_body(MAX_JSON_BODY)
                .await
                .map_err(|source| ProviderError::Http { provider: PROVIDER, source });
        }
        let body = error_body(response).await;
        Err(error_for_status(status, &body).map(ProviderError::from).unwrap_or_else(|| protocol("unreachable status")))
    }

    async fn create_sandbox(&self, request: SandboxRequest) -> Result<SandboxHandle, ProviderError> {
        let template = request.template.clone();
        let body = NewSandbox {
            template_id: request.template,
            timeout: Some(i64::from(request.timeout_s)),
            env_vars: (!request.env.is_empty()).then(|| request.env.into_iter().collect()),
            metadata: Some(request.metadata),
            // Without `secure` envd has no token and anyone knowing the id can drive the sandbox.
            secure: Some(true),
            // The agent's code reaches its database over the network; the SDKs send this too.
            allow_internet_access: Some(true),
            auto_pause: None,
        };
        let request = self.control(Method::POST, "sandboxes")?.with_body(serde_json::to_vec(&body).unwrap_or_default());
        // Not idempotent: a create whose answer was lost may have made a sandbox; repeating it would
        // make a second one. Its tags let the sweep find the first.
        let policy = RetryPolicy { attempt_timeout_ms: self.config.create_timeout_ms, ..self.retry };
        let response = send_with_retry(&self.http, &self.clock, &policy, &request, false, PROVIDER).await?;
        let body = self.expect_success(response).await.map_err(|error| missing_template(error, &template))?;
        let created: CreatedSandbox =
            serde_json::from_slice(&body).map_err(|error| protocol(format!("create answer: {error}")))?;
        Ok(SandboxHandle {
            sandbox_id: created.sandbox_id,
            envd_access_token: created.envd_access_token,
            domain: created.domain.filter(|domain| !domain.is_empty()),
        })
    }

    async fn upload_file(&self, sandbox: &SandboxHandle, path: &str, content: Bytes) -> Result<(), ProviderError> {
        // multipart works on every envd; octet-stream needs envd ≥ 0.5.7 (`docs/protocols/e2b.md` §3.1).
        let boundary = boundary_for(&content);
        let query = format!("files?path={}&username={}", percent_encode(path), percent_encode(&self.config.user));
        let filename = path.replace(['"', '\r', '\n'], "_");
        let mut body = Vec::with_capacity(content.len() + 256);
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n").as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let request = self
            .envd(Method::POST, sandbox, &query)?
            .with_header(header_name("content-type"), header_value(PROVIDER, "Content-Type", &content_type)?)
            .with_body(body);
        // Writing the same bytes again is harmless, so transport errors are retried too.
        let response = self.send(&request, true).await?;
        self.expect_success(response).await.map(drop)
    }

    async fn start_process<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        process: ProcessRequest,
    ) -> Result<ProcessEvents<'a>, ProviderError> {
        let start = StartRequest {
            process: ProcessConfig {
                cmd: "/bin/bash".into(),
                // A login shell, as the SDKs run commands: the template's profile sets PATH.
                args: vec!["-l".into(), "-c".into(), process.command],
                envs: process.env.into_iter().collect(),
                cwd: (!process.cwd.is_empty()).then_some(process.cwd),
            },
            tag: None,
            // Batch code must not hang reading a stdin nobody writes.
            stdin: Some(false),
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.config.user));
        let mut request = self
            .envd(Method::POST, sandbox, "process.Process/Start")?
            .with_header(header_name("content-type"), "application/connect+json".parse().expect("static"))
            .with_header(header_name("connect-protocol-version"), "1".parse().expect("static"))
            .with_header(header_name("keepalive-ping-interval"), self.config.keepalive_interval_s.into())
            .with_header(
                header_name("authorization"),
                header_value(PROVIDER, "Authorization", &format!("Basic {basic}"))?,
            )
            .with_body(connect::encode_json(&start));
        // `0` would be an already-expired deadline; no header means envd sets none.
        if process.timeout_ms > 0 {
            request = request.with_header(header_name("connect-timeout-ms"), process.timeout_ms.into());
        }
        // Sent once: a retried Start could run the agent's code twice.
        let response = send_within(&self.http, &self.clock, self.retry.attempt_timeout_ms, request)
            .await
            .map_err(|source| ProviderError::Http { provider: PROVIDER, source })?;
        if !response.status.is_success() {
            let status = response.status;
            let body = error_body(response).await;
            return Err(error_for_status(status, &body)
                .map(ProviderError::from)
                .unwrap_or_else(|| protocol("bad status")));
        }
        if let Some(content_type) = response.headers.get("content-type") {
            let content_type = content_type.to_str().unwrap_or("");
            if !content_type.starts_with("application/connect+json") {
                return Err(protocol(format!("process stream has content type {content_type:?}")));
            }
        }
        let stream = StartStream {
            client: self,
            sandbox,
            body: response.body,
            decoder: Decoder::default(),
            queue: VecDeque::new(),
            started: false,
            exit_code: None,
            finished: false,
        };
        Ok(futures::stream::unfold(stream, |mut stream| async move {
            let event = stream.next_event().await?;
            Some((event, stream))
        })
        .boxed_local())
    }

    /// What a process stream that broke off without its end-stream frame means: `GET /health` on
    /// envd tells a sandbox that is gone (502 through the proxy) from a cut connection.
    async fn truncated(&self, sandbox: &SandboxHandle) -> ProviderError {
        let Ok(probe) = self.envd(Method::GET, sandbox, "health") else {
            return ProviderError::StreamTruncated;
        };
        match send_within(&self.http, &self.clock, self.retry.attempt_timeout_ms, probe).await {
            Ok(response) if response.status == StatusCode::BAD_GATEWAY => ProviderError::from(E2bError {
                kind: E2bErrorKind::SandboxGone,
                status: 502,
                message: "the sandbox was killed or expired while the process ran".into(),
            }),
            _ => ProviderError::StreamTruncated,
        }
    }

    async fn kill_sandbox(&self, sandbox_id: &str) -> Result<bool, ProviderError> {
        let request = self.control(Method::DELETE, &format!("sandboxes/{}", percent_encode(sandbox_id)))?;
        let response = self.send(&request, true).await?;
        match response.status {
            // 404: already killed, expired or never there; either way it is gone, which is the goal.
            StatusCode::NOT_FOUND => Ok(false),
            _ => self.expect_success(response).await.map(|_| true),
        }
    }

    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>, ProviderError> {
        let tag = BTreeMap::from([(MAYFLY_METADATA_KEY.to_owned(), MAYFLY_METADATA_VALUE.to_owned())]);
        let filter = metadata_filter(&tag);
        let mut found = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut path = format!("v2/sandboxes?metadata={filter}&state=running,paused&limit=100");
            if let Some(token) = &next_token {
                path.push_str(&format!("&nextToken={}", percent_encode(token)));
            }
            let response = self.send(&self.control(Method::GET, &path)?, true).await?;
            next_token = response
                .headers
                .get("x-next-token")
                .and_then(|value| value.to_str().ok())
                .filter(|token| !token.is_empty())
                .map(str::to_owned);
            let body = self.expect_success(response).await?;
            let items: Vec<ListedItem> =
                serde_json::from_slice(&body).map_err(|error| protocol(format!("list answer: {error}")))?;
            for item in items {
                let metadata = item.metadata.unwrap_or_default();
                // Some compatible providers ignore the filter; killing a stranger's sandbox is the
                // one thing the sweep must never do.
                if metadata.get(MAYFLY_METADATA_KEY).map(String::as_str) == Some(MAYFLY_METADATA_VALUE) {
                    found.push(SandboxInfo { sandbox_id: item.sandbox_id, metadata });
                }
            }
            if next_token.is_none() {
                return Ok(found);
            }
        }
        Err(protocol(format!("the sandbox listing did not end after {MAX_LIST_PAGES} pages")))
    }
}

/// A multipart boundary that does not occur in the content.
fn boundary_for(content: &[u8]) -> String {
    (0u32..)
        .map(|n| format!("mayfly-boundary-{n}"))
        .find(|boundary| !content.windows(boundary.len()).any(|window| window == boundary.as_bytes()))
        .expect("some boundary is absent from any finite content")
}

/// Turns `process.Process/Start`'s streamed body into [`ProcessEvent`]s.
struct StartStream<'a, H, C> {
    client: &'a E2bClient<H, C>,
    sandbox: &'a SandboxHandle,
    body: HttpBody,
    decoder: Decoder,
    /// Events decoded from the chunks read so far, not yet handed out.
    queue: VecDeque<Result<ProcessEvent, ProviderError>>,
    started: bool,
    exit_code: Option<i32>,
    /// Set after the end-stream frame or the first error: nothing more is read.
    finished: bool,
}

impl<H: HttpClient, C: Clock> StartStream<'_, H, C> {
    async fn next_event(&mut self) -> Option<Result<ProcessEvent, ProviderError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.decoder.push(&chunk);
                    self.drain_frames();
                }
                // The body broke off or ended without the end-stream frame: never a success.
                Some(Err(_)) | None => {
                    self.finished = true;
                    let error = self.client.truncated(self.sandbox).await;
                    self.queue.push_back(Err(error));
                }
            }
        }
    }

    fn fail(&mut self, error: ProviderError) {
        self.queue.push_back(Err(error));
        self.finished = true;
    }

    fn drain_frames(&mut self) {
        while !self.finished {
            match self.decoder.next_frame() {
                Ok(None) => return,
                Err(error) => self.fail(protocol(error.to_string())),
                Ok(Some(frame)) if frame.is_end_stream() => self.end_stream(&frame.payload),
                Ok(Some(frame)) => {
                    if let Err(error) = self.message(&frame.payload) {
                        self.fail(error);
                    }
                }
            }
        }
    }

    fn end_stream(&mut self, payload: &[u8]) {
        self.finished = true;
        let end: EndStream = match serde_json::from_slice(payload) {
            Ok(end) => end,
            Err(error) => return self.fail(protocol(format!("end-stream frame: {error}"))),
        };
        match (end.error, self.exit_code) {
            (Some(error), _) => self.fail(rpc_error(&error)),
            (None, Some(exit_code)) => self.queue.push_back(Ok(ProcessEvent::Exited { exit_code })),
            (None, None) => self.fail(protocol("the process stream ended without an end event")),
        }
    }

    fn message(&mut self, payload: &[u8]) -> Result<(), ProviderError> {
        let message: StreamMessage =
            serde_json::from_slice(payload).map_err(|error| protocol(format!("process event: {error}")))?;
        let event = message.event;
        if !self.started && !matches!(event, e2b::ProcessEvent::Start(_)) {
            return Err(protocol("the process stream did not begin with a start event"));
        }
        if self.exit_code.is_some() {
            return Err(protocol("the process stream went on after its end event"));
        }
        match event {
            e2b::ProcessEvent::Start(_) if self.started => return Err(protocol("a second start event")),
            e2b::ProcessEvent::Start(start) => {
                self.started = true;
                self.queue.push_back(Ok(ProcessEvent::Started { pid: start.pid }));
            }
            e2b::ProcessEvent::Data(DataEvent::Stdout(data)) => {
                self.queue.push_back(Ok(ProcessEvent::Stdout(Bytes::from(data.0))));
            }
            e2b::ProcessEvent::Data(DataEvent::Stderr(data)) => {
                self.queue.push_back(Ok(ProcessEvent::Stderr(Bytes::from(data.0))));
            }
            // mayfly never asks for a terminal, and keepalives only keep intermediaries from
            // closing an idle connection.
            e2b::ProcessEvent::Data(DataEvent::Pty(_)) | e2b::ProcessEvent::Keepalive(_) => {}
            // `exitCode` is omitted when 0 (protojson); the wire type defaults it.
            e2b::ProcessEvent::End(end) => self.exit_code = Some(end.exit_code),
        }
        Ok(())
    }
}

impl<H: HttpClient, C: Clock> SandboxProvider for E2bClient<H, C> {
    fn create(&self, request: SandboxRequest) -> LocalBoxFuture<'_, Result<SandboxHandle, ProviderError>> {
        Box::pin(self.create_sandbox(request))
    }

    fn upload<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        path: &'a str,
        content: Bytes,
    ) -> LocalBoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.upload_file(sandbox, path, content))
    }

    fn start<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        process: ProcessRequest,
    ) -> LocalBoxFuture<'a, Result<ProcessEvents<'a>, ProviderError>> {
        Box::pin(self.start_process(sandbox, process))
    }

    fn kill<'a>(&'a self, sandbox_id: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(self.kill_sandbox(sandbox_id))
    }

    fn list_tagged(&self) -> LocalBoxFuture<'_, Result<Vec<SandboxInfo>, ProviderError>> {
        Box::pin(self.list_sandboxes())
    }
}

mod probe;
pub use probe::TemplateStatus;

#[cfg(test)]
mod tests;
