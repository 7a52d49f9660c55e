//! A sandbox's own network: a namespace holding only loopback, shared by all of the sandbox's
//! processes (so a server one command starts answers another's, as in an E2B sandbox), with some
//! host ports forwarded into it.
//!
//! Why. Jailed code that shares the host's network reaches every service on the host's loopback:
//! the providers' APIs, Postgres, and debug ports that answer without any credential at all (the
//! Workers runtime's inspector in `wrangler dev`). In its own namespace a turn reaches nothing but
//! the ports listed in [`SandboxNetwork::Isolated`] — the local stack lists its Postgres, so that
//! the database URL a turn is given works unchanged.
//!
//! How. A short-lived thread of sandboxd unshares its network namespace (a namespace belongs to a
//! thread, not to the process), brings `lo` up with `ip` (a child inherits the namespace of the
//! thread that spawns it), binds a listener on `127.0.0.1:<port>` for each forwarded port (a socket
//! stays in the namespace it was made in) and opens the namespace's handle, then ends. Jailed
//! processes enter the namespace through that handle (`setns`, in `jail/enter.rs`) before
//! dropping privileges; the forwarders accept inside it and connect out from sandboxd's
//! own threads, which are on the host's network. Dropping the handle and the listeners frees the
//! namespace once the sandbox's last process has ended. Needs root; without it sandboxes share
//! the host's network and sandboxd says so at start.
//!
//! Limits. Every forwarded connection holds two of sandboxd's descriptors and one connection of
//! the service behind the port, which other sandboxes share. A sandbox may hold at most
//! `forward_connections` at once (the database's own connection limit plus a margin, by
//! default), and all sandboxes together at most what sandboxd's descriptor limit leaves room for
//! ([`ForwardBudget`]); a connection past either is closed as soon as it is accepted.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::SandboxError;

/// What a sandbox's processes may reach over the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxNetwork {
    /// The host's network as it is: everything on the host's loopback is reachable. The only
    /// choice when sandboxd is not root.
    Host,
    /// A namespace of the sandbox's own with loopback only; each of `forward_ports` on the
    /// sandbox's `127.0.0.1` leads to the same port on the host's `127.0.0.1`.
    Isolated { forward_ports: Vec<u16> },
}

impl Default for SandboxNetwork {
    fn default() -> Self {
        SandboxNetwork::Isolated { forward_ports: Vec::new() }
    }
}

/// Connections a sandbox may hold open through its forwarded ports at once, by default: a scratch
/// database's own limit (20 for an owned one) plus a small margin.
pub const DEFAULT_FORWARD_CONNECTIONS: usize = 24;

/// Descriptors sandboxd keeps for everything but forwarded connections (its listener, the
/// processes' pipes, the namespaces' handles).
const RESERVED_DESCRIPTORS: u64 = 1024;

/// How many forwarded connections there may be: per sandbox, and across all of them.
#[derive(Debug, Clone)]
pub(crate) struct ForwardBudget {
    per_sandbox: usize,
    total: Arc<Semaphore>,
}

impl ForwardBudget {
    /// Raises sandboxd's descriptor limit to its hard limit and shares what it allows (two
    /// descriptors per connection, past a reserve) among all sandboxes.
    pub(crate) fn new(per_sandbox: usize) -> ForwardBudget {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) => {
                if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                    hard
                } else {
                    soft
                }
            }
            Err(_) => 1024,
        };
        let total = (soft.saturating_sub(RESERVED_DESCRIPTORS) / 2).clamp(64, 1 << 20) as usize;
        ForwardBudget { per_sandbox: per_sandbox.max(1), total: Arc::new(Semaphore::new(total)) }
    }
}

/// A live sandbox network: the namespace's handle and the forwarders into it.
#[derive(Debug)]
pub(crate) struct SandboxNet {
    namespace: File,
    forwarders: JoinSet<()>,
}

impl SandboxNet {
    /// Makes the namespace (bringing `lo` up with the `ip` at `ip`) and starts forwarding `ports`
    /// into it, within `budget`.
    pub(crate) async fn create(ports: &[u16], ip: &Path, budget: &ForwardBudget) -> Result<SandboxNet, SandboxError> {
        let ports = ports.to_vec();
        let ip = ip.to_owned();
        let (sender, made) = tokio::sync::oneshot::channel();
        // A thread of its own, never a pool thread: the namespace sticks to the thread that made it.
        std::thread::Builder::new()
            .name("sandbox-netns".into())
            .spawn(move || {
                let _ = sender.send(make_namespace(&ports, &ip));
            })
            .map_err(|e| SandboxError::Jail(format!("network namespace thread: {e}")))?;
        let (namespace, listeners) =
            made.await.map_err(|_| SandboxError::Jail("the network namespace thread died".into()))??;
        let mut forwarders = JoinSet::new();
        // One allowance for all of the sandbox's ports.
        let own = Arc::new(Semaphore::new(budget.per_sandbox));
        for (port, listener) in listeners {
            listener.set_nonblocking(true).map_err(jail_error("listener"))?;
            let listener = TcpListener::from_std(listener).map_err(jail_error("listener"))?;
            forwarders.spawn(forward(listener, port, own.clone(), budget.total.clone()));
        }
        Ok(SandboxNet { namespace, forwarders })
    }

    /// The handle through which a process enters the namespace.
    pub(crate) fn handle(&self) -> &File {
        &self.namespace
    }
}

impl Drop for SandboxNet {
    fn drop(&mut self) {
        self.forwarders.abort_all();
    }
}

type Made = (File, Vec<(u16, std::net::TcpListener)>);

/// Runs on a thread that ends right after: moves it into a new network namespace and sets that up.
fn make_namespace(ports: &[u16], ip: &Path) -> Result<Made, SandboxError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SandboxError::Jail(format!("a network namespace needs root: {e}")))?;
    let up = crate::host::host_command_blocking(ip)
        .args(["link", "set", "lo", "up"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(jail_error("ip link set lo up"))?;
    if !up.status.success() {
        return Err(SandboxError::Jail(format!("ip link set lo up: {}", String::from_utf8_lossy(&up.stderr).trim())));
    }
    let namespace = File::open("/proc/thread-self/ns/net").map_err(jail_error("the network namespace"))?;
    let mut listeners = Vec::with_capacity(ports.len());
    for &port in ports {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .map_err(jail_error("a forwarded port"))?;
        listeners.push((port, listener));
    }
    Ok((namespace, listeners))
}

/// Accepts inside the sandbox's namespace and joins each connection to the host's `port`, while
/// both the sandbox's allowance (`own`) and everyone's (`total`) have room; a connection past
/// either is closed at once.
async fn forward(listener: TcpListener, port: u16, own: Arc<Semaphore>, total: Arc<Semaphore>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inside, _)) = listener.accept().await else {
            // Out of descriptors, most likely: back off rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (Ok(own_permit), Ok(total_permit)) = (own.clone().try_acquire_owned(), total.clone().try_acquire_owned())
        else {
            drop(inside);
            continue;
        };
        connections.spawn(async move {
            let _permits = (own_permit, total_permit);
            let Ok(mut outside) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else { return };
            let _ = inside.set_nodelay(true);
            let _ = outside.set_nodelay(true);
            let _ = copy_bidirectional(&mut inside, &mut outside).await;
        });
        // Finished connections are collected as new ones come, so the set stays small.
        while connections.try_join_next().is_some() {}
    }
}

fn jail_error(what: &'static str) -> impl Fn(std::io::Error) -> SandboxError {
    move |e| SandboxError::Jail(format!("{what}: {e}"))
}
