//! How a sandbox's process is put into a bubblewrap jail.
//!
//! Design. A sandbox is a host directory, not a long-lived process: `<state_dir>/<id>` (a tmpfs
//! mounted with `size=` when sandboxd is root, a plain directory otherwise) holds `home/`, `tmp/`
//! and the sandbox's generated `etc/passwd` and `etc/group`. Every process of the sandbox — the
//! ones clients start and the helpers that serve the file APIs — is its own `bwrap` that
//! bind-mounts `home/` at `/home/user` and `tmp/` at `/tmp`, so files persist across processes.
//!
//! Each jail gets new user, pid, ipc, uts and (where possible) cgroup namespaces; the hostname is
//! the sandbox id. The network is the sandbox's own when sandboxd is root (see `netns`: loopback
//! only, plus the host ports it is told to forward, such as the local Postgres), shared by the
//! sandbox's processes; without root it is the host's. The root is an empty tmpfs onto which only
//! `/usr` (plus the `/bin`-style links), `/proc`, a minimal `/dev` and an allow-list of `/etc`
//! entries are mounted read-only; `/root`, `/etc/shadow`, the project checkout, `/work` and other
//! sandboxes' directories simply do not exist inside, and the jail's root itself is remounted
//! read-only. The `python` template adds its venv read-only at `/opt/venv`, with its site-packages
//! on `PYTHONPATH` so the system `/usr/bin/python3` imports psycopg.
//!
//! Identity. Inside, the process is uid 1000 `user` (or uid 0 `root`, still unprivileged: it is
//! root of a user namespace only). When sandboxd runs as root, `setpriv` first drops to a host uid
//! of the sandbox's own (`jail_uid_base + n`) with no groups and no capabilities, so even an
//! escape lands as an unprivileged uid that owns nothing but that sandbox's directory, and
//! `RLIMIT_NPROC` (counted per real uid) is a per-sandbox process limit.
//!
//! Limits. `prlimit` sets process count, address space, file size and CPU time before `setpriv`
//! and `bwrap` exec (both exec in place, so the jail inherits them), with core dumps off. When
//! sandboxd is root and the cgroup hierarchy is writable, each sandbox also gets a memory cgroup
//! (a hard cap on resident memory, which rlimits cannot express) and a pids cgroup; a tiny `sh`
//! puts itself into them and then execs `prlimit`, so no process of the jail starts outside.
//!
//! Cleanup. sandboxd's child is the `bwrap` process itself (`prlimit` and `setpriv` exec).
//! `--die-with-parent` plus the pid namespace make one `SIGKILL` of that child enough: bwrap's
//! init dies, and the kernel kills every process of the namespace. If sandboxd itself dies, the
//! same chain ends every jail. The environment is cleared and rebuilt: `PATH`, `HOME`, `USER`,
//! `LOGNAME`, `E2B_SANDBOX=true`, then the sandbox's `envVars`, then the request's `envs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::netns::{SandboxNet, SandboxNetwork};
use crate::sandbox::SandboxError;

/// Resource limits applied to every jailed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JailLimits {
    /// Size of the sandbox's tmpfs (home and tmp together), when running as root.
    pub disk_bytes: u64,
    pub max_processes: u64,
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub cpu_seconds: u64,
    /// Resident memory of the whole sandbox (memory cgroup, when available).
    pub memory_bytes: u64,
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
        }
    }
}

/// Host directories every template sees read-only; the `/bin`-style ones are links into `/usr` on
/// merged-usr systems and are recreated as links.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The `/etc` entries a template needs: dynamic linking, TLS roots, name resolution, time zone,
/// shell profile, alternatives. Notably absent: shadow, gshadow, sudoers, ssh keys.
const ETC_ALLOW: &[&str] = &[
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "hosts",
    "resolv.conf",
    "host.conf",
    "gai.conf",
    "protocols",
    "services",
    "mime.types",
    "bash.bashrc",
    "profile",
    "profile.d",
    "inputrc",
    "terminfo",
    "python3",
    "python3.11",
    "os-release",
    "debian_version",
    "locale.alias",
];

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

    fn uid(self) -> u32 {
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

/// Whether sandboxd runs as root (real uid 0), read from `/proc` to stay free of `unsafe`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// A sandbox's host side: its directory and how to jail processes in it.
#[derive(Debug)]
pub(crate) struct Jail {
    pub(crate) dir: PathBuf,
    hostname: String,
    host_uid: Option<u32>,
    mounted: bool,
    venv: Option<PathBuf>,
    limits: JailLimits,
    base_env: Vec<(String, String)>,
    cgroups: Vec<PathBuf>,
    net: Option<SandboxNet>,
}

/// The cgroup v1 controllers a sandbox gets, with the limit file and value for each.
fn cgroup_limits(limits: &JailLimits) -> [(&'static str, &'static str, u64); 2] {
    [("memory", "memory.limit_in_bytes", limits.memory_bytes), ("pids", "pids.max", limits.max_processes)]
}

/// Makes the sandbox's cgroups under `/sys/fs/cgroup/<controller>/mayfly-sandboxd/<name>`; returns
/// the ones that exist with their limit set. Hosts without writable cgroup v1 get none, and the
/// rlimits still apply.
fn create_cgroups(name: &str, limits: &JailLimits) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for (controller, file, value) in cgroup_limits(limits) {
        let root = Path::new("/sys/fs/cgroup").join(controller);
        if !root.join("cgroup.procs").exists() {
            continue;
        }
        let dir = root.join("mayfly-sandboxd").join(name);
        let ok = std::fs::create_dir_all(&dir).is_ok() && std::fs::write(dir.join(file), value.to_string()).is_ok();
        if ok {
            made.push(dir);
        } else {
            tracing::warn!(controller, "cannot set up a cgroup for the sandbox; rlimits only");
            let _ = std::fs::remove_dir(&dir);
        }
    }
    made
}

async fn run_checked(cmd: &mut Command) -> Result<(), SandboxError> {
    let out = cmd.stdin(Stdio::null()).output().await.map_err(|e| SandboxError::Jail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Jail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

fn write_file(path: &Path, content: &str) -> Result<(), SandboxError> {
    std::fs::write(path, content).map_err(|e| SandboxError::Jail(format!("{}: {e}", path.display())))
}

impl Jail {
    /// Makes the sandbox's directory (a size-limited tmpfs when root) and its `etc` files.
    pub(crate) async fn create(
        dir: PathBuf,
        hostname: &str,
        host_uid: Option<u32>,
        venv: Option<PathBuf>,
        limits: JailLimits,
        network: &SandboxNetwork,
        env_vars: &[(String, String)],
    ) -> Result<Jail, SandboxError> {
        std::fs::create_dir(&dir).map_err(|e| SandboxError::Jail(format!("{}: {e}", dir.display())))?;
        let mut jail = Jail {
            dir,
            hostname: hostname.to_owned(),
            host_uid,
            mounted: false,
            venv,
            limits,
            base_env: env_vars.to_vec(),
            cgroups: Vec::new(),
            net: None,
        };
        if host_uid.is_some() {
            if let SandboxNetwork::Isolated { forward_ports } = network {
                match SandboxNet::create(forward_ports).await {
                    Ok(net) => jail.net = Some(net),
                    Err(e) => {
                        jail.destroy().await;
                        return Err(e);
                    }
                }
            }
            jail.cgroups = create_cgroups(hostname, &limits);
            let opts = format!("size={},mode=0755,nosuid,nodev", limits.disk_bytes);
            if let Err(e) =
                run_checked(Command::new("mount").args(["-t", "tmpfs", "-o", &opts, "tmpfs"]).arg(&jail.dir)).await
            {
                jail.destroy().await;
                return Err(e);
            }
            jail.mounted = true;
        }
        if let Err(e) = jail.populate().await {
            jail.destroy().await;
            return Err(e);
        }
        Ok(jail)
    }

    async fn populate(&self) -> Result<(), SandboxError> {
        let mk = |p: &Path| std::fs::create_dir(p).map_err(|e| SandboxError::Jail(format!("{}: {e}", p.display())));
        mk(&self.dir.join("home"))?;
        mk(&self.dir.join("tmp"))?;
        mk(&self.dir.join("etc"))?;
        write_file(
            &self.dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000:user:/home/user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        )?;
        write_file(&self.dir.join("etc/group"), "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")?;
        write_file(&self.dir.join("etc/hostname"), &format!("{}\n", self.hostname))?;
        if let Some(uid) = self.host_uid {
            // The jail's uid 1000 (and 0) map onto this host uid; the home and tmp must be its own.
            let owner = format!("{uid}:{uid}");
            run_checked(Command::new("chown").arg(&owner).arg(self.dir.join("home")).arg(self.dir.join("tmp"))).await?;
        }
        // /tmp is shared by both users inside, as on any Linux system.
        run_checked(Command::new("chmod").arg("1777").arg(self.dir.join("tmp"))).await?;
        Ok(())
    }

    /// A command that runs `argv` inside the jail as `user` in `cwd`, with `envs` on top of the
    /// sandbox's environment.
    pub(crate) fn command(&self, user: JailUser, cwd: &str, argv: &[String], envs: &[(String, String)]) -> Command {
        // nsenter (into the sandbox's network), prlimit, setpriv and bwrap each exec the next.
        let mut chain = Vec::new();
        if let Some(net) = &self.net {
            chain.extend([String::from("nsenter"), format!("--net={}", net.path()), String::from("--")]);
        }
        chain.push(String::from("prlimit"));
        let mut cmd = if self.cgroups.is_empty() {
            let mut cmd = Command::new(&chain[0]);
            cmd.args(&chain[1..]);
            cmd
        } else {
            // `$$` is the shell, which then becomes the rest of the chain by exec: the whole jail
            // is inside the cgroups from its first instruction.
            let join: String = self
                .cgroups
                .iter()
                .map(|dir| format!("echo $$ > '{}' || exit 125; ", dir.join("cgroup.procs").display()))
                .collect();
            let mut cmd = Command::new("/bin/sh");
            cmd.args(["-c", &format!("{join}exec \"$@\""), "sh"]).args(&chain);
            cmd
        };
        let l = &self.limits;
        cmd.arg(format!("--nproc={}", l.max_processes))
            .arg(format!("--as={}", l.address_space_bytes))
            .arg(format!("--fsize={}", l.file_size_bytes))
            .arg(format!("--cpu={}", l.cpu_seconds))
            .arg("--core=0")
            .arg("--");
        if let Some(uid) = self.host_uid {
            cmd.arg("setpriv").arg(format!("--reuid={uid}")).arg(format!("--regid={uid}")).args([
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]);
        }
        cmd.arg("bwrap");
        let uid = user.uid().to_string();
        cmd.args(["--unshare-user", "--uid", &uid, "--gid", &uid]);
        cmd.args(["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]);
        cmd.args(["--hostname", &self.hostname, "--die-with-parent", "--new-session"]);
        for dir in SYSTEM_DIRS {
            let p = Path::new(dir);
            match std::fs::read_link(p) {
                Ok(target) => {
                    cmd.arg("--symlink").arg(target).arg(p);
                }
                Err(_) if p.is_dir() => {
                    cmd.arg("--ro-bind").arg(p).arg(p);
                }
                Err(_) => {}
            }
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--dir", "/etc"]);
        for name in ETC_ALLOW {
            let p = Path::new("/etc").join(name);
            cmd.arg("--ro-bind-try").arg(&p).arg(&p);
        }
        for name in ["passwd", "group", "hostname"] {
            cmd.arg("--ro-bind").arg(self.dir.join("etc").join(name)).arg(Path::new("/etc").join(name));
        }
        cmd.arg("--bind").arg(self.dir.join("home")).arg("/home/user");
        cmd.arg("--bind").arg(self.dir.join("tmp")).arg("/tmp");
        cmd.args(["--dir", "/root"]);
        if let Some(venv) = &self.venv {
            cmd.arg("--ro-bind").arg(venv).arg("/opt/venv");
        }
        // The jail's own root tmpfs (holding /etc, /root and the mount points) is frozen too.
        cmd.args(["--remount-ro", "/"]);
        cmd.args(["--chdir", cwd, "--"]).args(argv);

        cmd.env_clear();
        let mut path = String::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if self.venv.is_some() {
            path = format!("/opt/venv/bin:{path}");
            if let Some(sp) = self.venv_site_packages() {
                cmd.env("PYTHONPATH", sp);
            }
        }
        cmd.env("PATH", path)
            .env("HOME", user.home())
            .env("USER", user.name())
            .env("LOGNAME", user.name())
            .env("E2B_SANDBOX", "true");
        cmd.envs(self.base_env.iter().map(|(k, v)| (k, v)));
        cmd.envs(envs.iter().map(|(k, v)| (k, v)));
        cmd.kill_on_drop(true);
        cmd
    }

    /// `lib/python3.X/site-packages` of the venv as seen inside the jail.
    fn venv_site_packages(&self) -> Option<String> {
        let venv = self.venv.as_ref()?;
        let lib = std::fs::read_dir(venv.join("lib")).ok()?;
        lib.filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("python3"))
            .map(|n| format!("/opt/venv/lib/{n}/site-packages"))
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
        for dir in std::mem::take(&mut self.cgroups) {
            if let Err(e) = std::fs::remove_dir(&dir) {
                tracing::warn!(cgroup = %dir.display(), error = %e, "removing the sandbox's cgroup failed");
            }
        }
        if self.mounted {
            if let Err(e) = run_checked(Command::new("umount").arg(&self.dir)).await {
                tracing::warn!(dir = %self.dir.display(), error = %e, "umount failed; detaching");
                let _ = run_checked(Command::new("umount").arg("-l").arg(&self.dir)).await;
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

/// Removes what a sandboxd that died without its teardown (SIGKILL, a crash) left in `state_dir`:
/// each sandbox's directory (a tmpfs when root) and its cgroups. The jails themselves ended with it
/// (`--die-with-parent`); a process that did not is killed through its cgroup. Those sandboxes are
/// in no registry any more, so nothing else would ever remove them. Returns how many it removed.
pub(crate) fn remove_leftovers(state_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(state_dir) else { return 0 };
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
        // Only names sandboxd itself gives (`i` + 19 of a-z0-9): the directory may be shared.
        let ours =
            id.len() == 20 && id.starts_with('i') && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ours {
            continue;
        }
        for (controller, _, _) in cgroup_limits(&JailLimits::default()) {
            remove_cgroup(&Path::new("/sys/fs/cgroup").join(controller).join("mayfly-sandboxd").join(&id));
        }
        let dir = entry.path();
        let mounted = mounts.lines().any(|line| line.split(' ').nth(4) == dir.to_str());
        if mounted {
            let _ = std::process::Command::new("umount").arg("-l").arg(&dir).stderr(Stdio::null()).status();
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "removing a leftover sandbox directory failed"),
        }
    }
    removed
}

/// Kills whatever is still in a leftover cgroup, then removes it once it is empty.
fn remove_cgroup(cgroup: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(procs) = std::fs::read_to_string(cgroup.join("cgroup.procs")) {
        if procs.trim().is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        for pid in procs.split_whitespace() {
            let _ = std::process::Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if let Err(e) = std::fs::remove_dir(cgroup) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(cgroup = %cgroup.display(), error = %e, "removing a leftover cgroup failed");
        }
    }
}

/// The floor the benchmark compares against: a bare `bwrap … true` with the same namespaces and
/// system mounts, no sandbox directory, no limits.
pub fn bwrap_baseline_command() -> std::process::Command {
    let mut cmd = std::process::Command::new("bwrap");
    cmd.args(["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]);
    cmd.args(["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"]);
    cmd.args(["--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--", "true"]);
    cmd
}
