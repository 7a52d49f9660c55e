//! A fork where the provider cannot fork (hosted instanode): a fresh database, into which the turn
//! copies the checkpoint from inside its own sandbox, as its own phase, before the seed and the
//! code — and a copy that fails stops the turn before its code, saying why without any password.

use expect_test::expect;

use super::session::{parent_summary, session_spec};
use super::*;
use crate::providers::fakes::PASSWORD;
use crate::turn::session::ForkSource;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A world whose database provider cannot fork, holding turn t0's checkpoint as `tok-parent`.
fn hosted_world() -> (World, TurnOptions) {
    let world = World::new();
    world.providers.databases.forks.set(false);
    world.providers.databases.live.borrow_mut().insert("tok-parent".into(), "mayfly-1-t0".into());
    let fork = ForkSource { token: "tok-parent".into(), summary: Some(parent_summary()) };
    (world, TurnOptions { fork: Some(fork), ..TurnOptions::default() })
}

#[test]
fn a_fork_where_the_provider_cannot_fork_copies_the_checkpoint_before_the_seed_and_the_code() {
    let (world, options) = hosted_world();
    let report = world.run(session_spec(Some("insert into items values (9)"), Some("t0"), None), options);
    expect![[r##"
        #1      0 ms turn.accepted {"deadline_ms":30000,"turn_id":"t1"}
        #2      0 ms sandbox.creating {"template":"mayfly"}
        #3      0 ms database.creating {"from":"t0"}
        #4    200 ms database.ready {"database":"db_tok1","host":"db.test:5432","ms":200}
        #5    300 ms sandbox.ready {"ms":300,"sandbox_id":"sbx-1"}
        #6    300 ms database.copying {"from":"t0"}
        #7    365 ms database.copied {"bytes":4096,"ms":65}
        #8    375 ms code.uploaded {"bytes":8,"path":"/home/user/main.py"}
        #9    375 ms database.seeding {"bytes":28}
        #10   420 ms database.seeded {"ms":45}
        #11   430 ms process.started {"pid":42}
        #12   530 ms stdout {"data":"(1000000,)\n"}
        #13   540 ms process.exited {"exit_code":0,"ms":120}
        #14   575 ms database.summary {"diff":{"added":[],"altered":[],"bytes_after":8000,"bytes_before":7000,"dropped":["public.old"],"parent_turn_id":"t0","rows":[{"after":2,"before":5,"table":"public.items"}]},"summary":{"bytes":8000,"tables":[{"columns":["id integer"],"name":"public.items","rows":2}]}}
        #15   585 ms database.reaped {"ms":10}
        #16   595 ms sandbox.reaped {"ms":20}
        #17   595 ms turn.finished {"outcome":"succeeded","timings":{"copy_ms":65,"database_ms":200,"provision_ms":300,"reap_ms":20,"run_ms":120,"sandbox_ms":300,"seed_ms":45,"total_ms":595,"upload_ms":10}}
    "##]]
    .assert_eq(&world.events());
    assert_eq!(report.outcome, Outcome::Succeeded);
    let trace = world.trace.lines();
    let at = |needle: &str| trace.iter().position(|line| line.contains(needle)).unwrap_or_else(|| panic!("{needle}"));
    // A fresh database, made under the turn's own name and key, once the fork was refused.
    assert!(trace[at("database create tok1")].contains("key=mayfly-t1"), "{trace:#?}");
    assert!(at("database credentials tok-parent") < at("db_helper.py copy"));
    assert!(at("db_helper.py copy") < at("db_helper.py seed"));
    // Nothing of the caller's is in the sandbox while the copy runs: its code goes up after.
    assert!(at("db_helper.py copy") < at("sandbox upload /home/user/main.py"), "{trace:#?}");
    assert!(trace[at("db_helper.py copy")].contains("python3 -I /tmp/.mayfly/db_helper.py copy"));
    // The checkpoint's URL went to the copy's environment only: never to the code's.
    let created = world.providers.sandboxes.created.borrow();
    let sandbox = &created["sbx-1"];
    assert!(!sandbox.env.iter().any(|(_, value)| value.contains("tok-parent")), "{:?}", sandbox.env);
    assert!(!sandbox.process_env.iter().any(|(_, value)| value.contains("tok-parent")), "{:?}", sandbox.process_env);
    // The checkpoint stays, for further forks.
    assert_eq!(world.providers.databases.live_names(), ["mayfly-1-t0"]);
}

#[test]
fn the_copy_gets_the_checkpoint_url_and_the_forks_own_in_its_environment() {
    let (world, options) = hosted_world();
    world.process(vec![started(), Step::Wait(50_000)]);
    // The code never ends: its process's environment is the copy's until the code starts.
    world.providers.sandboxes.helper.borrow_mut().insert("copy", vec![Step::Wait(60_000)]);
    let report = world.run(session_spec(None, Some("t0"), None), options);
    assert_eq!(report.outcome, Outcome::TimedOut);
    let created = world.providers.sandboxes.created.borrow();
    let env = &created["sbx-1"].process_env;
    assert_eq!(
        env,
        &[
            ("PG_URL".to_owned(), FakeDatabases::url("tok1")),
            ("MAYFLY_SOURCE_URL".to_owned(), FakeDatabases::url("tok-parent")),
        ]
    );
    assert!(created["sbx-1"].command.ends_with("db_helper.py copy"), "{}", created["sbx-1"].command);
    assert!(!world.kinds().contains(&"process.started"));
    assert!(!world.kinds().contains(&"database.copied"));
}

#[test]
fn a_copy_that_fails_stops_the_turn_before_its_code_without_a_password_in_what_it_says() {
    let (world, options) = hosted_world();
    let said = format!("pg_dump failed: connection to {} refused\n", FakeDatabases::url("tok-parent"));
    let said: &'static [u8] = Box::leak(said.into_bytes().into_boxed_slice());
    world.providers.sandboxes.helper.borrow_mut().insert("copy", vec![stderr(said), exited(1)]);
    let report = world.run(session_spec(Some("select 1"), Some("t0"), None), options);
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap();
    assert!(error.starts_with("turn t0's checkpoint could not be copied into the database: pg_dump failed"), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");
    assert!(!world.events().contains(PASSWORD), "{}", world.events());
    let kinds = world.kinds();
    assert!(kinds.contains(&"database.copying"));
    for never in ["database.copied", "database.seeding", "process.started", "database.summary"] {
        assert!(!kinds.contains(&never), "{never} in {kinds:?}");
    }
    // The fork's own database is reaped; the checkpoint is not touched.
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Reaped));
    assert_eq!(world.providers.databases.live_names(), ["mayfly-1-t0"]);

    // A checkpoint gone by the time the copy asks for its credentials: said, nothing run.
    let (world, options) = hosted_world();
    world.providers.databases.live.borrow_mut().remove("tok-parent");
    let report = world.run(session_spec(None, Some("t0"), None), options);
    let error = report.error.unwrap();
    assert!(error.contains("could not be copied into the database: instanode answered 404"), "{error}");
    assert!(!world.kinds().contains(&"process.started"));
}

#[test]
fn a_copy_or_a_seed_still_running_at_the_deadline_timed_out_it_did_not_fail() {
    let (world, options) = hosted_world();
    world.providers.sandboxes.helper.borrow_mut().insert("copy", vec![Step::Wait(60_000)]);
    let report = world.run(session_spec(None, Some("t0"), None), options);
    assert_eq!(report.outcome, Outcome::TimedOut, "{:?}", report.error);

    let world = World::new();
    world.providers.sandboxes.helper.borrow_mut().insert("seed", vec![Step::Wait(60_000)]);
    let report = world.run(session_spec(Some("select pg_sleep(60)"), None, None), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::TimedOut, "{:?}", report.error);
    assert_eq!(report.error.as_deref(), Some("the turn ran past its 30 s timeout before its code started"));
}
