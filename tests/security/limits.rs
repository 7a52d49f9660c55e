//! No tenant exhausts what every tenant shares at the edge: running turns, a turn's durable output,
//! a turn's viewers, the bytes of a request body the worker reads, and the reaper's report. Each
//! test tries to go past its limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::local_e2b;
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::{sandbox_metadata, SandboxProvider, SandboxRequest};
use mayfly_core::{ErrorCode, EventBody, Outcome, ReaperStatus};
use mayfly_e2e::turns::{outcome_of, stdout_of, TurnStack, ALICE_KEY, BOB_KEY};

use crate::support::{error_of, raw, CancelOnDrop};

/// Code that runs until it is cancelled (or its timeout).
const LONG: &str = "import time\nprint('running', flush=True)\ntime.sleep(120)\n";

#[test]
fn a_tenant_runs_at_most_its_cap_of_turns_at_once_and_others_are_not_held_up() {
    let stack = TurnStack::start_with_vars(&[("MAX_TURNS_PER_TENANT", "2")]);
    let body = serde_json::json!({ "code": LONG, "database": false, "timeout_s": 120 }).to_string();
    let first = stack.create(ALICE_KEY, &body);
    let _first = CancelOnDrop { stack: &stack, turn: &first, key: ALICE_KEY };
    let second = stack.create(ALICE_KEY, &body);
    let _second = CancelOnDrop { stack: &stack, turn: &second, key: ALICE_KEY };

    let auth = format!("Bearer {ALICE_KEY}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let refused = raw(&stack, "POST", "/v1/turns", &headers, body.as_bytes());
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(error_of(&refused).error.code, ErrorCode::TooManyRequests);
    let retry_after = refused.retry_after.expect("a Retry-After header");
    assert!((1..=120 + 75).contains(&retry_after), "Retry-After: {retry_after}");

    // Another tenant is not held up by Alice's turns.
    let bobs = stack.create(BOB_KEY, &serde_json::json!({ "code": "print('bob')", "database": false }).to_string());
    assert_eq!(outcome_of(&stack.follow(&bobs, BOB_KEY, 0)), Some(Outcome::Succeeded));

    // Once one of Alice's turns has finished, she may start another.
    let (status, answer) = stack.call("DELETE", &first.status_url, Some(ALICE_KEY), None);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(outcome_of(&stack.follow(&first, ALICE_KEY, 0)), Some(Outcome::Cancelled));
    let deadline = Instant::now() + Duration::from_secs(30);
    let third = loop {
        let answer = raw(&stack, "POST", "/v1/turns", &headers, body.as_bytes());
        if answer.status == 201 {
            break serde_json::from_str::<mayfly_core::CreateTurnResponse>(&answer.body).unwrap();
        }
        assert_eq!(answer.status, 429, "{answer:?}");
        assert!(Instant::now() < deadline, "a finished turn still counts against the cap");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _third = CancelOnDrop { stack: &stack, turn: &third, key: ALICE_KEY };
}

/// The bytes in `dir` and below.
fn size_of(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(kind) if kind.is_dir() => size_of(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

#[test]
fn a_turns_output_past_its_limit_is_neither_stored_nor_sent() {
    let stack = TurnStack::start();
    let limit = mayfly_core::Limits::default().max_output_bytes as u64;
    // 24 MiB of output, six times the limit; the code then says it ran to its end.
    let code = "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(24 * 1024):\n    sys.stdout.write(line)\nsys.stdout.flush()\nprint('the end', file=sys.stderr)\n";
    let body = serde_json::json!({ "code": code, "database": false, "timeout_s": 120 });
    let turn = stack.create(ALICE_KEY, &body.to_string());
    let events = stack.follow(&turn, ALICE_KEY, 0);

    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "the process ran on to its own end");
    assert_eq!(stdout_of(&events).len() as u64, limit, "exactly the limit is kept");
    let truncated: Vec<&EventBody> =
        events.iter().map(|e| &e.body).filter(|b| matches!(b, EventBody::OutputTruncated { .. })).collect();
    assert_eq!(truncated, [&EventBody::OutputTruncated { kept_bytes: limit }]);
    assert!(events.iter().any(|e| matches!(e.body, EventBody::ProcessExited { exit_code: 0, .. })));
    // The durable log holds about the limit, not the 24 MiB printed.
    let stored = size_of(&stack.data_dir().join("worker-state"));
    assert!(stored < 3 * limit, "the worker stored {stored} bytes for a turn whose output is capped at {limit}");
    // A replay is the same log.
    assert_eq!(stack.follow_sse(&turn, ALICE_KEY, 0, None), events);
}

#[test]
fn a_turn_serves_at_most_its_cap_of_viewers() {
    let stack = TurnStack::start();
    let body = serde_json::json!({ "code": LONG, "database": false, "timeout_s": 120 });
    let turn = stack.create(ALICE_KEY, &body.to_string());
    let _cancel = CancelOnDrop { stack: &stack, turn: &turn, key: ALICE_KEY };
    let url = format!("{}{}", stack.stack.url, turn.events_url);
    // A viewer's open stream, or the status and `Retry-After` of its refusal.
    let open = || {
        let request = ureq::get(&url)
            .timeout(Duration::from_secs(60))
            .set("Authorization", &format!("Bearer {ALICE_KEY}"))
            .set("Accept", "text/event-stream");
        match request.call() {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(status, response)) => {
                Err((status, response.header("Retry-After").map(str::to_owned)))
            }
            Err(err) => panic!("a viewer: {err}"),
        }
    };
    let cap = 16;
    let mut viewers = Vec::new();
    for _ in 0..cap - 1 {
        viewers.push(open().expect("a viewer under the cap is served"));
    }
    let (socket, _) = stack.connect(&turn, ALICE_KEY, 0).expect("a WebSocket viewer under the cap is served");
    match open() {
        Err((429, retry_after)) => assert!(retry_after.is_some(), "a 429 says when to try again"),
        Ok(response) => panic!("viewer {} was served: {}", cap + 1, response.status()),
        Err((status, _)) => panic!("viewer {} answered {status}", cap + 1),
    }
    assert_eq!(stack.connect(&turn, ALICE_KEY, 0).err().as_deref(), Some("status 429 Too Many Requests"));
    // A viewer that leaves makes room for another (a silent stream learns it is gone at its next
    // keep-alive, every 15 s).
    drop(viewers.pop());
    let deadline = Instant::now() + Duration::from_secs(45);
    while open().is_err() {
        assert!(Instant::now() < deadline, "a place left by a viewer is never given again");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(socket);
}

/// Sends `head` and then `body` on a raw connection to the stack (never finishing a chunked body),
/// and returns the status line of the answer, or why none came within a minute.
fn status_line(stack: &TurnStack, head: &str, body: Vec<u8>) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", stack.stack.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // The worker may answer and close while this is still being written: errors are expected.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let line = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Err(format!("closed without an answer: {:?}", String::from_utf8_lossy(&answer))),
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
                    break Ok(String::from_utf8_lossy(&answer[..end]).into_owned());
                }
            }
            Err(err) => break Err(format!("no answer: {err}")),
        }
    };
    drop(stream);
    let _ = sender.join();
    line
}

#[test]
fn a_body_is_read_only_up_to_the_limit() {
    let stack = TurnStack::start();
    let head = |framing: &str| {
        format!(
            "POST /v1/turns HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ALICE_KEY}\r\n\
             Content-Type: application/json\r\n{framing}\r\n\r\n"
        )
    };
    // Announced as a gigabyte, and never sent: refused on the announcement alone.
    let line = status_line(&stack, &head("Content-Length: 1000000000"), Vec::new());
    assert_eq!(line.as_deref(), Ok("HTTP/1.1 413 Payload Too Large"), "{line:?}");
    // Chunked, without a length, and never ending: refused once the limit and the most the worker
    // reads past it (to answer ordinary clients cleanly) have come.
    let chunk = vec![b' '; 64 * 1024];
    let mut body = Vec::new();
    for _ in 0..16 * 16 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    let line = status_line(&stack, &head("Transfer-Encoding: chunked"), body);
    assert_eq!(line.as_deref(), Ok("HTTP/1.1 413 Payload Too Large"), "{line:?}");
    crate::support::assert_nothing_provisioned(&stack);
}

#[test]
fn a_tenant_sees_only_its_own_part_of_the_reapers_sweep() {
    let stack = TurnStack::start();
    let quick = serde_json::json!({ "code": "print(1)", "database": false }).to_string();
    let alices = stack.create(ALICE_KEY, &quick);
    let bobs = stack.create(BOB_KEY, &quick);
    stack.follow(&alices, ALICE_KEY, 0);
    stack.follow(&bobs, BOB_KEY, 0);
    // One sandbox each that no turn reaped (as if the worker had died), long past its deadline.
    let e2b = E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(&stack.local().endpoints));
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let past_s = now_s - 3600;
    let leak = |turn_id: &str| {
        let request = SandboxRequest {
            template: "base".into(),
            timeout_s: 300,
            env: Vec::new(),
            metadata: sandbox_metadata(turn_id, past_s),
        };
        stack.runtime.block_on(e2b.create(request)).expect("sandboxd creates").sandbox_id
    };
    let (alices_leak, bobs_leak) = (leak(&alices.turn_id), leak(&bobs.turn_id));

    let (status, body) = stack.call("GET", "/__scheduled?cron=*/5+*+*+*+*", None, None);
    assert_eq!(status, 200, "{body}");
    let reaper = |key: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = stack.call("GET", "/v1/reaper", Some(key), None);
            assert_eq!(status, 200, "{body}");
            let reaper: ReaperStatus = serde_json::from_str(&body).expect("a ReaperStatus");
            if reaper.last_sweep.is_some() {
                return (reaper, body);
            }
            assert!(Instant::now() < deadline, "no sweep reported: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for (key, own, theirs) in [(ALICE_KEY, &alices_leak, &bobs_leak), (BOB_KEY, &bobs_leak, &alices_leak)] {
        let (reaper, body) = reaper(key);
        let sweep = reaper.last_sweep.unwrap();
        let reaped: Vec<&str> = sweep.reaped.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(reaped, [own.as_str()], "{body}");
        assert!(!body.contains(theirs.as_str()), "another tenant's resource is in the report: {body}");
        for other_turn in [&alices.turn_id, &bobs.turn_id] {
            let mine = if key == ALICE_KEY { &alices.turn_id } else { &bobs.turn_id };
            if other_turn != mine {
                assert!(!body.contains(other_turn.as_str()), "another tenant's turn is in the report: {body}");
            }
        }
        for count in ["sandboxes_seen", "databases_seen"] {
            assert!(!body.contains(count), "a count over every tenant's resources: {body}");
        }
    }
}
