//! Limits on what a sandbox shares with every other: CPU time, the connections its forwarded ports
//! open on the host, the descriptors it inherits, what it learns of the host's layout, and what it
//! holds on the host.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_sandbox_is_held_to_its_cpu_limit() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    if mayfly_sandboxd::is_root() {
        let cpu = s.state.sandboxes().cpu_stats(&sb.id).expect("a root sandboxd gives every sandbox a cpu cgroup");
        assert_eq!((cpu.quota_us, cpu.period_us), (100_000, 100_000), "one CPU by default");
    }
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;

    // A fifth of a CPU, so that two busy loops outrun it even on a host whose cores are busy with
    // other work (the sandbox's cgroup gets its fair share of them, far more than a fifth).
    let s = Server::start_with(|c| c.limits.cpu_percent = 20).await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    let run = sb.run("for i in 1 2; do timeout 2 sh -c 'while :; do :; done' & done; wait; echo done").await;
    assert_eq!(run.stdout(), "done\n", "{}", run.stderr());
    if mayfly_sandboxd::is_root() {
        let cpu = s.state.sandboxes().cpu_stats(&sb.id).expect("a root sandboxd gives every sandbox a cpu cgroup");
        assert_eq!((cpu.quota_us, cpu.period_us), (20_000, 100_000), "a fifth of a CPU");
        assert!(cpu.throttled_periods > 0, "two busy loops were never throttled");
    }
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}

/// A host service that accepts every connection and holds it open, counting how many it holds at
/// most at once.
async fn holding_service() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
            held.retain(|c: &tokio::net::TcpStream| c.peer_addr().is_ok());
            seen.fetch_max(held.len(), Ordering::SeqCst);
        }
    });
    (port, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_port_holds_at_most_its_connection_limit_open() {
    let (port, most) = holding_service().await;
    let s = Server::start_with(|c| {
        c.network = mayfly_sandboxd::SandboxNetwork::Isolated { forward_ports: vec![port] };
    })
    .await;
    if !mayfly_sandboxd::is_root() {
        return; // no namespace, so no forwarder: the host's network, as documented
    }
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    // 60 connections at once, held open; the ones past the limit are closed at once. The script
    // waits (10 s at most) until that many have been closed, then reports how many were.
    let limit = mayfly_sandboxd::DEFAULT_FORWARD_CONNECTIONS;
    let script = format!(
        "python3 -c '
import select, socket, time
held = [socket.create_connection((\"127.0.0.1\", {port}), timeout=5) for _ in range(60)]
closed, deadline = set(), time.monotonic() + 10
while len(closed) < 60 - {limit} and time.monotonic() < deadline:
    ready, _, _ = select.select([s for s in held if s not in closed], [], [], 0.5)
    for s in ready:
        try:
            if s.recv(1) == b\"\":
                closed.add(s)
        except OSError:
            closed.add(s)
print(len(closed))'"
    );
    let run = sb.run(&script).await;
    let closed: usize = run.stdout().trim().parse().unwrap_or_else(|_| panic!("{}{}", run.stdout(), run.stderr()));
    let most = most.load(Ordering::SeqCst);
    assert!(most <= limit, "{most} connections reached the host at once; the limit is {limit}");
    assert_eq!(closed, 60 - limit, "the connections past the limit are closed");
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_cannot_read_where_it_lives_on_the_host() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "mayfly", "timeout": 60})).await;
    let run = sb
        .run("cat /proc/self/mountinfo /proc/mounts /proc/self/cgroup; python3 -c 'import psycopg'; echo rc=$?")
        .await;
    let shown = run.stdout();
    assert!(shown.ends_with("rc=0\n"), "{shown}{}", run.stderr());
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap();
    for host_path in [checkout, s.state_dir.as_path(), common::venv().as_path()] {
        let host_path = host_path.to_str().unwrap();
        if mayfly_sandboxd::is_root() {
            assert!(!shown.contains(host_path), "the jail shows the host path {host_path}:\n{shown}");
        }
    }
    s.finish().await;
}

/// bwrap closes no descriptor, so one sandboxd inherited without close-on-exec (a supervisor's
/// socket, a build tool's jobserver pipe) would be open in every jailed process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_sandboxd_inherited_never_reaches_a_jail() {
    // dup never sets close-on-exec: this is what an inherited descriptor looks like.
    let inherited = nix::unistd::dup(std::io::stderr()).unwrap();
    let number = std::os::fd::AsRawFd::as_raw_fd(&inherited).to_string();
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    // `ls` opens the directory it lists as 3; nothing else may be open past the standard three.
    let run = sb.run("ls /proc/self/fd").await;
    let open: Vec<String> = run.stdout().split_whitespace().map(str::to_owned).collect();
    assert!(!open.contains(&number), "descriptor {number} reached the jail: {open:?}");
    assert_eq!(open, ["0", "1", "2", "3"], "{}", run.stderr());
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
    drop(inherited);
}

/// Every process of a jail, seen from the host, is where sandboxd put it before bwrap ran (the
/// forked child's own steps, `jail/enter.rs`): in the sandbox's cgroups and network namespace, as
/// the sandbox's host uid and gid in every slot, with no supplementary group and no capability in
/// any set — the bounding set included, so nothing a jailed process execs can regain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jailed_process_holds_nothing_of_root_on_the_host() {
    if mayfly_sandboxd::is_root() {
        // sandboxd (this process, here) is given a supplementary group, as a service's root may
        // have: no jailed process may carry it.
        nix::unistd::setgroups(&[nix::unistd::Gid::from_raw(4242)]).unwrap();
    }
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    let running = sb.running("sleep 30").await;
    let held = jailed_statuses(s.uid_base);
    running.abort();
    if !mayfly_sandboxd::is_root() {
        // Without root there is no host uid of the sandbox's own to look for.
        assert!(held.is_empty());
        assert_eq!(s.kill(&sb.id).await, 204);
        return s.finish().await;
    }
    // The outer bwrap, the jail's init, bash and sleep at least.
    assert!(held.len() >= 3, "{held:#?}");
    let own_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    for (pid, status, cgroups, net) in &held {
        let field = |name: &str| -> Vec<String> {
            let line = status.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default();
            line.split_whitespace().map(str::to_owned).collect()
        };
        let uid = field("Uid");
        assert!(uid.len() == 4 && uid.iter().all(|u| u == &uid[0]), "{pid}: uids {uid:?}");
        assert_eq!(field("Gid"), uid, "{pid}: the gid is the uid, in every slot");
        assert!(field("Groups").is_empty(), "{pid}: groups {:?}", field("Groups"));
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(field(set), ["0000000000000000"], "{pid}: {set}");
        }
        assert_ne!(net, &own_net, "{pid} is on the host's network");
        for controller in ["memory", "pids", "cpu"] {
            let line =
                cgroups.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == controller)));
            let in_own = line.is_some_and(|l| l.contains(&sb.id))
                || cgroups.lines().any(|l| l.starts_with("0::") && l.contains(&sb.id));
            assert!(in_own, "{pid} is outside the sandbox's {controller} cgroup:\n{cgroups}");
        }
    }
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}

/// `(pid, status, cgroup, network namespace)` from `/proc/<pid>` of every live process whose uid is
/// one of the server's jail uids; one that ends while it is read (a file API's helper) is left out.
fn jailed_statuses(uid_base: u32) -> Vec<(String, String, String, std::path::PathBuf)> {
    common::jailed(uid_base)
        .into_iter()
        .filter_map(|(pid, dir, status)| {
            let cgroups = std::fs::read_to_string(dir.join("cgroup")).ok()?;
            let net = std::fs::read_link(dir.join("ns/net")).ok()?;
            Some((pid, status, cgroups, net))
        })
        .collect()
}
