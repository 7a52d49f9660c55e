//! How a sandbox's process is put into a bubblewrap jail (`docs/security.md` holds the threat
//! model and the tests behind each guarantee).
//!
//! Design. A sandbox is a host directory, not a long-lived process: `<state_dir>/<id>` (a tmpfs
//! mounted with `size=` when sandboxd is root, a plain directory otherwise) holds `home/`, `tmp/`
//! and the sandbox's `etc/hostname`. Every process of the sandbox — the
//! ones clients start and the helpers that serve the file APIs — is its own `bwrap` that
//! bind-mounts `home/` at `/home/user` and `tmp/` at `/tmp`, so files persist across processes.
//!
//! Each jail gets new user, pid, ipc, uts and (where possible) cgroup namespaces, and may make no
//! user namespace of its own (`--disable-userns`); the hostname is the sandbox id. The network is
//! the sandbox's own when sandboxd is root (see `netns`: loopback only, plus the host ports it is
//! told to forward, such as the local Postgres), shared by the sandbox's processes; without root
//! it is the host's. The root is an empty tmpfs onto which only `/usr` (plus the `/bin`-style
//! links), `/proc`, a minimal `/dev` and `/etc` — an allow-list of the host's entries, staged once
//! at start-up with the jails' own `passwd` and `group` (see `template`) — are mounted read-only;
//! `/root`, `/etc/shadow`, the project checkout, `/work` and other sandboxes' directories simply
//! do not exist inside, and the jail's root itself is remounted read-only. The `mayfly` template
//! adds its venv read-only at `/opt/venv` (as root, a copy on a tmpfs of its own, so the jail's
//! mount table names no host path; see `template`), with its site-packages on `PYTHONPATH` so the
//! system `/usr/bin/python3` imports psycopg. A seccomp filter (`seccomp`) denies the system calls
//! container runtimes deny.
//!
//! Identity. Inside, the process is uid 1000 `user` (or uid 0 `root`, still unprivileged: it is
//! root of a user namespace only). When sandboxd runs as root, the process first drops to a host
//! uid of the sandbox's own (`jail_uid_base + n`) with no groups and no capabilities, so even an
//! escape lands as an unprivileged uid that owns nothing but that sandbox's directory, and
//! `RLIMIT_NPROC` (counted per real uid) is a per-sandbox process limit.
//!
//! Limits. Process count, address space, file size and CPU time are set, with core dumps off,
//! before the identity changes and `bwrap` execs in place, so the jail inherits them. As root each
//! sandbox also gets control groups (`cgroup`, v1 or v2): a cap on resident memory, on its
//! processes and on its CPU share, joined before the exec, so no process of the jail starts
//! outside.
//!
//! The host side. All of this happens in sandboxd's forked child before it execs `bwrap`
//! (`enter`), with no program in between; bwrap is called by an absolute path found once at
//! start-up, with a fixed environment, and what a tenant chose reaches it through a descriptor
//! (`host`, `command`).
//!
//! Cleanup. sandboxd's child is the `bwrap` process itself.
//! `--die-with-parent` plus the pid namespace make one `SIGKILL` of that child enough: bwrap's
//! init dies, and the kernel kills every process of the namespace. If sandboxd itself dies, the
//! same chain ends every jail.

mod cgroup;
mod command;
mod enter;
mod inner;
mod seccomp;
mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{MntFlags, MsFlags};

pub use cgroup::CpuStats;
pub use command::bwrap_baseline_command;
pub(crate) use command::check_env;
pub(crate) use inner::{read_init_pid, wait_signalled};

use crate::error::SandboxError;
use crate::host::HostTools;
use crate::netns::{ForwardBudget, SandboxNet, SandboxNetwork};
use cgroup::{Cgroups, SandboxCgroup};
use seccomp::SeccompPrograms;
pub(crate) use template::{Template, Templates};

/// Resource limits applied to every jailed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JailLimits {
    /// Size of the sandbox's tmpfs (home and tmp together), when running as root.
    pub disk_bytes: u64,
    pub max_processes: u64,
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub cpu_seconds: u64,
    /// Resident memory of the whole sandbox (memory cgroup, as root).
    pub memory_bytes: u64,
    /// The sandbox's share of CPU time (cpu cgroup, as root): 100 is one whole CPU.
    pub cpu_percent: u32,
}

impl Default for JailLimits {
    fn default() -> Self {
        JailLimits {
            disk_bytes: 512 << 20,
            max_processes: 256,
            address_space_bytes: 4 << 30,
            file_size_bytes: 256 << 20,
            cpu_seconds: 3600,
            memory_bytes: 1 << 30,
            cpu_percent: 100,
        }
    }
}

/// Which user a process runs as inside the jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JailUser {
    User,
    Root,
}

impl JailUser {
    /// E2B's two users; anything else is refused like envd's `invalid username`.
    pub(crate) fn parse(name: &str) -> Option<JailUser> {
        match name {
            "user" => Some(JailUser::User),
            "root" => Some(JailUser::Root),
            _ => None,
        }
    }

    pub(crate) fn uid(self) -> u32 {
        match self {
            JailUser::User => 1000,
            JailUser::Root => 0,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            JailUser::User => "user",
            JailUser::Root => "root",
        }
    }

    pub(crate) fn home(self) -> &'static str {
        match self {
            JailUser::User => "/home/user",
            JailUser::Root => "/root",
        }
    }
}

/// Whether sandboxd runs as root (real uid 0).
pub fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// What every jail of one sandboxd shares, prepared once at start-up; failing here is failing to
/// start, never a sandbox with less isolation than promised.
#[derive(Debug)]
pub(crate) struct JailHost {
    pub(crate) root: bool,
    pub(crate) tools: HostTools,
    seccomp: SeccompPrograms,
    /// Always `Some` as root.
    cgroups: Option<Cgroups>,
    pub(crate) forward: ForwardBudget,
}

impl JailHost {
    /// Finds the host programs, compiles the seccomp programs and, as root, readies the cgroups.
    pub(crate) fn prepare(forward_connections: usize) -> Result<JailHost, String> {
        crate::host::keep_inherited_descriptors_out_of_jails();
        let root = is_root();
        let tools = HostTools::resolve(root)?;
        let seccomp = seccomp::programs()?;
        let cgroups = if root { Some(sandbox_cgroups(Path::new("/sys/fs/cgroup"))?) } else { None };
        Ok(JailHost { root, tools, seccomp, cgroups, forward: ForwardBudget::new(forward_connections) })
    }

    /// What a sandbox's CPU limit is and how often it was held to it (root only).
    pub(crate) fn cpu_stats(&self, sandbox_id: &str) -> Option<CpuStats> {
        self.cgroups.as_ref()?.cpu_stats(sandbox_id)
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> JailHost {
        JailHost {
            root: false,
            tools: HostTools::resolve(false).expect("bwrap and prlimit are installed"),
            seccomp: seccomp::programs().expect("the filter compiles"),
            cgroups: None,
            forward: ForwardBudget::new(4),
        }
    }
}

/// The hierarchy at `root`, ready for sandboxes' groups. Without one, a root sandboxd does not
/// start: its sandboxes would run without memory or CPU caps.
fn sandbox_cgroups(root: &Path) -> Result<Cgroups, String> {
    let cgroups = Cgroups::detect(root)
        .ok_or_else(|| format!("no cgroup hierarchy (v1 or v2) at {}: as root, sandboxes need one", root.display()))?;
    cgroups.prepare().map_err(|e| format!("setting up cgroups for sandboxes: {e}"))?;
    tracing::info!(version = ?cgroups.version(), "each sandbox gets cgroups for memory, processes and CPU");
    Ok(cgroups)
}

/// A sandbox's host side: its directory and how to jail processes in it.
#[derive(Debug)]
pub(crate) struct Jail {
    pub(crate) dir: PathBuf,
    hostname: String,
    host_uid: Option<u32>,
    mounted: bool,
    venv: Option<PathBuf>,
    /// The staged `/etc` every jail binds (`template`).
    etc: PathBuf,
    limits: JailLimits,
    base_env: Vec<(String, String)>,
    cgroup: Option<SandboxCgroup>,
    net: Option<SandboxNet>,
    host: Arc<JailHost>,
}

/// A sandbox's directory on the host and the host uid its files belong to (`None` when sandboxd
/// is not root: then they are sandboxd's own).
#[derive(Debug, Clone)]
pub(crate) struct FileRoot {
    pub(crate) dir: PathBuf,
    pub(crate) host_uid: Option<u32>,
}

fn jail_error(what: impl std::fmt::Display) -> impl Fn(std::io::Error) -> SandboxError {
    move |e| SandboxError::Jail(format!("{what}: {e}"))
}

fn write_file(path: &Path, content: &str) -> Result<(), SandboxError> {
    std::fs::write(path, content).map_err(jail_error(path.display()))
}

/// What a new jail is made of.
#[derive(Debug)]
pub(crate) struct JailSpec<'a> {
    pub(crate) dir: PathBuf,
    pub(crate) hostname: &'a str,
    pub(crate) host_uid: Option<u32>,
    pub(crate) venv: Option<PathBuf>,
    pub(crate) etc: PathBuf,
    pub(crate) limits: JailLimits,
    pub(crate) network: &'a SandboxNetwork,
    pub(crate) env_vars: &'a [(String, String)],
}

impl Jail {
    /// Makes the sandbox's directory (a size-limited tmpfs when root), its cgroups, its network
    /// and its `etc` files; on failure nothing of it is left.
    pub(crate) async fn create(spec: JailSpec<'_>, host: Arc<JailHost>) -> Result<Jail, SandboxError> {
        std::fs::create_dir(&spec.dir).map_err(jail_error(spec.dir.display()))?;
        let mut jail = Jail {
            dir: spec.dir,
            hostname: spec.hostname.to_owned(),
            host_uid: spec.host_uid,
            mounted: false,
            venv: spec.venv,
            etc: spec.etc,
            limits: spec.limits,
            base_env: spec.env_vars.to_vec(),
            cgroup: None,
            net: None,
            host,
        };
        if let Err(e) = jail.set_up(spec.network).await {
            jail.destroy().await;
            return Err(e);
        }
        Ok(jail)
    }

    pub(crate) fn file_root(&self) -> FileRoot {
        FileRoot { dir: self.dir.clone(), host_uid: self.host_uid }
    }

    async fn set_up(&mut self, network: &SandboxNetwork) -> Result<(), SandboxError> {
        if let Some(uid) = self.host_uid {
            if let SandboxNetwork::Isolated { forward_ports } = network {
                self.net = Some(SandboxNet::create(forward_ports, &self.host.tools.ip, &self.host.forward).await?);
            }
            if let Some(cgroups) = &self.host.cgroups {
                self.cgroup = Some(cgroups.create(&self.hostname, &self.limits).map_err(SandboxError::Jail)?);
            }
            // Inodes are kernel memory outside the size, and sandboxd makes some of them itself
            // (an upload's directories, charged to sandboxd, not the sandbox): one per 16 KiB.
            let inodes = (self.limits.disk_bytes / (16 << 10)).max(1024);
            let opts = format!("size={},nr_inodes={inodes},mode=0755", self.limits.disk_bytes);
            nix::mount::mount(
                Some("tmpfs"),
                &self.dir,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(opts.as_str()),
            )
            .map_err(|e| SandboxError::Jail(format!("mounting the sandbox's tmpfs: {e}")))?;
            self.mounted = true;
            self.populate()?;
            // The jail's uid 1000 (and 0) map onto this host uid; the home and tmp must be its own.
            for dir in ["home", "tmp"] {
                let path = self.dir.join(dir);
                std::os::unix::fs::chown(&path, Some(uid), Some(uid)).map_err(jail_error(path.display()))?;
            }
        } else {
            self.populate()?;
        }
        // /tmp is shared by both users inside, as on any Linux system.
        let tmp = self.dir.join("tmp");
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .map_err(jail_error(tmp.display()))
    }

    fn populate(&self) -> Result<(), SandboxError> {
        for dir in ["home", "tmp", "etc"] {
            let path = self.dir.join(dir);
            std::fs::create_dir(&path).map_err(jail_error(path.display()))?;
        }
        // Its users and groups are every jail's, in the staged `/etc`; only its name is its own.
        write_file(&self.dir.join("etc/hostname"), &format!("{}\n", self.hostname))
    }

    /// Whether any host process still runs as this sandbox's uid. Zombies do not count: they run
    /// no code and hold no file or mount, and their parent may reap them only much later.
    fn has_processes(uid: u32) -> bool {
        let Ok(dir) = std::fs::read_dir("/proc") else { return false };
        let want = uid.to_string();
        dir.flatten().any(|e| {
            std::fs::read_to_string(e.path().join("status")).is_ok_and(|s| {
                let field =
                    |name: &str| s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1));
                field("Uid:") == Some(&want) && !matches!(field("State:"), Some("Z" | "X"))
            })
        })
    }

    /// Unmounts and removes the sandbox's directory once its processes are gone.
    pub(crate) async fn destroy(&mut self) {
        // Reaping the outer bwrap is not the end: its namespace's init gets its SIGKILL a moment
        // later and then takes the rest with it. Wait for the sandbox's uid to own nothing.
        if let Some(uid) = self.host_uid {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while Self::has_processes(uid) {
                if std::time::Instant::now() > deadline {
                    tracing::warn!(dir = %self.dir.display(), "jailed processes outlived their bwrap");
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        // The namespace goes with the last process that was in it; its forwarders go now.
        self.net = None;
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.remove();
        }
        if self.mounted {
            if let Err(e) = nix::mount::umount(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "umount failed; detaching");
                let _ = nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH);
            }
            self.mounted = false;
        }
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "removing sandbox directory failed");
            }
        }
    }
}

/// Whether `name` is one sandboxd gives a sandbox (`i` + 19 of a-z0-9): the state directory may
/// hold other things, which are not ours to remove.
pub(crate) fn is_sandbox_name(name: &str) -> bool {
    name.len() == 20 && name.starts_with('i') && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Removes what a sandboxd that died without its teardown (SIGKILL, a crash) left in `state_dir`:
/// each sandbox's directory (a tmpfs when root) and its cgroups. The jails themselves ended with it
/// (`--die-with-parent`); a process that did not is killed through its cgroup. Those sandboxes are
/// in no registry any more, so nothing else would ever remove them. Returns how many it removed.
pub(crate) fn remove_leftovers(state_dir: &Path, host: &JailHost) -> usize {
    let Ok(entries) = std::fs::read_dir(state_dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !is_sandbox_name(&id) {
            continue;
        }
        if let Some(cgroups) = &host.cgroups {
            cgroups.remove_leftover(&id);
        }
        let dir = entry.path();
        if template::is_mount_point(&dir) {
            let _ = nix::mount::umount2(&dir, MntFlags::MNT_DETACH);
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "removing a leftover sandbox directory failed"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_root_no_cgroups_is_a_refusal_to_start_not_a_downgrade() {
        let empty = tempfile::tempdir().unwrap();
        let err = sandbox_cgroups(empty.path()).unwrap_err();
        assert!(err.contains("no cgroup hierarchy"), "{err}");
        // A v2 tree without the cpu controller is refused by name as well.
        std::fs::write(empty.path().join("cgroup.controllers"), "memory pids\n").unwrap();
        let err = sandbox_cgroups(empty.path()).unwrap_err();
        assert!(err.contains("controllers cpu are not available"), "{err}");
    }
}
