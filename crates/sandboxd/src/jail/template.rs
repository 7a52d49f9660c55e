//! The templates sandboxd offers, and the files a template adds to its jails — the `mayfly`
//! template's venv — as jails mount them.
//!
//! Why a copy. A bind mount shows inside the jail, in `/proc/self/mountinfo`, the path of its
//! source relative to the source's filesystem: bind-mounting `<checkout>/tools/sandbox-venv` would
//! tell every turn where the checkout is, and from there where every other sandbox's directory is.
//! As root, sandboxd therefore copies the venv once, at start-up, onto a tmpfs of its own
//! (`<state_dir>/.templates`, bound read-only into every jail), so the jail sees only `tmpfs` and
//! `/mayfly`. Nothing depends on that path being secret — no host program takes a path from a
//! tenant — but nothing needs to tell it either. Without root there is no tmpfs to make, and the
//! venv is mounted from where it is.
//!
//! The jails' `/etc` is staged the same way, once (`<state_dir>/.templates/etc`, a plain directory
//! without root): the allowed host entries that everyone may read, plus the jails' own `passwd`
//! and `group`. A jail binds it whole, and its own `hostname` on top — two mounts where binding each
//! entry took thirty, and every process of every jail paid for each. It is a copy taken at
//! start-up: a change to the host's `/etc` reaches new jails when sandboxd restarts.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The templates sandboxd knows: E2B's public `base`, and `mayfly`, the template the repository's
/// `templates/mayfly/` builds on E2B (python3 with psycopg, Node, bash), so that tests and the
/// local stack use the names a real deployment does (docs/templates.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Template {
    Base,
    Mayfly,
}

impl Template {
    pub(crate) const ALL: [Template; 2] = [Template::Base, Template::Mayfly];

    /// `base`/`mayfly`, optionally with a `:tag`.
    pub(crate) fn parse(id: &str) -> Option<Template> {
        let name = id.split(':').next().unwrap_or_default();
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Template::Base => "base",
            Template::Mayfly => "mayfly",
        }
    }

    /// Whether the caller's team built it, as E2B tells an alias lookup: `base` is E2B's own
    /// (public, not the caller's), `mayfly` the team's own build.
    pub(crate) fn is_callers(self) -> bool {
        self == Template::Mayfly
    }
}

/// The directory under the state directory where the templates' tmpfs is mounted.
const TEMPLATES: &str = ".templates";

/// The `/etc` entries a template needs: dynamic linking, TLS roots, name resolution, time zone,
/// shell profile, alternatives. Notably absent: shadow, gshadow, sudoers, ssh keys.
pub(super) const ETC_ALLOW: &[&str] = &[
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

/// Every jail's users and groups: its two users and `nobody`.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000:user:/home/user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";

/// The templates' files, ready to mount.
#[derive(Debug)]
pub(crate) struct Templates {
    /// What the `mayfly` template mounts at `/opt/venv`.
    pub(crate) python_venv: Option<PathBuf>,
    /// What every jail mounts at `/etc`.
    pub(crate) etc: PathBuf,
    /// Where the copies are, and whether it is a tmpfs sandboxd mounted.
    dir: PathBuf,
    mounted: bool,
}

/// Whether `path` is a mount point of this mount namespace.
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts.lines().any(|line| line.split(' ').nth(4) == path.to_str())
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

/// Bytes (rounded up to whole pages per file) and entries under `dir`, links not followed.
fn footprint(dir: &Path) -> std::io::Result<u64> {
    std::fs::read_dir(dir)?.map(|entry| entry_footprint(&entry?.path())).sum()
}

/// What the entry `path` takes, as [`footprint`] counts: a page, plus its contents.
fn entry_footprint(path: &Path) -> std::io::Result<u64> {
    let meta = std::fs::symlink_metadata(path)?;
    let contents = if meta.is_dir() {
        footprint(path)?
    } else if meta.is_file() {
        meta.len().div_ceil(4096) * 4096
    } else {
        0
    };
    Ok(4096 + contents)
}

/// Copies `from` into `to` (which must not exist): directories, files with their modes, and
/// symbolic links as links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    copy_entry(from, to, &|_| true)
}

/// Copies the entry `from` to `to` as [`copy_tree`] does, of it only what `keep` keeps.
fn copy_entry(from: &Path, to: &Path, keep: &dyn Fn(&std::fs::Metadata) -> bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        return std::os::unix::fs::symlink(std::fs::read_link(from)?, to);
    }
    if !keep(&meta) {
        return Ok(());
    }
    if meta.is_dir() {
        std::fs::create_dir(to)?;
        std::fs::set_permissions(to, meta.permissions())?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_entry(&entry.path(), &to.join(entry.file_name()), keep)?;
        }
    } else if meta.is_file() {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// What of the host's `/etc` a jail may see: what everyone may read (a directory: list and
/// enter). A jail's users could not read the rest anyway (`ssl/private`): it is not copied at all.
fn readable_by_all(meta: &std::fs::Metadata) -> bool {
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
    let needed = if meta.is_dir() { 0o005 } else { 0o004 };
    mode & needed == needed
}

/// Stages the jails' `/etc` at `to` from the host's `etc`.
fn stage_etc(etc: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    for name in ETC_ALLOW {
        let from = etc.join(name);
        if std::fs::symlink_metadata(&from).is_ok() {
            copy_entry(&from, &to.join(name), &readable_by_all)?;
        }
    }
    let profile = to.join("profile");
    // Only a file of the copy's own: a link would lead the write to wherever it points.
    if std::fs::symlink_metadata(&profile).is_ok_and(|meta| meta.is_file()) {
        let text = std::fs::read_to_string(&profile)?;
        std::fs::write(&profile, without_id_process(&text))?;
    }
    std::fs::write(to.join("passwd"), PASSWD)?;
    std::fs::write(to.join("group"), GROUP)?;
    // Where each jail binds its own.
    std::fs::write(to.join("hostname"), "")
}

/// Debian's `/etc/profile` runs `id -u` as a process of its own to choose the `PATH`, in every
/// login shell — which is every command E2B runs (`bash -l -c`): about 5 ms of each process start
/// (docs/performance.md, "Process start"). The staged copy reads the effective uid from
/// `/proc/self/status` with the shell's own `read` first. Not bash's `$EUID`: bash keeps an `EUID`
/// it finds in its environment, which a tenant sets.
fn without_id_process(profile: &str) -> String {
    if !profile.contains(ASKS_ID) {
        return profile.to_owned();
    }
    let read_uid = "# Staged by sandboxd: the effective uid without a process of its own.\n\
                    mayfly_euid=\n\
                    while read -r mayfly_key mayfly_real mayfly_effective mayfly_rest; do\n\
                    \x20 if [ \"$mayfly_key\" = Uid: ]; then mayfly_euid=$mayfly_effective; break; fi\n\
                    done 2>/dev/null </proc/self/status\n\n";
    let forget = "\nunset mayfly_euid mayfly_key mayfly_real mayfly_effective mayfly_rest\n";
    format!("{read_uid}{}{forget}", profile.replace(ASKS_ID, "\"${mayfly_euid:-$(id -u)}\""))
}

/// How Debian's profile asks for the uid.
const ASKS_ID: &str = "\"$(id -u)\"";

/// Bytes (as [`footprint`] counts them) of what [`stage_etc`] copies, at most.
fn etc_footprint(etc: &Path) -> std::io::Result<u64> {
    let present = ETC_ALLOW.iter().map(|name| etc.join(name)).filter(|from| std::fs::symlink_metadata(from).is_ok());
    // Its own `passwd`, `group` and `hostname`, a page each.
    present.map(|from| entry_footprint(&from)).sum::<std::io::Result<u64>>().map(|copied| copied + 3 * 4096)
}

impl Templates {
    /// Readies the templates' files and the jails' `/etc` under `state_dir`, replacing what a
    /// sandboxd that died there left.
    pub(crate) fn prepare(python_venv: Option<&Path>, state_dir: &Path, root: bool) -> Result<Templates, String> {
        let dir = state_dir.join(TEMPLATES);
        if is_mount_point(&dir) {
            nix::mount::umount2(&dir, MntFlags::MNT_DETACH).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        let host_etc = Path::new("/etc");
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let mut templates = Templates {
            python_venv: python_venv.map(Path::to_owned),
            etc: dir.join("etc"),
            dir: dir.clone(),
            mounted: false,
        };
        if root {
            let venv_size = python_venv.map_or(Ok(0), footprint).map_err(io(&dir))?;
            let size = venv_size + etc_footprint(host_etc).map_err(io(host_etc))? + (8 << 20);
            let opts = format!("size={size},mode=0755");
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, Some(opts.as_str()))
                .map_err(|e| format!("mounting {}: {e}", dir.display()))?;
            templates.mounted = true;
        }
        // Not remounted read-only here: a process another thread forks meanwhile may hold a copied
        // file open for a moment (EBUSY). Every jail binds them read-only, and their files are root's.
        let mut filled = stage_etc(host_etc, &templates.etc).map_err(io(host_etc));
        if let (true, Some(venv), Ok(())) = (root, python_venv, &filled) {
            templates.python_venv = Some(dir.join("mayfly"));
            filled = copy_tree(venv, &dir.join("mayfly")).map_err(io(venv));
        }
        if let Err(e) = filled {
            templates.release();
            return Err(e);
        }
        Ok(templates)
    }

    /// Unmounts and removes the copies (at shutdown).
    pub(crate) fn release(&self) {
        if self.mounted {
            if let Err(e) = nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "unmounting the templates failed");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_files_modes_and_links() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir(from.path().join("bin")).unwrap();
        std::fs::write(from.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(from.path().join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", from.path().join("bin/python3")).unwrap();
        let to = tempfile::tempdir().unwrap();
        copy_tree(from.path(), &to.path().join("copy")).unwrap();
        let tool = std::fs::metadata(to.path().join("copy/bin/tool")).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&tool.permissions()) & 0o777, 0o755);
        assert_eq!(std::fs::read_link(to.path().join("copy/bin/python3")).unwrap(), Path::new("/usr/bin/python3"));
        assert!(footprint(from.path()).unwrap() >= 3 * 4096);
    }

    #[test]
    fn the_staged_etc_holds_the_allowed_entries_everyone_may_read_and_the_jails_users() {
        let etc = tempfile::tempdir().unwrap();
        let mode = |path: &Path, mode| {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        };
        std::fs::write(etc.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(etc.path().join("shadow"), "root:$6$secret").unwrap();
        std::fs::create_dir_all(etc.path().join("ssl/private")).unwrap();
        std::fs::write(etc.path().join("ssl/cert.pem"), "cert").unwrap();
        std::fs::write(etc.path().join("ssl/private/key.pem"), "key").unwrap();
        mode(&etc.path().join("ssl/private"), 0o700);
        std::fs::write(etc.path().join("profile"), "umask 022\n").unwrap();
        mode(&etc.path().join("profile"), 0o600);
        std::os::unix::fs::symlink("/usr/share/zoneinfo/UTC", etc.path().join("localtime")).unwrap();
        let to = tempfile::tempdir().unwrap();
        let staged = to.path().join("etc");
        stage_etc(etc.path(), &staged).unwrap();
        let mut names: Vec<String> =
            std::fs::read_dir(&staged).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["group", "hostname", "hosts", "localtime", "passwd", "ssl"]);
        assert_eq!(std::fs::read_to_string(staged.join("ssl/cert.pem")).unwrap(), "cert");
        assert!(!staged.join("ssl/private").exists(), "what not everyone may read is not copied");
        assert_eq!(std::fs::read_link(staged.join("localtime")).unwrap(), Path::new("/usr/share/zoneinfo/UTC"));
        assert_eq!(std::fs::read_to_string(staged.join("passwd")).unwrap(), PASSWD);
        assert!(etc_footprint(etc.path()).unwrap() >= footprint(&staged).unwrap());
    }

    #[test]
    fn the_staged_profile_reads_the_uid_without_a_process_and_a_linked_one_is_left_alone() {
        let profile = "if [ \"$(id -u)\" -eq 0 ]; then\n  PATH=/sbin\nfi\n";
        let etc = tempfile::tempdir().unwrap();
        std::fs::write(etc.path().join("profile"), profile).unwrap();
        let to = tempfile::tempdir().unwrap();
        stage_etc(etc.path(), &to.path().join("etc")).unwrap();
        let staged = std::fs::read_to_string(to.path().join("etc/profile")).unwrap();
        assert!(!staged.contains("\"$(id -u)\" -eq") && staged.contains("PATH=/sbin"), "{staged}");
        // The shell takes the branch `id -u` would choose, whatever a tenant puts in the
        // environment (bash keeps an `EUID` it inherits), and without running `id`: it is not on
        // this `PATH`. The profile's own variables are gone after it.
        let uid = String::from_utf8(std::process::Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
        let expected = if uid.trim() == "0" { "/sbin" } else { "unchanged" };
        for shell in ["sh", "bash"] {
            for planted in ["0", "12345"] {
                let mut run = std::process::Command::new(shell)
                    .args(["-c", "PATH=unchanged; . /dev/stdin; echo $PATH$mayfly_euid"])
                    .envs([("EUID", planted), ("UID", planted), ("mayfly_euid", planted)])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(run.stdin.as_mut().unwrap(), staged.as_bytes()).unwrap();
                drop(run.stdin.take());
                let out = run.wait_with_output().unwrap();
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected, "{shell}, EUID={planted}");
            }
        }

        // A host whose `/etc/profile` is a link: the copy is the link, and the file it names is
        // never written.
        let target = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(target.path(), profile).unwrap();
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(target.path(), linked.path().join("profile")).unwrap();
        let to = tempfile::tempdir().unwrap();
        stage_etc(linked.path(), &to.path().join("etc")).unwrap();
        assert_eq!(std::fs::read_to_string(target.path()).unwrap(), profile);
    }
}
