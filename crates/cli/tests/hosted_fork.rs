//! Checkpoints and forks against a scratchdb that answers as hosted instanode does
//! (`--like-hosted`): no freeze and no fork route. The checkpoint is frozen by rotating its
//! credentials, and a fork is a fresh database into which the turn copies the checkpoint from
//! inside its own sandbox (`pg_dump | psql`) before its code runs (`docs/checkpoints.md`).

use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_templates, NativeProviders};
use mayfly_cli::run::fork_source;
use mayfly_cli::stack::{LocalStack, StackOptions};
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::{InstanodeClient, InstanodeConfig};
use mayfly_core::providers::{DatabaseProvider, DatabaseRequest, Providers};
use mayfly_core::turn::{run_turn, TurnControl, TurnId, TurnOptions, TurnReport};
use mayfly_core::wire::api::{CheckpointRequest, DatabaseField, DatabaseOptions};
use mayfly_core::{CreateTurnRequest, Language, Limits, Outcome, ReapState, TurnSpec};
use mayfly_scratchdb::LikeHosted;
use recorder::Recorder as Events;

mod recorder;

fn providers(stack: &LocalStack) -> NativeProviders {
    let instanode = InstanodeConfig {
        base_url: stack.endpoints.scratchdb_url.clone(),
        token: Some(stack.endpoints.scratchdb_token.clone()),
    };
    Providers {
        sandboxes: E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(&stack.endpoints)),
        databases: InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, instanode),
    }
}

async fn turn(
    providers: &NativeProviders,
    id: &str,
    code: &str,
    database: DatabaseOptions,
    checkpoint: bool,
) -> (TurnReport, Events) {
    let mut request = CreateTurnRequest::new(code, Language::Python);
    request.database = DatabaseField::With(database.clone());
    request.checkpoint = checkpoint.then_some(CheckpointRequest { keep_s: Some(600) });
    let spec = TurnSpec::from_request(request, &Limits::default(), &local_templates()).unwrap();
    let fork = match &database.from {
        Some(parent) => Some(fork_source(providers, &TurnId::new(parent.clone()).unwrap()).await.unwrap()),
        None => None,
    };
    let options = TurnOptions { fork, ..TurnOptions::default() };
    let events = Events::default();
    let id = TurnId::new(id.to_owned()).unwrap();
    let report = run_turn(id, spec, options, providers, &SystemClock, &events, &TurnControl::default()).await;
    (report, events)
}

const ROWS: &str = "import os, psycopg\n\
    c = psycopg.connect(os.environ['DATABASE_URL'], autocommit=True)\n\
    print(sorted(r[0] for r in c.execute('SELECT name FROM items')))\n";

fn fork_of(parent: &str) -> DatabaseOptions {
    DatabaseOptions { from: Some(parent.to_owned()), seed_sql: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_without_a_fork_route_copies_the_checkpoint_inside_its_sandbox_and_the_checkpoint_stays_frozen() {
    let options = StackOptions { like_hosted: Some(LikeHosted::default()), ..StackOptions::default() };
    let stack = LocalStack::start(options).await.expect("the local stack starts");
    let providers = providers(&stack);

    // The base: a schema with a sequence, a view and fixtures, seeded, then checkpointed.
    let seed = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE);\n\
                CREATE VIEW names AS SELECT name FROM items;\n\
                INSERT INTO items (name) VALUES ('alpha'), ('beta');";
    let base = DatabaseOptions { from: None, seed_sql: Some(seed.to_owned()) };
    let code = format!("{ROWS}print(os.environ['DATABASE_URL'])\n");
    let (report, events) = turn(&providers, "t_base", &code, base, true).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", events.json());
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Checkpointed));
    let stdout = events.stdout();
    let (rows, base_url) = stdout.trim().split_once('\n').unwrap();
    assert_eq!(rows, "['alpha', 'beta']");
    // Frozen by a rotate: the URL the base turn's code had no longer logs in.
    assert!(tokio_postgres::connect(base_url, tokio_postgres::NoTls).await.is_err(), "the old URL still works");

    // A fork: copied, then changed; its serial goes on from the checkpoint's.
    let code = "import os, psycopg\n\
        c = psycopg.connect(os.environ['DATABASE_URL'], autocommit=True)\n\
        c.execute(\"INSERT INTO items (name) VALUES ('gamma')\")\n\
        print(c.execute('SELECT max(id) FROM items').fetchone()[0], sorted(r[0] for r in c.execute('SELECT name FROM names')))\n";
    let (report, events) = turn(&providers, "t_fork", code, fork_of("t_base"), false).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", events.json());
    assert_eq!(events.stdout(), "3 ['alpha', 'beta', 'gamma']\n");
    let kinds = events.kinds();
    let at = |kind| kinds.iter().position(|k| *k == kind).unwrap_or_else(|| panic!("{kind} in {kinds:?}"));
    assert!(at("database.copying") < at("database.copied") && at("database.copied") < at("process.started"));
    assert!(report.timings.copy_ms.is_some());
    // No credential of the checkpoint in anything the turn said.
    let text = events.json();
    let checkpoint = fork_source(&providers, &TurnId::new("t_base".to_owned()).unwrap()).await.unwrap();
    let checkpoint_url = providers.databases.connection_url(&checkpoint.token).await.unwrap();
    let password = checkpoint_url.split_once("://").unwrap().1.split_once('@').unwrap().0.split_once(':').unwrap().1;
    assert!(!text.contains(password), "{text}");

    // A second fork sees the checkpoint as it was, not the first fork's write.
    let (report, events) = turn(&providers, "t_fork2", ROWS, fork_of("t_base"), false).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", events.json());
    assert_eq!(events.stdout(), "['alpha', 'beta']\n");

    // A checkpoint gone between the fork's lookup and its copy: the turn fails before its code,
    // says why, and leaves no database of its own behind.
    let gone = fork_source(&providers, &TurnId::new("t_base".to_owned()).unwrap()).await.unwrap();
    assert!(providers.databases.delete(&gone.token).await.unwrap());
    let mut request = CreateTurnRequest::new(ROWS, Language::Python);
    request.database = DatabaseField::With(fork_of("t_base"));
    let spec = TurnSpec::from_request(request, &Limits::default(), &local_templates()).unwrap();
    let options = TurnOptions { fork: Some(gone), ..TurnOptions::default() };
    let events = Events::default();
    let id = TurnId::new("t_gone".to_owned()).unwrap();
    let report = run_turn(id, spec, options, &providers, &SystemClock, &events, &TurnControl::default()).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap_or_default();
    assert!(error.starts_with("turn t_base's checkpoint could not be copied into the database: "), "{error}");
    assert!(!events.kinds().contains(&"process.started"), "{}", events.json());
    assert_eq!(report.database.as_ref().map(|d| d.state), Some(ReapState::Reaped));
    assert!(providers.databases.list().await.unwrap().is_empty());
    stack.shutdown().await;
}

/// Runs the copy helper on the host against the stack's Postgres, with `pg_dump` replaced by a
/// script that prints `dump` and exits with `status`: its exit status and stderr.
fn copy_with_fake_dump(target_url: &str, dump: &str, status: i32) -> (bool, String) {
    let bin = tempfile::tempdir().unwrap();
    let script = format!(
        "#!/bin/sh\ncat <<'SQL'\n{dump}SQL\necho 'pg_dump: error: connection to server lost' >&2\nexit {status}\n"
    );
    let fake = bin.path().join("pg_dump");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helper = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/src/turn/db_helper.py");
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-I", helper, "copy"])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.path().display()))
        .env("PG_URL", target_url)
        .env("MAYFLY_SOURCE_URL", "postgres://usr_src:s3cret@127.0.0.1:1/db_src")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_is_all_of_the_checkpoint_or_nothing_and_says_what_broke() {
    let stack = LocalStack::start(StackOptions::default()).await.expect("the local stack starts");
    let providers = providers(&stack);
    let request = DatabaseRequest { name: "copy-target".to_owned(), idempotency_key: "copy-target".to_owned() };
    let target = providers.databases.create(request).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&target.connection_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let tables = || async {
        let rows =
            client.query("SELECT relname::text FROM pg_class WHERE relname IN ('cut', 'bad')", &[]).await.unwrap();
        rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>()
    };

    // A dump that breaks off in the middle of a table's rows: psql takes the end of its input as
    // the end of the COPY and would commit the rows that came.
    let dump = "CREATE TABLE cut (x int);\nCOPY cut (x) FROM stdin;\n1\n2\n";
    let (copied, said) = copy_with_fake_dump(&target.connection_url, dump, 1);
    assert!(!copied);
    assert_eq!(said, "pg_dump failed: pg_dump: error: connection to server lost");
    assert_eq!(tables().await, Vec::<String>::new(), "a cut dump was committed");

    // A restore that fails says the error, not psql's `LINE n:` and caret after it.
    let dump = "CREATE TABLE bad (x int);\nSELECT no_such_function(1);\n";
    let (copied, said) = copy_with_fake_dump(&target.connection_url, dump, 0);
    assert!(!copied);
    assert!(said.starts_with("the restore failed: ") && said.contains("ERROR:  function no_such_function"), "{said}");
    assert_eq!(tables().await, Vec::<String>::new(), "half a restore was committed");
    providers.databases.delete(&target.token).await.unwrap();
    stack.shutdown().await;
}
