//! What is left of turns, looked at directly rather than through the worker: what sandboxd and
//! scratchdb list, what Postgres holds, and what sandboxd's jails left on the host.

use std::path::{Path, PathBuf};

use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_instanode};
use mayfly_cli::stack::StackEndpoints;
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::InstanodeClient;
use mayfly_core::providers::{DatabaseInfo, DatabaseProvider, SandboxInfo, SandboxProvider};

use crate::procfs;

/// sandboxd, spoken to as a turn speaks to it, with the stack's own key.
pub fn sandboxd(endpoints: &StackEndpoints) -> E2bClient<ReqwestHttpClient, SystemClock> {
    E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(endpoints))
}

/// scratchdb, spoken to as a turn speaks to it, with the stack's own token.
pub fn scratchdb(endpoints: &StackEndpoints) -> InstanodeClient<ReqwestHttpClient, SystemClock> {
    InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, local_instanode(endpoints))
}

/// What the providers list now.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The sandboxes sandboxd lists with their tags.
    pub sandboxes: Vec<SandboxInfo>,
    pub databases: Vec<DatabaseInfo>,
}

/// Asks sandboxd and scratchdb what they hold.
pub fn list_at_providers(runtime: &tokio::runtime::Runtime, endpoints: &StackEndpoints) -> anyhow::Result<Listed> {
    let (sandboxes, databases) = (sandboxd(endpoints), scratchdb(endpoints));
    runtime.block_on(async {
        let sandboxes = sandboxes.list_tagged().await?;
        let databases = databases.list().await?;
        Ok(Listed { sandboxes, databases })
    })
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

/// Where a stack's providers keep things, for [`Leftovers::gather`].
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    pub endpoints: &'a StackEndpoints,
    /// The superuser URL of the stack's Postgres. Holds a secret.
    pub postgres_admin_url: &'a str,
    pub sandboxd_state: &'a Path,
    /// sandboxd's own process, whose command line names its state directory too.
    pub sandboxd_pid: Option<u32>,
}

impl Leftovers {
    /// Everything left at the providers, in Postgres and on the host.
    pub fn gather(runtime: &tokio::runtime::Runtime, places: Places<'_>) -> anyhow::Result<Leftovers> {
        let (sandboxes, databases) = (sandboxd(places.endpoints), scratchdb(places.endpoints));
        let (sandboxes, databases, (pg_databases, pg_roles, registry)) = runtime.block_on(async {
            let sandboxes = sandboxes.list_tagged().await;
            let databases = databases.list().await;
            (sandboxes, databases, postgres_leftovers(places.postgres_admin_url).await)
        });
        // sandboxd's own files (its templates' tmpfs, `.templates`) live as long as it does.
        let mut jail_dirs: Vec<String> = match std::fs::read_dir(places.sandboxd_state) {
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
            mounts: procfs::mounts_under(places.sandboxd_state)?,
            cgroups: jail_dirs.iter().filter(|id| !cgroups_of(id).is_empty()).cloned().collect(),
            jail_dirs,
            jail_processes: procfs::processes_mentioning(places.sandboxd_state, places.sandboxd_pid),
        })
    }

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

/// The scratch databases and roles Postgres holds, and scratchdb's registry rows of live resources.
pub async fn postgres_leftovers(admin_url: &str) -> (Names, Names, Names) {
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

/// sandboxd's cgroups for a sandbox id that exist, on cgroup v1 or v2.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    ["memory", "pids", "cpu", ""]
        .iter()
        .map(|controller| root.join(controller).join("mayfly-sandboxd").join(id))
        .filter(|p| p.exists())
        .collect()
}
