//! What waits for what: the code and the files go into the sandbox as soon as it is ready, all at
//! once, while the database is still being made; only the process start waits for the database.

use expect_test::expect;

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn the_upload_overlaps_a_slower_database_and_files_go_up_at_once() {
    let world = World::new();
    world.providers.sandboxes.create_ms.set(100);
    world.providers.databases.create_ms.set(400);
    let spec = spec_with(|r| {
        r.files.insert("data/a.csv".into(), "1,2".into());
        r.files.insert("data/b.csv".into(), "3,4".into());
    });
    let report = world.run(spec, TurnOptions::default());
    // Sandbox at 100 ms; the three uploads (10 ms each) land together at 110 ms, while the
    // database comes at 400 ms; the process starts (10 ms) only then.
    expect![[r##"
        #1      0 ms turn.accepted {"deadline_ms":30000,"turn_id":"t1"}
        #2      0 ms sandbox.creating {"template":"mayfly"}
        #3      0 ms database.creating
        #4    100 ms sandbox.ready {"ms":100,"sandbox_id":"sbx-1"}
        #5    110 ms code.uploaded {"bytes":8,"path":"/home/user/main.py"}
        #6    110 ms code.uploaded {"bytes":3,"path":"/home/user/data/a.csv"}
        #7    110 ms code.uploaded {"bytes":3,"path":"/home/user/data/b.csv"}
        #8    400 ms database.ready {"database":"db_tok1","host":"db.test:5432","ms":400}
        #9    410 ms process.started {"pid":42}
        #10   510 ms stdout {"data":"(1000000,)\n"}
        #11   520 ms process.exited {"exit_code":0,"ms":120}
        #12   530 ms database.reaped {"ms":10}
        #13   540 ms sandbox.reaped {"ms":20}
        #14   540 ms turn.finished {"outcome":"succeeded","timings":{"database_ms":400,"provision_ms":400,"reap_ms":20,"run_ms":120,"sandbox_ms":100,"total_ms":540,"upload_ms":10}}
    "##]]
    .assert_eq(&world.events());
    // The process got the database's URL, though the code was in place long before.
    let created = world.providers.sandboxes.created.borrow();
    let env = &created["sbx-1"].process_env;
    assert!(env.iter().any(|(name, _)| name == "PG_URL"), "{env:?}");
    assert_eq!(report.timings.upload_ms, Some(10));
    // The fold every viewer uses sees the upload begin when the sandbox is ready.
    let progress = crate::turn::progress::TurnProgress::of(world.sink.events.borrow().iter());
    assert_eq!((progress.upload_phase.start, progress.upload_phase.end), (Some(100), Some(110)));
}

#[test]
fn a_failed_upload_still_waits_for_the_database_to_reap_it() {
    let world = World::new();
    world.providers.sandboxes.create_ms.set(100);
    world.providers.databases.create_ms.set(400);
    world.providers.sandboxes.fail_on("upload /home/user/main.py");
    let report = world.run(spec("print(1)"), TurnOptions::default());
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some("/home/user/main.py could not be uploaded: e2b answered 500: upload /home/user/main.py broke")
    );
    // Nothing ran, and the database that came after the failure was reaped with the sandbox.
    assert!(!world.kinds().contains(&"process.started"), "{:?}", world.kinds());
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Reaped));
}
