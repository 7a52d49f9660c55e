//! Turns run for real: core's orchestrator with the native HTTP client against sandboxd and
//! scratchdb (bubblewrap jails and a real Postgres), and `mayfly stack` + `mayfly run` as a user
//! runs them.

mod common;
mod recorder;

use std::process::Command;
use std::time::{Duration, Instant};

use mayfly_cli::providers::{self, local_templates, EnvProviders, NativeProviders};
use mayfly_cli::stack::{LocalStack, StackOptions};
use mayfly_core::providers::{DatabaseProvider, SandboxProvider};
use mayfly_core::turn::{run_turn, TurnControl, TurnId, TurnOptions, TurnReport};
use mayfly_core::{CreateTurnRequest, Language, Limits, Outcome, ReapState, TurnSpec};
use recorder::Recorder;

fn spec(code: &str, language: Language) -> TurnSpec {
    TurnSpec::from_request(CreateTurnRequest::new(code, language), &Limits::default(), &local_templates()).unwrap()
}

async fn turn(providers: &NativeProviders, spec: TurnSpec, name: &str) -> (TurnReport, Recorder) {
    let recorder = Recorder::default();
    let report = run_turn(
        TurnId::new(format!("t_{name}")).unwrap(),
        spec,
        TurnOptions::default(),
        providers,
        &mayfly_cli::clock::SystemClock,
        &recorder,
        &TurnControl::default(),
    )
    .await;
    (report, recorder)
}

async fn scratch_databases(admin_url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres','template0','template1')", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

async fn assert_nothing_left(stack: &LocalStack, providers: &NativeProviders) {
    assert_eq!(providers.sandboxes.list_tagged().await.unwrap(), vec![], "a sandbox outlived its turn");
    assert!(providers.databases.list().await.unwrap().is_empty(), "a database outlived its turn");
    let left = scratch_databases(stack.postgres_admin_url()).await;
    assert!(left.iter().all(|name| !name.starts_with("db_")), "scratch databases left in pg_database: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_turn_prints_the_count_and_reaps_both_resources() {
    let stack = LocalStack::start(StackOptions::default()).await.unwrap();
    let providers = providers::build(&EnvProviders::default(), Some(&stack.endpoints)).unwrap();
    let code = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed_turn.py")).unwrap();
    let (report, events) = turn(&providers, spec(&code, Language::Python), "seed").await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}\n{}", events.json());
    assert_eq!(events.stdout(), "(1000000,)\n");
    assert_eq!(report.sandbox.as_ref().map(|r| r.state), Some(ReapState::Reaped));
    assert_eq!(report.database.as_ref().map(|r| r.state), Some(ReapState::Reaped));
    // The connection URL (and its password) went into the sandbox's environment only.
    for url_scheme in ["postgres://", "postgresql://"] {
        assert!(!events.json().contains(url_scheme), "an event carries a connection URL: {}", events.json());
    }
    assert_nothing_left(&stack, &providers).await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_are_hermetic_files_tables_and_databases() {
    let stack = LocalStack::start(StackOptions::default()).await.unwrap();
    let providers = providers::build(&EnvProviders::default(), Some(&stack.endpoints)).unwrap();

    let first = r#"
import os, psycopg
open("/home/user/left-behind.txt", "w").write("turn 1")
open("/tmp/left-behind.txt", "w").write("turn 1")
with psycopg.connect(os.environ["PG_URL"]) as conn:
    conn.execute("CREATE TABLE left_behind (x int)")
    print(conn.execute("SELECT current_database()").fetchone()[0])
"#;
    let (report, events) = turn(&providers, spec(first, Language::Python), "first").await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", events.json());
    let first_db = events.stdout().trim().to_owned();
    assert!(first_db.starts_with("db_"), "{first_db}");

    // Turn 2 looks for turn 1's files and table, and tries turn 1's database with its own role.
    let second = format!(
        r#"
import os, psycopg
print("home file:", os.path.exists("/home/user/left-behind.txt"))
print("tmp file:", os.path.exists("/tmp/left-behind.txt"))
with psycopg.connect(os.environ["PG_URL"]) as conn:
    print("table:", conn.execute("SELECT to_regclass('left_behind') IS NOT NULL").fetchone()[0])
url = os.environ["PG_URL"].rsplit("/", 1)[0] + "/{first_db}"
try:
    psycopg.connect(url, connect_timeout=5).close()
    print("other database: opened")
except Exception:
    print("other database: refused")
"#
    );
    let (report, events) = turn(&providers, spec(&second, Language::Python), "second").await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", events.json());
    assert_eq!(events.stdout(), "home file: False\ntmp file: False\ntable: False\nother database: refused\n");
    assert_nothing_left(&stack, &providers).await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_turn_and_a_turn_past_its_deadline_still_reap() {
    let stack = LocalStack::start(StackOptions::default()).await.unwrap();
    let providers = providers::build(&EnvProviders::default(), Some(&stack.endpoints)).unwrap();

    let (report, events) = turn(&providers, spec("echo oops >&2; exit 3", Language::Bash), "fails").await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", events.json());
    assert_eq!(report.exit_code, Some(3));
    assert!(events.json().contains(r#""type":"stderr","data":"oops\n""#), "{}", events.json());

    let mut slow = CreateTurnRequest::new("echo started; sleep 30", Language::Bash);
    slow.timeout_s = Some(2);
    slow.database = mayfly_core::DatabaseField::Enabled(false);
    let started = Instant::now();
    let (report, events) =
        turn(&providers, TurnSpec::from_request(slow, &Limits::default(), &local_templates()).unwrap(), "slow").await;
    assert_eq!(report.outcome, Outcome::TimedOut, "{}", events.json());
    assert!(started.elapsed() < Duration::from_secs(20), "the deadline did not stop the code");
    assert_eq!(events.stdout(), "started\n");
    assert_eq!(report.sandbox.as_ref().map(|r| r.state), Some(ReapState::Reaped));
    assert_nothing_left(&stack, &providers).await;
    stack.shutdown().await;
}

/// A turn that fills its database past the storage limit has it stopped by scratchdb, fails, and is
/// told why: the provider's own account of the database, asked before the reap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_whose_database_went_past_its_storage_limit_is_told_why() {
    let options = StackOptions {
        database_storage_mb: Some(16),
        storage_check_interval: Some(Duration::from_millis(200)),
        ..StackOptions::default()
    };
    let stack = LocalStack::start(options).await.unwrap();
    let providers = providers::build(&EnvProviders::default(), Some(&stack.endpoints)).unwrap();
    // 1 MiB at a time until the database is stopped under it (at most 200 MiB).
    let code = r#"
import os, psycopg, sys
try:
    with psycopg.connect(os.environ["PG_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE filler (x text)")
        for _ in range(200):
            conn.execute("INSERT INTO filler SELECT repeat('x', 1024) FROM generate_series(1, 1024)")
    print("never stopped")
except psycopg.Error as error:
    print("stopped:", error, file=sys.stderr)
    sys.exit(1)
"#;
    let (report, events) = turn(&providers, spec(code, Language::Python), "full").await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", events.json());
    assert_eq!(events.stdout(), "", "the database was never stopped: {}", events.json());
    assert_eq!(
        report.error.as_deref(),
        Some(
            "the code exited with status 1; the provider stopped its database: it went past its storage limit of 16 MB"
        ),
        "{}",
        events.json()
    );
    assert_eq!(
        report.database.as_ref().map(|r| r.state),
        Some(ReapState::Reaped),
        "a stopped database is still reaped"
    );
    assert_nothing_left(&stack, &providers).await;
    stack.shutdown().await;
}

/// `mayfly stack` in one terminal, `mayfly run` in another, as the README says.
#[test]
fn mayfly_stack_then_mayfly_run_as_a_user_would() {
    let state = tempfile::tempdir().unwrap();
    let stack = common::start_stack(state.path());
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed_turn.py");
    let (success, stdout, stderr) = common::mayfly(state.path(), &["run", seed]);
    assert!(success, "mayfly run failed\n{stdout}\n{stderr}");
    assert_eq!(stdout, "(1000000,)\n");
    assert!(!stderr.contains("starting the local stack"), "run did not use the running stack:\n{stderr}");
    for step in ["sandbox ready", "database ready", "process exited with 0", "sandbox reaped", "database reaped"] {
        assert!(stderr.contains(step), "missing step {step:?}:\n{stderr}");
    }
    assert!(stderr.contains("sandbox reaped, database reaped"), "{stderr}");

    // SIGTERM stops everything: the endpoints file goes, and so does every postgres of this stack.
    common::stop_stack(stack, state.path());
}

/// A run that dies between "created" and "reaped" leaves tagged resources; one sweep finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_reaps_what_a_crashed_turn_left_behind() {
    use mayfly_core::providers::Clock;
    use mayfly_core::providers::{database_name, sandbox_metadata, DatabaseRequest, SandboxRequest};

    let stack = LocalStack::start(StackOptions::default()).await.unwrap();
    let providers = providers::build(&EnvProviders::default(), Some(&stack.endpoints)).unwrap();
    let now_ms = mayfly_cli::clock::SystemClock.now_ms();
    let past_deadline_s = now_ms / 1000 - 600;
    let future_deadline_s = now_ms / 1000 + 600;

    let mut made = Vec::new();
    for (turn, deadline) in [("t_crashed", past_deadline_s), ("t_running", future_deadline_s)] {
        let request = SandboxRequest {
            template: "base".into(),
            timeout_s: 300,
            env: vec![],
            metadata: sandbox_metadata(turn, deadline),
        };
        let sandbox = providers.sandboxes.create(request).await.unwrap();
        let name = database_name(turn, deadline);
        let database = providers
            .databases
            .create(DatabaseRequest { name: name.clone(), idempotency_key: format!("{turn}-db") })
            .await
            .unwrap();
        made.push((sandbox.sandbox_id, database.token));
    }

    let report = mayfly_core::providers::sweep::sweep(&providers, now_ms, 60_000).await;
    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!((report.sandboxes_seen, report.sandboxes_reaped), (2, 1), "{report:?}");
    assert_eq!((report.databases_seen, report.databases_reaped), (2, 1), "{report:?}");

    let sandboxes: Vec<String> =
        providers.sandboxes.list_tagged().await.unwrap().into_iter().map(|s| s.sandbox_id).collect();
    assert_eq!(sandboxes, vec![made[1].0.clone()], "only the running turn's sandbox is left");
    let databases = providers.databases.list().await.unwrap();
    assert_eq!(databases.len(), 1, "only the running turn's database is left: {databases:?}");

    let again = mayfly_core::providers::sweep::sweep(&providers, now_ms, 60_000).await;
    assert_eq!((again.sandboxes_reaped, again.databases_reaped), (0, 0), "a second sweep reaps nothing new");
    stack.shutdown().await;
}

/// On a fresh machine there is no stack running: `mayfly run` starts one for the turn and stops it.
#[test]
fn mayfly_run_without_a_stack_starts_one_for_the_turn() {
    let state = tempfile::tempdir().unwrap();
    let code = state.path().join("hello.sh");
    std::fs::write(&code, "echo \"hello from $(hostname)\"; test -n \"$PG_URL\" && echo has-db\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_mayfly"))
        .arg("run")
        .arg(&code)
        .env("MAYFLY_STATE_DIR", state.path())
        .env_remove("E2B_API_KEY")
        .env_remove("INSTANODE_URL")
        .env_remove("INSTANODE_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("starting the local stack for this turn"), "{stderr}");
    assert!(stdout.starts_with("hello from ") && stdout.ends_with("has-db\n"), "{stdout}");
    assert!(stderr.contains("sandbox reaped, database reaped"), "{stderr}");

    let failing = state.path().join("fail.py");
    std::fs::write(&failing, "import sys\nprint('bye', file=sys.stderr)\nsys.exit(4)\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_mayfly"))
        .args(["run", "--no-db"])
        .arg(&failing)
        .env("MAYFLY_STATE_DIR", state.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "mayfly run exits with the code's status\n{stderr}");
    assert!(stderr.contains("bye\n") && stderr.contains("turn finished: failed"), "{stderr}");
}
