//! The local stack as separate processes, so that a test can kill any of them: a private Postgres
//! (owned by this process, so it outlives scratchdb), the `mayfly-sandboxd` and `mayfly-scratchdb`
//! binaries, each behind a [`FaultProxy`], and `wrangler dev` wired to the proxies. Each provider
//! restarts on its own port with its own state, as a supervisor would restart it.
//!
//! The fault suite (`tests/faults/`) and the soak (`tests/soak/`) use it; both also read the
//! processes' memory and what is left at the providers through it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_instanode};
use mayfly_cli::stack::StackEndpoints;
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::InstanodeClient;
use mayfly_core::providers::{DatabaseProvider, SandboxProvider};
use mayfly_core::{CreateTurnResponse, Event, TurnDetail};
use std::net::TcpStream;
use tungstenite::client::IntoClientRequest;

use crate::fault_proxy::FaultProxy;
use crate::stack::free_port;
use crate::{Service, Stack, StackOptions, Tools};

/// The tenant key the worker accepts.
pub const KEY: &str = "key-faults-0123456789";

/// The worker's sweep grace on this stack (`SWEEP_GRACE_S`): short, so that a suite reaches the
/// sweep soon after its last deadline, yet past the moment every turn's own alarm has fired.
pub const SWEEP_GRACE: Duration = Duration::from_secs(15);

/// Which build of the provider binaries to run: `debug`, or `native` (the workspace's optimised
/// native profile; `release` is the wasm one) under `target/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Native,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Native => "native",
        }
    }
}

/// One provider binary, restartable on the same port with the same arguments.
#[derive(Debug)]
struct Provider {
    name: &'static str,
    command: Command,
    addr: SocketAddr,
    health: &'static str,
    service: Option<Service>,
    log: PathBuf,
}

impl Provider {
    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        self.command.stdout(log.try_clone()?).stderr(log);
        let mut service = Service::spawn(self.name, &mut self.command)?;
        service.wait_for_http(&format!("http://{}{}", self.addr, self.health), Duration::from_secs(30))?;
        self.service = Some(service);
        Ok(())
    }

    /// SIGKILLs the provider's own process (not its group: whatever it started must end on its
    /// own, as after a real crash) and waits for it to be gone.
    fn kill(&mut self) -> anyhow::Result<()> {
        let Some(mut service) = self.service.take() else { return Ok(()) };
        let _ = Command::new("kill").args(["-KILL", &service.pid().to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while service.check_alive().is_ok() {
            if Instant::now() > deadline {
                bail!("{} survived SIGKILL", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// How to boot a [`ProcessStack`].
#[derive(Debug, Clone, Copy)]
pub struct ProcessStackOptions {
    pub profile: Profile,
}

/// The running stack. Dropping it stops everything it started.
/// Every component sits behind a lock, so that a test can kill one while it reads a turn's events.
pub struct ProcessStack {
    /// The worker's URL and port, which a restart keeps.
    pub url: String,
    pub port: u16,
    worker: Mutex<Stack>,
    worker_options: StackOptions,
    sandboxd: Mutex<Provider>,
    scratchdb: Mutex<Provider>,
    pub sandboxd_proxy: FaultProxy,
    pub scratchdb_proxy: FaultProxy,
    /// The providers' own addresses and keys, bypassing the proxies.
    pub endpoints: StackEndpoints,
    /// sandboxd's state directory, which a restart keeps.
    pub sandboxd_state: PathBuf,
    pub runtime: tokio::runtime::Runtime,
    postgres: mayfly_scratchdb::EmbeddedPostgres,
    _data: tempfile::TempDir,
}

impl std::fmt::Debug for ProcessStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessStack").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Drop for ProcessStack {
    fn drop(&mut self) {
        lock(&self.worker).stop();
        // TERM lets each provider kill its sandboxes and close its pool; the group kill that
        // follows in `stop` ends anything left.
        for provider in [&self.sandboxd, &self.scratchdb] {
            if let Some(mut service) = lock(provider).service.take() {
                service.stop();
            }
        }
        self.postgres.stop();
    }
}

/// Where `cargo build` put a workspace binary.
pub fn binary(profile: Profile, name: &str) -> anyhow::Result<PathBuf> {
    let path = Tools::of_workspace().root.join("target").join(profile.dir()).join(name);
    if !path.exists() {
        let flag = if profile == Profile::Native { " --profile native" } else { "" };
        bail!("{} is not built: run `cargo build{flag} -p mayfly-sandboxd -p mayfly-scratchdb`", path.display());
    }
    Ok(path)
}

impl ProcessStack {
    pub fn start(options: ProcessStackOptions) -> anyhow::Result<ProcessStack> {
        let tools = Tools::of_workspace();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let data = tempfile::Builder::new().prefix("mayfly-procs-").tempdir()?;
        let postgres = mayfly_scratchdb::EmbeddedPostgres::start(&data.path().join("postgres"))
            .context("start the private Postgres cluster")?;
        std::fs::create_dir_all(tools.artifacts_dir())?;

        let sandboxd_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let sandboxd_key = "e2b_faults_key".to_owned();
        let sandboxd_state = data.path().join("sandboxes");
        let mut command = Command::new(binary(options.profile, "mayfly-sandboxd")?);
        command
            .args(["--listen", &sandboxd_addr.to_string(), "--domain", "localhost"])
            .arg("--state-dir")
            .arg(&sandboxd_state)
            .args(["--forward-port", &postgres.port().to_string()])
            .env("SANDBOXD_API_KEYS", &sandboxd_key)
            .env("RUST_LOG", "warn");
        let venv = tools.root.join("tools/sandbox-venv");
        if venv.join("bin/python").exists() {
            command.arg("--python-venv").arg(&venv);
        }
        let mut sandboxd = Provider {
            name: "sandboxd",
            command,
            addr: sandboxd_addr,
            health: "/health",
            service: None,
            log: tools.artifacts_dir().join(format!("sandboxd-{}.log", sandboxd_addr.port())),
        };
        sandboxd.start()?;

        let scratchdb_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let scratchdb_token = "sdb_faults_token".to_owned();
        let mut command = Command::new(binary(options.profile, "mayfly-scratchdb")?);
        command
            .args(["--listen", &scratchdb_addr.to_string(), "--pool", "0"])
            // In the environment rather than the arguments: the URL holds the superuser's password.
            .env("SCRATCHDB_ADMIN_URL", postgres.admin_url())
            .env("SCRATCHDB_TOKENS", &scratchdb_token)
            .env("RUST_LOG", "warn");
        let mut scratchdb = Provider {
            name: "scratchdb",
            command,
            addr: scratchdb_addr,
            health: "/healthz",
            service: None,
            log: tools.artifacts_dir().join(format!("scratchdb-{}.log", scratchdb_addr.port())),
        };
        scratchdb.start()?;

        let sandboxd_proxy = FaultProxy::start("sandboxd", 0, sandboxd_addr)?;
        let scratchdb_proxy = FaultProxy::start("scratchdb", 0, scratchdb_addr)?;
        let vars = [
            ("E2B_API_URL", sandboxd_proxy.url()),
            ("E2B_ENVD_URL", sandboxd_proxy.url()),
            ("E2B_DOMAIN", "localhost".to_owned()),
            ("E2B_API_KEY", sandboxd_key.clone()),
            ("INSTANODE_URL", scratchdb_proxy.url()),
            ("INSTANODE_TOKEN", scratchdb_token.clone()),
            ("MAYFLY_API_KEYS", format!("faults:{KEY}")),
            ("SWEEP_GRACE_S", SWEEP_GRACE.as_secs().to_string()),
            // A create held by the fault proxy fails after 10 s, not E2B's SDK's 60 s, so that
            // the suite's turns (5 s each) do not wait out a minute per held create.
            ("E2B_CREATE_TIMEOUT_S", "10".to_owned()),
        ];
        let vars = vars.into_iter().chain(mayfly_cli::providers::local_templates().variables());
        let worker_options = StackOptions {
            vars: vars.map(|(k, v)| (k.to_owned(), v)).collect(),
            port: Some(free_port()?),
            state_dir: Some(data.path().join("worker-state")),
        };
        let worker = Stack::start(&tools, worker_options.clone())?;
        let endpoints = StackEndpoints {
            sandboxd_url: format!("http://{sandboxd_addr}"),
            sandboxd_api_key: sandboxd_key,
            scratchdb_url: format!("http://{scratchdb_addr}"),
            scratchdb_token,
            pid: std::process::id(),
        };
        Ok(ProcessStack {
            url: worker.url.clone(),
            port: worker.port,
            worker: Mutex::new(worker),
            worker_options,
            sandboxd: Mutex::new(sandboxd),
            scratchdb: Mutex::new(scratchdb),
            sandboxd_proxy,
            scratchdb_proxy,
            endpoints,
            sandboxd_state,
            runtime,
            postgres,
            _data: data,
        })
    }

    /// SIGKILLs wrangler and workerd and starts them again on the same state and port.
    pub fn crash_worker(&self) -> anyhow::Result<()> {
        let mut worker = lock(&self.worker);
        worker.kill_hard();
        *worker = Stack::start(&Tools::of_workspace(), self.worker_options.clone())?;
        Ok(())
    }

    /// SIGKILLs sandboxd and starts it again on the same port and state directory.
    pub fn crash_sandboxd(&self) -> anyhow::Result<()> {
        let mut sandboxd = lock(&self.sandboxd);
        sandboxd.kill()?;
        sandboxd.start()
    }

    /// SIGKILLs scratchdb and starts it again on the same port and Postgres.
    pub fn crash_scratchdb(&self) -> anyhow::Result<()> {
        let mut scratchdb = lock(&self.scratchdb);
        scratchdb.kill()?;
        scratchdb.start()
    }

    /// The superuser URL of the private cluster. Holds a secret.
    pub fn postgres_admin_url(&self) -> &str {
        self.postgres.admin_url()
    }

    /// A request to the API: (status, body), whatever the status.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<(u16, String)> {
        let request = ureq::request(method, &format!("{}{path}", self.url))
            .timeout(Duration::from_secs(30))
            .set("Authorization", &format!("Bearer {KEY}"));
        let result = match body {
            Some(body) => request.set("Content-Type", "application/json").send_string(body),
            None => request.call(),
        };
        match result {
            Ok(resp) => Ok((resp.status(), resp.into_string()?)),
            Err(ureq::Error::Status(status, resp)) => Ok((status, resp.into_string()?)),
            Err(err) => Err(anyhow::anyhow!("{method} {path}: {err}")),
        }
    }

    pub fn create(&self, body: &str) -> anyhow::Result<CreateTurnResponse> {
        let (status, answer) = self.call("POST", "/v1/turns", Some(body))?;
        anyhow::ensure!(status == 201, "POST /v1/turns: {status} {answer}");
        Ok(serde_json::from_str(&answer)?)
    }

    pub fn detail(&self, turn_id: &str) -> anyhow::Result<TurnDetail> {
        let (status, body) = self.call("GET", &format!("/v1/turns/{turn_id}"), None)?;
        anyhow::ensure!(status == 200, "GET /v1/turns/{turn_id}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// Reads a turn's events over a WebSocket from `after` until the turn's last event, the socket
    /// closes or breaks (the worker was killed, say), calling `on_event` with each as it comes.
    pub fn events(&self, turn_id: &str, after: u64, on_event: impl FnMut(&Event)) -> Vec<Event> {
        let url = format!("ws://127.0.0.1:{}/v1/turns/{turn_id}/events?after={after}", self.port);
        let Ok(mut request) = url.into_client_request() else { return Vec::new() };
        request.headers_mut().insert("Authorization", format!("Bearer {KEY}").parse().expect("a header value"));
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return Vec::new() };
        // A turn that stalls ends the read; the caller then polls the turn's state instead.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let Ok((mut socket, _)) = tungstenite::client(request, stream) else { return Vec::new() };
        // A broken stream ends the read like a closed one: the caller then polls the turn.
        crate::turns::read_events(&mut socket, on_event).0
    }

    /// Runs the worker's cron sweep now (wrangler dev's `--test-scheduled`).
    pub fn trigger_sweep(&self) -> anyhow::Result<()> {
        let (status, body) = self.call("GET", "/__scheduled?cron=*/5+*+*+*+*", None)?;
        anyhow::ensure!(status == 200, "the sweep trigger answered {status}: {body}");
        Ok(())
    }

    /// Everything left at the providers and in the system, looked at directly.
    pub fn leftovers(&self) -> anyhow::Result<Leftovers> {
        let sandboxes = E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(&self.endpoints));
        let databases =
            InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, local_instanode(&self.endpoints));
        let admin_url = self.postgres.admin_url().to_owned();
        let (sandboxes, databases, (pg_databases, pg_roles, registry)) = self.runtime.block_on(async {
            let sandboxes = sandboxes.list_tagged().await;
            let databases = databases.list().await;
            (sandboxes, databases, postgres_leftovers(&admin_url).await)
        });
        // sandboxd's own files (its templates' tmpfs, `.templates`) live as long as it does.
        let mut jail_dirs: Vec<String> = match std::fs::read_dir(&self.sandboxd_state) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err.into()),
        };
        jail_dirs.sort();
        Ok(Leftovers {
            sandboxes: sandboxes?.into_iter().map(|s| s.sandbox_id).collect(),
            databases: databases?.into_iter().map(|d| d.name).collect(),
            pg_databases: pg_databases?,
            pg_roles: pg_roles?,
            registry_rows: registry?,
            mounts: mounts_under(&self.sandboxd_state)?,
            cgroups: jail_dirs.iter().filter(|id| !cgroups_of(id).is_empty()).cloned().collect(),
            jail_dirs,
            jail_processes: processes_mentioning(
                &self.sandboxd_state,
                lock(&self.sandboxd).service.as_ref().map(Service::pid),
            ),
        })
    }

    /// The process ids of each component, for memory samples: wrangler (Node.js) apart from the
    /// workerd it runs.
    pub fn pids(&self) -> Vec<(&'static str, Vec<u32>)> {
        let wrangler = lock(&self.worker).pid();
        let postmaster = std::fs::read_to_string(self.postgres.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
        let own =
            |provider: &Mutex<Provider>| lock(provider).service.as_ref().map(|s| vec![s.pid()]).unwrap_or_default();
        // `wrangler dev` is two Node processes and two workerd ones: the worker's runtime (the one
        // with an inspector) and, on the public port, wrangler's proxy in front of it, which runs
        // none of mayfly's code.
        let (mut node, mut worker_runtime, mut proxy_runtime) = (Vec::new(), Vec::new(), Vec::new());
        for pid in process_tree(wrangler) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() != "workerd" {
                node.push(pid);
            } else if std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg.starts_with(b"--inspector-addr")))
            {
                worker_runtime.push(pid);
            } else {
                proxy_runtime.push(pid);
            }
        }
        vec![
            ("wrangler", node),
            ("workerd: worker", worker_runtime),
            ("workerd: proxy", proxy_runtime),
            ("sandboxd", own(&self.sandboxd)),
            ("scratchdb", own(&self.scratchdb)),
            ("postgres", postmaster.map(process_tree).unwrap_or_default()),
        ]
    }

    /// The port of wrangler's inspector, in front of the worker's isolate.
    pub fn inspector_port(&self) -> u16 {
        lock(&self.worker).inspector_port
    }

    /// Client connections to Postgres other than the one asking: (by turns' database roles, by
    /// everyone else — scratchdb's admin pool).
    pub fn postgres_connections_by_kind(&self) -> anyhow::Result<(i64, i64)> {
        let admin_url = self.postgres.admin_url().to_owned();
        self.runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(connection);
            let row = client
                .query_one(
                    "SELECT count(*) FILTER (WHERE usename LIKE 'db\\_%'), count(*) FILTER (WHERE usename NOT LIKE 'db\\_%') \
                     FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await?;
            drop(client);
            let _ = task.await;
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })
    }
}

/// A lock whose holder panicked is still good: the guarded value is a process handle.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What is left of turns anywhere the stack keeps things.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Sandboxes sandboxd lists.
    pub sandboxes: Vec<String>,
    /// Databases scratchdb lists.
    pub databases: Vec<String>,
    /// Scratch databases (`db_…`) in Postgres.
    pub pg_databases: Vec<String>,
    /// Scratch roles (`db_…`, named like their databases) in Postgres.
    pub pg_roles: Vec<String>,
    /// scratchdb's registry rows of live resources (being made, in use or being deleted), as `name status`.
    pub registry_rows: Vec<String>,
    /// Sandbox directories under sandboxd's state directory.
    pub jail_dirs: Vec<String>,
    /// Mounts under sandboxd's state directory.
    pub mounts: Vec<String>,
    /// Sandbox directories whose cgroups still exist.
    pub cgroups: Vec<String>,
    /// Processes whose command line names sandboxd's state directory (jails), as `pid cmdline`.
    pub jail_processes: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        *self == Leftovers::default()
    }

    /// (sandboxes, databases): everything that counts as a leaked sandbox or a leaked database.
    pub fn counts(&self) -> (usize, usize) {
        let sandboxes = self.sandboxes.len()
            + self.jail_dirs.len().max(self.mounts.len()).max(self.cgroups.len())
            + self.jail_processes.len();
        let databases =
            self.databases.len().max(self.registry_rows.len()) + self.pg_databases.len().max(self.pg_roles.len());
        (sandboxes, databases)
    }
}

type Names = anyhow::Result<Vec<String>>;

async fn postgres_leftovers(admin_url: &str) -> (Names, Names, Names) {
    let connected = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await;
    let (client, connection) = match connected {
        Ok(pair) => pair,
        Err(err) => {
            let err = format!("{err}");
            return (Err(anyhow::anyhow!("{err}")), Err(anyhow::anyhow!("{err}")), Err(anyhow::anyhow!("{err}")));
        }
    };
    let task = tokio::spawn(connection);
    let names = |sql: &'static str| {
        let client = &client;
        async move {
            let rows = client.query(sql, &[]).await?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
        }
    };
    let databases = names("SELECT datname FROM pg_database WHERE datname LIKE 'db\\_%' ORDER BY 1").await;
    let roles = names("SELECT rolname FROM pg_roles WHERE rolname LIKE 'db\\_%' ORDER BY 1").await;
    let registry =
        names("SELECT name || ' ' || status FROM scratchdb.resources WHERE status IN ('provisioning', 'active', 'deleting') ORDER BY 1").await;
    drop(client);
    let _ = task.await;
    (databases, roles, registry)
}

/// Mount points of sandboxes at or under `dir`, from the kernel's mount table (not sandboxd's own
/// templates, which live as long as it does).
fn mounts_under(dir: &Path) -> anyhow::Result<Vec<String>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dir = dir.to_string_lossy();
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|m| m.starts_with(&*dir) && !m.contains("/."))
        .map(str::to_owned)
        .collect())
}

/// sandboxd's cgroups for a sandbox id that exist, on cgroup v1 or v2.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    ["memory", "pids", "cpu", ""]
        .iter()
        .map(|controller| root.join(controller).join("mayfly-sandboxd").join(id))
        .filter(|p| p.exists())
        .collect()
}

/// Live processes whose command line contains `path`, but for `except` (sandboxd itself).
fn processes_mentioning(path: &Path, except: Option<u32>) -> Vec<String> {
    let want = path.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok().filter(|pid| Some(*pid) != except)?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let state = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = state.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'));
            (cmdline.contains(&want) && !zombie).then(|| format!("{pid} {}", cmdline.trim()))
        })
        .collect()
}

/// `pid` and all its descendants.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
            // The parent is the second field after the command, which may itself hold spaces.
            let parent = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse().ok());
            if let Some(parent) = parent {
                parents.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// A process's proportional resident memory (PSS) in KiB: memory shared between processes (the
/// Postgres backends' shared buffers) is split between them, so a sum over processes counts it
/// once. 0 once the process is gone.
pub fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Pss:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}
