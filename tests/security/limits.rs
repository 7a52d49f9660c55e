//! No tenant exhausts what every tenant shares at the edge: running turns, a turn's durable output,
//! a turn's viewers, the bytes of a request body the worker reads, and the reaper's report. Each
//! test tries to go past its limit.

use std::time::{Duration, Instant};

use mayfly_core::providers::{sandbox_metadata, SandboxProvider, SandboxRequest};
use mayfly_core::{ErrorCode, EventBody, Outcome, ReaperStatus};
use mayfly_e2e::leftovers::sandboxd;
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{InProcessStack, TestStackOptions, ALICE_KEY, BOB_KEY};

use crate::support::{error_of, CancelOnDrop};

/// Code that runs until it is cancelled (or its timeout).
const LONG: &str = "import time\nprint('running', flush=True)\ntime.sleep(120)\n";

#[test]
fn a_tenant_runs_at_most_its_cap_of_turns_at_once_and_others_are_not_held_up() {
    let stack = InProcessStack::start_with(TestStackOptions::default().var("MAX_TURNS_PER_TENANT", "2"));
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let body = serde_json::json!({ "code": LONG, "database": false, "timeout_s": 120 }).to_string();
    let first = alice.create_turn(&body);
    let _first = CancelOnDrop { client: &alice, turn: &first };
    let second = alice.create_turn(&body);
    let _second = CancelOnDrop { client: &alice, turn: &second };

    let auth = format!("Bearer {ALICE_KEY}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let refused = stack.anonymous().raw("POST", "/v1/turns", &headers, body.as_bytes());
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(error_of(&refused).error.code, ErrorCode::TooManyRequests);
    let retry_after = refused.retry_after().expect("a Retry-After header");
    // At the latest, when the newest turn stops counting: its start window (60 s), its timeout,
    // the alarm's slack (10 s) and its reap (60 s) (`TurnRecord::counted_until_unix_ms`).
    assert!((1..=60 + 120 + 10 + 60).contains(&retry_after), "Retry-After: {retry_after}");

    // Another tenant is not held up by Alice's turns.
    let bobs = bob.create_turn(&serde_json::json!({ "code": "print('bob')", "database": false }).to_string());
    assert_eq!(outcome_of(&bob.follow(&bobs.turn_id, 0)), Some(Outcome::Succeeded));

    // Once one of Alice's turns has finished, she may start another.
    let (status, answer) = alice.call("DELETE", &first.status_url, None);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(outcome_of(&alice.follow(&first.turn_id, 0)), Some(Outcome::Cancelled));
    let deadline = Instant::now() + Duration::from_secs(30);
    let third = loop {
        let answer = stack.anonymous().raw("POST", "/v1/turns", &headers, body.as_bytes());
        if answer.status == 201 {
            break serde_json::from_str::<mayfly_core::CreateTurnResponse>(&answer.body).unwrap();
        }
        assert_eq!(answer.status, 429, "{answer:?}");
        assert!(Instant::now() < deadline, "a finished turn still counts against the cap");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _third = CancelOnDrop { client: &alice, turn: &third };
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
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let limit = mayfly_core::Limits::default().max_output_bytes as u64;
    // 24 MiB of output, six times the limit; the code then says it ran to its end.
    let code = "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(24 * 1024):\n    sys.stdout.write(line)\nsys.stdout.flush()\nprint('the end', file=sys.stderr)\n";
    let body = serde_json::json!({ "code": code, "database": false, "timeout_s": 120 });
    let turn = alice.create_turn(&body.to_string());
    let events = alice.follow(&turn.turn_id, 0);

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
    assert_eq!(alice.follow_sse(&turn.turn_id, 0, None), events);
}

#[test]
fn a_turn_serves_at_most_its_cap_of_viewers() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let body = serde_json::json!({ "code": LONG, "database": false, "timeout_s": 120 });
    let turn = alice.create_turn(&body.to_string());
    let _cancel = CancelOnDrop { client: &alice, turn: &turn };
    // A viewer's open stream, or the status and `Retry-After` of its refusal.
    let open = || {
        alice.open_sse(&turn.turn_id, 0, None).map_err(|refusal| {
            let retry_after = refusal.header("Retry-After").map(str::to_owned);
            (refusal.status, retry_after)
        })
    };
    let cap = 16;
    let mut viewers = Vec::new();
    for _ in 0..cap - 1 {
        viewers.push(open().expect("a viewer under the cap is served"));
    }
    let socket = alice.connect_events(&turn.turn_id, 0).expect("a WebSocket viewer under the cap is served");
    match open() {
        Err((429, retry_after)) => assert!(retry_after.is_some(), "a 429 says when to try again"),
        Ok(response) => panic!("viewer {} was served: {}", cap + 1, response.status()),
        Err((status, _)) => panic!("viewer {} answered {status}", cap + 1),
    }
    assert_eq!(alice.connect_events(&turn.turn_id, 0).err().as_deref(), Some("status 429 Too Many Requests"));
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

#[test]
fn a_body_is_read_only_up_to_the_limit() {
    let stack = InProcessStack::start();
    let head = |framing: &str| {
        format!(
            "POST /v1/turns HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ALICE_KEY}\r\n\
             Content-Type: application/json\r\n{framing}\r\n\r\n"
        )
    };
    // Announced as a gigabyte, and never sent: refused on the announcement alone.
    let line = stack.anonymous().status_line_of_raw(&head("Content-Length: 1000000000"), Vec::new());
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
    let line = stack.anonymous().status_line_of_raw(&head("Transfer-Encoding: chunked"), body);
    assert_eq!(line.as_deref(), Ok("HTTP/1.1 413 Payload Too Large"), "{line:?}");
    crate::support::assert_nothing_provisioned(&stack);
}

#[test]
fn a_tenant_sees_only_its_own_part_of_the_reapers_sweep() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let quick = serde_json::json!({ "code": "print(1)", "database": false }).to_string();
    let alices = alice.create_turn(&quick);
    let bobs = bob.create_turn(&quick);
    alice.follow(&alices.turn_id, 0);
    bob.follow(&bobs.turn_id, 0);
    // One sandbox each that no turn reaped (as if the worker had died), long past its deadline.
    let e2b = sandboxd(&stack.local().endpoints);
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

    stack.anonymous().trigger_sweep();
    let reaper = |key: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = stack.client(key).call("GET", "/v1/reaper", None);
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
