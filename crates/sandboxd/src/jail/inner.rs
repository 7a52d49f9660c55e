//! The jail's init, and why a kill must reach it and not only sandboxd's own child.
//!
//! sandboxd's child is the outer `bwrap`, which clones the jail's init (pid 1 of the jail's pid
//! namespace) and waits for it. The init asks to die with its parent (`--die-with-parent`), but
//! only some moments after the clone: a `SIGKILL` to the outer bwrap in that window leaves the
//! init running on with no parent in sandboxd (or waiting forever for the parent to set it up) —
//! and holding the output pipes, so the command's stream never ends. A process killed right after
//! its start (an SDK's `commands.kill`) hit that window often. So a kill waits for bwrap's
//! `--info-fd` report of the init's host pid, then kills the outer bwrap and, right after, the
//! init, which takes the whole namespace with it.

use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// bwrap reports right after the clone; this bounds a report that never comes.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// Reads the init's host pid from bwrap's `--info-fd` report (`{"child-pid": N, ...}`); `None`
/// if bwrap ended, or stopped writing, without naming it.
///
/// The report is read to its end even though the pid comes first: bwrap writes the rest after it,
/// and a closed pipe would kill bwrap with `SIGPIPE` before it lets the init go on.
pub(crate) async fn read_init_pid(fd: OwnedFd) -> Option<u32> {
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok()?;
    let mut report = Vec::new();
    let read = async {
        let mut buf = [0u8; 256];
        while report.len() <= 4096 {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => report.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(REPORT_WAIT, read).await;
    child_pid(&report)
}

/// The pid in `"child-pid": N`, once a character after its digits shows the number is whole.
fn child_pid(report: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(report).ok()?;
    let rest = text.split_once("\"child-pid\"")?.1.trim_start().strip_prefix(':')?.trim_start();
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..digits].parse().ok()
}

/// Waits for the outer bwrap to end, delivering the signal `signals` asks for on the way: to the
/// outer bwrap first, so that its end is the signal's own (`signal: killed`), then, once bwrap has
/// named it, to the jail's init.
pub(crate) async fn wait_signalled(
    mut child: Child,
    mut signals: watch::Receiver<Option<Signal>>,
    init_pid: JoinHandle<Option<u32>>,
) -> std::io::Result<ExitStatus> {
    let outer = child.id();
    let signal = loop {
        tokio::select! {
            status = child.wait() => return status,
            changed = signals.changed() => {
                if changed.is_err() {
                    break Signal::SIGKILL;
                }
                if let Some(signal) = *signals.borrow() {
                    break signal;
                }
            }
        }
    };
    let init = tokio::select! {
        pid = init_pid => pid.ok().flatten(),
        status = child.wait() => return status,
    };
    let init = init.zip(outer).and_then(|(init, outer)| init_handle(init, outer));
    match (signal, outer.and_then(|pid| i32::try_from(pid).ok())) {
        (Signal::SIGKILL, _) | (_, None) => {
            let _ = child.start_kill();
        }
        (signal, Some(pid)) => {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
    }
    // The init goes with whatever the outer was sent: SIGKILL is what `--die-with-parent` would
    // have given it.
    if let Some(init) = init {
        let _ = rustix::process::pidfd_send_signal(&init, rustix::process::Signal::KILL);
    }
    child.wait().await
}

/// A handle on the jail's init that stays its own: opened first, then checked to be a child of
/// `outer` (the outer bwrap, not reaped yet, whose only child the init is). Once the init has ended
/// the kernel may give its pid to any new process, but never the handle: a signal through it
/// reaches the init or nothing.
fn init_handle(init: u32, outer: u32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(init).ok()?)?;
    let handle = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    is_init_of(init, outer).then_some(handle)
}

/// Whether `pid` is, now, a child of `outer`.
fn is_init_of(pid: u32, outer: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let parent = status.lines().find_map(|l| l.strip_prefix("PPid:")).map(str::trim);
    parent == Some(outer.to_string().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_pid_once_it_is_whole() {
        assert_eq!(child_pid(b"{\n    \"child-pid\": 4242,\n    \"cgroup-namespace\": 1\n}\n"), Some(4242));
        assert_eq!(child_pid(b"{\n    \"child-pid\": 42"), None, "more digits may follow");
        assert_eq!(child_pid(b"{\n    \"child-pid\": 42\n}"), Some(42));
        assert_eq!(child_pid(b"{}"), None);
    }

    #[tokio::test]
    async fn a_report_is_read_from_the_pipe() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut writer, b"{\n    \"child-pid\": 7\n}\n").unwrap();
        drop(writer);
        assert_eq!(read_init_pid(reader.into()).await, Some(7));
        let (reader, writer) = std::io::pipe().unwrap();
        drop(writer);
        assert_eq!(read_init_pid(reader.into()).await, None, "bwrap ended without a report");
    }
}
