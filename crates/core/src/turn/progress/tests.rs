//! The fold pinned as snapshots for the ways a turn goes, and its rules for replays and gaps.

use expect_test::{expect, Expect};

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn event(seq: u64, at_ms: u64, body: EventBody) -> Event {
    Event { seq, at_ms, body }
}

fn finished(seq: u64, at_ms: u64, outcome: Outcome, error: Option<&str>) -> Event {
    let timings = Timings { total_ms: at_ms, ..Timings::default() };
    event(seq, at_ms, EventBody::TurnFinished { outcome, timings, error: error.map(str::to_owned) })
}

/// The seed turn up to its output: both resources ready, the code running.
fn running() -> Vec<Event> {
    vec![
        event(1, 0, EventBody::TurnAccepted { turn_id: "t".into(), deadline_ms: 60_000 }),
        event(2, 1, EventBody::SandboxCreating { template: "mayfly".into() }),
        event(3, 1, EventBody::DatabaseCreating { from: None }),
        event(4, 20, EventBody::DatabaseReady { ms: 19, host: "h".into(), database: "db_t".into() }),
        event(5, 40, EventBody::SandboxReady { sandbox_id: "s".into(), ms: 39 }),
        event(6, 45, EventBody::CodeUploaded { path: "/home/user/main.py".into(), bytes: 10 }),
        event(7, 50, EventBody::ProcessStarted { pid: 2 }),
        event(8, 60, EventBody::Stdout { data: "1\n".into() }),
    ]
}

fn seed() -> Vec<Event> {
    let mut events = running();
    events.extend([
        event(9, 150, EventBody::ProcessExited { exit_code: 3, ms: 100 }),
        event(10, 160, EventBody::DatabaseReaped { ms: 10 }),
        event(11, 170, EventBody::SandboxReaped { ms: 20 }),
        finished(12, 171, Outcome::Failed, Some("the code exited with 3")),
    ]);
    events
}

fn check(events: &[Event], expect: Expect) {
    let progress = TurnProgress::of(events);
    expect.assert_eq(&serde_json::to_string(&progress).unwrap());
    let back: TurnProgress = serde_json::from_str(&serde_json::to_string(&progress).unwrap()).unwrap();
    assert_eq!(back, progress, "a stored summary reads back as it was written");
}

#[test]
fn a_turn_that_ran_and_was_reaped() {
    check(
        &seed(),
        expect![[
            r#"{"last_seq":12,"now_ms":171,"deadline_ms":60000,"state":"finished","sandbox_phase":{"start":1,"end":40},"database_phase":{"start":1,"end":20},"upload_phase":{"start":40,"end":45},"copy_phase":{},"seed_phase":{},"run_phase":{"start":50,"end":150},"reap_phase":{"start":150,"end":170},"sandbox":{"reap":"reaped"},"database":{"reap":"reaped"},"exit_code":3,"outcome":"failed","error":"the code exited with 3","timings":{"total_ms":171},"duplicates_dropped":0}"#
        ]],
    );
}

#[test]
fn a_running_turn_holds_both_resources() {
    check(
        &running(),
        expect![[
            r#"{"last_seq":8,"now_ms":60,"deadline_ms":60000,"state":"running","sandbox_phase":{"start":1,"end":40},"database_phase":{"start":1,"end":20},"upload_phase":{"start":40,"end":45},"copy_phase":{},"seed_phase":{},"run_phase":{"start":50},"reap_phase":{},"sandbox":{"reap":"live"},"database":{"reap":"live"},"timings":{"total_ms":0},"duplicates_dropped":0}"#
        ]],
    );
}

#[test]
fn a_database_that_failed_to_come_never_runs_the_code() {
    let events = [
        event(1, 0, EventBody::TurnAccepted { turn_id: "t".into(), deadline_ms: 5_000 }),
        event(2, 1, EventBody::SandboxCreating { template: "mayfly".into() }),
        event(3, 1, EventBody::DatabaseCreating { from: None }),
        event(4, 30, EventBody::SandboxReady { sandbox_id: "s".into(), ms: 29 }),
        event(5, 90, EventBody::SandboxReaped { ms: 4 }),
        finished(6, 91, Outcome::Failed, Some("instanode answered 503")),
    ];
    check(
        &events,
        expect![[
            r#"{"last_seq":6,"now_ms":91,"deadline_ms":5000,"state":"finished","sandbox_phase":{"start":1,"end":30},"database_phase":{"start":1},"upload_phase":{"start":30},"copy_phase":{},"seed_phase":{},"run_phase":{},"reap_phase":{"start":90,"end":90},"sandbox":{"reap":"reaped"},"outcome":"failed","error":"instanode answered 503","timings":{"total_ms":91},"duplicates_dropped":0}"#
        ]],
    );
}

#[test]
fn a_failed_reap_is_failed_until_a_retry_succeeds() {
    let mut events = running();
    events.extend([
        event(9, 150, EventBody::ProcessExited { exit_code: 0, ms: 100 }),
        event(
            10,
            155,
            EventBody::ReapFailed {
                resource: Resource::Database,
                error: "instanode answered 503".into(),
                retry_at: 655,
            },
        ),
    ]);
    let progress = TurnProgress::of(&events);
    assert_eq!(progress.state, TurnState::Reaping);
    let database = progress.resource(Resource::Database).unwrap();
    assert_eq!((database.reap, database.error.as_deref()), (ReapState::Failed, Some("instanode answered 503")));
    assert_eq!(progress.resource(Resource::Sandbox).unwrap().reap, ReapState::Reaping);

    events.push(event(11, 700, EventBody::DatabaseReaped { ms: 3 }));
    let progress = TurnProgress::of(&events);
    let database = progress.resource(Resource::Database).unwrap();
    assert_eq!(database, &ResourceProgress { reap: ReapState::Reaped, error: None });
}

#[test]
fn a_kept_database_shows_how_to_claim_it() {
    let claim = ClaimInfo {
        claim_url: "http://127.0.0.1:7001/claim?t=abc".into(),
        upgrade_jwt: None,
        expires_at: None,
        instructions: "open the claim URL".into(),
    };
    let mut events = running();
    events.extend([
        event(9, 150, EventBody::ProcessExited { exit_code: 0, ms: 100 }),
        event(10, 151, EventBody::DatabaseKept { claim: claim.clone() }),
    ]);
    let progress = TurnProgress::of(&events);
    assert_eq!(progress.resource(Resource::Database).unwrap().reap, ReapState::Kept);
    assert_eq!(progress.claim, Some(claim));
}

#[test]
fn keeping_is_refused_once_the_run_is_over_or_the_deadline_passed() {
    let progress = TurnProgress::of(&running());
    assert!(!progress.reaping_started(59_999));
    assert!(progress.reaping_started(60_000), "the deadline passed");
    let mut events = running();
    events.push(event(9, 150, EventBody::ProcessExited { exit_code: 0, ms: 100 }));
    assert!(TurnProgress::of(&events).reaping_started(150));
    assert!(!TurnProgress::default().reaping_started(1_000_000), "no deadline known yet");
}

#[test]
fn a_replay_after_a_reconnect_is_taken_once() {
    let events = seed();
    let mut progress = TurnProgress::of(&events[..8]);
    // The stream dropped; the view resumes with `after=last_seq`, but a server replaying a
    // little too much must not double anything.
    let taken: Vec<u64> = events[6..].iter().filter(|e| progress.apply(e) == Applied::New).map(|e| e.seq).collect();
    assert_eq!(taken, (9..=12).collect::<Vec<_>>());
    assert_eq!(progress.duplicates_dropped, 2);
    assert_eq!(TurnProgress { duplicates_dropped: 0, ..progress }, TurnProgress::of(&events));
}

#[test]
fn a_gap_is_refused_so_the_view_resumes_from_the_last_seq() {
    let events = seed();
    let mut progress = TurnProgress::default();
    progress.apply(&events[0]);
    assert_eq!(progress.apply(&events[2]), Applied::Gap);
    assert_eq!(progress.last_seq, 1);
    assert_eq!(progress.apply(&events[1]), Applied::New);
}

#[test]
fn a_late_event_never_takes_the_state_back() {
    let mut events = running();
    // A provider's answer may be logged after the process started.
    events.push(event(9, 61, EventBody::DatabaseCreating { from: None }));
    assert_eq!(TurnProgress::of(&events).state, TurnState::Running);
}
