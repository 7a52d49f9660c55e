//! Escape attempts from inside a jail, cross-sandbox isolation, concurrency and cleanup, all
//! checked against the host itself.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_attempts_fail() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    // Who and where we are.
    let run = sb.run("id -u; id -un; hostname; echo $HOME; pwd").await;
    assert_eq!(run.stdout(), format!("1000\nuser\n{}\n/home/user\n/home/user\n", sb.id));
    // Host secrets and the project are absent, not merely unreadable.
    let run = sb
        .run("for p in /etc/shadow /root/.bashrc /work /etc/sudoers /home/user/../../work; do [ -e $p ] && echo present:$p; done; ls /root | wc -l; ls /home")
        .await;
    assert_eq!(run.stdout(), "0\nuser\n", "{}", run.stderr());
    let here = env!("CARGO_MANIFEST_DIR");
    assert_eq!(sb.run(&format!("[ -e {here} ] && echo visible")).await.stdout(), "");
    // System directories are read-only, even to the jail's root.
    let run = sb.run("touch /usr/bin/x 2>&1; echo > /etc/passwd 2>&1; echo rc=$?").await;
    assert!(run.stdout().contains("Read-only file system"), "{}", run.stdout());
    assert!(run.stdout().ends_with("rc=1\n"));
    // Only the jail's own processes are visible; the host's pid 1 is not.
    let run = sb.run("ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/1/cmdline | tr '\\0' ' '").await;
    let count: usize = run.stdout().lines().next().unwrap().trim().parse().unwrap();
    assert!(count <= 6, "{}", run.stdout());
    assert!(run.stdout().contains("bwrap"), "pid 1 is the jail's init: {}", run.stdout());
    // Capabilities are gone: no mount, no chroot, no raising limits.
    let run = sb.run("mount -t tmpfs t /tmp 2>/dev/null && echo mounted; ulimit -u 100000 2>/dev/null && echo raised; grep CapEff /proc/self/status").await;
    assert_eq!(run.stdout(), "CapEff:\t0000000000000000\n");
    // Limits are in force.
    let run = sb.run("ulimit -u; ulimit -f; head -c 300000000 /dev/zero > /tmp/big; echo rc=$?").await;
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "256");
    assert_ne!(lines[1], "unlimited");
    assert_ne!(lines[2], "rc=0", "writing past RLIMIT_FSIZE must fail");
    // A symlink planted at the host's secrets does not make the file API read them.
    sb.run("ln -s /etc/shadow /home/user/shadow; ln -s /proc/1/root/etc/shadow /home/user/root-shadow").await;
    for p in ["/home/user/shadow", "/home/user/root-shadow"] {
        let r = sb.read(p).await;
        assert_ne!(r.status(), 200, "{p}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("root:"), "{p}: {body}");
    }
    // Nor does its entry: resolved inside the jail, where there is no such file, the link's type
    // is unknown and its target is the link itself (envd's rule for a link it cannot resolve).
    let (st, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "/home/user/shadow"})).await;
    assert_eq!(st, 200);
    assert_eq!(v["entry"]["type"], "FILE_TYPE_UNSPECIFIED");
    assert_eq!(v["entry"]["symlinkTarget"], "/home/user/shadow");
    // Writing through a planted link cannot reach the host either.
    sb.run("ln -s /root /home/user/rootdir; ln -s /etc /home/user/etcdir").await;
    assert_ne!(sb.write("/home/user/rootdir/pwned", b"x").await.status(), 200);
    assert!(!std::path::Path::new("/root/pwned").exists());
    assert_ne!(sb.write("/home/user/etcdir/pwned", b"x").await.status(), 200);
    assert!(!std::path::Path::new("/etc/pwned").exists());
    if mayfly_sandboxd::is_root() {
        // On the host, the jail runs as an unprivileged uid of its own.
        let running = sb.running("sleep 5").await;
        let procs = common::jailed_processes(s.uid_base);
        running.abort();
        assert!(procs.iter().any(|p| p.contains("sleep 5")), "{procs:?}");
    }
    s.finish().await;
}

/// Jailed code swaps a directory of its home, and a file in it, for links to a host directory,
/// over and over, while files are uploaded through them: not one lands on the host. sandboxd
/// writes uploads itself (`envd/direct.rs`), so this race is the one that matters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_swapped_in_while_files_upload_never_lead_out_of_the_sandbox() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    // Open to anyone: only how a path is resolved may keep a write out, not who owns the target.
    let host = tempfile::tempdir().unwrap();
    std::fs::set_permissions(host.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let target = host.path().display();
    // Uploads make what is missing, so a step may find its name taken: it is skipped, not fatal.
    let swapper = [
        "import os",
        "os.chdir('/home/user')",
        "os.makedirs('d/sub', exist_ok=True)",
        "open('d/f', 'w').close()",
        "open('swapping', 'w').close()",
        "steps = [",
        "    lambda: os.rename('d', 'd.real'),",
        &format!("    lambda: os.symlink('{target}', 'd'),"),
        "    lambda: os.unlink('d'),",
        "    lambda: os.rename('d.real', 'd'),",
        "    lambda: os.rename('d/f', 'd/f.real'),",
        &format!("    lambda: os.symlink('{target}/f', 'd/f'),"),
        "    lambda: os.unlink('d/f'),",
        "    lambda: os.rename('d/f.real', 'd/f'),",
        "]",
        "while True:",
        "    for step in steps:",
        "        try:",
        "            step()",
        "        except OSError:",
        "            pass",
    ]
    .join("\n");
    let bg = sb.clone();
    let swapping = tokio::spawn(async move { bg.run(&format!("python3 -c \"{swapper}\"")).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "/home/user/swapping"})).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the swapper never started");
    }
    let mut landed = 0;
    for i in 0..150 {
        for path in [format!("/home/user/d/x{i}"), format!("/home/user/d/sub/new{i}/y"), "/home/user/d/f".to_owned()] {
            landed += usize::from(sb.write(&path, b"pwned").await.status() == 200);
        }
    }
    assert!(!swapping.is_finished(), "the swapper stopped: {:?}", swapping.await);
    swapping.abort();
    let escaped: Vec<_> = std::fs::read_dir(host.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(escaped, Vec::<std::path::PathBuf>::new(), "uploads followed a link out of the sandbox");
    assert!(landed > 0, "no upload got through at all");
    // What an upload makes is the sandbox's, as if the jail's user had made it.
    assert_eq!(sb.write("/home/user/n/m/f", b"x").await.status(), 200);
    let run = sb.run("stat -c '%u %g %a' /home/user/n/m/f /home/user/n/m /home/user/n").await;
    assert_eq!(run.stdout(), "1000 1000 644\n1000 1000 755\n1000 1000 755\n", "{}", run.stderr());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_cannot_see_each_other() {
    let s = Server::start().await;
    let a = s.create(json!({"templateID": "base", "timeout": 60})).await;
    let b = s.create(json!({"templateID": "base", "timeout": 60})).await;
    assert_eq!(a.write("/home/user/secret-a", b"a's").await.status(), 200);
    assert_eq!(a.write("/tmp/tmp-a", b"a's").await.status(), 200);
    let bg = a.clone();
    let long = tokio::spawn(async move { bg.run_until_cut("exec -a marker-of-a sleep 30").await });
    let run = b.run("ls -a /home/user /tmp; ps -eo args; find / -xdev -name 'secret-*' 2>/dev/null").await;
    assert!(!run.stdout().contains("secret-a"), "{}", run.stdout());
    assert!(!run.stdout().contains("tmp-a"), "{}", run.stdout());
    assert!(!run.stdout().contains("marker-of-a"), "{}", run.stdout());
    assert_eq!(b.read("/home/user/secret-a").await.status(), 404);
    // The state directory of other sandboxes is not mounted either.
    let dir = s.state_dir.display().to_string();
    assert_eq!(b.run(&format!("ls {dir} 2>/dev/null | wc -l")).await.stdout(), "0\n");
    assert_eq!(s.kill(&a.id).await, 204);
    let (run, cut) = long.await.unwrap();
    assert!(cut.is_some() && run.end.is_none(), "a killed sandbox's stream breaks off: {run:?}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_sandboxes() {
    let s = Server::start().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let base = s.base.clone();
        let http = s.http.clone();
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(format!("{base}/sandboxes"))
                .header("x-api-key", common::KEY)
                .json(&json!({"templateID": "base", "timeout": 120, "envVars": {"N": i.to_string()}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            let v: serde_json::Value = res.json().await.unwrap();
            let sb = common::Sbx { id: v["sandboxID"].as_str().unwrap().into(), token: None, base, http };
            let run = sb.run("echo n=$N; hostname").await;
            assert_eq!(run.exit_code(), 0);
            assert_eq!(run.stdout(), format!("n={i}\n{}\n", sb.id));
            sb.id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    assert_eq!(s.state.sandboxes().len(), 20);
    let kills = futures_util::future::join_all(ids.iter().map(|id| s.kill(id))).await;
    assert!(kills.iter().all(|k| *k == 204));
    common::assert_no_leftovers(&s.state_dir, s.uid_base).await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leaves_nothing_behind() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "mayfly", "timeout": 60})).await;
    // A process tree that tries to outlive its parent: background, nohup, setsid, a double fork.
    let bg = sb.clone();
    let run = tokio::spawn(async move {
        bg.run_until_cut("nohup sleep 300 >/dev/null 2>&1 & setsid sleep 301 & (sleep 302 &) ; python3 -c 'import os,time; os.fork() or time.sleep(303); time.sleep(303)' & touch /tmp/ready; wait").await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "/tmp/ready"})).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cgroups: Vec<std::path::PathBuf> = ["memory", "pids", "cpu"]
        .iter()
        .map(|c| std::path::Path::new("/sys/fs/cgroup").join(c).join("mayfly-sandboxd").join(&sb.id))
        .collect();
    if mayfly_sandboxd::is_root() {
        assert!(common::jailed_processes(s.uid_base).len() >= 5);
        for cgroup in cgroups.iter().filter(|c| c.parent().unwrap().parent().unwrap().join("cgroup.procs").exists()) {
            let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
            assert!(procs.lines().count() >= 5, "the jail's processes are in {}: {procs:?}", cgroup.display());
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        assert!(
            mounts.contains(s.state_dir.join(&sb.id).to_str().unwrap()),
            "the sandbox's tmpfs is mounted while it lives"
        );
    }
    assert!(s.state_dir.join(&sb.id).exists());
    assert_eq!(s.kill(&sb.id).await, 204);
    // Kill returns after teardown, so nothing may remain even without waiting.
    assert!(common::jailed_processes(s.uid_base).is_empty(), "{:?}", common::jailed_processes(s.uid_base));
    assert!(!s.state_dir.join(&sb.id).exists());
    assert!(!std::fs::read_to_string("/proc/mounts").unwrap().contains(s.state_dir.join(&sb.id).to_str().unwrap()));
    for cgroup in &cgroups {
        assert!(!cgroup.exists(), "{} outlived its sandbox", cgroup.display());
    }
    let (run, cut) = run.await.unwrap();
    assert!(cut.is_some() && run.end.is_none(), "a killed sandbox's stream breaks off: {run:?}");
    s.finish().await;
}

/// rlimits cannot cap resident memory (the address-space limit is generous so runtimes start);
/// the sandbox's memory cgroup does. As root (as in CI) there always is one: sandboxd does not
/// start without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_by_the_memory_cgroup() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "mayfly", "timeout": 60})).await;
    // 1.5 GiB touched page by page: within the 4 GiB address-space rlimit, above the 1 GiB cap.
    let run = sb
        .run("python3 -c 'b = bytearray(1536 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint(\"survived\")'; echo rc=$?")
        .await;
    if mayfly_sandboxd::is_root() {
        assert!(!run.stdout().contains("survived"), "{}{}", run.stdout(), run.stderr());
        assert!(run.stdout().contains("rc=137"), "killed by the OOM killer: {}{}", run.stdout(), run.stderr());
    }
    // The sandbox itself is fine afterwards.
    assert_eq!(sb.run("echo still here").await.stdout(), "still here\n");
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mayfly_template_imports_psycopg() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "mayfly", "timeout": 60})).await;
    let run = sb
        .run("/usr/bin/python3 -c 'import psycopg; print(psycopg.__name__)'; python3 -c 'import psycopg' && echo ok2")
        .await;
    assert_eq!(run.stdout(), "psycopg\nok2\n", "{}", run.stderr());
    assert_eq!(sb.run("touch /opt/venv/x 2>/dev/null || echo ro").await.stdout(), "ro\n");
    let base = s.create(json!({"templateID": "base", "timeout": 60})).await;
    assert_ne!(base.run("python3 -c 'import psycopg'").await.exit_code(), 0);
    s.finish().await;
}

/// sandboxd is SIGKILLed with a sandbox alive: its jail ends with it, but the sandbox's directory
/// (a tmpfs when root) and cgroups stay. Started again on the same state directory, it removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_removes_what_a_killed_sandboxd_left() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let start = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mayfly-sandboxd"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--api-key", common::KEY, "--state-dir"])
            .arg(&state_dir)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (child, format!("http://127.0.0.1:{port}"))
    };
    let wait_ready = |base: String| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while reqwest::get(format!("{base}/health")).await.map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(std::time::Instant::now() < deadline, "sandboxd did not start");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (mut first, base) = start();
    wait_ready(base.clone()).await;
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/sandboxes"))
        .header("x-api-key", common::KEY)
        .json(&json!({"templateID": "base", "timeout": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    // The sandbox's own tmpfs; the staged templates and `/etc` are mounted anew by each life.
    let sandbox_dir = state_dir.join(&id);
    let mounted = || std::fs::read_to_string("/proc/mounts").unwrap().contains(sandbox_dir.to_str().unwrap());
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(state_dir.join(&id).exists(), "a killed sandboxd leaves its sandbox's directory");
    assert_eq!(mounted(), mayfly_sandboxd::is_root());

    let (mut second, base) = start();
    wait_ready(base).await;
    assert!(!state_dir.join(&id).exists(), "the directory of the previous life is removed");
    assert!(!mounted(), "and unmounted");
    for controller in ["memory", "pids", "cpu"] {
        let cgroup = std::path::Path::new("/sys/fs/cgroup").join(controller).join("mayfly-sandboxd").join(&id);
        assert!(!cgroup.exists(), "{} is removed", cgroup.display());
    }
    second.kill().unwrap();
    second.wait().unwrap();
    // Killed too, it left its staged templates mounted for its next start to replace.
    let templates = state_dir.join(".templates");
    if mayfly_sandboxd::is_root() {
        nix::mount::umount2(&templates, nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
    std::fs::remove_dir_all(&state_dir).unwrap();
}

/// A host service on 127.0.0.1 that answers every connection with `word` and hangs up.
async fn host_service(word: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = conn.write_all(word.as_bytes()).await;
        }
    });
    port
}

/// Python that connects to 127.0.0.1:`port` and prints what it reads, or the error's name.
fn connect_to(port: u16) -> String {
    format!(
        "python3 -c 'import socket\ntry:\n s = socket.create_connection((\"127.0.0.1\", {port}), timeout=5)\n print(s.recv(100).decode())\nexcept OSError as e:\n print(type(e).__name__)'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_reaches_its_forwarded_ports_and_its_own_loopback_only() {
    let forwarded = host_service("forwarded").await;
    let private = host_service("host-private").await;
    let s = Server::start_with(|c| {
        c.network = mayfly_sandboxd::SandboxNetwork::Isolated { forward_ports: vec![forwarded] };
    })
    .await;
    let a = s.create(json!({"templateID": "base", "timeout": 60})).await;
    let b = s.create(json!({"templateID": "base", "timeout": 60})).await;

    // A forwarded port answers at the sandbox's own 127.0.0.1, as the host's does.
    assert_eq!(a.run(&connect_to(forwarded)).await.stdout(), "forwarded\n");
    let reached = a.run(&connect_to(private)).await.stdout();
    if !mayfly_sandboxd::is_root() {
        // Without root there is no namespace to give: the host's network, as documented.
        assert_eq!(reached, "host-private\n");
        return;
    }
    assert_eq!(reached, "ConnectionRefusedError\n", "the host's other ports are not there");
    // Nor is the host's loopback under another address, or its sandboxd.
    let api_port = s.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    assert_eq!(a.run(&connect_to(api_port)).await.stdout(), "ConnectionRefusedError\n");
    assert_eq!(a.run("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '").await.stdout(), "lo\n");

    // A server one process of `a` starts answers another process of `a`, and nobody else.
    let server = {
        let a = a.clone();
        tokio::spawn(async move {
            a.run("python3 -c 'import socket\nl = socket.create_server((\"127.0.0.1\", 7000))\nopen(\"/tmp/listening\", \"w\").close()\nwhile True:\n c, _ = l.accept()\n c.sendall(b\"neighbour\")\n c.close()'")
                .await
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.rpc("/filesystem.Filesystem/Stat", json!({"path": "/tmp/listening"})).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the server in `a` never listened");
    }
    assert_eq!(a.run(&connect_to(7000)).await.stdout(), "neighbour\n");
    assert_eq!(b.run(&connect_to(7000)).await.stdout(), "ConnectionRefusedError\n");
    server.abort();
    s.finish().await;
}
