//! Forks (`docs/checkpoints.md`): a copy of a checkpoint through scratchdb's fork extension,
//! against a cold create and against the floor of a bare `CREATE DATABASE … TEMPLATE` of the same
//! database; and a turn through the worker forked from a checkpoint, against a cold one.

use std::time::Instant;

use mayfly_cli::providers::NativeProviders;
use mayfly_core::providers::{database_name, Database, DatabaseProvider, DatabaseRequest};
use mayfly_e2e::InProcessStack;

use crate::measure::{self, attempt, TurnRun, PRINT_1};
use crate::report::{Figure, Report};
use crate::{N, TURNS};

pub(crate) const FORKS: &str = "Forks of a checkpoint";
pub(crate) const FORK: &str = "fork of a checkpoint (scratchdb's fork extension)";
pub(crate) const FORK_FLOOR: &str = "floor: bare CREATE DATABASE … TEMPLATE of the same database";
pub(crate) const TURN_WORKER_FORK: &str = "turn via the worker, forked from a checkpoint (no pool)";
/// Rows of 100 bytes in the checkpoint: about 16 MB on disk with the new database's own 7.5 MB.
const ROWS: u32 = 80_000;

/// A request of its own: a name and an `Idempotency-Key` no other request of the run has (one that
/// had would be answered with the earlier database, not timed making a new one).
fn request(tag: &str) -> DatabaseRequest {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("t_bench_{tag}_{:x}_{n}", now.as_millis());
    DatabaseRequest { name: database_name(&id, now.as_secs() + 600), idempotency_key: id }
}

/// A checkpoint as a turn leaves one: a database with rows in it, frozen.
fn checkpoint(stack: &InProcessStack, p: &NativeProviders) -> anyhow::Result<(Database, u64)> {
    stack.runtime.block_on(async {
        let source = p.databases.create(request("src")).await?;
        let (client, connection) = tokio_postgres::connect(&source.connection_url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "CREATE TABLE items AS SELECT g AS id, repeat('x', 96) AS body FROM generate_series(1, {ROWS}) g"
            ))
            .await?;
        let bytes: i64 = client.query_one("SELECT pg_database_size(current_database())", &[]).await?.get(0);
        drop(client);
        let _ = connection.await;
        p.databases.freeze(&source.token).await?;
        Ok((source, u64::try_from(bytes).unwrap_or_default()))
    })
}

/// The fork figures, in the stack without a pool (so the cold create it is compared with is
/// the same stack's).
pub(crate) fn forks(stack: &InProcessStack, p: &NativeProviders, admin: &tokio_postgres::Client, report: &mut Report) {
    let mut fork = Figure::new(FORKS, FORK, Some(FORK_FLOOR));
    let mut floor = Figure::new(FORKS, FORK_FLOOR, None);
    let (source, bytes) = match attempt(|| checkpoint(stack, p)) {
        Ok(made) => made,
        Err(err) => {
            fork.failures.push(format!("the checkpoint could not be made: {err:#}"));
            report.figures.extend([fork, floor]);
            return;
        }
    };
    for i in 0..N + 2 {
        let forked = attempt(|| {
            stack.runtime.block_on(async {
                let t = Instant::now();
                let copy = p.databases.fork(&source.token, request("fork")).await?;
                let elapsed = t.elapsed().as_secs_f64() * 1e3;
                p.databases.delete(&copy.token).await?;
                Ok(elapsed)
            })
        });
        let bare = attempt(|| {
            stack.runtime.block_on(async {
                let t = Instant::now();
                admin.batch_execute(&format!("CREATE DATABASE bench_tpl_{i} TEMPLATE \"{}\"", source.database)).await?;
                let elapsed = t.elapsed().as_secs_f64() * 1e3;
                admin.batch_execute(&format!("DROP DATABASE bench_tpl_{i}")).await?;
                Ok(elapsed)
            })
        });
        for (figure, result) in [(&mut fork, forked), (&mut floor, bare)] {
            match result {
                Ok(ms) if i >= 2 => figure.push(ms),
                Ok(_) => {}
                Err(err) => figure.failures.push(format!("{err:#}")),
            }
        }
    }
    let _ = stack.runtime.block_on(p.databases.delete(&source.token));
    report.notes.push(format!(
        "Forks copy a checkpoint of {:.1} MB ({ROWS} rows of about 100 bytes, and the empty database's own \
         files); a cold create makes an empty database.",
        bytes as f64 / 1e6
    ));
    report.figures.extend([fork, floor]);
}

/// `N` turns of `print(1)` through the worker, each forked from one checkpoint that a seeded turn
/// made; the checkpoint is released afterwards.
pub(crate) fn fork_turns(alice: &mayfly_e2e::ApiClient, report: &mut Report) -> Vec<TurnRun> {
    let mut figure = Figure::new(TURNS, TURN_WORKER_FORK, Some(crate::FLOOR_TURN));
    let seed = format!("CREATE TABLE items AS SELECT g AS id FROM generate_series(1, {ROWS}) g");
    let base = serde_json::json!({
        "code": PRINT_1, "database": { "seed_sql": seed }, "checkpoint": { "keep_s": 600 },
    });
    let base = match attempt(|| measure::worker_turn(alice, &base.to_string())) {
        Ok(run) => run.turn_id,
        Err(err) => {
            figure.failures.push(format!("the checkpoint's turn failed: {err:#}"));
            report.figures.push(figure);
            return Vec::new();
        }
    };
    let body = serde_json::json!({ "code": PRINT_1, "database": { "from": base } }).to_string();
    let mut runs = Vec::new();
    for _ in 0..N {
        match attempt(|| {
            let run = measure::worker_turn(alice, &body)?;
            run.check(b"1\n")?;
            Ok(run)
        }) {
            Ok(run) => {
                if let Some(ms) = run.first_stdout_ms {
                    figure.push(ms);
                }
                runs.push(run);
            }
            Err(err) => figure.failures.push(format!("{err:#}")),
        }
    }
    let _ = alice.try_call("DELETE", &format!("/v1/turns/{base}/checkpoint"), None);
    report.figures.push(figure);
    runs
}
