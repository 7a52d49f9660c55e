//! The longest turn fits the one alarm the worker runs it in: with every provider call as slow as
//! its policy lets it be, a turn at `Limits::max_timeout_s` ends as its code says (`timed_out`,
//! `failed`), never cut off as lost, and each phase takes exactly what `wall_time.rs` counts.

use super::*;
use crate::providers::e2b::DEFAULT_CREATE_TIMEOUT_MS;
use crate::providers::retry::RetryPolicy;
use crate::turn::wall_time::{
    provider_call_at_most_ms, provisioning_at_most_ms, reap_at_most_ms, turn_at_most_ms, ALARM_MARGIN_S,
    ALARM_WALL_TIME_S,
};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Longer than any turn: code that never ends.
const NEVER_MS: u64 = 24 * 3_600_000;

/// What the fakes' upload and process start take.
const UPLOAD_MS: u64 = 10;
const START_MS: u64 = 5;

/// Every provider call at its slowest: the sandbox's create as patient as E2B's default allows,
/// the database's and every reap try as slow as the default retries allow, and each reap failing
/// until its last try.
fn slowest_world() -> World {
    let world = World::new();
    let retry = RetryPolicy::default();
    let call_ms = provider_call_at_most_ms(&retry);
    let last_try = ReapPolicy::default().attempts.get() - 1;
    let sandboxes = &world.providers.sandboxes;
    sandboxes.create_ms.set(provisioning_at_most_ms(&retry, DEFAULT_CREATE_TIMEOUT_MS));
    sandboxes.kill_ms.set(call_ms);
    sandboxes.kill_failures.set(last_try);
    let databases = &world.providers.databases;
    databases.create_ms.set(call_ms);
    databases.delete_ms.set(call_ms);
    databases.delete_failures.set(last_try);
    databases.status_ms.set(call_ms);
    world
}

fn assert_within_the_alarm(total_ms: u64) {
    let budget_ms = (ALARM_WALL_TIME_S - ALARM_MARGIN_S) * 1000;
    assert!(total_ms <= budget_ms, "the turn took {total_ms} ms; the alarm leaves it {budget_ms} ms");
}

fn assert_reaped(report: &TurnReport) {
    for reap in [&report.sandbox, &report.database] {
        assert_eq!(reap.as_ref().map(|r| r.state), Some(ReapState::Reaped), "{report:?}");
    }
}

#[test]
fn a_turn_at_the_longest_timeout_whose_code_never_ends_times_out_within_the_alarm() {
    let (retry, reap) = (RetryPolicy::default(), ReapPolicy::default());
    let world = slowest_world();
    world.process(vec![started(), stdout(b"still going\n"), Step::Wait(NEVER_MS), exited(0)]);
    let longest = Limits::default().max_timeout_s;
    let report = world.run(spec_with(|r| r.timeout_s = Some(longest)), TurnOptions::default());

    assert_eq!(report.outcome, Outcome::TimedOut, "{:?}", report.error);
    assert_eq!(report.error.as_deref(), Some(format!("the code ran past its {longest} s timeout").as_str()));
    assert_reaped(&report);
    let timings = &report.timings;
    let provisioning_ms = provisioning_at_most_ms(&retry, DEFAULT_CREATE_TIMEOUT_MS);
    let deadline_ms = u64::from(longest) * 1000;
    assert_eq!(timings.provision_ms, Some(provisioning_ms));
    // Provisioning is spent out of the timeout: the run ends at the deadline, counted from acceptance.
    assert_eq!(timings.run_ms, Some(deadline_ms - provisioning_ms - UPLOAD_MS));
    assert_eq!(timings.reap_ms, Some(reap_at_most_ms(&retry, &reap)));
    assert_eq!(timings.total_ms, deadline_ms + reap_at_most_ms(&retry, &reap));
    assert!(timings.total_ms <= turn_at_most_ms(longest, &retry, &reap, DEFAULT_CREATE_TIMEOUT_MS));
    assert_within_the_alarm(timings.total_ms);
}

#[test]
fn a_turn_whose_code_fails_just_before_the_longest_deadline_still_ends_within_the_alarm() {
    let (retry, reap) = (RetryPolicy::default(), ReapPolicy::default());
    let world = slowest_world();
    let longest = Limits::default().max_timeout_s;
    let deadline_ms = u64::from(longest) * 1000;
    let started_at = provisioning_at_most_ms(&retry, DEFAULT_CREATE_TIMEOUT_MS) + UPLOAD_MS + START_MS;
    world.process(vec![started(), Step::Wait(deadline_ms - 1 - started_at), exited(1)]);
    let report = world.run(spec_with(|r| r.timeout_s = Some(longest)), TurnOptions::default());

    // A failure asks the provider whether it stopped the database (a slowest call), then reaps.
    assert_eq!((report.outcome, report.exit_code), (Outcome::Failed, Some(1)), "{:?}", report.error);
    assert_reaped(&report);
    let after_ms = provider_call_at_most_ms(&retry) + reap_at_most_ms(&retry, &reap);
    assert_eq!(report.timings.total_ms, deadline_ms - 1 + after_ms);
    assert!(report.timings.total_ms < turn_at_most_ms(longest, &retry, &reap, DEFAULT_CREATE_TIMEOUT_MS));
    assert_within_the_alarm(report.timings.total_ms);
}

#[test]
fn a_short_turn_whose_provisioning_outlasts_its_deadline_ends_when_provisioning_does() {
    let (retry, reap) = (RetryPolicy::default(), ReapPolicy::default());
    let world = slowest_world();
    let report = world.run(spec_with(|r| r.timeout_s = Some(1)), TurnOptions::default());

    assert_eq!(report.outcome, Outcome::TimedOut, "{:?}", report.error);
    assert_reaped(&report);
    let provisioning_ms = provisioning_at_most_ms(&retry, DEFAULT_CREATE_TIMEOUT_MS);
    // No stopped-database question: the code never ran.
    assert_eq!(report.timings.total_ms, provisioning_ms + reap_at_most_ms(&retry, &reap));
    assert!(report.timings.total_ms < turn_at_most_ms(1, &retry, &reap, DEFAULT_CREATE_TIMEOUT_MS));
    assert_within_the_alarm(report.timings.total_ms);
}
