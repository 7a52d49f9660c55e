//! An agent runs turns through the edge API: it creates one with its API key, follows the events
//! over a WebSocket (late viewers replay from any `seq`), reads the turn back, and finds both
//! resources gone afterwards. Keys are tenants: no key is a 401, someone else's turn a 404.

use std::time::{Duration, Instant};

use mayfly_core::providers::DatabaseProvider;
use mayfly_core::{
    ErrorBody, ErrorCode, EventBody, KeepResponse, Outcome, ReapState, ReaperStatus, Resource, TurnList, TurnState,
};
use mayfly_e2e::leftovers::scratchdb;
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{InProcessStack, TestStackOptions, Tools, ALICE_KEY, BOB_KEY};

#[test]
fn turns_run_stream_replay_and_leave_nothing_behind() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);

    // Before the first turn, the operator's check: every provider answers as a turn needs.
    let (status, body) = alice.call("GET", "/v1/health?check=providers", None);
    assert_eq!(status, 200, "{body}");
    let health: mayfly_core::Health = serde_json::from_str(&body).unwrap();
    let checks = health.checks.expect("the checks are listed");
    assert!(checks.iter().all(|c| c.verdict == mayfly_core::Verdict::Ok), "{body}");
    assert_eq!(checks.len(), 4, "key, the one template, instanode, token: {body}");

    // print(1): the whole life of a turn, live from seq 1.
    let posted = Instant::now();
    let (turn, timing) = alice.try_create_turn_timed(r#"{"code":"print(1)","language":"python"}"#).unwrap();
    assert_eq!(turn.events_url, format!("/v1/turns/{}/events", turn.turn_id));
    let steps: Vec<&str> = timing.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(steps, ["admit", "start"], "the create says where its time went (Server-Timing)");
    let mut first_stdout = None;
    let events = alice.follow_with(&turn.turn_id, 0, |event| {
        if matches!(event.body, EventBody::Stdout { .. }) && first_stdout.is_none() {
            first_stdout = Some(posted.elapsed());
        }
    });
    // Reported, not asserted: the number is for the issue's closing note, and timing asserts flake.
    eprintln!("print(1): POST to first stdout byte over the WebSocket: {first_stdout:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "no gaps, no duplicates: {events:?}");
    assert_eq!(stdout_of(&events), "1\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert!(events.iter().any(|e| matches!(e.body, EventBody::SandboxReaped { .. })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e.body, EventBody::DatabaseReaped { .. })), "{events:?}");

    // A late viewer replays exactly what came after the seq it names.
    let after = 3;
    let replay = alice.follow(&turn.turn_id, after);
    assert_eq!(replay, events[after as usize..].to_vec());
    assert_eq!(alice.follow(&turn.turn_id, 0), events, "a viewer after the end gets the whole log");
    // The same log as Server-Sent Events; `Last-Event-ID` counts like `after`.
    assert_eq!(alice.follow_sse(&turn.turn_id, after, None), events[after as usize..].to_vec());
    assert_eq!(alice.follow_sse(&turn.turn_id, 0, Some(5)), events[5..].to_vec());
    assert_eq!(alice.follow_sse(&turn.turn_id, 0, None), events);

    let detail = alice.wait_reaped(&turn.turn_id);
    assert_eq!(detail.outcome, Some(Outcome::Succeeded));
    assert_eq!(detail.exit_code, Some(0));
    assert_eq!(detail.events, events.len() as u64);
    assert_eq!(detail.resources.len(), 2, "{detail:?}");
    stack.assert_nothing_left(&turn.turn_id);

    // The seed turn: a million rows in the scratch database, counted.
    let code = std::fs::read_to_string(Tools::of_workspace().root.join("examples/seed_turn.py")).unwrap();
    let body = serde_json::json!({ "code": code, "language": "python" }).to_string();
    let seed = alice.create_turn(&body);
    let events = alice.follow(&seed.turn_id, 0);
    assert_eq!(stdout_of(&events), "(1000000,)\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    alice.wait_reaped(&seed.turn_id);
    stack.assert_nothing_left(&seed.turn_id);
}

#[test]
fn keys_are_tenants_and_requests_are_checked() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let error_code = |body: &str| serde_json::from_str::<ErrorBody>(body).expect("the error shape").error.code;

    let (status, body) = stack.anonymous().call("POST", "/v1/turns", Some(r#"{"code":"print(1)"}"#));
    assert_eq!((status, error_code(&body)), (401, ErrorCode::Unauthorized), "{body}");
    let (status, body) = stack.client("not-a-key").call("POST", "/v1/turns", Some(r#"{"code":"print(1)"}"#));
    assert_eq!((status, error_code(&body)), (401, ErrorCode::Unauthorized), "{body}");

    let (status, body) = alice.call("POST", "/v1/turns", Some(r#"{"code":"x","timeout":5}"#));
    assert_eq!((status, error_code(&body)), (400, ErrorCode::InvalidJson), "{body}");
    assert!(body.contains("unknown field `timeout`"), "{body}");
    let (status, body) = alice.call("POST", "/v1/turns", Some(r#"{"code":" "}"#));
    assert_eq!((status, error_code(&body)), (400, ErrorCode::InvalidRequest), "{body}");
    let big = serde_json::json!({ "code": "#".repeat(300 * 1024) }).to_string();
    let (status, body) = alice.call("POST", "/v1/turns", Some(&big));
    assert_eq!((status, error_code(&body)), (413, ErrorCode::PayloadTooLarge), "{body}");

    let turn = alice.create_turn(r#"{"code":"print(2)","database":false}"#);
    // Followed live as Server-Sent Events from the start, then replayed over the WebSocket.
    let events = alice.follow_sse(&turn.turn_id, 0, None);
    assert_eq!(stdout_of(&events), "2\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert_eq!(alice.follow(&turn.turn_id, 0), events);

    // Bob sees nothing of Alice's turn: not its state, not its events, and cannot cancel it.
    for (method, path) in [("GET", turn.status_url.as_str()), ("DELETE", turn.status_url.as_str())] {
        let (status, body) = bob.call(method, path, None);
        assert_eq!((status, error_code(&body)), (404, ErrorCode::NotFound), "{method} {path}: {body}");
    }
    assert_eq!(bob.connect_events(&turn.turn_id, 0).err().as_deref(), Some("status 404 Not Found"));
    let (status, _) = stack.anonymous().call("GET", &turn.status_url, None);
    assert_eq!(status, 401);
    let (status, body) = alice.call("GET", "/v1/turns/no-such-turn", None);
    assert_eq!((status, error_code(&body)), (404, ErrorCode::NotFound), "{body}");

    let detail = alice.wait_reaped(&turn.turn_id);
    assert_eq!(detail.resources.len(), 1, "a turn without a database holds only a sandbox: {detail:?}");
    stack.assert_nothing_left(&turn.turn_id);
    let (status, body) = alice.call("POST", &format!("{}/keep", turn.status_url), None);
    assert_eq!((status, error_code(&body)), (409, ErrorCode::Conflict), "nothing to keep: {body}");
}

#[test]
fn keep_saves_the_database_and_says_how_to_claim_it() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let code = "import time\nprint('started', flush=True)\ntime.sleep(3)\nprint('done')\n";
    let turn = alice.create_turn(&serde_json::json!({ "code": code }).to_string());
    let keep_path = format!("{}/keep", turn.status_url);
    let mut kept = None;
    let events = alice.follow_with(&turn.turn_id, 0, |event| {
        if matches!(&event.body, EventBody::Stdout { data } if data.contains("started")) && kept.is_none() {
            let (status, _) = bob.call("POST", &keep_path, None);
            assert_eq!(status, 404, "another tenant cannot keep it");
            let (status, body) = alice.call("POST", &keep_path, None);
            assert_eq!(status, 200, "{body}");
            kept = Some(serde_json::from_str::<KeepResponse>(&body).expect("a KeepResponse"));
        }
    });
    let kept = kept.unwrap_or_else(|| panic!("the turn never printed: {events:?}"));
    assert!(kept.connection_url.starts_with("postgres"), "{kept:?}");
    assert!(!kept.claim.instructions.is_empty(), "{kept:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert!(events.iter().any(|e| matches!(&e.body, EventBody::DatabaseKept { claim } if *claim == kept.claim)));
    assert!(!events.iter().any(|e| matches!(e.body, EventBody::DatabaseReaped { .. })), "{events:?}");
    // The connection URL is in the keep answer only: never in an event.
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains(&kept.connection_url), "{log}");

    // The sandbox is reaped, the database is kept and still at scratchdb.
    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let detail = alice.detail(&turn.turn_id);
        let sandbox_reaped =
            detail.resources.iter().any(|r| r.resource == Resource::Sandbox && r.reap == ReapState::Reaped);
        if detail.state == TurnState::Finished && sandbox_reaped {
            break detail;
        }
        assert!(Instant::now() < deadline, "sandbox not reaped: {detail:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let database = detail.resources.iter().find(|r| r.resource == Resource::Database).expect("a database");
    assert_eq!(database.reap, ReapState::Kept, "{detail:?}");
    let databases = scratchdb(&stack.local().endpoints);
    let listed = stack.runtime.block_on(databases.list()).expect("scratchdb lists");
    assert!(listed.iter().any(|d| d.name.contains(&turn.turn_id)), "the kept database is gone: {listed:?}");

    // Asked again after the turn: the same answer, from the object's storage.
    let (status, body) = alice.call("POST", &keep_path, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<KeepResponse>(&body).unwrap(), kept);

    // The tenant's ledger lists the turn with how each resource ended; another tenant's is empty.
    let (status, body) = alice.call("GET", "/v1/turns", None);
    assert_eq!(status, 200, "{body}");
    let list: TurnList = serde_json::from_str(&body).expect("a TurnList");
    let summary = list.turns.iter().find(|t| t.turn_id == turn.turn_id).unwrap_or_else(|| panic!("{body}"));
    assert_eq!(summary.outcome, Some(Outcome::Succeeded), "{body}");
    assert_eq!(summary.resources, detail.resources, "{body}");
    assert!(!body.contains(&kept.connection_url), "{body}");
    let (status, body) = bob.call("GET", "/v1/turns", None);
    assert_eq!((status, serde_json::from_str::<TurnList>(&body).unwrap().turns.len()), (200, 0), "{body}");
    assert_eq!(stack.anonymous().call("GET", "/v1/turns", None).0, 401);

    // The cron's sweep (triggered as wrangler's `--test-scheduled` allows) leaves the kept database
    // (its deadline is ahead), and the reaper shows the report.
    let (status, body) = alice.call("GET", "/v1/reaper", None);
    assert_eq!(status, 200, "{body}");
    let before: ReaperStatus = serde_json::from_str(&body).expect("a ReaperStatus");
    assert_eq!((before.alive, before.overdue.len(), before.failed.len()), (0, 0, 0), "{body}");
    stack.anonymous().trigger_sweep();
    let deadline = Instant::now() + Duration::from_secs(30);
    let sweep = loop {
        let (status, body) = alice.call("GET", "/v1/reaper", None);
        assert_eq!(status, 200, "{body}");
        let status: ReaperStatus = serde_json::from_str(&body).expect("a ReaperStatus");
        if let Some(sweep) = status.last_sweep {
            break sweep;
        }
        assert!(Instant::now() < deadline, "no sweep reported: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sweep.errors.is_empty(), "{sweep:?}");
    assert!(sweep.reaped.is_empty() && sweep.failed.is_empty(), "{sweep:?}");
    let listed = stack.runtime.block_on(databases.list()).expect("scratchdb lists");
    assert!(listed.iter().any(|d| d.name.contains(&turn.turn_id)), "the sweep took the kept database: {listed:?}");
}

#[test]
fn cancel_timeout_and_failure_end_turns_and_reap() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);

    // Cancelled while it runs: the process is killed and both resources are reaped.
    let code = "import time\nprint('started', flush=True)\ntime.sleep(60)\n";
    let turn = alice.create_turn(&serde_json::json!({ "code": code }).to_string());
    let mut cancelled = false;
    let events = alice.follow_with(&turn.turn_id, 0, |event| {
        if matches!(&event.body, EventBody::Stdout { data } if data.contains("started")) && !cancelled {
            let (status, body) = alice.call("DELETE", &turn.status_url, None);
            assert_eq!(status, 202, "{body}");
            cancelled = true;
        }
    });
    assert!(cancelled, "the turn never printed: {events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Cancelled), "{events:?}");
    alice.wait_reaped(&turn.turn_id);
    stack.assert_nothing_left(&turn.turn_id);

    // Non-zero exit: a failed turn with its exit code.
    let turn = alice.create_turn(r#"{"code":"import sys; sys.exit(3)","database":false}"#);
    let events = alice.follow(&turn.turn_id, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::Failed), "{events:?}");
    let detail = alice.wait_reaped(&turn.turn_id);
    assert_eq!(detail.exit_code, Some(3), "{detail:?}");
    assert_eq!(detail.error.as_deref(), Some("the code exited with status 3"));

    // Past its timeout: stopped at the deadline and reaped.
    let turn = alice.create_turn(r#"{"code":"import time; time.sleep(60)","timeout_s":2}"#);
    let events = alice.follow(&turn.turn_id, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::TimedOut), "{events:?}");
    alice.wait_reaped(&turn.turn_id);
    stack.assert_nothing_left(&turn.turn_id);
}

/// The edge process dies mid-turn (SIGKILL of wrangler and workerd); started again on the same
/// state, the turn's alarm finds the leases it recorded and reaps both resources, and the turn
/// says so.
#[test]
fn a_turn_is_reaped_after_the_worker_is_killed_mid_run() {
    let mut stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let code = r#"{"code":"import time\nprint('up', flush=True)\ntime.sleep(120)","timeout_s":3}"#;
    let turn = alice.create_turn(code);
    let running_by = Instant::now() + Duration::from_secs(30);
    loop {
        let detail = alice.detail(&turn.turn_id);
        if detail.state == TurnState::Running && detail.resources.len() == 2 {
            break;
        }
        assert!(Instant::now() < running_by, "the turn never got running: {detail:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    stack.crash_worker();

    // The deadline is 3 s away and the safety alarm fires 10 s after it; give it a generous minute.
    let killed_at = Instant::now();
    let detail = alice.wait_reaped_within(&turn.turn_id, Duration::from_secs(60));
    eprintln!(
        "kill -9 mid-turn: both resources reaped {:?} after the kill; outcome {:?}: {:?}",
        killed_at.elapsed(),
        detail.outcome,
        detail.error
    );
    assert_eq!(detail.state, TurnState::Finished);
    assert_ne!(detail.outcome, Some(Outcome::Succeeded), "{detail:?}");
    assert!(detail.error.is_some(), "the user is told what happened: {detail:?}");
    stack.assert_nothing_left(&turn.turn_id);
    let (status, list) = alice.call("GET", "/v1/turns", None);
    assert_eq!(status, 200, "{list}");
    let list: mayfly_core::TurnList = serde_json::from_str(&list).unwrap();
    let entry = list.turns.iter().find(|t| t.turn_id == turn.turn_id).expect("the ledger lists the turn");
    assert!(entry.resources.iter().all(|r| r.reap == ReapState::Reaped), "{entry:?}");
}

/// Through the worker, as from the terminal: a turn that fills its database past its storage
/// limit has it stopped by the provider, fails, and is told why (the provider is asked before the
/// reap, through every layer the worker wraps it in).
#[test]
fn a_turn_whose_database_went_past_its_storage_limit_is_told_why_through_the_worker() {
    let stack = InProcessStack::start_with(TestStackOptions::default().database_storage_mb(16));
    let alice = stack.client(ALICE_KEY);
    let code = "import os, psycopg, sys\n\
                try:\n    \
                with psycopg.connect(os.environ['PG_URL'], autocommit=True) as conn:\n        \
                conn.execute('CREATE TABLE filler (x text)')\n        \
                for _ in range(200):\n            \
                conn.execute(\"INSERT INTO filler SELECT repeat('x', 1024) FROM generate_series(1, 1024)\")\n    \
                print('never stopped')\n\
                except psycopg.Error:\n    \
                sys.exit(1)\n";
    let turn = alice.create_turn(&serde_json::json!({ "code": code, "timeout_s": 60 }).to_string());
    let events = alice.follow(&turn.turn_id, 0);
    assert_eq!(stdout_of(&events), "", "the database was never stopped: {events:?}");
    let detail = alice.wait_reaped(&turn.turn_id);
    assert_eq!(
        detail.error.as_deref(),
        Some(
            "the code exited with status 1; the provider stopped its database: it went past its storage limit of 16 MB"
        )
    );
    stack.assert_nothing_left(&turn.turn_id);
}
