//! A session of turns from the terminal (`docs/checkpoints.md`): `mayfly run --seed-sql FILE
//! --checkpoint 2s`, then `mayfly run --from <turn>`, against one running `mayfly stack`; the
//! checkpoint is gone once `mayfly reap` finds it ran out (two seconds past the run's timeout: the
//! database's name carries that time, and the sweep reads it).

mod common;

use std::time::{Duration, Instant};

/// The turn id `mayfly run` printed first.
fn turn_id(stderr: &str) -> String {
    let line = stderr.lines().find(|line| line.starts_with("mayfly: turn ")).expect("the turn's id is printed");
    line["mayfly: turn ".len()..].split(':').next().unwrap().to_owned()
}

#[test]
fn a_checkpointed_run_is_forked_by_the_next_and_reaped_once_it_ran_out() {
    let state = tempfile::tempdir().unwrap();
    let stack = common::start_stack(state.path());
    let dir = state.path();
    std::fs::write(dir.join("seed.sql"), "CREATE TABLE items (name text); INSERT INTO items VALUES ('a'), ('b');")
        .unwrap();
    let count = "import os, psycopg\nwith psycopg.connect(os.environ['PG_URL']) as c:\n    \
                 c.execute(\"INSERT INTO items VALUES ('x')\")\n    \
                 print(c.execute('SELECT count(*) FROM items').fetchone()[0])\n";
    std::fs::write(dir.join("count.py"), count).unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();

    let (seed, code) = (path("seed.sql"), path("count.py"));
    let (success, stdout, base) =
        common::mayfly(dir, &["run", "--seed-sql", &seed, "--checkpoint", "2s", "--timeout", "5", &code]);
    assert!(success, "{stdout}\n{base}");
    assert_eq!(stdout, "3\n");
    for step in ["database seeded", "database holds", "public.items (3)", "database checkpointed"] {
        assert!(base.contains(step), "missing {step:?}:\n{base}");
    }
    assert!(base.contains("sandbox reaped, database checkpointed"), "{base}");
    let parent = turn_id(&base);

    // The fork starts from the checkpoint: the seed's rows and the base's own.
    let (success, stdout, fork) = common::mayfly(dir, &["run", "--from", &parent, &code]);
    assert!(success, "{stdout}\n{fork}");
    assert_eq!(stdout, "4\n");
    assert!(fork.contains(&format!("as a copy of turn {parent}'s checkpoint")), "{fork}");
    assert!(fork.contains("sandbox reaped, database reaped"), "{fork}");

    // Past its time the sweep reaps it, and a fork of it is refused with the reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (success, stdout, stderr) = common::mayfly(dir, &["reap", "--grace-minutes", "0"]);
        assert!(success, "{stdout}\n{stderr}");
        if stdout.contains("1 reaped\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the checkpoint was never reaped: {stdout}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (success, _, refused) = common::mayfly(dir, &["run", "--from", &parent, &code]);
    assert!(!success);
    assert!(refused.contains(&format!("turn {parent} has no live checkpoint")), "{refused}");
    common::stop_stack(stack, state.path());
}
