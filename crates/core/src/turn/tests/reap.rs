//! Reaping and keeping: retries with backoff until a reap works or is reported failed (never with
//! the password), a database kept on request or because it is anonymous, and why a failed turn's
//! database was stopped.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn a_reap_is_retried_with_backoff_until_it_works() {
    let world = World::new();
    world.providers.sandboxes.kill_failures.set(2);
    let report = world.run(spec("print(1)"), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.sandbox.unwrap().state, ReapState::Reaped);
    let events = world.events();
    let reaping: Vec<&str> = events.lines().filter(|l| l.contains("reap")).collect();
    expect![[r##"
        [
            "#10   440 ms database.reaped {\"ms\":10}",
            "#11   450 ms reap.failed {\"error\":\"e2b answered 503: busy\",\"resource\":\"sandbox\",\"retry_at\":700}",
            "#12   720 ms reap.failed {\"error\":\"e2b answered 503: busy\",\"resource\":\"sandbox\",\"retry_at\":1220}",
            "#13  1240 ms sandbox.reaped {\"ms\":810}",
            "#14  1240 ms turn.finished {\"outcome\":\"succeeded\",\"timings\":{\"database_ms\":200,\"provision_ms\":300,\"reap_ms\":810,\"run_ms\":120,\"sandbox_ms\":300,\"total_ms\":1240,\"upload_ms\":10}}",
        ]
    "##]].assert_debug_eq(&reaping);
}

#[test]
fn a_reap_that_keeps_failing_is_reported_failed_without_leaking_the_password() {
    let world = World::new();
    world.providers.databases.delete_failures.set(u32::MAX);
    let report = world.run(spec("print(1)"), TurnOptions::default());
    let database = report.database.unwrap();
    assert_eq!(database.state, ReapState::Failed);
    expect![[r#"
        (
            Some(
                "instanode answered 503: could not drop postgres://***@db.test:5432/db_tok1",
            ),
            Some(
                4220,
            ),
        )
    "#]]
    .assert_debug_eq(&(&database.error, database.retry_at_ms));
    let events = world.events();
    let failed: Vec<&str> = events.lines().filter(|l| l.contains("reap.failed")).collect();
    assert_eq!(failed.len(), 4, "one reap.failed per attempt: {events}");
    assert!(!events.contains("database.reaped"));
    assert_eq!(world.providers.databases.live_names(), ["mayfly-1700000030-t1"]);
    assert_eq!(report.sandbox.unwrap().state, ReapState::Reaped);
}

#[test]
fn keep_database_keeps_it_and_says_how_to_claim_it() {
    let world = World::new();
    let report = world.run(spec("print(1)"), TurnOptions { keep_database: true, ..TurnOptions::default() });
    assert_eq!(report.database.unwrap().state, ReapState::Kept);
    assert_eq!(report.sandbox.unwrap().state, ReapState::Reaped);
    assert_eq!(world.providers.databases.live_names(), ["mayfly-1700000030-t1"]);
    let events = world.events();
    let kept: Vec<&str> = events.lines().filter(|l| l.contains("database.")).collect();
    expect![[r##"
        [
            "#3      0 ms database.creating",
            "#4    200 ms database.ready {\"database\":\"db_tok1\",\"host\":\"db.test:5432\",\"ms\":200}",
            "#10   430 ms database.kept {\"claim\":{\"claim_url\":\"https://claim.test/?t=jwt-tok1\",\"expires_at\":\"2023-11-15T22:13:20Z\",\"instructions\":\"open the claim URL\"}}",
        ]
    "##]].assert_debug_eq(&kept);
}

#[test]
fn keep_asked_while_running_and_anonymous_mode_also_keep() {
    let world = World::new();
    world.process(vec![started(), Step::Wait(1000), exited(0)]);
    let report = world.run_and_act_at(spec("print(1)"), 600, TurnControl::keep_database);
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.database.unwrap().state, ReapState::Kept);

    let world = World::new();
    world.control.keep_database();
    let report = world.run(spec("print(1)"), TurnOptions::default());
    assert_eq!(report.database.unwrap().state, ReapState::Kept);

    let world = World::new();
    world.providers.databases.mode.set(DatabaseMode::Anonymous);
    let report = world.run(spec("print(1)"), TurnOptions::default());
    assert_eq!(report.database.unwrap().state, ReapState::Kept);
    assert!(world.kinds().contains(&"database.kept"));
}

#[test]
fn reap_backoff_doubles_up_to_the_cap() {
    let policy = ReapPolicy::default();
    let waits: Vec<u64> = (1..=6).map(|n| policy.backoff_ms(n)).collect();
    assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000]);
}

/// Output past the turn's cap is neither stored nor sent: what fits is emitted (cut on a character
/// boundary), then one `output.truncated` with the bytes kept; the process runs on to its exit.

#[test]
fn a_turn_whose_database_was_stopped_says_why() {
    let world = World::new();
    world.process(vec![started(), stderr(b"terminating connection due to administrator command\n"), exited(1)]);
    world.providers.databases.stopped_for_storage.set(Some(10 << 20));
    let report = world.run(spec("print(1)"), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some(
            "the code exited with status 1; the provider stopped its database: it went past its storage limit of 10 MB"
        )
    );
}
