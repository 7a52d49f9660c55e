//! A turn lost mid-run (its future dropped, as when the process that ran it dies), then recovered
//! from the leases it handed over.

use expect_test::expect;

use super::*;
use crate::providers::e2b::templates::{TemplateMap, MAYFLY_TEMPLATE};
use crate::providers::fakes::{run_virtual, FakeDatabases, FakeSandboxes, Trace, VirtualClock, PASSWORD};
use crate::providers::Clock;
use crate::turn::fakes::RecordingSink;
use crate::turn::spec::{Limits, TurnSpec};
use crate::turn::{run_turn, LeasedResource, TurnControl, TurnId, TurnOptions};
use crate::wire::api::{CreateTurnRequest, Language};
use crate::wire::event::{ReapState, Resource};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

struct Lost {
    clock: VirtualClock,
    providers: Providers<FakeSandboxes, FakeDatabases>,
    records: Vec<LeaseRecord>,
    accepted_at_ms: u64,
}

/// A turn whose process died `at_ms` into it: its leases are all that is left of it.
fn lose_a_turn_at(at_ms: u64) -> Lost {
    let clock = VirtualClock::new();
    let trace = Trace::default();
    let providers =
        Providers { sandboxes: FakeSandboxes::new(&clock, &trace), databases: FakeDatabases::new(&clock, &trace) };
    let sink = RecordingSink::new(&clock, &trace);
    let spec = TurnSpec::from_request(
        CreateTurnRequest::new("print(1)", Language::Python),
        &Limits::default(),
        &TemplateMap::all(MAYFLY_TEMPLATE),
    )
    .unwrap();
    let control = TurnControl::default();
    let accepted_at_ms = clock.now_ms();
    let turn = run_turn(TurnId::new("t1").unwrap(), spec, TurnOptions::default(), &providers, &clock, &sink, &control);
    run_virtual(&clock, async {
        futures::future::select(std::pin::pin!(turn), clock.sleep(at_ms)).await;
    });
    // Kept as a durable caller keeps them, one record per resource, a later lease replacing an
    // earlier one (the database's is recorded by name before it is asked for, then with its token).
    let mut records: Vec<LeaseRecord> = Vec::new();
    for lease in sink.leases.borrow().iter().cloned().map(LeaseRecord::live) {
        records.retain(|record| record.resource() != lease.resource());
        records.push(lease);
    }
    Lost { clock, providers, records, accepted_at_ms }
}

impl Lost {
    fn recover(&mut self, lost: bool) -> Leftovers {
        let Lost { clock, providers, records, accepted_at_ms } = self;
        run_virtual(clock, reap_leftovers(providers, clock, records, lost, *accepted_at_ms))
    }
}

#[test]
fn a_lost_turn_is_reaped_and_its_log_closed_once() {
    let mut lost = lose_a_turn_at(350);
    assert_eq!(
        lost.records.iter().map(LeaseRecord::resource).collect::<Vec<_>>(),
        [Resource::Database, Resource::Sandbox]
    );
    assert_eq!(lost.providers.sandboxes.live_ids().len(), 1, "the lost turn left its sandbox");
    let done = lost.recover(true);
    expect![[r#"
        Leftovers {
            events: [
                DatabaseReaped {
                    ms: 10,
                },
                SandboxReaped {
                    ms: 20,
                },
                TurnFinished {
                    outcome: Failed,
                    timings: Timings {
                        sandbox_ms: None,
                        database_ms: None,
                        provision_ms: None,
                        upload_ms: None,
                        copy_ms: None,
                        seed_ms: None,
                        run_ms: None,
                        reap_ms: None,
                        total_ms: 380,
                    },
                    error: Some(
                        "the turn was lost when the worker restarted; its resources were reaped",
                    ),
                },
            ],
            failing: false,
        }
    "#]]
    .assert_debug_eq(&done);
    assert!(lost.providers.sandboxes.live_ids().is_empty() && lost.providers.databases.live_names().is_empty());
    assert!(lost.records.iter().all(|r| r.reap == ReapState::Reaped && !r.needs_reap(u64::MAX)));
    assert_eq!(lost.recover(true).events.len(), 1, "a second wake-up reaps nothing again");
}

#[test]
fn a_failing_reap_is_recorded_without_the_password_and_the_log_stays_open() {
    let mut lost = lose_a_turn_at(350);
    lost.providers.databases.delete_failures.set(1);
    let done = lost.recover(true);
    assert!(done.failing);
    assert_eq!(done.events.iter().map(EventBody::kind).collect::<Vec<_>>(), ["sandbox.reaped"]);
    let database = &lost.records[0];
    assert_eq!(database.reap, ReapState::Failed);
    let error = database.error.as_deref().unwrap();
    assert!(error.contains("503") && !error.contains(PASSWORD), "{error}");

    let done = lost.recover(true);
    assert!(!done.failing);
    assert_eq!(done.events.iter().map(EventBody::kind).collect::<Vec<_>>(), ["database.reaped", "turn.finished"]);
    assert!(lost.providers.databases.live_names().is_empty());
}

#[test]
fn a_finished_turn_gets_no_events_only_its_reaps() {
    let mut lost = lose_a_turn_at(350);
    let done = lost.recover(false);
    assert_eq!(done, Leftovers::default());
    assert!(lost.providers.sandboxes.live_ids().is_empty() && lost.providers.databases.live_names().is_empty());
}

#[test]
fn a_view_never_shows_the_token() {
    let lost = lose_a_turn_at(350);
    let json = serde_json::to_string(&lost.records.iter().map(LeaseRecord::view).collect::<Vec<_>>()).unwrap();
    assert!(json.contains("\"database\"") && !json.contains("tok1\"") && !json.contains(PASSWORD), "{json}");
}

#[test]
fn a_checkpoint_is_left_alone_until_its_lease_runs_out_then_reaped() {
    let mut lost = lose_a_turn_at(350);
    // The sandbox reaped; the database a checkpoint kept until 10 s from now.
    let until = lost.clock.now_ms() + 10_000;
    for record in &mut lost.records {
        match record.resource() {
            Resource::Sandbox => record.reap = ReapState::Reaped,
            Resource::Database => {
                record.reap = ReapState::Checkpointed;
                record.lease.reap_by_unix_ms = until;
            }
        }
    }
    lost.providers.sandboxes.live.borrow_mut().clear();
    assert_eq!(lost.records[0].checkpoint_due_unix_ms(), Some(until));
    assert_eq!(lost.recover(false), Leftovers::default());
    assert_eq!(lost.providers.databases.live_names().len(), 1, "reaped before its lease ran out");

    run_virtual(&lost.clock, lost.clock.sleep(10_000));
    assert!(!lost.recover(false).failing);
    assert!(lost.providers.databases.live_names().is_empty(), "kept past its lease");
    assert_eq!(lost.records[0].reap, ReapState::Reaped);
    assert_eq!(lost.records[0].checkpoint_due_unix_ms(), None);
}

#[test]
fn a_database_whose_answer_never_came_is_found_by_its_name_and_reaped() {
    // Lost while its database was asked for: only the lease recorded before the request is left.
    let mut lost = lose_a_turn_at(100);
    let intent = lost.records.iter().find(|r| matches!(r.lease.resource, LeasedResource::DatabaseIntent { .. }));
    let name = intent.expect("the database's lease was recorded before it was asked for").id().to_owned();
    // The provider made it all the same; its answer was what got lost.
    lost.providers.databases.live.borrow_mut().insert("tok-late".into(), name);
    lost.providers.databases.live.borrow_mut().insert("tok-other".into(), "mayfly-1-another".into());
    let done = lost.recover(true);
    assert!(!done.failing, "{done:?}");
    assert_eq!(lost.providers.databases.live_names(), ["mayfly-1-another"], "only the turn's own is reaped");
    assert!(lost.records.iter().all(|r| r.reap == ReapState::Reaped));
}
