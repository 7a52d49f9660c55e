//! sandboxd: an E2B-compatible sandbox host whose sandboxes are bubblewrap jails.
//!
//! One listener serves both of E2B's planes. The control plane (`POST /sandboxes`, list, kill,
//! timeouts; `X-API-Key`) lives in `control`; envd's data plane (Connect RPCs for processes and
//! the filesystem, `/files`) lives in `envd` and is reached either by `Host: 49983-<id>.<domain>`
//! or by the `E2b-Sandbox-Id`/`E2b-Sandbox-Port` headers, exactly as E2B's proxy routes. The
//! registry of live sandboxes, their timers and their processes is `sandbox`; how a process is
//! put into a jail is `jail`, whose module doc holds the isolation design.
//!
//! The library opens no sockets: `main` binds and serves [`router`]; tests bind 127.0.0.1:0.

// Handlers return a finished error `Response` as their `Err`; it is built once per failed request,
// so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

mod control;
mod envd;
mod error;
mod host;
mod jail;
mod netns;
mod process;
mod sandbox;
mod secret;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use jail::{bwrap_baseline_command, is_root, CpuStats, JailLimits};
pub use netns::{SandboxNetwork, DEFAULT_FORWARD_CONNECTIONS};
pub use sandbox::Sandboxes;

/// The envd version we claim: high enough that the SDKs use octet-stream uploads, the
/// server-side default user and file metadata (0.6.2), low enough that they never ask a watch
/// for entry details (0.6.3), which sandboxd has no watch to give.
pub const ENVD_VERSION: &str = "0.6.2";

/// Everything sandboxd is told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The domain in `49983-<id>.<domain>` and in create's `domain` field.
    pub domain: String,
    /// Accepted `X-API-Key` values; empty means no key is required (local development only).
    pub api_keys: Vec<String>,
    pub max_sandboxes: usize,
    pub max_timeout: Duration,
    /// Where per-sandbox directories are made; each sandbox gets `<state_dir>/<id>`.
    pub state_dir: PathBuf,
    /// The read-only venv the `mayfly` template mounts; `None` makes `mayfly` the same as `base`.
    pub python_venv: Option<PathBuf>,
    pub limits: JailLimits,
    /// When running as root, jailed processes run as host uid `jail_uid_base + n` (one per sandbox).
    pub jail_uid_base: u32,
    /// What sandboxes reach over the network; isolation needs root, without it this is ignored.
    pub network: SandboxNetwork,
    /// Connections one sandbox may hold open at once through its forwarded ports.
    pub forward_connections: usize,
}

impl Config {
    /// Defaults for a local host on `domain`, with a private state directory under the system temp dir.
    pub fn new(domain: impl Into<String>) -> Config {
        Config {
            domain: domain.into(),
            api_keys: Vec::new(),
            max_sandboxes: 100,
            max_timeout: Duration::from_secs(3600),
            // Unique per instance, not per process: two sandboxd in one process (tests, or a CLI
            // stack beside another) must never share, or remove, each other's directory.
            state_dir: std::env::temp_dir().join(format!(
                "mayfly-sandboxd-{}-{}",
                std::process::id(),
                instance_suffix()
            )),
            python_venv: None,
            limits: JailLimits::default(),
            jail_uid_base: 200_000,
            network: SandboxNetwork::default(),
            forward_connections: DEFAULT_FORWARD_CONNECTIONS,
        }
    }
}

/// A short random suffix that tells two instances in one process apart.
fn instance_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Why sandboxd could not start: it never starts with less isolation than it promises.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the state directory {dir}: {error}")]
    StateDir { dir: PathBuf, error: std::io::Error },
    #[error("{0}")]
    Jail(String),
}

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) sandboxes: Arc<Sandboxes>,
    templates: Arc<jail::Templates>,
}

impl AppState {
    /// Prepares what every jail needs — the host programs, the seccomp filter, the cgroups (as
    /// root), the templates' files — and the state directory, removing the sandboxes a previous
    /// sandboxd that died there left behind.
    pub fn new(config: Config) -> Result<AppState, StartError> {
        let state_dir = |error| StartError::StateDir { dir: config.state_dir.clone(), error };
        std::fs::create_dir_all(&config.state_dir).map_err(state_dir)?;
        let host = Arc::new(jail::JailHost::prepare(config.forward_connections).map_err(StartError::Jail)?);
        let removed = jail::remove_leftovers(&config.state_dir, &host);
        if removed > 0 {
            tracing::warn!(removed, dir = %config.state_dir.display(), "removed sandboxes a previous sandboxd left");
        }
        if matches!(config.network, SandboxNetwork::Isolated { .. }) && !host.root {
            tracing::warn!("not root: sandboxes share the host's network, and reach everything on its loopback");
        }
        let templates = jail::Templates::prepare(config.python_venv.as_deref(), &config.state_dir, host.root)
            .map_err(StartError::Jail)?;
        let config = Arc::new(config);
        let sandboxes = Arc::new(Sandboxes::new(config.clone(), host, &templates));
        Ok(AppState { sandboxes, config, templates: Arc::new(templates) })
    }

    /// The registry, for shutdown and for tests that look inside.
    pub fn sandboxes(&self) -> &Arc<Sandboxes> {
        &self.sandboxes
    }

    /// Kills every sandbox and removes the state directory; call before exit.
    pub async fn shutdown(&self) {
        self.sandboxes.kill_all().await;
        self.templates.release();
        let _ = std::fs::remove_dir(&self.config.state_dir);
    }
}

/// The whole HTTP surface: control plane, and envd for requests that name a sandbox.
pub fn router(state: AppState) -> axum::Router {
    let envd = envd::router(state.clone());
    control::router(state.clone())
        .layer(axum::middleware::from_fn_with_state((state, envd), envd::route_to_envd))
        .layer(axum::middleware::from_fn(log_request))
}

/// One log line per request: method, path (never the query, which may carry a signature), status, time.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::info!(%method, %path, status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    res
}
