//! A session of turns through the edge API (`docs/checkpoints.md`): a base turn seeds a schema
//! and fixtures and checkpoints; three forks change it differently at the same time; a fork of a
//! fork; each fork's summary shows exactly its own changes; the checkpoint is frozen and the
//! tenant's own; and every database is reaped on time.

use std::time::{Duration, Instant};

use mayfly_core::wire::database::{DatabaseSummary, SummaryDiff};
use mayfly_core::{CheckpointView, Event, EventBody, Outcome, ReapState, Resource, TurnDetail};
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{ApiClient, InProcessStack, TestStackOptions, ALICE_KEY, BOB_KEY};

const SCHEMA_AND_FIXTURES: &str = "
    CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
    CREATE TABLE notes (id serial PRIMARY KEY, body text);
    INSERT INTO items (name) VALUES ('a'), ('b'), ('c');
    INSERT INTO notes (body) VALUES ('keep me');
";

/// Python run in a turn: `sql` against the turn's database, then what it counts in `items`.
fn code(sql: &str) -> String {
    format!(
        "import os, psycopg\n\
         with psycopg.connect(os.environ['PG_URL']) as conn:\n    \
         conn.execute({sql:?})\n    \
         print(conn.execute('SELECT count(*) FROM items').fetchone()[0])\n"
    )
}

/// A turn's create body: `code`, its database `from` a checkpoint and/or seeded, and kept as a
/// checkpoint for `keep_s` when asked.
fn body(code: &str, from: Option<&str>, seed_sql: Option<&str>, keep_s: Option<u32>) -> String {
    let mut database = serde_json::Map::new();
    if let Some(from) = from {
        database.insert("from".into(), from.into());
    }
    if let Some(seed) = seed_sql {
        database.insert("seed_sql".into(), seed.into());
    }
    let mut body = serde_json::json!({ "code": code, "language": "python", "database": database });
    if let Some(keep_s) = keep_s {
        body["checkpoint"] = serde_json::json!({ "keep_s": keep_s });
    }
    body.to_string()
}

/// Runs a turn to its end: its id and its events.
fn run(client: &ApiClient, body: &str) -> (String, Vec<Event>) {
    let turn = client.create_turn(body);
    let events = client.follow(&turn.turn_id, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:#?}");
    (turn.turn_id, events)
}

fn summary_of(events: &[Event]) -> (DatabaseSummary, Option<SummaryDiff>) {
    events
        .iter()
        .find_map(|event| match &event.body {
            EventBody::DatabaseSummarized { summary: Some(summary), diff, error: None } => {
                Some((summary.as_ref().clone(), diff.as_deref().cloned()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no database.summary: {events:#?}"))
}

fn rows(summary: &DatabaseSummary, table: &str) -> Option<u64> {
    summary.tables.iter().find(|t| t.name == table).map(|t| t.rows)
}

fn checkpoint(client: &ApiClient, turn_id: &str) -> CheckpointView {
    let (status, body) = client.call("GET", &format!("/v1/turns/{turn_id}/checkpoint"), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn database_of(detail: &TurnDetail) -> ReapState {
    detail.resources.iter().find(|r| r.resource == Resource::Database).map(|r| r.reap).expect("a database")
}

/// Waits until the turn's database is reaped; fails after `patience`.
fn wait_database_reaped(client: &ApiClient, turn_id: &str, patience: Duration) -> Instant {
    let deadline = Instant::now() + patience;
    loop {
        let detail = client.detail(turn_id);
        if database_of(&detail) == ReapState::Reaped {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{turn_id}'s database outlived its checkpoint: {detail:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn where_the_provider_cannot_fork_a_fork_copies_the_checkpoint_and_shows_what_it_changed() {
    // scratchdb as hosted instanode: no freeze (the checkpoint's credentials are rotated) and no
    // fork (the turn copies the checkpoint into a fresh database inside its sandbox).
    let stack = InProcessStack::start_with(TestStackOptions::default().like_hosted());
    let alice = stack.client(ALICE_KEY);
    let base_code = code("INSERT INTO items (name) VALUES ('d')");
    let (base, _) = run(&alice, &body(&base_code, None, Some(SCHEMA_AND_FIXTURES), Some(600)));
    let (fork, events) = run(&alice, &body(&code("DELETE FROM items WHERE name = 'a'"), Some(&base), None, None));
    let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap_or_else(|| panic!("{kind}: {kinds:?}"));
    assert!(at("database.ready") < at("database.copying"), "{kinds:?}");
    assert!(at("database.copying") < at("database.copied") && at("database.copied") < at("process.started"));
    assert_eq!(stdout_of(&events), "3\n");
    let diff = summary_of(&events).1.expect("a fork's summary has a diff");
    assert_eq!(diff.parent_turn_id, base);
    assert_eq!(
        diff.rows.iter().map(|r| (r.table.as_str(), r.before, r.after)).collect::<Vec<_>>(),
        [("public.items", 4, 3)]
    );
    // No connection URL, the checkpoint's or the fork's, in anything the API shows.
    let shown = serde_json::to_string(&events).unwrap() + &serde_json::to_string(&alice.detail(&fork)).unwrap();
    assert!(!shown.contains("postgres://") && !shown.contains("postgresql://"), "{shown}");
    assert!(alice.detail(&fork).timings.copy_ms.is_some());
    alice.wait_reaped(&fork);
    stack.assert_nothing_left(&fork);
    // The checkpoint stayed for the fork, and is reaped when released.
    assert!(checkpoint(&alice, &base).live);
    let (status, answer) = alice.call("DELETE", &format!("/v1/turns/{base}/checkpoint"), None);
    assert_eq!(status, 202, "{answer}");
    wait_database_reaped(&alice, &base, Duration::from_secs(30));
    stack.assert_nothing_left(&base);
}

#[test]
fn an_agent_session_checkpoints_forks_and_shows_what_each_turn_changed() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);

    // The base: schema and fixtures as its seed, one more row from its code, then a checkpoint.
    // It prints its own URL, so that the test can try it after the checkpoint froze the database.
    let base_code =
        format!("import os\nprint(os.environ['PG_URL'])\n{}", code("INSERT INTO items (name) VALUES ('d')"));
    let (base, events) = run(&alice, &body(&base_code, None, Some(SCHEMA_AND_FIXTURES), Some(600)));
    let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap_or_else(|| panic!("{kind}: {kinds:?}"));
    assert!(at("database.seeded") < at("process.started"), "{kinds:?}");
    assert!(at("process.exited") < at("database.summary") && at("database.summary") < at("database.checkpointed"));
    assert!(!kinds.contains(&"database.reaped"), "{kinds:?}");
    let (base_summary, diff) = summary_of(&events);
    assert_eq!(diff, None, "the base was forked from nothing");
    assert_eq!((rows(&base_summary, "public.items"), rows(&base_summary, "public.notes")), (Some(4), Some(1)));
    let output = stdout_of(&events);
    let base_url = output.lines().next().unwrap().to_owned();
    assert_eq!(output.lines().nth(1), Some("4"));

    // Frozen: the base's own credentials no longer open its database.
    let refused = stack.runtime.block_on(tokio_postgres::connect(&base_url, tokio_postgres::NoTls));
    assert!(refused.is_err(), "the checkpoint still takes the turn's own credentials");
    let detail = alice.detail(&base);
    assert_eq!(database_of(&detail), ReapState::Checkpointed);
    assert_eq!(detail.spec.checkpoint_keep_s, Some(600));
    let view = detail.checkpoint.expect("the detail shows the checkpoint");
    assert!(view.live && view.summary.as_ref() == Some(&base_summary), "{view:?}");

    // Another tenant cannot fork it, nor see it: the same 404 as for a turn that does not exist.
    let bob = stack.client(BOB_KEY);
    let (status, answer) = bob.call("POST", "/v1/turns", Some(&body("print(1)", Some(&base), None, None)));
    assert_eq!(status, 404, "{answer}");
    let (status, _) = bob.call("GET", &format!("/v1/turns/{base}/checkpoint"), None);
    assert_eq!(status, 404);

    // Three forks at once, each changing the checkpoint its own way.
    let forks = [
        ("INSERT INTO items (name) VALUES ('e'), ('f')", Some(600)),
        ("CREATE TABLE extra (x int); ALTER TABLE items ADD COLUMN price int", None),
        ("DROP TABLE notes; DELETE FROM items WHERE name = 'a'", Some(2)),
    ];
    let forked: Vec<(String, Vec<Event>)> = std::thread::scope(|scope| {
        let runs: Vec<_> = forks
            .iter()
            .map(|(sql, keep_s)| {
                let (alice, base) = (&alice, &base);
                scope.spawn(move || run(alice, &body(&code(sql), Some(base), None, *keep_s)))
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let diffs: Vec<SummaryDiff> = forked.iter().map(|(_, events)| summary_of(events).1.expect("a diff")).collect();
    // Each fork saw the checkpoint, not its siblings' writes, and its diff is its own change only.
    let counts: Vec<String> = forked.iter().map(|(_, events)| stdout_of(events)).collect();
    assert_eq!(counts, ["6\n", "4\n", "3\n"]);
    for diff in &diffs {
        assert_eq!(diff.parent_turn_id, base);
    }
    assert!(diffs[0].added.is_empty() && diffs[0].dropped.is_empty() && diffs[0].altered.is_empty());
    assert_eq!(
        diffs[0].rows.iter().map(|r| (r.table.as_str(), r.before, r.after)).collect::<Vec<_>>(),
        [("public.items", 4, 6)]
    );
    assert_eq!(
        (diffs[1].added.as_slice(), diffs[1].altered.as_slice()),
        (&["public.extra".to_owned()][..], &["public.items".to_owned()][..])
    );
    assert!(diffs[1].rows.is_empty() && diffs[1].dropped.is_empty(), "{:?}", diffs[1]);
    assert_eq!(diffs[2].dropped, ["public.notes"]);
    assert_eq!(
        diffs[2].rows.iter().map(|r| (r.table.as_str(), r.before, r.after)).collect::<Vec<_>>(),
        [("public.items", 4, 3)]
    );
    let detail = alice.detail(&forked[0].0);
    assert_eq!(detail.spec.from.as_deref(), Some(base.as_str()), "the lineage is shown");
    // The base is untouched by all three.
    assert_eq!(checkpoint(&alice, &base).summary, Some(base_summary));

    // A fork of a fork: its diff is against its parent, not the base.
    let (grandchild, events) =
        run(&alice, &body(&code("DELETE FROM items WHERE name = 'e'"), Some(&forked[0].0), None, None));
    let (_, diff) = summary_of(&events);
    let diff = diff.expect("a diff");
    assert_eq!(diff.parent_turn_id, forked[0].0);
    assert_eq!(diff.rows.iter().map(|r| (r.before, r.after)).collect::<Vec<_>>(), [(6, 5)]);
    alice.wait_reaped(&grandchild);
    stack.assert_nothing_left(&grandchild);

    // A checkpoint is reaped when its lease runs out, and not before.
    let short = &forked[2].0;
    let until = checkpoint(&alice, short).keep_until_unix_ms;
    let reaped_at = wait_database_reaped(&alice, short, Duration::from_secs(30));
    let now_unix_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let reaped_unix_ms = now_unix_ms - reaped_at.elapsed().as_millis() as u64;
    assert!(reaped_unix_ms + 1000 >= until, "reaped at {reaped_unix_ms}, kept until {until}");
    assert!(!checkpoint(&alice, short).live);
    stack.assert_nothing_left(short);
    let (status, answer) = alice.call("POST", "/v1/turns", Some(&body("print(1)", Some(short), None, None)));
    assert_eq!(status, 409, "a checkpoint that ran out cannot be forked: {answer}");

    // Extended, then released: released means reaped now, and the forks made from it stay.
    let (status, answer) = alice.call("POST", &format!("/v1/turns/{base}/checkpoint"), Some(r#"{"keep_s":1200}"#));
    assert_eq!(status, 200, "{answer}");
    let extended: CheckpointView = serde_json::from_str(&answer).unwrap();
    assert!(extended.keep_until_unix_ms > view.keep_until_unix_ms, "{extended:?} after {view:?}");
    for turn in [&base, &forked[0].0] {
        let (status, answer) = alice.call("DELETE", &format!("/v1/turns/{turn}/checkpoint"), None);
        assert_eq!(status, 202, "{answer}");
        wait_database_reaped(&alice, turn, Duration::from_secs(30));
        stack.assert_nothing_left(turn);
    }
    alice.wait_reaped(&forked[1].0);
    stack.assert_nothing_left(&forked[1].0);
}

/// A tenant keeps at most `MAX_CHECKPOINTS_PER_TENANT` checkpoints: past it a create that asks
/// for one is a `429` with `Retry-After`, while turns without one and other tenants go on; a
/// released checkpoint frees its place.
#[test]
fn a_tenant_keeps_at_most_its_share_of_checkpoints() {
    let stack = InProcessStack::start_with(TestStackOptions::default().var("MAX_CHECKPOINTS_PER_TENANT", "1"));
    let (alice, bob) = (stack.client(ALICE_KEY), stack.client(BOB_KEY));
    let (kept, _) = run(&alice, &body("print(1)", None, None, Some(600)));
    let bearer = format!("Bearer {ALICE_KEY}");
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
    let answer = alice.raw("POST", "/v1/turns", &headers, body("print(2)", None, None, Some(600)).as_bytes());
    assert_eq!(answer.status, 429, "{answer:?}");
    assert!(answer.retry_after().is_some_and(|s| s > 0), "{answer:?}");
    assert!(answer.body.contains("checkpoints"), "{}", answer.body);
    // Without a checkpoint, or another tenant's: not counted.
    run(&alice, &body("print(3)", None, None, None));
    run(&bob, &body("print(4)", None, None, Some(600)));
    let (status, answer) = alice.call("DELETE", &format!("/v1/turns/{kept}/checkpoint"), None);
    assert_eq!(status, 202, "{answer}");
    wait_database_reaped(&alice, &kept, Duration::from_secs(30));
    let (again, _) = run(&alice, &body("print(5)", None, None, Some(600)));
    let (status, answer) = alice.call("DELETE", &format!("/v1/turns/{again}/checkpoint"), None);
    assert_eq!(status, 202, "{answer}");
}
