//! The local stack as separate processes, so that a test can kill any of them: a private Postgres
//! (owned by this process, so it outlives scratchdb), the `mayfly-sandboxd` and `mayfly-scratchdb`
//! binaries, each behind a [`FaultProxy`], and `wrangler dev` wired to the proxies. Each provider
//! restarts on its own port with its own state, as a supervisor would restart it.
//!
//! The fault suite (`tests/faults/`) and the soak (`tests/soak/`) use it; both also read the
//! processes' memory and what is left at the providers through it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mayfly_cli::stack::StackEndpoints;

use crate::fault_proxy::FaultProxy;
use crate::leftovers::{Leftovers, Places};
use crate::procfs::{comm, has_argument_starting_with, process_tree};
use crate::wrangler::free_port;
use crate::{ApiClient, Profile, Service, TestStackOptions, Tools, WranglerDev, WranglerOptions};

/// The tenant key the worker accepts.
pub const KEY: &str = "key-faults-0123456789";

/// The worker's sweep grace on this stack (`SWEEP_GRACE_S`): short, so that a suite reaches the
/// sweep soon after its last deadline, yet past the moment every turn's own alarm has fired.
pub const SWEEP_GRACE: Duration = Duration::from_secs(15);

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

/// The running stack. Dropping it stops everything it started.
/// Every component sits behind a lock, so that a test can kill one while it reads a turn's events.
pub struct SeparateProcessStack {
    /// The worker's URL and port, which a restart keeps.
    pub url: String,
    pub port: u16,
    worker: Mutex<WranglerDev>,
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

impl std::fmt::Debug for SeparateProcessStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeparateProcessStack").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Drop for SeparateProcessStack {
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

impl SeparateProcessStack {
    pub fn start(options: TestStackOptions) -> anyhow::Result<SeparateProcessStack> {
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
            .args(["--listen", &scratchdb_addr.to_string(), "--pool", &options.pool.to_string()])
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
            ("MAYFLY_TOKEN_SECRET", crate::TOKEN_SECRET.to_owned()),
            ("SWEEP_GRACE_S", SWEEP_GRACE.as_secs().to_string()),
            // A create held by the fault proxy fails after 10 s, not E2B's SDK's 60 s, so that
            // the suite's turns (5 s each) do not wait out a minute per held create.
            ("E2B_CREATE_TIMEOUT_S", "10".to_owned()),
        ];
        let vars = vars.into_iter().chain(mayfly_cli::providers::local_templates().variables());
        let wrangler_options = WranglerOptions {
            vars: options.worker_vars(vars.map(|(k, v)| (k.to_owned(), v))),
            port: Some(free_port()?),
            state_dir: Some(data.path().join("worker-state")),
            assets: options.assets,
        };
        let worker = WranglerDev::start(&tools, wrangler_options)?;
        let endpoints = StackEndpoints {
            sandboxd_url: format!("http://{sandboxd_addr}"),
            sandboxd_api_key: sandboxd_key,
            scratchdb_url: format!("http://{scratchdb_addr}"),
            scratchdb_token,
            pid: std::process::id(),
        };
        Ok(SeparateProcessStack {
            url: worker.url.clone(),
            port: worker.port,
            worker: Mutex::new(worker),
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
        lock(&self.worker).crash_and_restart()
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

    /// A client of the API with the tenant's key. Its waits are short: a request to a worker
    /// that was just killed fails soon, and the caller polls the turn's state instead.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.url, Some(KEY)).with_timeouts(Duration::from_secs(30), Duration::from_secs(60))
    }

    /// Everything left at the providers and in the system, looked at directly.
    pub fn leftovers(&self) -> anyhow::Result<Leftovers> {
        let sandboxd_pid = lock(&self.sandboxd).service.as_ref().map(Service::pid);
        let places = Places {
            endpoints: &self.endpoints,
            postgres_admin_url: self.postgres.admin_url(),
            sandboxd_state: &self.sandboxd_state,
            sandboxd_pid,
        };
        Leftovers::gather(&self.runtime, places)
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
            if comm(pid) != "workerd" {
                node.push(pid);
            } else if has_argument_starting_with(pid, "--inspector-addr") {
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
