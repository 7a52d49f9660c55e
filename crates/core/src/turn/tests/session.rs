//! A turn in a session of turns: seeded before its code, summarized after it, checkpointed
//! instead of reaped, and forked from an earlier turn's checkpoint — and every way that can fail
//! still leaving nothing behind but a checkpoint that was asked for.

use expect_test::expect;

use super::*;
use crate::turn::session::ForkSource;
use crate::wire::api::{CheckpointRequest, DatabaseOptions};
use crate::wire::database::{DatabaseSummary, TableSummary};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

pub(super) fn session_spec(seed: Option<&str>, from: Option<&str>, keep_s: Option<u32>) -> TurnSpec {
    spec_with(|r| {
        r.database =
            DatabaseField::With(DatabaseOptions { from: from.map(str::to_owned), seed_sql: seed.map(str::to_owned) });
        r.checkpoint = keep_s.map(|keep_s| CheckpointRequest { keep_s: Some(keep_s) });
    })
}

pub(super) fn parent_summary() -> DatabaseSummary {
    DatabaseSummary {
        tables: vec![
            TableSummary { name: "public.items".into(), rows: 5, columns: vec!["id integer".into()] },
            TableSummary { name: "public.old".into(), rows: 1, columns: vec!["id integer".into()] },
        ],
        bytes: 7000,
        truncated: false,
    }
}

#[test]
fn a_seeded_turn_seeds_before_its_code_then_is_summarized_and_checkpointed() {
    let world = World::new();
    let report = world.run(session_spec(Some("create table items(id int)"), None, Some(60)), TurnOptions::default());
    expect![[r##"
        #1      0 ms turn.accepted {"deadline_ms":30000,"turn_id":"t1"}
        #2      0 ms sandbox.creating {"template":"mayfly"}
        #3      0 ms database.creating
        #4    200 ms database.ready {"database":"db_tok1","host":"db.test:5432","ms":200}
        #5    300 ms sandbox.ready {"ms":300,"sandbox_id":"sbx-1"}
        #6    310 ms code.uploaded {"bytes":8,"path":"/home/user/main.py"}
        #7    310 ms database.seeding {"bytes":26}
        #8    355 ms database.seeded {"ms":45}
        #9    365 ms process.started {"pid":42}
        #10   465 ms stdout {"data":"(1000000,)\n"}
        #11   475 ms process.exited {"exit_code":0,"ms":120}
        #12   510 ms database.summary {"summary":{"bytes":8000,"tables":[{"columns":["id integer"],"name":"public.items","rows":2}]}}
        #13   520 ms database.checkpointed {"keep_until_unix_ms":1700000060520}
        #14   530 ms sandbox.reaped {"ms":20}
        #15   530 ms turn.finished {"outcome":"succeeded","timings":{"database_ms":200,"provision_ms":300,"reap_ms":20,"run_ms":120,"sandbox_ms":300,"seed_ms":45,"total_ms":530,"upload_ms":10}}
    "##]]
    .assert_eq(&world.events());
    assert_eq!(report.outcome, Outcome::Succeeded);
    let database = report.database.as_ref().unwrap();
    assert_eq!(database.state, ReapState::Checkpointed);
    // Kept for 60 s from the moment it was frozen.
    assert_eq!(database.keep_until_unix_ms, Some(crate::providers::fakes::EPOCH_MS + 520 + 60_000));
    assert_eq!(report.summary.as_ref().map(|s| s.tables.len()), Some(1));
    // Frozen, not deleted: still there for forks. Its name carries the latest it may be kept to
    // (the deadline plus a day), so the providers' sweep leaves it alone until then.
    assert_eq!(world.providers.databases.live_names().len(), 1);
    let name = &world.providers.databases.live_names()[0];
    let limit_s = (crate::providers::fakes::EPOCH_MS + 30_000) / 1000 + 86_400;
    assert_eq!(crate::providers::parse_database_name(name), Some(limit_s), "{name}");
    let trace = world.trace.lines();
    let at = |needle: &str| trace.iter().position(|line| line.contains(needle)).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("db_helper.py seed") < at("python3 -u /home/user/main.py"));
    assert!(at("python3 -u /home/user/main.py") < at("db_helper.py summary"));
    assert!(at("db_helper.py summary") < at("database freeze tok1"));
    assert!(!trace.iter().any(|line| line.contains("database delete")), "{trace:#?}");
    // The seed and the helper went up before the seed ran; the code saw the seeded database.
    let created = world.providers.sandboxes.created.borrow();
    assert_eq!(created["sbx-1"].files["/tmp/.mayfly/seed.sql"], "create table items(id int)");
    assert!(created["sbx-1"].files.contains_key("/tmp/.mayfly/db_helper.py"));
}

#[test]
fn a_fork_starts_from_the_checkpoint_and_its_summary_says_what_it_changed() {
    let world = World::new();
    world.providers.databases.live.borrow_mut().insert("tok-parent".into(), "mayfly-1-t0".into());
    let options = TurnOptions {
        fork: Some(ForkSource { token: "tok-parent".into(), summary: Some(parent_summary()) }),
        ..TurnOptions::default()
    };
    let report = world.run(session_spec(None, Some("t0"), None), options);
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(world
        .trace
        .lines()
        .iter()
        .any(|line| line.contains("database fork tok1 ") && line.ends_with("from=tok-parent")));
    let events = world.sink.events.borrow();
    let summary = events.iter().find_map(|event| match &event.body {
        EventBody::DatabaseSummarized { diff, .. } => Some(diff.clone()),
        _ => None,
    });
    let diff = summary.flatten().expect("a fork's summary has a diff");
    assert_eq!(diff.parent_turn_id, "t0");
    assert_eq!(diff.dropped, ["public.old"]);
    assert_eq!((diff.rows[0].before, diff.rows[0].after), (5, 2));
    assert!(matches!(&events[2].body, EventBody::DatabaseCreating { from: Some(parent) } if parent == "t0"));
    // Not checkpointed itself: reaped like any turn's, while the checkpoint it came from stays.
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Reaped));
    assert_eq!(world.providers.databases.live_names(), ["mayfly-1-t0"]);
}

#[test]
fn a_fork_whose_checkpoint_was_not_resolved_or_is_gone_fails_clearly() {
    let world = World::new();
    let report = world.run(session_spec(None, Some("t0"), None), TurnOptions::default());
    assert_eq!(report.error.as_deref(), Some("the database could not be forked: turn t0 has no live checkpoint"));
    assert!(!world.kinds().contains(&"process.started"));

    let world = World::new();
    let options =
        TurnOptions { fork: Some(ForkSource { token: "tok-gone".into(), summary: None }), ..TurnOptions::default() };
    let report = world.run(session_spec(None, Some("t0"), None), options);
    assert_eq!(
        report.error.as_deref(),
        Some(
            "the database could not be forked from turn t0's checkpoint: instanode answered 404: no database tok-gone"
        )
    );
}

#[test]
fn a_failing_seed_stops_the_turn_before_its_code_and_everything_is_reaped() {
    let world = World::new();
    world.providers.sandboxes.helper.borrow_mut().insert(
        "seed",
        vec![stderr(b"Traceback...\nthe seed SQL failed: syntax error at or near \"creat\"\n"), exited(1)],
    );
    let report = world.run(session_spec(Some("creat table"), None, Some(60)), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.error.as_deref(), Some("the seed SQL failed: syntax error at or near \"creat\""));
    assert!(!world.kinds().contains(&"process.started"), "{:?}", world.kinds());
    assert!(!world.kinds().contains(&"database.checkpointed"));
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Reaped));
}

#[test]
fn a_checkpoint_that_cannot_be_frozen_fails_the_turn_and_its_database_is_left_to_the_lease_holder() {
    let world = World::new();
    world.providers.databases.fail_on("freeze");
    let report = world.run(session_spec(None, None, Some(60)), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.starts_with("the checkpoint could not be made: instanode answered 503"), "{error}");
    // Not kept as a checkpoint, and not deleted with every try here either: the reap is due at
    // once, for whoever holds the lease (the worker's alarm reaps it right after the turn).
    let database = report.database.as_ref().unwrap();
    assert_eq!((database.state, database.keep_until_unix_ms), (ReapState::Failed, None));
    assert!(!world.kinds().contains(&"database.checkpointed"));
    assert!(!error.contains(crate::providers::fakes::PASSWORD), "{error}");

    // Anonymous databases cannot be frozen: no checkpoint, and the database is kept as usual.
    let world = World::new();
    world.providers.databases.mode.set(DatabaseMode::Anonymous);
    let report = world.run(session_spec(None, None, Some(60)), TurnOptions::default());
    assert!(report.error.unwrap().contains("checkpoints need INSTANODE_TOKEN"));
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Kept));
}

#[test]
fn a_turn_whose_code_did_not_exit_is_neither_summarized_nor_checkpointed() {
    let world = World::new();
    world.process(vec![started(), Step::Wait(60_000)]);
    let report = world.run(session_spec(None, None, Some(60)), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert!(!world.kinds().contains(&"database.summary"));
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Reaped));
}

#[test]
fn a_summary_that_fails_is_said_and_the_checkpoint_is_still_made() {
    let world = World::new();
    world.providers.sandboxes.helper.borrow_mut().insert("summary", vec![stdout(b"not json"), exited(0)]);
    let report = world.run(session_spec(None, None, Some(60)), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.summary, None);
    let events = world.sink.events.borrow();
    let error = events.iter().find_map(|event| match &event.body {
        EventBody::DatabaseSummarized { error, .. } => error.clone(),
        _ => None,
    });
    assert_eq!(
        error.as_deref(),
        Some("the database summary failed: the summary helper printed something that is not a summary")
    );
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Checkpointed));
}
