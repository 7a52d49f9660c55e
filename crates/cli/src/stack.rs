//! The local stack in one process: a private Postgres cluster, scratchdb over it and sandboxd, each
//! on a free port of 127.0.0.1. `mayfly stack` keeps it running and records its endpoints in a
//! well-known file; `mayfly run` starts one for a single turn when none is running.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// What a client needs to reach a running local stack. The keys are local, generated per stack,
/// and the file holding them is readable by its owner only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackEndpoints {
    pub sandboxd_url: String,
    pub sandboxd_api_key: String,
    pub scratchdb_url: String,
    pub scratchdb_token: String,
    /// The process that serves them, so a stale file is recognised.
    pub pid: u32,
}

/// A running local stack; [`LocalStack::shutdown`] stops it and leaves nothing behind.
pub struct LocalStack {
    pub endpoints: StackEndpoints,
    postgres: mayfly_scratchdb::EmbeddedPostgres,
    scratchdb: mayfly_scratchdb::Service,
    sandboxd: mayfly_sandboxd::AppState,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStack")
            .field("sandboxd_url", &self.endpoints.sandboxd_url)
            .field("scratchdb_url", &self.endpoints.scratchdb_url)
            .finish_non_exhaustive()
    }
}

/// Options for [`LocalStack::start`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Where Postgres keeps its data; a temporary directory (removed on shutdown) when `None`.
    pub data_dir: Option<PathBuf>,
    /// The venv the `mayfly` template mounts; `tools/sandbox-venv` of this checkout when `None` and present.
    pub python_venv: Option<PathBuf>,
    /// Warm pool of ready databases.
    pub pool: usize,
    /// The storage each (owned) scratch database may use, in MB; scratchdb's default when `None`.
    pub database_storage_mb: Option<i32>,
    /// How often scratchdb checks databases against their storage limit; its default when `None`.
    pub storage_check_interval: Option<std::time::Duration>,
    /// scratchdb answers anonymous creates as hosted instanode does (`--like-hosted`).
    pub like_hosted: Option<mayfly_scratchdb::LikeHosted>,
}

impl LocalStack {
    pub async fn start(options: StackOptions) -> anyhow::Result<LocalStack> {
        let data_dir = options.data_dir.clone();
        let postgres = tokio::task::spawn_blocking(move || match data_dir {
            Some(dir) => mayfly_scratchdb::EmbeddedPostgres::start(&dir.join("postgres")),
            None => mayfly_scratchdb::EmbeddedPostgres::start_temporary(),
        })
        .await?
        .context("start the private Postgres cluster")?;

        let scratchdb_token = random_key("sdb");
        let mut db_config = mayfly_scratchdb::Config::new(postgres.admin_url());
        db_config.tokens = vec![scratchdb_token.clone()];
        db_config.pool_size = options.pool;
        if let Some(mb) = options.database_storage_mb {
            db_config.authenticated_storage_mb = mb;
        }
        if let Some(interval) = options.storage_check_interval {
            db_config.storage_check_interval = interval;
        }
        db_config.like_hosted = options.like_hosted;
        let scratchdb = mayfly_scratchdb::Service::start(db_config).await.context("start scratchdb")?;
        let db_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let scratchdb_url = format!("http://{}", db_listener.local_addr()?);

        let sandboxd_api_key = random_key("e2b");
        let mut sbx_config = mayfly_sandboxd::Config::new("localhost");
        sbx_config.api_keys = vec![sandboxd_api_key.clone()];
        // Jails sharing a host uid share its process limit, so one's fork bomb would starve the
        // other's: each local stack takes its own stretch of uids, apart from any other sandboxd on
        // this host (a `mayfly run` beside a `mayfly stack`, parallel tests).
        sbx_config.jail_uid_base += (uuid::Uuid::new_v4().as_u128() % 1_000_000) as u32;
        if let Some(dir) = &options.data_dir {
            sbx_config.state_dir = dir.join("sandboxes");
        }
        sbx_config.python_venv = options.python_venv.or_else(default_venv);
        // A turn reaches its database at the URL scratchdb gives, and nothing else on this host.
        sbx_config.network = mayfly_sandboxd::SandboxNetwork::Isolated { forward_ports: vec![postgres.port()] };
        let sandboxd = mayfly_sandboxd::AppState::new(sbx_config).context("sandboxd cannot start")?;
        let sbx_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sandboxd_url = format!("http://{}", sbx_listener.local_addr()?);

        let servers = vec![
            tokio::spawn({
                let scratchdb = scratchdb.clone();
                async move {
                    if let Err(err) = mayfly_scratchdb::serve(scratchdb, db_listener).await {
                        eprintln!("scratchdb stopped: {err}");
                    }
                }
            }),
            tokio::spawn({
                let router = mayfly_sandboxd::router(sandboxd.clone());
                async move {
                    if let Err(err) = axum_serve(sbx_listener, router).await {
                        eprintln!("sandboxd stopped: {err}");
                    }
                }
            }),
        ];
        let endpoints =
            StackEndpoints { sandboxd_url, sandboxd_api_key, scratchdb_url, scratchdb_token, pid: std::process::id() };
        Ok(LocalStack { endpoints, postgres, scratchdb, sandboxd, servers })
    }

    /// The private cluster's superuser URL, for tests that look inside Postgres. Holds a secret.
    pub fn postgres_admin_url(&self) -> &str {
        self.postgres.admin_url()
    }

    /// Kills every sandbox, drops every scratch database, stops Postgres.
    pub async fn shutdown(self) {
        for server in &self.servers {
            server.abort();
        }
        self.sandboxd.shutdown().await;
        self.scratchdb.shutdown().await;
        let postgres = self.postgres;
        let _ = tokio::task::spawn_blocking(move || postgres.stop()).await;
    }
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) -> std::io::Result<()> {
    // Both protocols trade small frames and wait on each answer; Nagle's algorithm with delayed
    // ACKs would add ~40 ms to each exchange (a process start, an upload).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await
}

/// `tools/sandbox-venv` of the checkout this binary was built from, when setup has made it.
fn default_venv() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/sandbox-venv");
    venv.join("bin/python").exists().then(|| venv.canonicalize().unwrap_or(venv))
}

/// A fresh random key with a readable prefix.
fn random_key(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Where `mayfly stack` records its endpoints: `$MAYFLY_STATE_DIR`, else `~/.local/state/mayfly`.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MAYFLY_STATE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".local/state/mayfly")
}

pub fn endpoints_file() -> PathBuf {
    state_dir().join("stack.json")
}

/// Writes the endpoints file, readable by its owner only (it holds the stack's keys).
pub fn write_endpoints(endpoints: &StackEndpoints) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = endpoints_file();
    std::fs::create_dir_all(state_dir())?;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    file.write_all(serde_json::to_string_pretty(endpoints)?.as_bytes())?;
    Ok(path)
}

/// The endpoints of a running `mayfly stack`, if its file exists and its process is alive.
pub fn read_endpoints() -> Option<StackEndpoints> {
    let text = std::fs::read_to_string(endpoints_file()).ok()?;
    let endpoints: StackEndpoints = serde_json::from_str(&text).ok()?;
    Path::new(&format!("/proc/{}", endpoints.pid)).exists().then_some(endpoints)
}

pub fn remove_endpoints(endpoints: &StackEndpoints) {
    if read_endpoints().is_some_and(|current| current.pid == endpoints.pid) {
        let _ = std::fs::remove_file(endpoints_file());
    }
}
