//! Checkpoints and forks under faults (`docs/checkpoints.md`): the worker killed while three forks
//! run and again while their checkpoints are kept, a fork whose copy the provider refuses once, and
//! a checkpoint whose freeze fails. Every checkpoint is reaped by its deadline, by its turn's
//! alarm (the providers' sweep would leave it for a day: its name carries that limit), and nothing
//! else is left.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mayfly_core::{EventBody, Outcome, ReapState, Resource, TurnDetail, TurnState};
use mayfly_e2e::fault_proxy::{Fault, Rule};
use mayfly_e2e::{ApiClient, Profile, SeparateProcessStack, TestStackOptions};

/// How long each checkpoint is kept: long enough to outlive a worker's restart.
const KEEP_S: u64 = 8;

fn body(code: &str, from: Option<&str>, seed_sql: Option<&str>) -> String {
    let mut database = serde_json::Map::new();
    if let Some(from) = from {
        database.insert("from".into(), from.into());
    }
    if let Some(seed) = seed_sql {
        database.insert("seed_sql".into(), seed.into());
    }
    let code = format!(
        "import os, psycopg\nwith psycopg.connect(os.environ['PG_URL']) as c:\n    c.execute({code:?})\n    \
         print(c.execute('select count(*) from items').fetchone()[0], flush=True)\n"
    );
    serde_json::json!({
        "code": code, "language": "python", "timeout_s": 10,
        "database": database, "checkpoint": { "keep_s": KEEP_S },
    })
    .to_string()
}

/// Polls until `done` holds for the turn's detail; an unanswered poll (the worker restarting) is
/// retried.
fn wait_for(api: &ApiClient, turn_id: &str, patience: Duration, done: impl Fn(&TurnDetail) -> bool) -> TurnDetail {
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(detail) = api.try_detail(turn_id) {
            if done(&detail) {
                return detail;
            }
            assert!(Instant::now() < deadline, "turn {turn_id} never got there: {detail:#?}");
        }
        assert!(Instant::now() < deadline, "turn {turn_id} cannot be read");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn database(detail: &TurnDetail) -> ReapState {
    detail.resources.iter().find(|r| r.resource == Resource::Database).map_or(ReapState::Live, |r| r.reap)
}

fn finished(detail: &TurnDetail) -> bool {
    detail.state == TurnState::Finished
}

#[test]
fn checkpoints_are_reaped_on_time_through_worker_kills_and_failed_forks_and_freezes() {
    let stack =
        SeparateProcessStack::start(TestStackOptions::default().profile(Profile::Debug)).expect("the stack starts");
    let api = stack.client();
    let patience = Duration::from_secs(120);

    let seed = "create table items (n int); insert into items values (1), (2)";
    let base = api.try_create_turn(&body("insert into items values (3)", None, Some(seed))).unwrap().turn_id;
    let detail = wait_for(&api, &base, patience, finished);
    assert_eq!((detail.outcome, database(&detail)), (Some(Outcome::Succeeded), ReapState::Checkpointed));

    // Three forks at once; the worker is killed as soon as the first has started its code.
    let forks: Vec<String> = (0..3)
        .map(|i| api.try_create_turn(&body(&format!("insert into items values ({i})"), Some(&base), None)).unwrap())
        .map(|turn| turn.turn_id)
        .collect();
    let mut killed = false;
    let _ = api.read_events(&forks[0], 0, |event| {
        if matches!(event.body, EventBody::ProcessStarted { .. }) && !killed {
            killed = true;
            stack.crash_worker().expect("the worker comes back");
        }
    });
    if !killed {
        stack.crash_worker().expect("the worker comes back");
    }
    // A fork cut off with its worker is lost and reaped whole; one that got to its checkpoint
    // keeps it. Either way it ends, and says how.
    for fork in &forks {
        let detail = wait_for(&api, fork, patience, finished);
        assert!(detail.outcome.is_some() && (detail.outcome == Some(Outcome::Succeeded)) == detail.error.is_none());
    }

    // A fork whose copy scratchdb refuses once: the create is retried (its Idempotency-Key makes
    // that safe) and the fork is made.
    stack.scratchdb_proxy.arm(Rule::new("POST", "/api/v1/resources/", Fault::Unavailable).ending("/fork"));
    let retried = api.try_create_turn(&body("select 1", Some(&base), None)).unwrap().turn_id;
    let detail = wait_for(&api, &retried, patience, finished);
    assert_eq!(stack.scratchdb_proxy.fired().len(), 1, "the fork's fault fired");
    assert_eq!((detail.outcome, database(&detail)), (Some(Outcome::Succeeded), ReapState::Checkpointed));

    // A checkpoint whose freeze's answer was cut mid-way: the freeze may have happened, so the
    // turn fails, says why, and its database is reaped by the alarm, not kept as a checkpoint
    // nobody knows to be frozen.
    stack.scratchdb_proxy.arm(Rule::new("POST", "/api/v1/resources/", Fault::Cut).ending("/freeze"));
    let unfrozen = api.try_create_turn(&body("select 1", Some(&base), None)).unwrap().turn_id;
    let detail = wait_for(&api, &unfrozen, patience, |d| finished(d) && database(d) == ReapState::Reaped);
    assert_eq!(detail.outcome, Some(Outcome::Failed));
    let error = detail.error.unwrap_or_default();
    assert!(error.starts_with("the checkpoint could not be made: "), "{error}");
    assert_eq!(stack.scratchdb_proxy.fired().len(), 2, "the freeze's fault fired");

    // Killed again while the checkpoints are kept: their alarms still reap every one on time.
    stack.crash_worker().expect("the worker comes back");
    let mut turns = vec![base, retried, unfrozen];
    turns.extend(forks);
    let now_unix_ms = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    for turn in &turns {
        let detail = wait_for(&api, turn, patience, |d| d.resources.iter().all(|r| r.reap == ReapState::Reaped));
        if let Some(checkpoint) = detail.checkpoint {
            assert!(!checkpoint.live, "{checkpoint:?}");
            assert!(now_unix_ms() + 1000 >= checkpoint.keep_until_unix_ms, "reaped before its time: {checkpoint:?}");
        }
    }
    let leftovers = stack.leftovers().expect("the providers can be asked");
    assert!(leftovers.is_empty(), "left behind: {leftovers:#?}");
}
