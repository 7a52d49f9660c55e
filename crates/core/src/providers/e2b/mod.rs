//! The E2B client: [`SandboxProvider`] over core's [`HttpClient`], following
//! `docs/protocols/e2b.md` (§1 control plane, §2 envd's Connect protocol, §3 files, §7 the
//! checklist).
//!
//! The control plane (`X-API-Key`) creates, lists, times out and kills sandboxes; the data plane
//! (envd, port 49983, `X-Access-Token`) takes files and runs processes. envd is reached either at
//! `https://49983-<id>.<domain>` (every E2B-compatible provider) or, when `envd_url` is set, at that
//! one base URL routed by the `E2b-Sandbox-Id`/`E2b-Sandbox-Port` headers (the local stand-in,
//! plain HTTP on the API's own host:port). Every HTTP status becomes a typed [`E2bError`] in one
//! function, [`error_for_status`] (`error.rs`); running a process is `process.rs`, and the
//! checks of `mayfly doctor` are `probe.rs`. Requests go through the `ProviderHttp` both clients
//! share.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use serde::Deserialize;

use crate::providers::http::{HeaderValue, HttpClient, HttpRequest, Method, StatusCode};
use crate::providers::provider_http::{header_name, Credential, ProviderHttp};
use crate::providers::retry::RetryPolicy;
use crate::providers::{
    Clock, ProcessEvents, ProcessRequest, ProviderError, SandboxHandle, SandboxInfo, SandboxProvider, SandboxRequest,
    MAYFLY_METADATA_KEY, MAYFLY_METADATA_VALUE,
};
use crate::url::{join_url, percent_encode};
use crate::wire::e2b::{NewSandbox, TimeoutRequest, ENVD_PORT};

mod error;
mod probe;
mod process;
pub mod templates;
#[cfg(test)]
mod tests;

pub use error::{error_for_status, E2bError, E2bErrorKind};
pub use probe::TemplateStatus;

const PROVIDER: &str = "e2b";
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

/// How long a create waits for its answer unless configured otherwise: the official SDK's 60 s.
pub const DEFAULT_CREATE_TIMEOUT_MS: u64 = 60_000;

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
            create_timeout_ms: DEFAULT_CREATE_TIMEOUT_MS,
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
    /// The control plane, with the API key.
    http: ProviderHttp<H, C>,
    config: E2bConfig,
}

impl<H, C> fmt::Debug for E2bClient<H, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("E2bClient").field("config", &self.config).field("retry", self.http.retry()).finish()
    }
}

impl<H: HttpClient, C: Clock> E2bClient<H, C> {
    pub fn new(http: H, clock: C, config: E2bConfig) -> E2bClient<H, C> {
        let key = Credential { header: header_name("x-api-key"), label: "X-API-Key", value: config.api_key.clone() };
        let http = ProviderHttp::new(PROVIDER, config.api_url.clone(), Some(key), http, clock, error::status_error);
        E2bClient { http, config }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> E2bClient<H, C> {
        self.http.set_retry(retry);
        self
    }

    pub fn config(&self) -> &E2bConfig {
        &self.config
    }

    /// Sets the sandbox's remaining life to `timeout_s` from now (it may shorten it), for a turn
    /// that needs longer than it first asked for.
    pub async fn set_timeout(&self, sandbox_id: &str, timeout_s: u32) -> Result<(), ProviderError> {
        let body = serde_json::to_vec(&TimeoutRequest { timeout: i64::from(timeout_s) }).unwrap_or_default();
        let path = format!("sandboxes/{}/timeout", percent_encode(sandbox_id));
        let request = self.control(Method::POST, &path)?.with_body(body);
        let response = self.http.send(&request, true).await?;
        self.http.expect_success(response).await.map(drop)
    }

    /// A control-plane request with the API key.
    fn control(&self, method: Method, path: &str) -> Result<HttpRequest, ProviderError> {
        let post = method == Method::POST;
        let request = self.http.request(method, path)?;
        if post {
            return Ok(request.with_header(header_name("content-type"), HeaderValue::from_static("application/json")));
        }
        Ok(request)
    }

    /// The base URL of a sandbox's envd.
    fn envd_base(&self, sandbox: &SandboxHandle) -> String {
        match &self.config.envd_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let domain = sandbox.domain.as_deref().unwrap_or(&self.config.domain);
                format!("https://{ENVD_PORT}-{}.{domain}", sandbox.sandbox_id)
            }
        }
    }

    /// A data-plane request: the routing headers always (harmless on a per-sandbox host, needed on
    /// a shared one) and the access token when the sandbox is secure.
    fn envd(&self, method: Method, sandbox: &SandboxHandle, path: &str) -> Result<HttpRequest, ProviderError> {
        let mut request = HttpRequest::new(method, join_url(&self.envd_base(sandbox), path))
            .with_header(header_name("e2b-sandbox-id"), self.http.header("E2b-Sandbox-Id", &sandbox.sandbox_id)?)
            .with_header(header_name("e2b-sandbox-port"), ENVD_PORT.into());
        if let Some(token) = &sandbox.envd_access_token {
            request = request.with_header(header_name("x-access-token"), self.http.header("X-Access-Token", token)?);
        }
        Ok(request)
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
        let policy = RetryPolicy { attempt_timeout_ms: self.config.create_timeout_ms, ..*self.http.retry() };
        let response = self.http.send_with(&policy, &request, false).await?;
        let body =
            self.http.expect_success(response).await.map_err(|error| error::missing_template(error, &template))?;
        let created: CreatedSandbox = self.http.parse_json(&body, "create answer")?;
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
            .with_header(header_name("content-type"), self.http.header("Content-Type", &content_type)?)
            .with_body(body);
        // Writing the same bytes again is harmless, so transport errors are retried too.
        let response = self.http.send(&request, true).await?;
        self.http.expect_success(response).await.map(drop)
    }

    async fn kill_sandbox(&self, sandbox_id: &str) -> Result<bool, ProviderError> {
        let request = self.control(Method::DELETE, &format!("sandboxes/{}", percent_encode(sandbox_id)))?;
        let response = self.http.send(&request, true).await?;
        match response.status {
            // 404: already killed, expired or never there; either way it is gone, which is the goal.
            StatusCode::NOT_FOUND => Ok(false),
            _ => self.http.expect_success(response).await.map(|_| true),
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
            let response = self.http.send(&self.control(Method::GET, &path)?, true).await?;
            next_token = response
                .headers
                .get("x-next-token")
                .and_then(|value| value.to_str().ok())
                .filter(|token| !token.is_empty())
                .map(str::to_owned);
            let body = self.http.expect_success(response).await?;
            let items: Vec<ListedItem> = self.http.parse_json(&body, "list answer")?;
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
