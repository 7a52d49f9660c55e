//! One process of a sandbox: its output fanned out to the subscribers attached at that moment (the
//! `Start` stream, and any `Connect` streams), with back-pressure as envd does — a slow reader
//! slows the process rather than losing bytes — and its end kept for later subscribers.

use std::sync::{Arc, Mutex};

use mayfly_core::wire::e2b::{DataEvent, EndEvent, ProcessConfig, ProcessEvent};
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

/// envd's output chunk size: each data event carries at most this many raw bytes.
const CHUNK: usize = 32 * 1024;

/// Reads a pipe in ≤ 32 KiB chunks until EOF.
pub(crate) async fn pump<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    tx: mpsc::Sender<DataEvent>,
    wrap: impl Fn(Vec<u8>) -> DataEvent,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Go's `ProcessState` rendering, which envd sends verbatim.
pub(crate) fn end_event(status: std::process::ExitStatus) -> EndEvent {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => EndEvent { exit_code: 0, exited: true, status: "exit status 0".into(), error: None },
        (Some(c), _) => EndEvent {
            exit_code: c,
            exited: true,
            status: format!("exit status {c}"),
            error: Some(format!("exit status {c}")),
        },
        (None, Some(sig)) => {
            let name = match sig {
                9 => "killed".to_owned(),
                15 => "terminated".to_owned(),
                2 => "interrupt".to_owned(),
                n => format!("signal {n}"),
            };
            let s = format!("signal: {name}");
            EndEvent { exit_code: -1, exited: false, status: s.clone(), error: Some(s) }
        }
        (None, None) => EndEvent { exit_code: -1, exited: false, status: "unknown".into(), error: None },
    }
}

/// One process of a sandbox.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) tag: Option<String>,
    pub(crate) config: ProcessConfig,
    subscribers: Mutex<Vec<mpsc::Sender<ProcessEvent>>>,
    pub(crate) stdin: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    /// The signal the process was sent, which its waiter delivers (`jail::inner` says why there).
    kill: watch::Sender<Option<Signal>>,
    pub(crate) end: watch::Sender<Option<EndEvent>>,
}

impl Proc {
    /// A process just started: its record, its first subscriber (the `Start` stream) and where
    /// the signal it is sent arrives.
    pub(crate) fn new(
        pid: u32,
        tag: Option<String>,
        config: ProcessConfig,
        stdin: Option<tokio::process::ChildStdin>,
    ) -> (Arc<Proc>, mpsc::Receiver<ProcessEvent>, watch::Receiver<Option<Signal>>) {
        let (sub_tx, sub_rx) = mpsc::channel(64);
        let (kill, kill_rx) = watch::channel(None);
        let (end, _) = watch::channel(None);
        let proc = Proc {
            pid,
            tag,
            config,
            subscribers: Mutex::new(vec![sub_tx]),
            stdin: tokio::sync::Mutex::new(stdin),
            kill,
            end,
        };
        (Arc::new(proc), sub_rx, kill_rx)
    }

    pub(crate) async fn publish(&self, ev: ProcessEvent) {
        let subs: Vec<_> = self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut gone = false;
        for s in &subs {
            gone |= s.send(ev.clone()).await.is_err();
        }
        if gone {
            self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| !s.is_closed());
        }
    }

    /// Attaches a new subscriber; `None` if the process has ended (then read `end`).
    pub(crate) fn subscribe(&self) -> Option<mpsc::Receiver<ProcessEvent>> {
        if self.end.borrow().is_some() {
            return None;
        }
        let (tx, rx) = mpsc::channel(64);
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        Some(rx)
    }

    /// SIGKILL to the jail's bwrap, and its init, which ends the process's whole pid namespace.
    pub(crate) fn kill(&self) {
        self.kill.send_replace(Some(Signal::SIGKILL));
    }

    /// SIGTERM to the jail's bwrap; bwrap ending takes its namespace with it. A kill already
    /// asked for is not softened.
    pub(crate) fn terminate(&self) {
        self.kill.send_if_modified(|sent| sent.is_none() && sent.replace(Signal::SIGTERM).is_none());
    }

    pub(crate) fn is_running(&self) -> bool {
        self.end.borrow().is_none()
    }

    /// The process ended: its end goes to every subscriber and stays for later ones.
    pub(crate) async fn finish(&self, end: EndEvent) {
        self.publish(ProcessEvent::End(end.clone())).await;
        self.end.send_replace(Some(end));
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *self.stdin.lock().await = None;
    }

    /// Waits until the process has been reaped.
    pub(crate) async fn wait_ended(&self) {
        let mut rx = self.end.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}
