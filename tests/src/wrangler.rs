//! The worker as a test or `cargo xtask dev` runs it: `wrangler dev` (workerd, the real Workers
//! runtime) serving the built worker and web app on 127.0.0.1. Both test stacks launch it through
//! here, and restart it here after killing it.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::{ApiClient, Service, Tools};

/// How to start `wrangler dev`.
#[derive(Debug, Clone, Default)]
pub struct WranglerOptions {
    /// The worker's port; a free one when `None`.
    pub port: Option<u16>,
    /// Extra worker variables (`--var NAME:VALUE`), such as provider URLs.
    pub vars: Vec<(String, String)>,
    /// Where workerd keeps Durable Object state; a fresh temporary directory when `None`.
    pub state_dir: Option<PathBuf>,
    /// The assets the worker serves instead of the built web app (`--assets`): a test's own
    /// pages next to the app, on the API's origin.
    pub assets: Option<PathBuf>,
}

/// A running `wrangler dev`. Dropping it stops every process it started.
#[derive(Debug)]
pub struct WranglerDev {
    pub url: String,
    pub port: u16,
    /// wrangler's combined output.
    pub wrangler_log: PathBuf,
    /// wrangler's inspector (Chrome DevTools protocol), in front of the worker's isolate.
    pub inspector_port: u16,
    tools: Tools,
    state_dir: PathBuf,
    vars: Vec<(String, String)>,
    assets: Option<PathBuf>,
    wrangler: Service,
    _state: Option<tempfile::TempDir>,
    /// wrangler's temporary files: its own clean-up does not run when it is killed.
    _temp: tempfile::TempDir,
}

impl WranglerDev {
    pub fn start(tools: &Tools, options: WranglerOptions) -> anyhow::Result<WranglerDev> {
        if !tools.worker_bundle().exists() || !tools.web_dist().join("index.html").exists() {
            bail!("the worker or the web app is not built: run `cargo xtask build` first (`cargo xtask test` does)");
        }
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let (state_dir, state) = match options.state_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new().prefix("mayfly-wrangler-").tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let (wrangler, inspector_port, wrangler_log, temp) =
            launch(tools, port, &state_dir, &options.vars, options.assets.as_deref())?;
        Ok(WranglerDev {
            url: format!("http://127.0.0.1:{port}"),
            port,
            wrangler_log,
            inspector_port,
            tools: tools.clone(),
            state_dir,
            vars: options.vars,
            assets: options.assets,
            wrangler,
            _state: state,
            _temp: temp,
        })
    }

    /// A client of the worker's API with `key`, or with none.
    pub fn client(&self, key: Option<&str>) -> ApiClient {
        ApiClient::new(&self.url, key)
    }

    /// SIGKILLs wrangler and workerd together, as a crash of the edge process would, and starts
    /// them again on the same state and port.
    pub fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.wrangler.kill_hard();
        let (wrangler, inspector_port, wrangler_log, temp) =
            launch(&self.tools, self.port, &self.state_dir, &self.vars, self.assets.as_deref())?;
        (self.wrangler, self.inspector_port, self.wrangler_log, self._temp) =
            (wrangler, inspector_port, wrangler_log, temp);
        Ok(())
    }

    /// Fails if any process of the stack has died.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.wrangler.check_alive()
    }

    pub fn stop(&mut self) {
        self.wrangler.stop();
    }

    /// wrangler's process id; workerd is its child.
    pub fn pid(&self) -> u32 {
        self.wrangler.pid()
    }
}

/// Starts `wrangler dev` and waits for the worker to answer: (wrangler, its inspector's port, its
/// log, its temporary directory).
fn launch(
    tools: &Tools,
    port: u16,
    state_dir: &std::path::Path,
    vars: &[(String, String)],
    assets: Option<&std::path::Path>,
) -> anyhow::Result<(Service, u16, PathBuf, tempfile::TempDir)> {
    std::fs::create_dir_all(tools.artifacts_dir())?;
    let wrangler_log = tools.artifacts_dir().join(format!("wrangler-{port}.log"));
    let log = File::create(&wrangler_log).with_context(|| format!("create {}", wrangler_log.display()))?;
    let temp_dir = tempfile::Builder::new().prefix("mayfly-wrangler-tmp-").tempdir()?;
    let inspector_port = free_port()?;
    let mut cmd = Command::new(tools.npm_bin("wrangler"));
    cmd.current_dir(tools.root.join("worker"))
        .env("TMPDIR", temp_dir.path())
        .env("PATH", tools.node_path())
        // Local mode with nothing phoned home: no metrics, no error reports, no cf.json fetch.
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        // wrangler's local trace collector keeps every invocation's trace in a Durable Object
        // that is never evicted: workerd's memory would grow with every turn. The explorer UI
        // is not used either.
        .env("X_LOCAL_OBSERVABILITY", "false")
        .env("X_LOCAL_EXPLORER", "false")
        // wrangler dev wraps the worker in a middleware that reads every request body to its
        // end before the answer leaves (a dev-only layer; the platform sends the worker's
        // answer as soon as it is made). It would hold the worker's early refusal of a body
        // past its limit until the client had sent all of it — for ever, for one that never
        // ends.
        .env("WRANGLER_DISABLE_REQUEST_BODY_DRAINING", "true")
        .args(["dev", "--local", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &inspector_port.to_string()])
        .arg("--persist-to")
        .arg(state_dir)
        .args(["--show-interactive-dev-session=false", "--test-scheduled", "--log-level", "info"])
        .stdout(log.try_clone()?)
        .stderr(log);
    for (name, value) in vars {
        cmd.arg("--var").arg(format!("{name}:{value}"));
    }
    if let Some(assets) = assets {
        cmd.arg("--assets").arg(assets);
    }
    let mut wrangler = Service::spawn("wrangler dev", &mut cmd)?;
    let url = format!("http://127.0.0.1:{port}");
    if let Err(err) = wrangler.wait_for_http(&format!("{url}/v1/health"), Duration::from_secs(90)) {
        let log = std::fs::read_to_string(&wrangler_log).unwrap_or_default();
        bail!("{err:#}\n--- wrangler log ---\n{log}");
    }
    Ok((wrangler, inspector_port, wrangler_log, temp_dir))
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
