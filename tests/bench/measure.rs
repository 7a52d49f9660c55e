//! The measurements themselves. Each takes a stack and returns figures; a failed attempt becomes
//! a recorded failure instead of ending the run, so the report shows it.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};
use mayfly_cli::providers::{build, EnvProviders, NativeProviders};
use mayfly_core::providers::{
    database_name, sandbox_metadata, DatabaseProvider, DatabaseRequest, ProcessEvent, ProcessRequest, SandboxProvider,
    SandboxRequest,
};
use mayfly_core::turn::{run_turn, Lease, SinkError, TurnControl, TurnId, TurnOptions, TurnSink};
use mayfly_core::{CreateTurnRequest, Event, EventBody, Language, Limits, Outcome, TurnSpec};
use mayfly_e2e::cpu::CpuTotals;
use mayfly_e2e::leftovers::list_at_providers;
use mayfly_e2e::{ApiClient, InProcessStack, ALICE_KEY};
use sha2::{Digest, Sha256};

use crate::report::{percentile, Concurrency, Figure, Streaming};

pub(crate) const PRINT_1: &str = "print(1)";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A turn id no other run shares.
fn turn_id(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("t_bench_{tag}_{:x}", nanos & 0xffff_ffff_ffff)
}

fn deadline_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + 600
}

/// Runs `f`, turning a panic (the harness's helpers fail by panicking) into an error.
pub(crate) fn attempt<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".to_owned());
            Err(anyhow::anyhow!(text))
        }
    }
}

/// Runs `f` `n` times into a new figure, after `warmup` unrecorded runs.
pub(crate) fn sample(
    section: &'static str,
    name: &str,
    floor: Option<&str>,
    warmup: usize,
    n: usize,
    mut f: impl FnMut() -> anyhow::Result<f64>,
) -> Figure {
    let mut figure = Figure::new(section, name, floor);
    for i in 0..warmup + n {
        match attempt(&mut f) {
            Ok(v) if i >= warmup => figure.push(v),
            Ok(_) => {}
            Err(err) => figure.failures.push(format!("{err:#}")),
        }
    }
    figure
}

pub(crate) fn providers(stack: &InProcessStack) -> anyhow::Result<NativeProviders> {
    build(&EnvProviders::default(), Some(&stack.local().endpoints))
}

// Floors.

pub(crate) fn bwrap_true() -> anyhow::Result<f64> {
    let t = Instant::now();
    let status = mayfly_sandboxd::bwrap_baseline_command().status()?;
    anyhow::ensure!(status.success(), "bare bwrap failed: {status}");
    Ok(ms(t.elapsed()))
}

/// The same bare jail running the turn's own code, `python3 -c 'print(1)'`, to its exit.
pub(crate) fn bwrap_python() -> anyhow::Result<f64> {
    let base = mayfly_sandboxd::bwrap_baseline_command();
    let mut args: Vec<_> = base.get_args().map(|a| a.to_owned()).collect();
    args.pop();
    let t = Instant::now();
    let out = std::process::Command::new(base.get_program()).args(args).args(["python3", "-c", PRINT_1]).output()?;
    anyhow::ensure!(out.status.success() && out.stdout == b"1\n", "bare bwrap python failed: {out:?}");
    Ok(ms(t.elapsed()))
}

/// A connection to the stack's Postgres as its superuser.
pub(crate) fn admin(stack: &InProcessStack) -> anyhow::Result<tokio_postgres::Client> {
    let url = stack.local().postgres_admin_url().to_owned();
    stack.runtime.block_on(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    })
}

/// A bare `CREATE DATABASE` then `DROP DATABASE`: (create ms, create + drop ms).
pub(crate) fn create_drop(
    stack: &InProcessStack,
    client: &tokio_postgres::Client,
    i: usize,
) -> anyhow::Result<(f64, f64)> {
    stack.runtime.block_on(async {
        let t = Instant::now();
        client.batch_execute(&format!("CREATE DATABASE bench_floor_{i}")).await?;
        let created = ms(t.elapsed());
        client.batch_execute(&format!("DROP DATABASE bench_floor_{i} WITH (FORCE)")).await?;
        Ok((created, ms(t.elapsed())))
    })
}

/// `GET /v1/health` on a kept connection, its answer read to the end.
pub(crate) fn http_round_trip(api: &ApiClient) -> anyhow::Result<f64> {
    let t = Instant::now();
    api.try_call("GET", "/v1/health", None)?;
    Ok(ms(t.elapsed()))
}

// Provisioning through core's clients, as a turn does it.

fn sandbox_request(tag: &str) -> SandboxRequest {
    SandboxRequest {
        template: mayfly_core::providers::e2b::templates::MAYFLY_TEMPLATE.to_owned(),
        timeout_s: 120,
        env: Vec::new(),
        metadata: sandbox_metadata(&turn_id(tag), deadline_s()),
    }
}

fn database_request(tag: &str) -> DatabaseRequest {
    let id = turn_id(tag);
    DatabaseRequest { name: database_name(&id, deadline_s()), idempotency_key: id }
}

pub(crate) fn sandbox_create(stack: &InProcessStack, p: &NativeProviders) -> anyhow::Result<f64> {
    stack.runtime.block_on(async {
        let t = Instant::now();
        let sandbox = p.sandboxes.create(sandbox_request("sbx")).await?;
        let elapsed = ms(t.elapsed());
        p.sandboxes.kill(&sandbox.sandbox_id).await?;
        Ok(elapsed)
    })
}

/// Waits until scratchdb's pool holds `pool` ready pairs, so a sample meets the state a turn
/// normally meets rather than one drained by the previous sample.
pub(crate) fn wait_pool(stack: &InProcessStack, client: &tokio_postgres::Client, pool: usize) -> anyhow::Result<()> {
    if pool == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = stack
            .runtime
            .block_on(client.query_one("SELECT count(*) FROM scratchdb.pool WHERE state = 'ready'", &[]))?;
        if row.get::<_, i64>(0) as usize >= pool {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "scratchdb's pool did not refill in 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

pub(crate) fn database_create(stack: &InProcessStack, p: &NativeProviders) -> anyhow::Result<f64> {
    stack.runtime.block_on(async {
        let t = Instant::now();
        let database = p.databases.create(database_request("db")).await?;
        let elapsed = ms(t.elapsed());
        p.databases.delete(&database.token).await?;
        Ok(elapsed)
    })
}

/// Both resources, one after the other or together; the teardown is not timed.
pub(crate) fn pair(stack: &InProcessStack, p: &NativeProviders, parallel: bool) -> anyhow::Result<f64> {
    stack.runtime.block_on(async {
        let t = Instant::now();
        let (sandbox, database) = if parallel {
            futures::join!(p.sandboxes.create(sandbox_request("par")), p.databases.create(database_request("par")))
        } else {
            let sandbox = p.sandboxes.create(sandbox_request("seq")).await;
            (sandbox, p.databases.create(database_request("seq")).await)
        };
        let elapsed = ms(t.elapsed());
        if let Ok(sandbox) = &sandbox {
            p.sandboxes.kill(&sandbox.sandbox_id).await?;
        }
        if let Ok(database) = &database {
            p.databases.delete(&database.token).await?;
        }
        sandbox?;
        database?;
        Ok(elapsed)
    })
}

/// The seed's flow done naively: sandbox, then database, then upload and run, no pool; the time
/// from the start to the first stdout byte. Both are deleted afterwards, untimed.
pub(crate) fn naive_turn(stack: &InProcessStack, p: &NativeProviders) -> anyhow::Result<f64> {
    stack.runtime.block_on(async {
        let t = Instant::now();
        let sandbox = p.sandboxes.create(sandbox_request("naive")).await?;
        let database = p.databases.create(database_request("naive")).await;
        let result = async {
            let database = database.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            p.sandboxes.upload(&sandbox, "/home/user/main.py", PRINT_1.as_bytes().to_vec().into()).await?;
            let env = vec![("DATABASE_URL".to_owned(), database.connection_url.clone())];
            let process = ProcessRequest {
                command: "python3 /home/user/main.py".to_owned(),
                env,
                cwd: "/home/user".to_owned(),
                timeout_ms: 60_000,
            };
            let mut events = p.sandboxes.start(&sandbox, process).await?;
            let mut first = None;
            while let Some(event) = events.next().await {
                if let ProcessEvent::Stdout(_) = event? {
                    first.get_or_insert_with(|| ms(t.elapsed()));
                }
            }
            first.ok_or_else(|| anyhow::anyhow!("no stdout"))
        }
        .await;
        p.sandboxes.kill(&sandbox.sandbox_id).await?;
        if let Ok(database) = &database {
            p.databases.delete(&database.token).await?;
        }
        result
    })
}

// Turns.

/// What one turn looked like from its caller: events with when each arrived.
#[derive(Debug, Default)]
pub(crate) struct TurnRun {
    pub(crate) events: Vec<Event>,
    pub(crate) first_stdout_ms: Option<f64>,
    pub(crate) last_stdout_ms: Option<f64>,
    pub(crate) finished_ms: f64,
    pub(crate) stdout: Vec<u8>,
    /// The turn's id, for a turn through the worker.
    pub(crate) turn_id: String,
    /// For a turn through the worker: when its `201` arrived, and the create's `Server-Timing`.
    pub(crate) created_ms: Option<f64>,
    pub(crate) server_timing: Vec<(String, f64)>,
}

impl TurnRun {
    fn observe(&mut self, event: &Event, since: Instant) {
        if let EventBody::Stdout { data } = &event.body {
            let now = ms(since.elapsed());
            self.first_stdout_ms.get_or_insert(now);
            self.last_stdout_ms = Some(now);
            self.stdout.extend_from_slice(data.as_bytes());
        }
    }

    pub(crate) fn check(&self, expected: &[u8]) -> anyhow::Result<()> {
        let outcome = self.events.iter().find_map(|e| match &e.body {
            EventBody::TurnFinished { outcome, error, .. } => Some((*outcome, error.clone())),
            _ => None,
        });
        match outcome {
            Some((Outcome::Succeeded, _)) => {}
            other => anyhow::bail!("turn did not succeed: {other:?}"),
        }
        anyhow::ensure!(self.stdout == expected, "stdout differs: {} bytes, not {}", self.stdout.len(), expected.len());
        Ok(())
    }

    /// The milliseconds the create's `Server-Timing` gives `step`.
    pub(crate) fn server_step(&self, step: &str) -> Option<f64> {
        self.server_timing.iter().find(|(name, _)| name == step).map(|(_, ms)| *ms)
    }

    /// `at_ms` of the first event of `kind`.
    pub(crate) fn at(&self, kind: &str) -> Option<u64> {
        self.events.iter().find(|e| e.body.kind() == kind).map(|e| e.at_ms)
    }
}

/// The client turns through the worker are made with: one for the whole run, which keeps its
/// connections to the API from one request to the next, as an agent's HTTP client does (and as the
/// direct SDK flow's does). Each event stream is a WebSocket of its own.
pub(crate) fn api(stack: &InProcessStack) -> ApiClient {
    stack.client(ALICE_KEY).keeping_connections()
}

/// Through the worker: POST, then follow the events over the WebSocket to the last.
pub(crate) fn worker_turn(alice: &ApiClient, body: &str) -> anyhow::Result<TurnRun> {
    let t = Instant::now();
    let (turn, server_timing) = alice.try_create_turn_timed(body)?;
    let mut run = TurnRun { created_ms: Some(ms(t.elapsed())), server_timing, ..TurnRun::default() };
    let (events, failure) = alice.read_events(&turn.turn_id, 0, |event| run.observe(event, t));
    if let Some(err) = failure {
        anyhow::bail!("reading the events of {}: {err}", turn.turn_id);
    }
    run.events = events;
    run.finished_ms = ms(t.elapsed());
    run.turn_id = turn.turn_id;
    Ok(run)
}

/// A sink that keeps the events and when each arrived.
struct Recorder {
    since: Instant,
    run: RefCell<TurnRun>,
}

impl TurnSink for Recorder {
    fn emit(&self, event: Event) -> Result<(), SinkError> {
        let mut run = self.run.borrow_mut();
        run.observe(&event, self.since);
        run.events.push(event);
        Ok(())
    }

    fn record_lease(&self, _: Lease) -> LocalBoxFuture<'_, Result<(), SinkError>> {
        async { Ok(()) }.boxed_local()
    }
}

/// `mayfly run`'s path without its terminal: core's `run_turn` over the CLI's providers, no worker.
pub(crate) fn native_turn(stack: &InProcessStack, p: &NativeProviders, code: &str) -> anyhow::Result<TurnRun> {
    let mut request = CreateTurnRequest::new(code.to_owned(), Language::Python);
    request.timeout_s = Some(120);
    let spec = TurnSpec::from_request(request, &Limits::default(), &mayfly_cli::providers::local_templates())?;
    let id = TurnId::new(turn_id("native")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let sink = Recorder { since: Instant::now(), run: RefCell::default() };
    let control = TurnControl::default();
    stack.runtime.block_on(run_turn(
        id,
        spec,
        TurnOptions::default(),
        p,
        &mayfly_cli::clock::SystemClock,
        &sink,
        &control,
    ));
    let mut run = sink.run.into_inner();
    run.finished_ms = ms(sink.since.elapsed());
    Ok(run)
}

/// Polls the turn through the API until it is finished and every resource reaped.
pub(crate) fn wait_reaped(stack: &InProcessStack, turn_id: &str) -> anyhow::Result<()> {
    stack.client(ALICE_KEY).wait_reaped_within(turn_id, Duration::from_secs(60));
    Ok(())
}

/// Sandboxes and scratch databases the providers still list.
pub(crate) fn leftovers(stack: &InProcessStack) -> anyhow::Result<usize> {
    let listed = list_at_providers(&stack.runtime, &stack.local().endpoints)?;
    Ok(listed.sandboxes.len() + listed.databases.len())
}

pub(crate) fn concurrency(stack: &InProcessStack, n: usize) -> Concurrency {
    let body = serde_json::json!({ "code": PRINT_1, "language": "python" }).to_string();
    let alice = api(stack);
    let cpu_before = CpuTotals::now();
    let t = Instant::now();
    let results: Vec<anyhow::Result<TurnRun>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    attempt(|| {
                        let run = worker_turn(&alice, &body)?;
                        run.check(b"1\n")?;
                        Ok(run)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))).collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_before.zip(CpuTotals::now()).map(|(before, after)| after.per_turn_since(&before, n));
    let cpu_ms_per_turn = cpu.as_ref().map(|(total, _)| *total);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let mut first = Vec::new();
    let mut finished = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(run) => {
                first.extend(run.first_stdout_ms);
                finished.push(run.finished_ms);
            }
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    let leaks = attempt(|| {
        // Every turn's reap has run before its last event, so nothing may be listed now.
        std::thread::sleep(Duration::from_millis(200));
        leftovers(stack)
    });
    if let Err(err) = &leaks {
        failures.push(format!("leak check: {err:#}"));
    }
    Concurrency {
        turns: n,
        wall_s: wall,
        throughput_per_s: (n - failures.len().min(n)) as f64 / wall,
        first_byte_p50_ms: percentile(&first, 0.5),
        first_byte_p95_ms: percentile(&first, 0.95),
        finished_p95_ms: percentile(&finished, 0.95),
        failures,
        leaks: leaks.ok(),
        cpu_ms_per_turn,
        cpu_by_program: cpu.map(|(_, split)| split).unwrap_or_default(),
        cpu_bound_s: cpu_ms_per_turn.map(|cpu| cpu * n as f64 / cores / 1000.0),
    }
}

/// How many MiB the streaming turn prints: as much as a turn keeps (`Limits::max_output_bytes`),
/// all of which must arrive; more would be cut off by design (docs/security.md).
pub(crate) fn stream_mib() -> usize {
    Limits::default().max_output_bytes >> 20
}

/// [`stream_mib`] MiB of a fixed pattern, as the streaming turn prints it.
pub(crate) fn pattern() -> Vec<u8> {
    let line: Vec<u8> = (0..63u8).map(|i| b'0' + i % 75).chain(std::iter::once(b'\n')).collect();
    line.repeat(16 * 1024 * stream_mib())
}

pub(crate) fn stream_code() -> String {
    let mib = stream_mib();
    format!(
        "import sys\n\
         line = bytes(48 + i % 75 for i in range(63)) + b'\\n'\n\
         chunk = line * 16384\n\
         for _ in range({mib}):\n    sys.stdout.buffer.write(chunk)\n\
         sys.stdout.flush()\n"
    )
}

pub(crate) fn streaming(path: &'static str, run: anyhow::Result<TurnRun>) -> Streaming {
    let expected = pattern();
    let mb = expected.len() as f64 / 1e6;
    match run {
        Ok(run) => {
            let intact = Sha256::digest(&run.stdout) == Sha256::digest(&expected);
            let (first, last) = (run.first_stdout_ms.unwrap_or(0.0), run.last_stdout_ms.unwrap_or(0.0));
            let error = run.check(&expected).err().map(|e| format!("{e:#}"));
            Streaming {
                path,
                bytes: run.stdout.len(),
                intact,
                stream_mb_per_s: if last > first { mb / ((last - first) / 1e3) } else { 0.0 },
                end_to_end_mb_per_s: if last > 0.0 { mb / (last / 1e3) } else { 0.0 },
                error,
            }
        }
        Err(err) => Streaming {
            path,
            bytes: 0,
            intact: false,
            stream_mb_per_s: 0.0,
            end_to_end_mb_per_s: 0.0,
            error: Some(format!("{err:#}")),
        },
    }
}
