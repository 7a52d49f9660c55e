//! envd's process rules (docs/protocols/envd-rules.md, "Processes"): a killed command's end, env
//! vars scoped to one command, and what a running command's stream sees when its sandbox is killed.

mod common;

use std::time::Duration;

use common::Server;
use mayfly_core::wire::connect::Decoder;
use mayfly_core::wire::e2b::{ProcessEvent, StreamMessage};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_command_ends_with_an_exit_error() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    let runner = sb.clone();
    let run = tokio::spawn(async move { runner.run("echo started; exec sleep 30").await });
    // The process is listed once it runs; kill it by the pid List names.
    let pid = sb.first_listed_pid().await;
    let (st, _) =
        sb.rpc("/process.Process/SendSignal", json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})).await;
    assert_eq!(st, 200);
    let run = tokio::time::timeout(Duration::from_secs(10), run).await.expect("the stream ended").unwrap();
    let end = run.end.expect("an end event");
    assert_eq!((end.exit_code, end.exited), (-1, false));
    assert_eq!(end.status, "signal: killed");
    assert_eq!(end.error.as_deref(), Some("signal: killed"), "the SDK raises CommandExitException on it");
    let (st, _) =
        sb.rpc("/process.Process/SendSignal", json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})).await;
    assert_eq!(st, 404, "a killed process is no longer there to signal");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_right_after_a_start_end_the_command() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    // Signalled as soon as it is listed, before its jail is even set up, several times over: each
    // must end, with the signal's own end.
    for (signal, status) in [("SIGNAL_SIGKILL", "signal: killed"), ("SIGNAL_SIGTERM", "signal: terminated")].repeat(3) {
        let runner = sb.clone();
        let run = tokio::spawn(async move { runner.run("exec sleep 30").await });
        let pid = sb.first_listed_pid().await;
        let (st, _) = sb.rpc("/process.Process/SendSignal", json!({"process": {"pid": pid}, "signal": signal})).await;
        assert_eq!(st, 200);
        let run = tokio::time::timeout(Duration::from_secs(10), run).await.expect("the stream ended").unwrap();
        assert_eq!(run.end.expect("an end event").status, status);
    }
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_vars_are_scoped_to_one_command() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120, "envVars": {"SANDBOX_WIDE": "yes"}})).await;
    let req = json!({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", "echo \"$FOO $SANDBOX_WIDE\""], "envs": {"FOO": "bar"}}, "stdin": false});
    let run = sb.start(req, &[]).await;
    assert_eq!(run.stdout(), "bar yes\n");
    let run = sb
        .run(
            "echo \"[$FOO] $SANDBOX_WIDE\"; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^FOO=' || true",
        )
        .await;
    assert_eq!(run.stdout(), "[] yes\n0\n", "no later command, nor any process, sees FOO");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sandbox_cuts_running_streams() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    let req = json!({"process": {"cmd": "/bin/bash", "args": ["-c", "echo up; exec sleep 60"]}});
    let mut res = sb.start_response(req, &[]).await;
    // Wait for the command's first output, then kill its sandbox.
    let mut d = Decoder::default();
    let mut up = false;
    while !up {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await.expect("output").unwrap().unwrap();
        d.push(&chunk);
        while let Some(f) = d.next_frame().unwrap() {
            let msg: StreamMessage = serde_json::from_slice(&f.payload).unwrap();
            up |= matches!(msg.event, ProcessEvent::Data(_));
        }
    }
    assert_eq!(s.kill(&sb.id).await, 204);
    // The stream is cut as E2B's is when the VM goes away: no end event, no end of stream, but a
    // broken transfer, after which /health says the sandbox is gone.
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => d.push(&chunk),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the stream ended");
    let mut frames = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        frames.push(String::from_utf8_lossy(&f.payload).into_owned());
    }
    assert!(rest.is_err(), "the stream ended cleanly: {frames:?}");
    assert!(frames.iter().all(|f| !f.contains("\"end\"")), "{frames:?}");
    let health = sb.envd(reqwest::Method::GET, "/health").send().await.unwrap();
    assert_eq!(health.status(), 502);
    s.finish().await;
}
