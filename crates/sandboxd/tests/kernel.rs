//! The kernel surface a jailed process has: the system calls container runtimes deny are denied
//! inside every sandbox (seccomp, plus no nested user namespaces), while ordinary work — Python
//! with threads and subprocesses, psycopg, Node, bash and its tools — still runs.

mod common;

use common::Server;
use serde_json::json;

const DENIED: &str = include_str!("kernel/denied.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_container_runtimes_deny_fail_inside_a_sandbox() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    assert_eq!(sb.write("/home/user/denied.py", DENIED.as_bytes()).await.status(), 200);
    let run = sb.run("python3 /home/user/denied.py").await;
    assert_eq!(run.exit_code(), 0, "{}{}", run.stdout(), run.stderr());
    let stdout = run.stdout();
    let allowed: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            let (name, result) = line.split_once(' ').unwrap_or((line, ""));
            // clone3 cannot be filtered by its flags (they are behind a pointer): it answers ENOSYS,
            // so that libc falls back to clone, whose flags can be.
            let expected = if name == "clone3" { "ENOSYS" } else { "EPERM" };
            result != expected
        })
        .collect();
    assert!(allowed.is_empty(), "calls not denied as expected: {allowed:?}\n{stdout}");
    assert_eq!(stdout.lines().count(), 22, "{stdout}");

    // No way around it through the tools either: no new user (or network) namespace.
    let run = sb.run("unshare -Urn true; echo rc=$?").await;
    assert!(!run.stdout().contains("rc=0"), "{}{}", run.stdout(), run.stderr());
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_work_still_runs_under_the_filter() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "mayfly", "timeout": 60})).await;
    let python = r#"
import concurrent.futures, multiprocessing, subprocess, psycopg
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    print(sum(pool.map(lambda n: n * n, range(10))))
with multiprocessing.Pool(2) as pool:
    print(sum(pool.map(abs, [-1, -2, -3])))
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
print(psycopg.__name__)
"#;
    assert_eq!(sb.write("/home/user/work.py", python.as_bytes()).await.status(), 200);
    let run = sb.run("python3 /home/user/work.py").await;
    assert_eq!(run.stdout(), "285\n6\nchild\npsycopg\n", "{}", run.stderr());
    let run = sb.run("node -e 'require(\"fs\").writeFileSync(\"/tmp/n\", \"node\"); console.log(require(\"fs\").readFileSync(\"/tmp/n\", \"utf8\"))'").await;
    assert_eq!(run.stdout(), "node\n", "{}", run.stderr());
    let run = sb.run("seq 3 | sort -r | tr '\\n' ' '; ps -e -o comm= | grep -c bash; ls /home | head -1").await;
    assert_eq!(run.stdout(), "3 2 1 1\nuser\n", "{}", run.stderr());
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}

/// A NUL in an environment variable or a working directory would end an argument early in what
/// the jail's bwrap reads, and what followed would be bwrap's own options. Refused on both planes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_variable_or_directory_is_refused_on_both_planes() {
    let s = Server::start().await;
    let injected = "x\u{0}--ro-bind\u{0}/\u{0}/host";
    let res =
        s.post("/sandboxes").json(&json!({"templateID": "base", "envVars": {"ZZ": injected}})).send().await.unwrap();
    assert_eq!(res.status(), 400, "{:?}", res.text().await);
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    for process in [
        json!({"cmd": "/bin/ls", "args": ["/host"], "envs": {"ZZ": injected}}),
        json!({"cmd": "/bin/ls", "args": ["/host"], "envs": {"A\u{0}--bind": "v"}}),
        json!({"cmd": "/bin/ls", "args": ["/host"], "cwd": "/tmp\u{0}--ro-bind\u{0}/\u{0}/host"}),
    ] {
        let run = sb.start(json!({"process": process, "stdin": false}), &[]).await;
        let error = run.end_stream.as_ref().and_then(|e| e.error.as_ref()).expect("the start is refused");
        assert_eq!(error.code, "invalid_argument", "{process}: {error:?}");
        assert!(run.stdout.is_empty() && run.end.is_none(), "{process}: something ran");
    }
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}
