//! Each sandbox's control groups: the limits rlimits cannot express — resident memory of the whole
//! sandbox, its process count across every uid it uses, and its CPU time per period.
//!
//! Both hierarchies are supported. On cgroup v2 (one unified tree), sandboxd makes
//! `<root>/mayfly-sandboxd`, enables the `memory`, `pids` and `cpu` controllers for it and its
//! children, and gives each sandbox `mayfly-sandboxd/<id>` with `memory.max` (and no swap),
//! `pids.max` and `cpu.max`. On cgroup v1 (a tree per controller) each sandbox gets
//! `<root>/<controller>/mayfly-sandboxd/<id>` in `memory`, `pids` and `cpu`, with
//! `memory.limit_in_bytes`, `pids.max` and `cpu.cfs_quota_us`/`cpu.cfs_period_us`. As root, no
//! usable hierarchy at all is an error at start-up: a sandbox without them would have no memory or
//! CPU cap, and that must not happen silently.

use std::path::{Path, PathBuf};

use super::JailLimits;

/// The group under which every sandbox's group is made.
const GROUP: &str = "mayfly-sandboxd";
/// The controllers a sandbox is limited by.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
/// The CPU period the quota is a share of, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// Which kind of hierarchy holds the controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// The host's cgroup hierarchy, as sandboxd uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cgroups {
    root: PathBuf,
    version: Version,
}

/// A sandbox's CPU limit and how often it was held to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStats {
    pub quota_us: u64,
    pub period_us: u64,
    /// Periods in which the sandbox used up its quota and had to wait.
    pub throttled_periods: u64,
}

/// One sandbox's groups: one directory on v2, one per controller on v1.
#[derive(Debug)]
pub(crate) struct SandboxCgroup {
    dirs: Vec<PathBuf>,
    version: Version,
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))
}

impl Cgroups {
    /// The hierarchy mounted at `root` (normally `/sys/fs/cgroup`): v2 when it is the unified tree,
    /// v1 when the memory controller has a tree of its own under it; `None` otherwise.
    pub(crate) fn detect(root: &Path) -> Option<Cgroups> {
        let version = if root.join("cgroup.controllers").is_file() {
            Version::V2
        } else if root.join("memory/cgroup.procs").is_file() {
            Version::V1
        } else {
            return None;
        };
        Some(Cgroups { root: root.to_owned(), version })
    }

    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Makes sandboxd's own group, with the controllers its children need; fails naming what is
    /// missing.
    pub(crate) fn prepare(&self) -> Result<(), String> {
        match self.version {
            Version::V2 => {
                let available = std::fs::read_to_string(self.root.join("cgroup.controllers")).unwrap_or_default();
                let missing: Vec<&str> =
                    CONTROLLERS.iter().copied().filter(|c| !available.split_whitespace().any(|a| a == *c)).collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "the cgroup v2 controllers {} are not available in {}",
                        missing.join(", "),
                        self.root.display()
                    ));
                }
                let enable = CONTROLLERS.map(|c| format!("+{c}")).join(" ");
                let group = self.root.join(GROUP);
                write(&self.root.join("cgroup.subtree_control"), &enable)?;
                std::fs::create_dir_all(&group).map_err(|e| format!("{}: {e}", group.display()))?;
                write(&group.join("cgroup.subtree_control"), &enable)
            }
            Version::V1 => {
                for controller in CONTROLLERS {
                    let tree = self.root.join(controller);
                    if !tree.join("cgroup.procs").is_file() {
                        return Err(format!(
                            "the cgroup v1 controller {controller} is not mounted at {}",
                            tree.display()
                        ));
                    }
                    let group = tree.join(GROUP);
                    std::fs::create_dir_all(&group).map_err(|e| format!("{}: {e}", group.display()))?;
                }
                Ok(())
            }
        }
    }

    /// The directories of sandbox `name`'s groups.
    fn dirs(&self, name: &str) -> Vec<PathBuf> {
        match self.version {
            Version::V2 => vec![self.root.join(GROUP).join(name)],
            Version::V1 => CONTROLLERS.iter().map(|c| self.root.join(c).join(GROUP).join(name)).collect(),
        }
    }

    /// The limit files of sandbox `name` and what each holds.
    fn limit_files(&self, name: &str, limits: &JailLimits) -> Vec<(PathBuf, String)> {
        let quota = CPU_PERIOD_US * u64::from(limits.cpu_percent) / 100;
        match self.version {
            Version::V2 => {
                let dir = self.root.join(GROUP).join(name);
                let mut files = vec![
                    (dir.join("memory.max"), limits.memory_bytes.to_string()),
                    (dir.join("pids.max"), limits.max_processes.to_string()),
                    (dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}")),
                ];
                // Swap would let the sandbox hold more than memory.max; not every kernel accounts it.
                if dir.join("memory.swap.max").exists() {
                    files.push((dir.join("memory.swap.max"), "0".into()));
                }
                files
            }
            Version::V1 => {
                let dir = |controller: &str| self.root.join(controller).join(GROUP).join(name);
                vec![
                    (dir("memory").join("memory.limit_in_bytes"), limits.memory_bytes.to_string()),
                    (dir("pids").join("pids.max"), limits.max_processes.to_string()),
                    (dir("cpu").join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string()),
                    (dir("cpu").join("cpu.cfs_quota_us"), quota.to_string()),
                ]
            }
        }
    }

    /// Makes sandbox `name`'s groups with their limits; on failure nothing of them is left.
    pub(crate) fn create(&self, name: &str, limits: &JailLimits) -> Result<SandboxCgroup, String> {
        let group = SandboxCgroup { dirs: self.dirs(name), version: self.version };
        let made = group
            .dirs
            .iter()
            .try_for_each(|dir| std::fs::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display())))
            .and_then(|()| self.limit_files(name, limits).iter().try_for_each(|(file, value)| write(file, value)));
        match made {
            Ok(()) => Ok(group),
            Err(e) => {
                group.remove();
                Err(e)
            }
        }
    }

    /// Kills whatever still runs in sandbox `name`'s groups (left by a sandboxd that died) and
    /// removes them.
    pub(crate) fn remove_leftover(&self, name: &str) {
        let group = SandboxCgroup { dirs: self.dirs(name), version: self.version };
        for dir in &group.dirs {
            kill_members(dir);
        }
        group.remove();
    }

    /// The CPU limit of sandbox `name` and how often it was reached.
    pub(crate) fn cpu_stats(&self, name: &str) -> Option<CpuStats> {
        let read = |path: PathBuf| std::fs::read_to_string(path).ok();
        let (dir, (quota_us, period_us)) = match self.version {
            Version::V2 => {
                let dir = self.root.join(GROUP).join(name);
                let max = read(dir.join("cpu.max"))?;
                let (quota, period) = max.trim().split_once(' ')?;
                (dir, (quota.parse().ok()?, period.parse().ok()?))
            }
            Version::V1 => {
                let dir = self.root.join("cpu").join(GROUP).join(name);
                let quota = read(dir.join("cpu.cfs_quota_us"))?.trim().parse().ok()?;
                let period = read(dir.join("cpu.cfs_period_us"))?.trim().parse().ok()?;
                (dir, (quota, period))
            }
        };
        let stat = read(dir.join("cpu.stat"))?;
        let throttled_periods = stat.lines().find_map(|l| l.strip_prefix("nr_throttled "))?.trim().parse().ok()?;
        Some(CpuStats { quota_us, period_us, throttled_periods })
    }
}

impl SandboxCgroup {
    /// The files a process writes `0` to, to join every group of the sandbox itself.
    ///
    /// On v1 that is `tasks`, which moves the writing thread alone — the whole process, for a
    /// single-threaded one such as a child between fork and exec — and which the kernel lets skip
    /// the host-wide lock that `cgroup.procs` takes (every fork and exit shares it): taking it
    /// waits for an RCU grace period, measured at 5–12 ms a process start (docs/performance.md,
    /// "Process start"). v2 has no such file for domain groups.
    pub(crate) fn join_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        let file = match self.version {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        };
        self.dirs.iter().map(move |dir| dir.join(file))
    }

    /// Removes the groups; they must be empty by now (the sandbox's processes are gone).
    pub(crate) fn remove(&self) {
        for dir in &self.dirs {
            if let Err(e) = std::fs::remove_dir(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(cgroup = %dir.display(), error = %e, "removing a sandbox's cgroup failed");
                }
            }
        }
    }
}

/// Kills every process in the group at `dir` (waiting a little for them to go).
fn kill_members(dir: &Path) {
    // cgroup v2 kills the whole group in one write (Linux 5.14); otherwise each pid in turn.
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        if procs.trim().is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        for pid in procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory shaped like a cgroup v2 root, as far as sandboxd reads and writes it.
    fn fake_v2(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        root
    }

    #[test]
    fn v2_enables_the_controllers_and_writes_each_limit() {
        let root = fake_v2("cpuset cpu io memory hugetlb pids rdma misc\n");
        let cgroups = Cgroups::detect(root.path()).unwrap();
        assert_eq!(cgroups.version(), Version::V2);
        cgroups.prepare().unwrap();
        let read = |rel: &str| std::fs::read_to_string(root.path().join(rel)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+memory +pids +cpu");
        assert_eq!(read("mayfly-sandboxd/cgroup.subtree_control"), "+memory +pids +cpu");

        let limits =
            JailLimits { memory_bytes: 1 << 30, max_processes: 256, cpu_percent: 150, ..JailLimits::default() };
        let group = cgroups.create("iabc", &limits).unwrap();
        assert_eq!(read("mayfly-sandboxd/iabc/memory.max"), "1073741824");
        assert_eq!(read("mayfly-sandboxd/iabc/pids.max"), "256");
        assert_eq!(read("mayfly-sandboxd/iabc/cpu.max"), "150000 100000");
        let joins: Vec<PathBuf> = group.join_files().collect();
        assert_eq!(joins, [root.path().join("mayfly-sandboxd/iabc/cgroup.procs")]);

        std::fs::write(
            root.path().join("mayfly-sandboxd/iabc/cpu.stat"),
            "usage_usec 5\nnr_periods 9\nnr_throttled 4\n",
        )
        .unwrap();
        let stats = cgroups.cpu_stats("iabc").unwrap();
        assert_eq!(stats, CpuStats { quota_us: 150_000, period_us: 100_000, throttled_periods: 4 });
    }

    #[test]
    fn v2_without_a_controller_is_refused_by_name() {
        let root = fake_v2("cpuset io memory pids\n");
        let err = Cgroups::detect(root.path()).unwrap().prepare().unwrap_err();
        assert!(err.contains("controllers cpu are not available"), "{err}");
    }

    #[test]
    fn v1_writes_a_group_per_controller() {
        let root = tempfile::tempdir().unwrap();
        for controller in CONTROLLERS {
            std::fs::create_dir(root.path().join(controller)).unwrap();
            std::fs::write(root.path().join(controller).join("cgroup.procs"), "").unwrap();
        }
        let cgroups = Cgroups::detect(root.path()).unwrap();
        assert_eq!(cgroups.version(), Version::V1);
        cgroups.prepare().unwrap();
        let group = cgroups.create("iabc", &JailLimits::default()).unwrap();
        let read = |rel: &str| std::fs::read_to_string(root.path().join(rel)).unwrap();
        assert_eq!(read("memory/mayfly-sandboxd/iabc/memory.limit_in_bytes"), (1u64 << 30).to_string());
        assert_eq!(read("pids/mayfly-sandboxd/iabc/pids.max"), "256");
        assert_eq!(read("cpu/mayfly-sandboxd/iabc/cpu.cfs_quota_us"), "100000");
        assert_eq!(read("cpu/mayfly-sandboxd/iabc/cpu.cfs_period_us"), "100000");
        let joins: Vec<PathBuf> = group.join_files().collect();
        let tasks = |controller: &str| root.path().join(controller).join("mayfly-sandboxd/iabc/tasks");
        assert_eq!(joins, [tasks("memory"), tasks("pids"), tasks("cpu")], "a thread joins by itself, without the lock");
    }

    #[test]
    fn no_hierarchy_is_none() {
        assert_eq!(Cgroups::detect(tempfile::tempdir().unwrap().path()), None);
    }
}
