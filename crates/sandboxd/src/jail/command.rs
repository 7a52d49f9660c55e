//! The command that starts one process inside a sandbox's jail: `bwrap`, exec'd by a child of
//! sandboxd that has entered the sandbox first (`enter`), and what bwrap is told through a
//! descriptor rather than on its command line.
//!
//! The split is the point. Everything on the host's command line is sandboxd's own: absolute
//! program paths, limits, the sandbox's mounts. Everything a tenant chose — the environment (the
//! sandbox's `envVars`, the process's `envs`, the database URL among them), the working directory —
//! is written to an in-memory file that bwrap reads with `--args`, after `--clearenv`, so it
//! exists only inside the jail, and no host process (nor `ps` on the host) ever sees it. Only the
//! command itself must stay on bwrap's command line (bwrap takes it from there alone).

use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;

use command_fds::{CommandFdExt, FdMapping};
use tokio::process::Command;

use super::enter::Entry;
use super::{Jail, JailUser};
use crate::error::SandboxError;
use crate::host::{host_command, memory_file};

/// Where bwrap finds its tenant-chosen arguments, and the two seccomp programs.
const ARGS_FD: RawFd = 3;
const SECCOMP_DENIED_FD: RawFd = 4;
const SECCOMP_ENOSYS_FD: RawFd = 5;
/// Where bwrap writes its `--info-fd` report.
const INFO_FD: RawFd = 6;

/// Host directories every template sees read-only; the `/bin`-style ones are links into `/usr` on
/// merged-usr systems and are recreated as links.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The `PATH` a jailed process starts with, unless its own environment sets another.
const JAIL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn fd_error(e: std::io::Error) -> SandboxError {
    SandboxError::Spawn(format!("preparing the jail's descriptors: {e}"))
}

impl Jail {
    /// A command that runs `argv` inside the jail as `user` in `cwd`, with `envs` on top of the
    /// sandbox's environment.
    pub(crate) fn command(
        &self,
        user: JailUser,
        cwd: &str,
        argv: &[String],
        envs: &[(String, String)],
    ) -> Result<Command, SandboxError> {
        self.build(user, cwd, argv, envs, None)
    }

    /// [`Jail::command`], plus the pipe on which bwrap names the host pid of the jail's init
    /// (`--info-fd`), which a kill must reach too (see `inner`).
    pub(crate) fn command_with_init_pid(
        &self,
        user: JailUser,
        cwd: &str,
        argv: &[String],
        envs: &[(String, String)],
    ) -> Result<(Command, OwnedFd), SandboxError> {
        let (reader, writer) = std::io::pipe().map_err(fd_error)?;
        let cmd = self.build(user, cwd, argv, envs, Some(writer.into()))?;
        Ok((cmd, reader.into()))
    }

    fn build(
        &self,
        user: JailUser,
        cwd: &str,
        argv: &[String],
        envs: &[(String, String)],
        info: Option<OwnedFd>,
    ) -> Result<Command, SandboxError> {
        // sandboxd's child enters the sandbox itself (`enter`), then becomes bwrap. Hooks run in
        // the order they are added: this one before the descriptor mapping below, whose `dup2`s
        // onto 3–6 could otherwise replace a descriptor `enter` still has to write to.
        let entry = Entry::prepare(self).map_err(fd_error)?;
        let mut cmd = host_command(&self.host.tools.bwrap);
        // The workspace's one `unsafe` block (ARCHITECTURE.md). SAFETY: `enter` makes only
        // async-signal-safe system calls on what `prepare` opened, and allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || entry.enter());
        }
        let inside = self.inside_args(user, cwd, envs)?;
        cmd.args(self.bwrap_args(user));
        if info.is_some() {
            cmd.args(["--info-fd", &INFO_FD.to_string()]);
        }
        cmd.arg("--").args(argv);

        let args = memory_file("mayfly-jail-args", &nul_separated(&inside)).map_err(fd_error)?;
        let seccomp = &self.host.seccomp;
        let denied = memory_file("mayfly-seccomp", &seccomp.denied).map_err(fd_error)?;
        let enosys = memory_file("mayfly-seccomp", &seccomp.not_implemented).map_err(fd_error)?;
        let mapping = |parent_fd: OwnedFd, child_fd| FdMapping { parent_fd, child_fd };
        let mut fds =
            vec![mapping(args, ARGS_FD), mapping(denied, SECCOMP_DENIED_FD), mapping(enosys, SECCOMP_ENOSYS_FD)];
        fds.extend(info.map(|fd| mapping(fd, INFO_FD)));
        cmd.fd_mappings(fds).map_err(|e| SandboxError::Spawn(e.to_string()))?;
        cmd.kill_on_drop(true);
        Ok(cmd)
    }

    /// bwrap's options that are sandboxd's own: namespaces, mounts, the descriptors to read.
    fn bwrap_args(&self, user: JailUser) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
        push(&["--args", &ARGS_FD.to_string()]);
        // On the command line, after what bwrap reads: nothing read from a descriptor can take
        // the filter's place.
        let (denied, enosys) = (SECCOMP_DENIED_FD.to_string(), SECCOMP_ENOSYS_FD.to_string());
        push(&["--add-seccomp-fd", &denied, "--add-seccomp-fd", &enosys]);
        let uid = user.uid().to_string();
        push(&["--unshare-user", "--disable-userns", "--uid", &uid, "--gid", &uid]);
        push(&["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]);
        push(&["--hostname", &self.hostname, "--die-with-parent", "--new-session"]);
        for dir in SYSTEM_DIRS {
            let p = Path::new(dir);
            match std::fs::read_link(p) {
                Ok(target) => push(&["--symlink", &target.to_string_lossy(), dir]),
                Err(_) if p.is_dir() => push(&["--ro-bind", dir, dir]),
                Err(_) => {}
            }
        }
        // One bind of the staged `/etc` (`template`), not one per entry: each mount costs every
        // process of every jail its setup time.
        push(&["--proc", "/proc", "--dev", "/dev", "--ro-bind", &self.etc.to_string_lossy(), "/etc"]);
        let own = |rel: &str| self.dir.join(rel).to_string_lossy().into_owned();
        push(&["--ro-bind", &own("etc/hostname"), "/etc/hostname"]);
        push(&["--bind", &own("home"), "/home/user"]);
        push(&["--bind", &own("tmp"), "/tmp"]);
        push(&["--dir", "/root"]);
        if let Some(venv) = &self.venv {
            push(&["--ro-bind", &venv.to_string_lossy(), "/opt/venv"]);
        }
        // The jail's own root tmpfs (holding /etc, /root and the mount points) is frozen too.
        push(&["--remount-ro", "/"]);
        args
    }

    /// What bwrap reads from [`ARGS_FD`]: the environment, cleared and rebuilt — `PATH`, `HOME`,
    /// `USER`, `LOGNAME`, `E2B_SANDBOX=true`, then the sandbox's `envVars`, then the process's
    /// `envs` — and the working directory. bwrap applies it to itself before it executes the
    /// command inside, so the command is looked up in the jail's `PATH`. A NUL in any of it would
    /// end an argument early, and what followed would be read as bwrap's own options: refused.
    pub(super) fn inside_args(
        &self,
        user: JailUser,
        cwd: &str,
        envs: &[(String, String)],
    ) -> Result<Vec<String>, SandboxError> {
        for (name, value) in self.base_env.iter().chain(envs) {
            check_env(name, value)?;
        }
        check_text("the working directory", cwd)?;
        let mut vars: Vec<(String, String)> = Vec::new();
        let mut path = JAIL_PATH.to_owned();
        if self.venv.is_some() {
            path = format!("/opt/venv/bin:{path}");
            if let Some(site_packages) = self.venv_site_packages() {
                vars.push(("PYTHONPATH".into(), site_packages));
            }
        }
        vars.push(("PATH".into(), path));
        for (name, value) in [("HOME", user.home()), ("USER", user.name()), ("LOGNAME", user.name())] {
            vars.push((name.into(), value.into()));
        }
        vars.push(("E2B_SANDBOX".into(), "true".into()));
        vars.extend(self.base_env.iter().cloned());
        vars.extend(envs.iter().cloned());

        let mut args = vec!["--clearenv".to_owned()];
        for (name, value) in vars {
            args.extend(["--setenv".to_owned(), name, value]);
        }
        args.extend(["--chdir".into(), cwd.to_owned()]);
        Ok(args)
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
}

/// A value a tenant chose, if it can be passed on whole: no NUL.
fn check_text(what: &str, text: &str) -> Result<(), SandboxError> {
    if text.contains('\0') {
        return Err(SandboxError::Invalid(format!("{what} contains a NUL character")));
    }
    Ok(())
}

/// An environment variable a tenant chose, if it can be one: a name that is not empty and has no
/// `=`, and neither with a NUL.
pub(crate) fn check_env(name: &str, value: &str) -> Result<(), SandboxError> {
    if name.is_empty() || name.contains('=') {
        return Err(SandboxError::Invalid(format!("environment variable name {name:?} is not allowed")));
    }
    check_text(&format!("environment variable {name:?}"), name)?;
    check_text(&format!("the value of environment variable {name:?}"), value)
}

/// bwrap's `--args` format: every argument followed by a NUL.
fn nul_separated(args: &[String]) -> Vec<u8> {
    args.iter().flat_map(|a| a.bytes().chain(std::iter::once(0))).collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{JailHost, JailLimits};
    use super::*;

    fn jail() -> Jail {
        Jail {
            dir: "/nonexistent/sandboxes/iabc".into(),
            hostname: "iabc".into(),
            host_uid: Some(200_001),
            mounted: false,
            venv: None,
            etc: "/nonexistent/.templates/etc".into(),
            limits: JailLimits::default(),
            base_env: vec![("SANDBOX_SECRET".into(), "from-the-sandbox".into())],
            cgroup: None,
            net: None,
            host: Arc::new(JailHost::for_tests()),
        }
    }

    const TENANT: [(&str, &str); 4] = [
        ("PATH", "/evil/bin"),
        ("LD_PRELOAD", "/evil/lib.so"),
        ("LD_LIBRARY_PATH", "/evil/lib"),
        ("TURN_SECRET", "from-the-process"),
    ];

    fn tenant() -> Vec<(String, String)> {
        TENANT.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The attack of a turn that names its own programs or libraries in `PATH`/`LD_PRELOAD`: none
    /// of a tenant's variables may reach bwrap's own environment or command line, outside the jail.
    #[test]
    fn the_host_side_command_carries_none_of_the_tenants_variables() {
        let cmd = jail().command(JailUser::User, "/home/user", &["python3".into()], &tenant()).unwrap();
        let std = cmd.as_std();
        let program = std.get_program().to_string_lossy().into_owned();
        assert!(program.starts_with('/'), "the first program is found by an absolute path, not PATH: {program}");
        let envs: Vec<(String, Option<String>)> = std
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        for (name, value) in &envs {
            let value = value.as_deref().unwrap_or_default();
            assert!(
                !value.contains("evil") && !value.contains("from-the-"),
                "the host-side command gets {name}={value}"
            );
            assert!(!name.starts_with("LD_") && name != "TURN_SECRET" && name != "SANDBOX_SECRET", "{name}");
        }
        let args: Vec<String> = std.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        for arg in &args {
            assert!(
                !arg.contains("evil") && !arg.contains("from-the-"),
                "a tenant's value on the host's command line: {arg}"
            );
        }
        assert!(program.ends_with("/bwrap"), "the only program run is bwrap: {program}");
    }

    /// A NUL ends an argument in what bwrap reads: one inside a tenant's value would let it add
    /// options of its own (a bind of the host's `/`, or swallow the seccomp programs). Refused.
    #[test]
    fn a_nul_in_a_tenants_value_is_refused_not_read_as_more_options() {
        let injected = [("ZZ".to_owned(), "x\0--ro-bind\0/\0/host\0--setenv\0Y".to_owned())];
        assert!(jail().command(JailUser::User, "/home/user", &["true".into()], &injected).is_err());
        let named = [("A\0--ro-bind".to_owned(), "v".to_owned())];
        assert!(jail().command(JailUser::User, "/home/user", &["true".into()], &named).is_err());
        assert!(jail().command(JailUser::User, "/home\0--bind", &["true".into()], &[]).is_err());
        let mut with_base = jail();
        with_base.base_env.push(("B".into(), "\0--unshare-net".into()));
        assert!(with_base.command(JailUser::User, "/home/user", &["true".into()], &[]).is_err());
    }

    /// …and all of them arrive inside, after everything else is cleared: `PATH` and `LD_*` are the
    /// user's own business there (docs/security.md).
    #[test]
    fn the_tenants_variables_are_set_inside_the_jail_only() {
        let inside = jail().inside_args(JailUser::User, "/home/user/work", &tenant()).unwrap();
        assert_eq!(inside[0], "--clearenv", "nothing of bwrap's own environment is inherited");
        let set: Vec<(&str, &str)> =
            inside.windows(3).filter(|w| w[0] == "--setenv").map(|w| (w[1].as_str(), w[2].as_str())).collect();
        for (name, value) in TENANT.iter().chain(&[("SANDBOX_SECRET", "from-the-sandbox")]) {
            // The last setting of a name is the one that holds.
            let last = set.iter().rev().find(|(n, _)| n == name).map(|(_, v)| *v);
            assert_eq!(last, Some(*value), "{name}: {set:?}");
        }
        assert!(inside.ends_with(&["--chdir".to_owned(), "/home/user/work".to_owned()]));
    }
}
