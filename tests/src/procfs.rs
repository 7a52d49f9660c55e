//! What the kernel says of this host's processes and mounts, read from `/proc`: a process's
//! descendants, its memory, its command line, and which processes or mounts name a directory.

use std::path::Path;

/// The ids of every process that exists now.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

/// A process's command line, its arguments joined by spaces; `None` once it is gone.
pub fn cmdline(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&bytes).replace('\0', " "))
}

/// Whether one of the process's arguments starts with `prefix`.
pub fn has_argument_starting_with(pid: u32, prefix: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg.starts_with(prefix.as_bytes())))
}

/// The name of the process's program (`comm`); empty once it is gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_owned()
}

/// The fields of `/proc/<pid>/stat` after the command, which may itself hold spaces and `)`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    fields_after_command(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The fields of a `stat` line after the command: the first is field 3, the state.
fn fields_after_command(stat: &str) -> Option<Vec<String>> {
    Some(stat.rsplit(')').next()?.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process of the process group `pgid` still runs: one that has exited but is not yet
/// reaped (a zombie, state `Z`) holds no file or socket any more, so it does not count.
pub fn group_runs(pgid: u32) -> bool {
    pids().into_iter().filter_map(stat_fields).any(|fields| {
        fields.first().is_some_and(|state| state != "Z")
            && fields.get(2).is_some_and(|group| *group == pgid.to_string())
    })
}

/// Milliseconds of a tick of `/proc`'s CPU times (USER_HZ, which Linux fixes at 100 a second).
const TICK_MS: f64 = 10.0;

/// A process's CPU time in ms: its own (`utime + stime`) and that of its children it has reaped
/// (`cutime + cstime`, fields 14 to 17); `None` once it is gone.
pub fn cpu_ms(pid: u32) -> Option<(f64, f64)> {
    cpu_of(&stat_fields(pid)?)
}

fn cpu_of(fields: &[String]) -> Option<(f64, f64)> {
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(((field(14)? + field(15)?) * TICK_MS, (field(16)? + field(17)?) * TICK_MS))
}

/// The machine's busy CPU time since boot in ms, every core: `/proc/stat`'s `cpu` line but idle
/// and iowait.
pub fn machine_busy_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).map_while(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    Some(busy as f64 * TICK_MS)
}

/// `pid` and all its descendants.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> =
        pids().into_iter().filter_map(|child| Some((child, stat_fields(child)?.get(1)?.parse().ok()?))).collect();
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

/// Live processes whose command line contains `path`, but for `except` (sandboxd itself), as
/// `pid cmdline`.
pub fn processes_mentioning(path: &Path, except: Option<u32>) -> Vec<String> {
    let want = path.to_string_lossy().into_owned();
    pids()
        .into_iter()
        .filter(|pid| Some(*pid) != except)
        .filter_map(|pid| {
            let cmdline = cmdline(pid)?;
            let zombie = stat_fields(pid)?.first().is_some_and(|state| state.starts_with('Z'));
            (cmdline.contains(&want) && !zombie).then(|| format!("{pid} {}", cmdline.trim()))
        })
        .collect()
}

/// Mount points at or under `dir` from the kernel's mount table, but for hidden ones (sandboxd's
/// own templates, which live as long as it does).
pub fn mounts_under(dir: &Path) -> anyhow::Result<Vec<String>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dir = dir.to_string_lossy();
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|m| m.starts_with(&*dir) && !m.contains("/."))
        .map(str::to_owned)
        .collect())
}

/// The host processes that belong to sandbox `sandbox_id`: in its cgroups (which jailed code
/// cannot leave), naming it (the jail's `bwrap`), or carrying `mark` in their command line or
/// environment. Zombies are left out: they run nothing and hold nothing.
pub fn sandbox_processes(sandbox_id: &str, mark: &str) -> Vec<String> {
    let cgroup = format!("/mayfly-sandboxd/{sandbox_id}");
    let mut found = Vec::new();
    for pid in pids() {
        let dir = Path::new("/proc").join(pid.to_string());
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else { continue };
        let field = |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1));
        if matches!(field("State:"), Some("Z" | "X")) {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        let cgroups = std::fs::read(dir.join("cgroup")).unwrap_or_default();
        let has = |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        if has(&cgroups, &cgroup) || has(&cmdline, sandbox_id) || has(&cmdline, mark) || has(&environ, mark) {
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{pid} uid={:?} {args}", field("Uid:")));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_a_command_with_spaces() {
        let fields = fields_after_command("42 (my (odd) prog) S 1 42 42 0 -1 4194304 100 0 0 0 7 3 5 1 20 0").unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(cpu_of(&fields), Some((100.0, 60.0)));
        assert!(cpu_ms(std::process::id()).is_some() && machine_busy_ms().is_some());
    }
}
