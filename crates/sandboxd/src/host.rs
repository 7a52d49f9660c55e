//! The programs sandboxd runs on the host, outside any jail, and how it runs them.
//!
//! Why. `bwrap`, which puts a process into its jail, starts in the host's namespaces, and `ip`,
//! which brings up a sandbox's loopback, runs there as root. If any tenant input reached them — a
//! `PATH` naming a directory a jailed process wrote to, an `LD_PRELOAD` naming a library it
//! planted — tenant code would run outside the jail. So every one of these programs is
//! found once, at start-up, by an absolute path in the system's own directories (and, as root,
//! only if root owns it and nobody else may write it); each runs with a fixed environment that
//! holds nothing but [`HOST_PATH`]; and what a tenant sends (the sandbox's `envVars`, a process's
//! `envs`, its working directory) reaches bwrap through a descriptor (`--args`), to be set inside
//! the jail only, after bwrap's `--clearenv`.

use std::io::{Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::process::Command;

/// The directories host programs are looked up in, and the only `PATH` their processes see.
pub(crate) const HOST_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The host programs sandboxd runs, by absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostTools {
    pub(crate) bwrap: PathBuf,
    /// Runs only as root, for `lo`; found either way, so that no program is ever a bare name.
    pub(crate) ip: PathBuf,
}

impl HostTools {
    /// Finds every program in [`HOST_PATH`]; as root, each must belong to root and be writable by
    /// nobody else. Fails naming the first one that is missing or unsafe.
    pub(crate) fn resolve(root: bool) -> Result<HostTools, String> {
        let find = |name: &str| find_program(name, root);
        Ok(HostTools { bwrap: find("bwrap")?, ip: find("ip")? })
    }
}

fn find_program(name: &str, root: bool) -> Result<PathBuf, String> {
    for dir in HOST_PATH.split(':') {
        let path = Path::new(dir).join(name);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        if root && (meta.uid() != 0 || meta.permissions().mode() & 0o022 != 0) {
            return Err(format!(
                "{} is not owned by root or is writable by others: refusing to run it",
                path.display()
            ));
        }
        // The path as found, not its canonical form: `/usr/bin/sh` stays the link it is, so the
        // program sees the name it expects.
        return Ok(path);
    }
    Err(format!("{name} is not installed (looked in {HOST_PATH})"))
}

/// Marks every descriptor sandboxd inherited close-on-exec. bwrap closes none, so one left open
/// by whoever started sandboxd (a supervisor's socket, a build tool's jobserver pipe) would be open
/// in every jailed process. Rust opens its own descriptors close-on-exec already; these are the
/// only ones that could pass, and they are all open before the first jail is made.
pub(crate) fn keep_inherited_descriptors_out_of_jails() {
    close_fds::set_fds_cloexec_threadsafe(3, &[]);
}

/// A command for a host program: nothing of sandboxd's own environment, only [`HOST_PATH`].
pub(crate) fn host_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", HOST_PATH);
    cmd
}

/// The blocking twin of [`host_command`], for the few calls made off the async runtime.
pub(crate) fn host_command_blocking(program: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear().env("PATH", HOST_PATH);
    cmd
}

/// An anonymous in-memory file holding `bytes`, rewound, to hand to a child as a descriptor: it
/// is never on a disk and never on a command line.
pub(crate) fn memory_file(name: &str, bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_by_absolute_paths_in_the_system_directories() {
        let tools = HostTools::resolve(false).unwrap();
        for path in [&tools.bwrap, &tools.ip] {
            assert!(path.is_absolute(), "{}", path.display());
            assert!(HOST_PATH.split(':').any(|dir| path.parent() == Some(Path::new(dir))), "{}", path.display());
        }
        assert!(find_program("no-such-program-anywhere", false).unwrap_err().contains("not installed"));
    }

    #[test]
    fn host_commands_get_a_fixed_environment() {
        let cmd = host_command(Path::new("/usr/bin/true"));
        let envs: Vec<_> = cmd.as_std().get_envs().collect();
        assert_eq!(envs, [(std::ffi::OsStr::new("PATH"), Some(std::ffi::OsStr::new(HOST_PATH)))]);
    }

    #[test]
    fn a_memory_file_reads_back_from_its_start() {
        let fd = memory_file("test", b"--clearenv\0").unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).unwrap();
        assert_eq!(text, "--clearenv\0");
    }
}
