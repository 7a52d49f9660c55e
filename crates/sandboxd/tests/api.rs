//! The control plane and envd's data plane against real bubblewrap jails.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_rules() {
    let s = Server::start_with(|c| c.max_sandboxes = 2).await;
    // Keys.
    let r = s.http.post(format!("{}/sandboxes", s.base)).json(&json!({"templateID": "base"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 401);
    let r = s.http.get(format!("{}/health", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Templates and timeouts.
    let r = s.post("/sandboxes").json(&json!({"templateID": "nope"})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    for t in [0, -5, 3601] {
        let r = s.post("/sandboxes").json(&json!({"templateID": "base", "timeout": t})).send().await.unwrap();
        assert_eq!(r.status(), 400, "timeout {t}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 400);
    }
    let r = s.post("/sandboxes").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Shape of create and get; omitted timeout is 15 s.
    let r = s.post("/sandboxes").json(&json!({"templateID": "base", "metadata": {"a": "1"}})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    assert!(id.starts_with('i') && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(created["envdVersion"], mayfly_sandboxd::ENVD_VERSION);
    assert_eq!(created["domain"], "localhost");
    assert_eq!(created["clientID"], "6532622b");
    assert!(created["envdAccessToken"].is_null(), "not secure, so no token");
    let got: serde_json::Value = s.get(&format!("/sandboxes/{id}")).send().await.unwrap().json().await.unwrap();
    let started = humantime::parse_rfc3339(got["startedAt"].as_str().unwrap()).unwrap();
    let end = humantime::parse_rfc3339(got["endAt"].as_str().unwrap()).unwrap();
    let ttl = end.duration_since(started).unwrap().as_secs_f64();
    assert!((14.0..=16.0).contains(&ttl), "{ttl}");
    assert_eq!(got["state"], "running");
    assert_eq!(got["metadata"]["a"], "1");
    // Capacity.
    let second = s.create(json!({"templateID": "base", "secure": true})).await;
    assert!(second.token.is_some());
    let r = s.post("/sandboxes").json(&json!({"templateID": "base"})).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let msg = r.json::<serde_json::Value>().await.unwrap()["message"].as_str().unwrap().to_owned();
    assert!(msg.starts_with("you have reached the maximum number of concurrent E2B sandboxes (2)"), "{msg}");
    // Timeout moves endAt both ways; refresh only extends; connect answers the sandbox.
    let r = s.post(&format!("/sandboxes/{id}/timeout")).json(&json!({"timeout": 600})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let got: serde_json::Value = s.get(&format!("/sandboxes/{id}")).send().await.unwrap().json().await.unwrap();
    let end2 = humantime::parse_rfc3339(got["endAt"].as_str().unwrap()).unwrap();
    assert!(end2.duration_since(end).unwrap() > Duration::from_secs(500));
    let r = s.post(&format!("/sandboxes/{id}/refreshes")).json(&json!({"duration": 20})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let got: serde_json::Value = s.get(&format!("/sandboxes/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(humantime::parse_rfc3339(got["endAt"].as_str().unwrap()).unwrap(), end2, "refresh never shortens");
    let r = s.post(&format!("/sandboxes/{id}/connect")).json(&json!({"timeout": 30})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["sandboxID"], id.as_str());
    // Kill, then 404 everywhere.
    assert_eq!(s.kill(&id).await, 204);
    assert_eq!(s.kill(&id).await, 404);
    assert_eq!(s.get(&format!("/sandboxes/{id}")).send().await.unwrap().status(), 404);
    assert_eq!(
        s.post(&format!("/sandboxes/{id}/timeout")).json(&json!({"timeout": 1})).send().await.unwrap().status(),
        404
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_pages() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let owner = if i < 4 { "turnbot" } else { "other" };
        ids.push(
            s.create(json!({"templateID": "base", "timeout": 60, "metadata": {"owner": owner, "n": i.to_string()}}))
                .await
                .id,
        );
    }
    let all: Vec<serde_json::Value> =
        s.get("/v2/sandboxes?metadata=owner%3Dturnbot").send().await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|v| v["metadata"]["owner"] == "turnbot" && v.get("envdAccessToken").is_none()));
    let two: Vec<serde_json::Value> =
        s.get("/v2/sandboxes?metadata=owner%3Dturnbot%26n%3D2").send().await.unwrap().json().await.unwrap();
    assert_eq!(two.len(), 1);
    assert_eq!(two[0]["sandboxID"], ids[2].as_str());
    // Pages of 3 then 1 via nextToken, with no duplicates.
    let r = s.get("/v2/sandboxes?metadata=owner%3Dturnbot&limit=3&state=running").send().await.unwrap();
    let token = r.headers()["x-next-token"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["x-total-running"], "4");
    let p1: Vec<serde_json::Value> = r.json().await.unwrap();
    let r = s.get(&format!("/v2/sandboxes?metadata=owner%3Dturnbot&limit=3&nextToken={token}")).send().await.unwrap();
    assert!(r.headers().get("x-next-token").is_none());
    let p2: Vec<serde_json::Value> = r.json().await.unwrap();
    let mut seen: Vec<&str> = p1.iter().chain(&p2).map(|v| v["sandboxID"].as_str().unwrap()).collect();
    assert_eq!(seen.len(), 4);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 4);
    let paused: Vec<serde_json::Value> =
        s.get("/v2/sandboxes?state=paused").send().await.unwrap().json().await.unwrap();
    assert!(paused.is_empty());
    assert_eq!(s.get("/v2/sandboxes?limit=0").send().await.unwrap().status(), 400);
    assert_eq!(s.get("/v2/sandboxes?metadata=novalue").send().await.unwrap().status(), 400);
    assert_eq!(s.get("/v2/sandboxes?nextToken=garbage").send().await.unwrap().status(), 400);
    let v1: Vec<serde_json::Value> =
        s.get("/sandboxes?metadata=owner%3Dother").send().await.unwrap().json().await.unwrap();
    assert_eq!(v1.len(), 1);
    assert_eq!(v1[0]["sandboxID"], ids[4].as_str());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_stream_and_files() {
    let s = Server::start().await;
    let sb =
        s.create(json!({"templateID": "base", "timeout": 60, "secure": true, "envVars": {"FROM_CREATE": "c1"}})).await;

    // start → data → end → end-stream; exitCode omitted when 0; env vars present.
    let run = sb
        .start(
            json!({"process": {"cmd": "/bin/sh", "args": ["-c", "echo $E2B_SANDBOX $FROM_CREATE $FROM_REQ; echo err >&2"], "envs": {"FROM_REQ": "r1"}}, "stdin": false}),
            &[],
        )
        .await;
    assert!(run.first_event_start);
    assert!(run.pid.is_some());
    assert_eq!(run.stdout(), "true c1 r1\n");
    assert_eq!(run.stderr(), "err\n");
    assert_eq!(run.end_json.as_deref(), Some(r#"{"exited":true,"status":"exit status 0"}"#));
    assert_eq!(run.end_stream.as_ref().unwrap().error, None);

    let run = sb.run("exit 3").await;
    assert_eq!(run.exit_code(), 3);
    assert_eq!(run.end.as_ref().unwrap().status, "exit status 3");

    // Output arrives in ≤ 32 KiB chunks and intact.
    let run = sb.run("head -c 200000 /dev/zero | tr '\\0' a").await;
    assert_eq!(run.stdout.len(), 200_000);
    assert!(run.stdout.iter().all(|b| *b == b'a'));
    assert!(run.max_chunk <= 32 * 1024, "{}", run.max_chunk);

    // Keepalive after the interval without data.
    let run = sb
        .start(
            json!({"process": {"cmd": "/bin/sh", "args": ["-c", "sleep 2.5; echo done"]}}),
            &[("keepalive-ping-interval", "1")],
        )
        .await;
    assert!(run.keepalives >= 1, "{run:?}");
    assert_eq!(run.stdout(), "done\n");

    // Connect-Timeout-Ms kills at the deadline: 0x02 deadline_exceeded, no end event, HTTP 200.
    let t = Instant::now();
    let run =
        sb.start(json!({"process": {"cmd": "/bin/sleep", "args": ["30"]}}), &[("connect-timeout-ms", "700")]).await;
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(run.end.is_none());
    assert_eq!(run.end_stream.unwrap().error.unwrap().code, "deadline_exceeded");
    let (_, list) = sb.rpc("/process.Process/List", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut listed = list["processes"].as_array().unwrap().len();
    while listed != 0 {
        assert!(Instant::now() < deadline, "killed process still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        listed = sb.rpc("/process.Process/List", json!({})).await.1["processes"].as_array().unwrap().len();
    }

    // Errors as a 0x02 frame with HTTP 200.
    let body = mayfly_core::wire::connect::encode(0, br#"{"process":{"cmd":"true"}}"#);
    let res = sb
        .envd(reqwest::Method::POST, "/process.Process/Start")
        .header("content-type", "application/connect+json")
        .header("authorization", "Basic bm9ib2R5Og==")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let run = common::read_stream(res).await;
    assert!(run.pid.is_none());
    assert_eq!(run.end_stream.unwrap().error.unwrap().code, "unauthenticated");
    let res = sb
        .envd(reqwest::Method::POST, "/process.Process/Start")
        .header("content-type", "application/connect+json")
        .body(vec![0, 0, 0, 0, 9, b'{'])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(common::read_stream(res).await.end_stream.unwrap().error.unwrap().code, "invalid_argument");

    // Files: upload (octet-stream and multipart), run it, download, 404 and directory.
    let r = sb.write("/home/user/dir/hello.sh", b"echo from file").await;
    assert_eq!(r.status(), 200);
    let info: serde_json::Value = r.json().await.unwrap();
    assert_eq!(info, json!([{"path": "/home/user/dir/hello.sh", "name": "hello.sh", "type": "file"}]));
    assert_eq!(
        sb.run("sh /home/user/dir/hello.sh; stat -c %U /home/user/dir/hello.sh").await.stdout(),
        "from file\nuser\n"
    );
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"multi".to_vec()).file_name("rel.txt"));
    let r = sb.envd(reqwest::Method::POST, "/files").multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()[0]["path"], "/home/user/rel.txt");
    let r = sb.read("/home/user/rel.txt").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"multi");
    assert_eq!(sb.read("/home/user/missing").await.status(), 404);
    assert_eq!(sb.read("/home/user/dir").await.status(), 400);
    assert_eq!(sb.write("/usr/bin/evil", b"x").await.status(), 403);

    // Filesystem RPCs.
    let (st, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "/home/user/dir/hello.sh"})).await;
    assert_eq!(st, 200);
    assert_eq!(v["entry"]["type"], "FILE_TYPE_FILE");
    assert_eq!(v["entry"]["size"], "14");
    assert_eq!(v["entry"]["owner"], "user");
    assert_eq!(sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "/nope"})).await.0, 404);
    let (st, v) = sb.rpc("/filesystem.Filesystem/MakeDir", json!({"path": "made/deep"})).await;
    assert_eq!(st, 200);
    assert_eq!(v["entry"]["path"], "/home/user/made/deep");
    assert_eq!(sb.rpc("/filesystem.Filesystem/MakeDir", json!({"path": "made/deep"})).await.0, 409);
    let (st, v) = sb.rpc("/filesystem.Filesystem/ListDir", json!({"path": "/home/user", "depth": 1})).await;
    assert_eq!(st, 200);
    let mut names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["dir", "made", "rel.txt"]);
    assert_eq!(sb.rpc("/filesystem.Filesystem/Remove", json!({"path": "made"})).await.0, 200);
    assert_eq!(sb.rpc("/filesystem.Filesystem/Remove", json!({"path": "made"})).await.0, 200, "remove is idempotent");
    assert_eq!(sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "made"})).await.0, 404);

    // Token enforcement: 401 JSON without it; /health needs none.
    let mut anon = sb.clone();
    anon.token = None;
    let r = anon.read("/home/user/rel.txt").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 401);
    assert_eq!(anon.envd(reqwest::Method::GET, "/health").send().await.unwrap().status(), 204);

    // Routing by Host `49983-<id>.<domain>`.
    let r = s
        .http
        .get(format!("{}/health", s.base))
        .header("host", format!("49983-{}.localhost", sb.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Gone sandbox → 502 with E2B's body.
    assert_eq!(s.kill(&sb.id).await, 204);
    let r = sb.envd(reqwest::Method::GET, "/health").send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"sandboxId": sb.id, "message": "The sandbox was not found", "code": 502})
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_input_and_reattach() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    // A process reading stdin, started in the background; re-attach with Connect and feed it.
    let bg = sb.clone();
    let first = tokio::spawn(async move {
        bg.start(json!({"process": {"cmd": "/bin/sh", "args": ["-c", "read line; echo got:$line; touch /tmp/echoed; sleep 30"]}, "tag": "t1", "stdin": true}), &[]).await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let (_, v) = sb.rpc("/process.Process/List", json!({})).await;
        if let Some(p) = v["processes"].as_array().and_then(|a| a.first()) {
            assert_eq!(p["tag"], "t1");
            break p["pid"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let second = {
        let sb = sb.clone();
        let body = mayfly_core::wire::connect::encode(0, json!({"process": {"tag": "t1"}}).to_string().as_bytes());
        let res = sb
            .envd(reqwest::Method::POST, "/process.Process/Connect")
            .header("content-type", "application/connect+json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        tokio::spawn(common::read_stream(res))
    };
    let (st, _) =
        sb.rpc("/process.Process/SendInput", json!({"process": {"pid": pid}, "input": {"stdin": "aGkK"}})).await;
    assert_eq!(st, 200);
    // The process marks when it has echoed, so killing it cannot race its output.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "/tmp/echoed"})).await.0 != 200 {
        assert!(Instant::now() < deadline, "input never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, _) =
        sb.rpc("/process.Process/SendSignal", json!({"process": {"pid": 999}, "signal": "SIGNAL_SIGKILL"})).await;
    assert_eq!(st, 404);
    let (st, _) =
        sb.rpc("/process.Process/SendSignal", json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})).await;
    assert_eq!(st, 200);
    let run = first.await.unwrap();
    assert_eq!(run.stdout(), "got:hi\n");
    let end = run.end.unwrap();
    assert_eq!(end.exit_code, -1);
    assert_eq!(end.status, "signal: killed");
    let re = second.await.unwrap();
    assert_eq!(re.pid, Some(pid as u32));
    assert!(re.end.is_some());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_at_end_at() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 1})).await;
    let bg = sb.clone();
    let run = tokio::spawn(async move { bg.run_until_cut("echo started; sleep 60").await });
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.state.sandboxes().is_empty() {
        assert!(Instant::now() < deadline, "sandbox outlived its timeout");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // As on E2B, a sandbox that reaches its end takes its streams with it: broken off, no end event.
    let (run, cut) = run.await.unwrap();
    assert_eq!(run.stdout(), "started\n");
    assert!(cut.is_some() && run.end.is_none() && run.end_stream.is_none(), "{run:?}");
    assert_eq!(s.get(&format!("/sandboxes/{}", sb.id)).send().await.unwrap().status(), 404);
    // set_timeout to 0 ends a sandbox at once.
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    assert_eq!(
        s.post(&format!("/sandboxes/{}/timeout", sb.id)).json(&json!({"timeout": 0})).send().await.unwrap().status(),
        204
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.state.sandboxes().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::assert_no_leftovers(&s.state_dir, s.uid_base).await;
    s.finish().await;
}

/// Numbers and bytes a client chooses that would overflow the clock or cannot name a file are
/// answered as mistakes, never by a panic (which a build that aborts on panic would turn into
/// every sandbox's end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_that_would_overflow_and_paths_with_nul_are_answered_not_crashed_on() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 60})).await;
    let huge = json!({"timeout": i64::MAX});
    let r = s.post(&format!("/sandboxes/{}/timeout", sb.id)).json(&huge).send().await.unwrap();
    assert_eq!(r.status(), 204, "a timeout past the maximum lifetime is clamped to it");

    let req = json!({"process": {"cmd": "/bin/echo", "args": ["still here"]}, "stdin": false});
    let run = sb.start(req.clone(), &[("keepalive-ping-interval", "18446744073709551615")]).await;
    assert_eq!((run.stdout(), run.exit_code()), ("still here\n".to_owned(), 0));
    let run = sb.start(req, &[("connect-timeout-ms", "18446744073709551615")]).await;
    assert_eq!((run.stdout(), run.exit_code()), ("still here\n".to_owned(), 0));

    assert_eq!(sb.read("/tmp/a%00b").await.status(), 400);
    assert_eq!(sb.write("/tmp/a%00b", b"x").await.status(), 400);
    assert_eq!(sb.run("echo alive").await.stdout(), "alive\n");
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}
