//! The whole local stack for turn tests: Postgres, scratchdb and sandboxd in this process (the
//! CLI's `LocalStack`, as `mayfly stack` runs it), and `wrangler dev` wired to them.

use std::path::Path;

use mayfly_cli::providers::worker_vars;
use mayfly_cli::stack::{LocalStack, StackOptions as LocalStackOptions};

use crate::leftovers::list_at_providers;
use crate::wrangler::free_port;
use crate::{ApiClient, TestStackOptions, Tools, WranglerDev, WranglerOptions};

pub const ALICE_KEY: &str = "key-alice-0123456789";
pub const BOB_KEY: &str = "key-bob-9876543210";
/// The secret the stack's worker signs turn tokens with (`MAYFLY_TOKEN_SECRET`).
pub const TOKEN_SECRET: &str = "token-secret-of-the-test-stack-5f0b9d2c81e34a77";

/// The worker wired to a local stack (Postgres, scratchdb, sandboxd) that runs in this process.
/// Dropping it stops everything it started.
pub struct InProcessStack {
    pub worker: WranglerDev,
    local: Option<LocalStack>,
    pub runtime: tokio::runtime::Runtime,
    /// The local stack's data. Each stack needs its own: sandboxd's default state directory is per
    /// process, and one stack shutting down would remove it under another's feet.
    data: tempfile::TempDir,
}

impl std::fmt::Debug for InProcessStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessStack").field("url", &self.worker.url).finish_non_exhaustive()
    }
}

impl Drop for InProcessStack {
    fn drop(&mut self) {
        self.worker.stop();
        if let Some(local) = self.local.take() {
            self.runtime.block_on(local.shutdown());
        }
    }
}

impl InProcessStack {
    /// A stack with the default options: no database pool, the worker's variables as the stack
    /// sets them.
    pub fn start() -> InProcessStack {
        InProcessStack::start_with(TestStackOptions::default())
    }

    pub fn start_with(options: TestStackOptions) -> InProcessStack {
        // The local stack's servers are tokio tasks: a multi-threaded runtime keeps serving them
        // while the test thread makes blocking calls.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let data = tempfile::Builder::new().prefix("mayfly-e2e-turns-").tempdir().unwrap();
        let local_options = LocalStackOptions {
            data_dir: Some(data.path().to_path_buf()),
            pool: options.pool,
            database_storage_mb: options.database_storage_mb,
            storage_check_interval: options.database_storage_mb.map(|_| std::time::Duration::from_millis(200)),
            like_hosted: options.like_hosted.then(mayfly_scratchdb::LikeHosted::default),
            ..LocalStackOptions::default()
        };
        let local = runtime.block_on(LocalStack::start(local_options)).expect("the local stack starts");
        let mut stack_vars: Vec<(String, String)> =
            worker_vars(&local.endpoints).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        stack_vars.push(("MAYFLY_API_KEYS".to_owned(), format!("alice:{ALICE_KEY},bob:{BOB_KEY}")));
        stack_vars.push(("MAYFLY_TOKEN_SECRET".to_owned(), TOKEN_SECRET.to_owned()));
        let wrangler_options = WranglerOptions {
            vars: options.worker_vars(stack_vars),
            port: Some(free_port().unwrap()),
            state_dir: Some(data.path().join("worker-state")),
            assets: options.assets,
        };
        let worker = WranglerDev::start(&Tools::of_workspace(), wrangler_options).expect("the worker starts");
        InProcessStack { worker, local: Some(local), runtime, data }
    }

    /// A client of the API with the tenant key `key`.
    pub fn client(&self, key: &str) -> ApiClient {
        self.worker.client(Some(key))
    }

    /// A client of the API with no key.
    pub fn anonymous(&self) -> ApiClient {
        self.worker.client(None)
    }

    pub fn local(&self) -> &LocalStack {
        self.local.as_ref().expect("the local stack runs until drop")
    }

    /// Where this stack keeps its state: the worker's Durable Object storage, sandboxd's state
    /// directory and the Postgres cluster, for tests that look at what was written to disk.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Kills the worker's processes with SIGKILL and starts it again on the same state and port.
    pub fn crash_worker(&mut self) {
        self.worker.crash_and_restart().expect("the worker starts again");
    }

    /// Asks sandboxd and scratchdb directly whether anything of the turn is left.
    pub fn assert_nothing_left(&self, turn_id: &str) {
        let listed = list_at_providers(&self.runtime, &self.local().endpoints).expect("the providers list");
        let left: Vec<_> =
            listed.sandboxes.iter().filter(|s| s.metadata.values().any(|v| v.contains(turn_id))).collect();
        assert!(left.is_empty(), "sandboxes of {turn_id} left: {left:?}");
        let left: Vec<_> = listed.databases.iter().filter(|d| d.name.contains(turn_id)).map(|d| &d.name).collect();
        assert!(left.is_empty(), "databases of {turn_id} left: {left:?}");
        // Postgres itself agrees with scratchdb's registry: every scratch database it holds is one
        // the registry lists (a kept one, say), so nothing was dropped from the books but not the disk.
        let admin_url = self.local().postgres_admin_url().to_owned();
        let (in_postgres, _, _) = self.runtime.block_on(crate::leftovers::postgres_leftovers(&admin_url));
        assert_eq!(
            in_postgres.expect("Postgres lists its databases").len(),
            listed.databases.len(),
            "pg_database holds scratch databases the registry does not list"
        );
    }
}
