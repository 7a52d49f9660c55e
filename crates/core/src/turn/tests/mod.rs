//! The orchestrator against in-memory providers on a virtual clock: the happy path pinned as a
//! snapshot, then every way a turn can go wrong, each checked to reap everything it created. A
//! turn's output is `output.rs`; reaping and keeping are `reap.rs`; the longest turn within its alarm
//! is `alarm.rs`; what waits for what is `overlap.rs`.

use bytes::Bytes;
use expect_test::{expect, Expect};

use super::fakes::RecordingSink;
use super::*;
use crate::providers::e2b::templates::{TemplateMap, MAYFLY_TEMPLATE};
use crate::providers::fakes::{run_virtual, FakeDatabases, FakeSandboxes, Step, Trace, VirtualClock, PASSWORD};
use crate::providers::{DatabaseMode, ProcessEvent};
use crate::turn::spec::Limits;
use crate::wire::api::{CreateTurnRequest, DatabaseField, Language};
use crate::wire::event::Resource;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod alarm;
mod output;
mod overlap;
mod reap;
mod session;
mod session_copy;

/// Fakes, sink, control and clock of one test.
struct World {
    clock: VirtualClock,
    trace: Trace,
    providers: Providers<FakeSandboxes, FakeDatabases>,
    sink: RecordingSink,
    control: TurnControl,
}

impl World {
    fn new() -> World {
        let clock = VirtualClock::new();
        let trace = Trace::default();
        World {
            providers: Providers {
                sandboxes: FakeSandboxes::new(&clock, &trace),
                databases: FakeDatabases::new(&clock, &trace),
            },
            sink: RecordingSink::new(&clock, &trace),
            control: TurnControl::default(),
            clock,
            trace,
        }
    }

    fn process(&self, steps: Vec<Step>) {
        *self.providers.sandboxes.process.borrow_mut() = steps;
    }

    fn run(&self, spec: TurnSpec, options: TurnOptions) -> TurnReport {
        let turn = run_turn(
            TurnId::new("t1").unwrap(),
            spec,
            options,
            &self.providers,
            &self.clock,
            &self.sink,
            &self.control,
        );
        let report = run_virtual(&self.clock, turn);
        self.check_invariants(&report);
        report
    }

    /// Runs the turn and, at `cancel_at_ms` of virtual time, cancels it from outside.
    fn run_and_cancel_at(&self, spec: TurnSpec, cancel_at_ms: u64) -> TurnReport {
        self.run_and_act_at(spec, cancel_at_ms, TurnControl::cancel)
    }

    /// Runs the turn and, at `at_ms` of virtual time, does `act` to its control from outside.
    fn run_and_act_at(&self, spec: TurnSpec, at_ms: u64, act: fn(&TurnControl)) -> TurnReport {
        let turn = run_turn(
            TurnId::new("t1").unwrap(),
            spec,
            TurnOptions::default(),
            &self.providers,
            &self.clock,
            &self.sink,
            &self.control,
        );
        let canceller = async {
            self.clock.sleep(at_ms).await;
            act(&self.control);
        };
        let (report, ()) = run_virtual(&self.clock, futures::future::join(turn, canceller));
        self.check_invariants(&report);
        report
    }

    /// What must hold after every turn, whatever happened in it.
    fn check_invariants(&self, report: &TurnReport) {
        let events = self.sink.events.borrow();
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.seq, i as u64 + 1, "seq has a gap or a repeat at {event:?}");
        }
        assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "at_ms goes back");
        assert_eq!(report.events, events.len() as u64);
        let json = serde_json::to_string(&*events).unwrap();
        assert!(!json.contains(PASSWORD), "the database password is in an event: {json}");
        assert!(!json.contains("envd-token"), "the envd token is in an event: {json}");
        if self.sink.close_after.get().is_none() {
            assert!(events.last().is_some_and(|e| e.body.is_terminal()), "the last event is not turn.finished");
            assert_eq!(events.iter().filter(|e| e.body.is_terminal()).count(), 1);
            // The fold every viewer uses reads from the log what the orchestrator reports.
            let progress = crate::turn::progress::TurnProgress::of(events.iter());
            assert_eq!(progress.state, crate::TurnState::Finished);
            assert_eq!(
                (progress.outcome, progress.exit_code, &progress.error, &progress.timings, progress.last_seq),
                (Some(report.outcome), report.exit_code, &report.error, &report.timings, report.events)
            );
            for (resource, reaped) in [(Resource::Sandbox, &report.sandbox), (Resource::Database, &report.database)] {
                let folded = progress.resource(resource).map(|r| (r.reap, r.error.clone()));
                let reported = reaped.as_ref().map(|r| (r.state, r.error.clone()));
                assert_eq!(folded, reported, "{resource:?} as folded from the events, and as reported");
            }
        }
        // Nothing leaks: whatever was created is gone, unless it was kept or its reap failed.
        if report.sandbox.as_ref().is_none_or(|s| s.state != ReapState::Failed) {
            assert_eq!(self.providers.sandboxes.live_ids(), Vec::<String>::new(), "a sandbox is still alive");
        }
        if report.database.as_ref().is_none_or(|d| d.state == ReapState::Reaped) {
            // The turn's own: a fork's checkpoint belongs to another turn.
            let own: Vec<String> =
                self.providers.databases.live_names().into_iter().filter(|name| name.ends_with("-t1")).collect();
            assert_eq!(own, Vec::<String>::new(), "a database is still alive");
        }
        assert_eq!(report.sandbox.is_some(), !self.providers.sandboxes.created.borrow().is_empty());
        assert_eq!(report.database.is_some(), self.providers.databases.created.get() > 0);
    }

    /// The events, one per line: `#seq at_ms type {fields}`; a line starts with `#` because a snapshot
    /// drops leading whitespace.
    fn events(&self) -> String {
        let mut out = String::new();
        for event in self.sink.events.borrow().iter() {
            let mut fields = serde_json::to_value(event).unwrap();
            let fields = fields.as_object_mut().unwrap();
            for key in ["seq", "at_ms", "type"] {
                fields.remove(key);
            }
            let fields =
                if fields.is_empty() { String::new() } else { format!(" {}", serde_json::to_string(fields).unwrap()) };
            out += &format!("#{:<2} {:>5} ms {}{fields}\n", event.seq, event.at_ms, event.body.kind());
        }
        out
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.sink.events.borrow().iter().map(|e| e.body.kind()).collect()
    }
}

fn spec(code: &str) -> TurnSpec {
    TurnSpec::from_request(
        CreateTurnRequest::new(code, Language::Python),
        &Limits::default(),
        &TemplateMap::all(MAYFLY_TEMPLATE),
    )
    .unwrap()
}

fn spec_with(edit: impl FnOnce(&mut CreateTurnRequest)) -> TurnSpec {
    let mut request = CreateTurnRequest::new("print(1)", Language::Python);
    edit(&mut request);
    TurnSpec::from_request(request, &Limits::default(), &TemplateMap::all(MAYFLY_TEMPLATE)).unwrap()
}

fn stdout(text: &'static [u8]) -> Step {
    Step::Emit(ProcessEvent::Stdout(Bytes::from_static(text)))
}

fn stderr(text: &'static [u8]) -> Step {
    Step::Emit(ProcessEvent::Stderr(Bytes::from_static(text)))
}

fn started() -> Step {
    Step::Emit(ProcessEvent::Started { pid: 7 })
}

fn exited(exit_code: i32) -> Step {
    Step::Emit(ProcessEvent::Exited { exit_code })
}

#[test]
fn happy_path_events() {
    let world = World::new();
    let spec = spec_with(|r| {
        r.env.insert("MODE".into(), "fast".into());
    });
    let report = world.run(spec, TurnOptions::default());
    expect![[r##"
        #1      0 ms turn.accepted {"deadline_ms":30000,"turn_id":"t1"}
        #2      0 ms sandbox.creating {"template":"mayfly"}
        #3      0 ms database.creating
        #4    200 ms database.ready {"database":"db_tok1","host":"db.test:5432","ms":200}
        #5    300 ms sandbox.ready {"ms":300,"sandbox_id":"sbx-1"}
        #6    310 ms code.uploaded {"bytes":8,"path":"/home/user/main.py"}
        #7    320 ms process.started {"pid":42}
        #8    420 ms stdout {"data":"(1000000,)\n"}
        #9    430 ms process.exited {"exit_code":0,"ms":120}
        #10   440 ms database.reaped {"ms":10}
        #11   450 ms sandbox.reaped {"ms":20}
        #12   450 ms turn.finished {"outcome":"succeeded","timings":{"database_ms":200,"provision_ms":300,"reap_ms":20,"run_ms":120,"sandbox_ms":300,"total_ms":450,"upload_ms":10}}
    "##]].assert_eq(&world.events());
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.sandbox.as_ref().unwrap().state, ReapState::Reaped);
    assert_eq!(report.database.as_ref().unwrap().state, ReapState::Reaped);
    assert_eq!(report.database.as_ref().unwrap().id, "mayfly-1700000030-t1");
}

#[test]
fn happy_path_calls_leases_before_use_and_puts_the_url_only_in_the_process_env() {
    let world = World::new();
    let spec = spec_with(|r| {
        r.env.insert("MODE".into(), "fast".into());
    });
    world.run(spec, TurnOptions::default());
    expect![[r#"
        @0     lease {"turn_id":"t1","deadline_unix_ms":1700000030000,"reap_by_unix_ms":1700000090000,"resource":{"resource":"database_intent","name":"mayfly-1700000030-t1"}}
        @200   database create tok1 name=mayfly-1700000030-t1 key=mayfly-t1
        @200   lease {"turn_id":"t1","deadline_unix_ms":1700000030000,"reap_by_unix_ms":1700000090000,"resource":{"resource":"database","token":"tok1","name":"mayfly-1700000030-t1","mode":"token"}}
        @300   sandbox create sbx-1 timeout_s=90 {"deadline": "1700000030", "mayfly": "1", "turn": "t1"}
        @300   lease {"turn_id":"t1","deadline_unix_ms":1700000030000,"reap_by_unix_ms":1700000090000,"resource":{"resource":"sandbox","sandbox_id":"sbx-1"}}
        @310   sandbox upload /home/user/main.py (8 bytes)
        @315   sandbox start "python3 -u /home/user/main.py" timeout_ms=29690
        @440   database delete tok1 existed=true
        @450   sandbox kill sbx-1 was_alive=true
    "#]].assert_eq(&world.trace.render());
    let created = world.providers.sandboxes.created.borrow();
    let sandbox = created.values().next().unwrap();
    let url = FakeDatabases::url("tok1");
    assert!(url.contains(PASSWORD));
    assert_eq!(
        sandbox.process_env,
        vec![("MODE".into(), "fast".into()), ("PG_URL".into(), url.clone()), ("DATABASE_URL".into(), url)]
    );
    assert_eq!(sandbox.command, "python3 -u /home/user/main.py");
    // The caller's env is its code's process's, not the sandbox's, where mayfly's own helpers run
    // too; the sandbox's timeout is the turn's 30 s plus 60 s of grace.
    assert!(sandbox.env.is_empty(), "{:?}", sandbox.env);
    assert_eq!(sandbox.timeout_s, 90);
    assert_eq!(sandbox.files.get("/home/user/main.py").unwrap(), "print(1)");
    // The database's lease twice: named before it is asked for, then with its token.
    let leases = world.sink.leases.borrow();
    assert_eq!(leases.len(), 3);
    assert!(leases.iter().all(|l| l.deadline_unix_ms == 1_700_000_030_000 && l.reap_by_unix_ms == 1_700_000_090_000));
}

#[test]
fn provisioning_is_concurrent_the_virtual_clock_shows_max_not_sum() {
    for (sandbox_ms, database_ms) in [(300, 200), (100, 400), (250, 250)] {
        let world = World::new();
        world.providers.sandboxes.create_ms.set(sandbox_ms);
        world.providers.databases.create_ms.set(database_ms);
        let report = world.run(spec("print(1)"), TurnOptions::default());
        assert_eq!(report.timings.sandbox_ms, Some(sandbox_ms));
        assert_eq!(report.timings.database_ms, Some(database_ms));
        assert_eq!(report.timings.provision_ms, Some(sandbox_ms.max(database_ms)), "{sandbox_ms} {database_ms}");
    }
}

#[test]
fn a_failure_at_every_step_still_reaps_everything_created() {
    // (what breaks, the outcome, the error) — each case on a fresh world.
    type Setup = fn(&World);
    let cases: Vec<(&str, Setup, Outcome, Expect)> = vec![
        (
            "sandbox create",
            |w| w.providers.sandboxes.fail_on("create"),
            Outcome::Failed,
            expect!["the sandbox could not be created: e2b answered 500: create broke"],
        ),
        (
            "database create",
            |w| w.providers.databases.fail_on("create"),
            Outcome::Failed,
            expect!["the database could not be created: instanode answered 503: no capacity"],
        ),
        (
            "both creates",
            |w| {
                w.providers.sandboxes.fail_on("create");
                w.providers.databases.fail_on("create");
            },
            Outcome::Failed,
            expect!["the sandbox could not be created: e2b answered 500: create broke; the database could not be created: instanode answered 503: no capacity"],
        ),
        (
            "sandbox lease",
            |w| w.sink.fail_lease.set(Some(Resource::Sandbox)),
            Outcome::Failed,
            expect!["the sandbox's lease could not be recorded: the lease could not be recorded: storage is down"],
        ),
        (
            "database lease",
            |w| w.sink.fail_lease.set(Some(Resource::Database)),
            Outcome::Failed,
            expect!["the database's lease could not be recorded: the lease could not be recorded: storage is down"],
        ),
        (
            "code upload",
            |w| w.providers.sandboxes.fail_on("upload /home/user/main.py"),
            Outcome::Failed,
            expect!["/home/user/main.py could not be uploaded: e2b answered 500: upload /home/user/main.py broke"],
        ),
        (
            "file upload",
            |w| w.providers.sandboxes.fail_on("upload /home/user/data/x.csv"),
            Outcome::Failed,
            expect!["/home/user/data/x.csv could not be uploaded: e2b answered 500: upload /home/user/data/x.csv broke"],
        ),
        (
            "process start",
            |w| w.providers.sandboxes.fail_on("start"),
            Outcome::Failed,
            expect!["the code could not be started: e2b answered 500: start broke"],
        ),
        (
            "process crash mid-stream",
            |w| w.process(vec![started(), Step::Wait(50), stdout(b"half"), Step::Break]),
            Outcome::Failed,
            expect!["the process's output broke off: e2b sent an answer mayfly does not understand: connection reset"],
        ),
        (
            "stream truncated",
            |w| w.process(vec![started(), stdout(b"half")]),
            Outcome::Failed,
            expect!["the process's output broke off: the process output stream ended before the process exited"],
        ),
        (
            "non-zero exit",
            |w| w.process(vec![started(), stderr(b"Traceback"), exited(2)]),
            Outcome::Failed,
            expect!["the code exited with status 2"],
        ),
        (
            "deadline",
            |w| w.process(vec![started(), Step::Wait(3_600_000), exited(0)]),
            Outcome::TimedOut,
            expect!["the code ran past its 30 s timeout"],
        ),
        (
            "cancelled before the turn began",
            |w| w.control.cancel(),
            Outcome::Cancelled,
            expect!["the turn was cancelled"],
        ),
        (
            "sink closed during provisioning",
            |w| w.sink.close_after.set(Some(3)),
            Outcome::Cancelled,
            expect!["nobody is watching the turn any more: its event sink closed"],
        ),
        (
            "sink closed while running",
            |w| w.sink.close_after.set(Some(8)),
            Outcome::Cancelled,
            expect!["nobody is watching the turn any more: its event sink closed"],
        ),
    ];
    for (name, setup, outcome, error) in cases {
        let world = World::new();
        setup(&world);
        let spec = spec_with(|r| {
            r.files.insert("data/x.csv".into(), "1,2".into());
        });
        let report = world.run(spec, TurnOptions::default());
        assert_eq!(report.outcome, outcome, "{name}");
        error.assert_eq(report.error.as_deref().unwrap_or("(none)"));
        for reap in [&report.sandbox, &report.database].into_iter().flatten() {
            assert_eq!(reap.state, ReapState::Reaped, "{name}: {reap:?}");
        }
        // Every resource created was asked to go, exactly as many times as needed.
        assert!(world.providers.sandboxes.live_ids().is_empty(), "{name}");
        assert!(world.providers.databases.live_names().is_empty(), "{name}");
    }
}

#[test]
fn the_deadline_kills_the_code_and_reaps() {
    let world = World::new();
    world.process(vec![started(), stdout(b"working\n"), Step::Wait(3_600_000), exited(0)]);
    let report = world.run(spec_with(|r| r.timeout_s = Some(1)), TurnOptions::default());
    expect![[r##"
        #1      0 ms turn.accepted {"deadline_ms":1000,"turn_id":"t1"}
        #2      0 ms sandbox.creating {"template":"mayfly"}
        #3      0 ms database.creating
        #4    200 ms database.ready {"database":"db_tok1","host":"db.test:5432","ms":200}
        #5    300 ms sandbox.ready {"ms":300,"sandbox_id":"sbx-1"}
        #6    310 ms code.uploaded {"bytes":8,"path":"/home/user/main.py"}
        #7    315 ms process.started {"pid":7}
        #8    315 ms stdout {"data":"working\n"}
        #9   1010 ms database.reaped {"ms":10}
        #10  1020 ms sandbox.reaped {"ms":20}
        #11  1020 ms turn.finished {"error":"the code ran past its 1 s timeout","outcome":"timed_out","timings":{"database_ms":200,"provision_ms":300,"reap_ms":20,"run_ms":690,"sandbox_ms":300,"total_ms":1020,"upload_ms":10}}
    "##]].assert_eq(&world.events());
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_eq!(report.exit_code, None);
}

#[test]
fn cancel_while_running_stops_and_reaps() {
    let world = World::new();
    world.process(vec![started(), stdout(b"working\n"), Step::Wait(3_600_000), exited(0)]);
    let report = world.run_and_cancel_at(spec("print(1)"), 500);
    assert_eq!(report.outcome, Outcome::Cancelled);
    expect![[r##"
        #1      0 ms turn.accepted {"deadline_ms":30000,"turn_id":"t1"}
        #2      0 ms sandbox.creating {"template":"mayfly"}
        #3      0 ms database.creating
        #4    200 ms database.ready {"database":"db_tok1","host":"db.test:5432","ms":200}
        #5    300 ms sandbox.ready {"ms":300,"sandbox_id":"sbx-1"}
        #6    310 ms code.uploaded {"bytes":8,"path":"/home/user/main.py"}
        #7    315 ms process.started {"pid":7}
        #8    315 ms stdout {"data":"working\n"}
        #9    510 ms database.reaped {"ms":10}
        #10   520 ms sandbox.reaped {"ms":20}
        #11   520 ms turn.finished {"error":"the turn was cancelled","outcome":"cancelled","timings":{"database_ms":200,"provision_ms":300,"reap_ms":20,"run_ms":190,"sandbox_ms":300,"total_ms":520,"upload_ms":10}}
    "##]].assert_eq(&world.events());
}

#[test]
fn cancel_during_provisioning_reaps_what_arrives() {
    let world = World::new();
    let report = world.run_and_cancel_at(spec("print(1)"), 100);
    assert_eq!(report.outcome, Outcome::Cancelled);
    assert_eq!(
        world.kinds(),
        [
            "turn.accepted",
            "sandbox.creating",
            "database.creating",
            "database.ready",
            "sandbox.ready",
            "database.reaped",
            "sandbox.reaped",
            "turn.finished"
        ]
    );
}

#[test]
fn a_closed_sink_still_reaps_and_emits_nothing_more() {
    let world = World::new();
    world.process(vec![started(), stdout(b"a"), Step::Wait(10), stdout(b"b"), Step::Wait(3_600_000), exited(0)]);
    // Eight events are taken; the ninth (stdout "b") finds the sink closed.
    world.sink.close_after.set(Some(8));
    let report = world.run(spec("print(1)"), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Cancelled);
    assert_eq!(report.events, 8);
    assert_eq!(report.sandbox.unwrap().state, ReapState::Reaped);
    assert_eq!(report.database.unwrap().state, ReapState::Reaped);
    // Ended by the closed sink at the next event, not by the one-hour wait.
    assert!(world.clock.elapsed_ms() < 1_000, "{}", world.clock.elapsed_ms());
}

#[test]
fn without_a_database_none_is_asked_for_and_no_url_is_set() {
    let world = World::new();
    let report = world.run(spec_with(|r| r.database = DatabaseField::Enabled(false)), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.database, None);
    assert_eq!(world.providers.databases.created.get(), 0);
    assert!(!world.kinds().iter().any(|k| k.starts_with("database")));
    let created = world.providers.sandboxes.created.borrow();
    assert_eq!(created.values().next().unwrap().process_env, Vec::<(String, String)>::new());
    assert_eq!(report.timings.provision_ms, Some(300));
}

#[test]
fn turn_ids_are_checked() {
    assert!(TurnId::new("t_0123456789abcdef-X").is_ok());
    for bad in ["", "a.b", "a b", "ü", &"x".repeat(41)] {
        assert!(TurnId::new(bad).is_err(), "{bad}");
    }
    assert_eq!(
        TurnId::new("a/b").unwrap_err().to_string(),
        "turn id \"a/b\" is not allowed: use 1-40 of A-Z a-z 0-9 _ -"
    );
    assert!(serde_json::from_str::<TurnId>("\"a/b\"").is_err());
}
