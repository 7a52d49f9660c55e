//! `cargo xtask bench`: mayfly's performance report. Boots the local stack twice (scratchdb without a
//! pool, then with a warm pool), measures the floors, provisioning, turns through the worker and
//! through `mayfly run`'s path, reaping, concurrency, streaming and the wasm sizes, and writes
//! `report.json`, `report.md` and PNG charts to the directory given as the first argument.
//!
//! A report, not a test: a missed budget is reported, not failed. The run fails only when a section
//! could not be measured at all, and then still writes what it has.

mod budgets;
mod charts;
mod direct;
mod forks;
mod measure;
mod report;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use mayfly_e2e::{InProcessStack, TestStackOptions, Tools};

use measure::{attempt, sample, TurnRun, PRINT_1};
use report::{Figure, Machine, Report, Size};

const FLOORS: &str = "Floors";
const PROVISIONING: &str = "Provisioning";
const TURNS: &str = "Turn overhead (POST → first stdout byte)";
const PHASES: &str = "Phases, from the turn's own timeline events";
const REAP: &str = "Reap";
const NAIVE: &str = "Baselines: the seed's flow without mayfly";

const FLOOR_BWRAP: &str = "floor: bare bwrap `true`";
const FLOOR_PYTHON: &str = "floor: bare bwrap `python3 -c print(1)`";
const FLOOR_CREATE: &str = "floor: bare CREATE DATABASE";
const FLOOR_CREATE_DROP: &str = "floor: bare CREATE + DROP DATABASE";
const FLOOR_HTTP: &str = "floor: HTTP round trip to wrangler dev";
/// The machine's CPU time of one run of a floor, not its wall time.
const CPU_FLOOR_PYTHON: &str = "CPU of the floor: bare bwrap `python3 -c print(1)`, machine CPU a run";
const CPU_FLOOR_CREATE_DROP: &str = "CPU of the floor: bare CREATE + DROP DATABASE, machine CPU a run";
const FLOOR_TURN: &str = "floor: a turn (HTTP + max(bwrap python, CREATE DATABASE))";
const FLOOR_NATIVE: &str = "floor: a native turn (max(bwrap python, CREATE DATABASE))";
const DB_WARM: &str = "database create, warm pool of 8 (scratchdb)";
const DB_COLD: &str = "database create, cold: no pool (scratchdb)";
const TURN_WORKER_COLD: &str = "turn via the worker, cold (no pool)";
const TURN_WORKER_WARM: &str = "turn via the worker, warm pool";
const TURN_NATIVE_COLD: &str = "turn via `mayfly run`'s path, cold (no pool)";
const TURN_NATIVE_WARM: &str = "turn via `mayfly run`'s path, warm pool";
const NAIVE_TURN: &str = "naive: sandbox, then database, then run; no pool";
/// The phase of a turn its own timeline does not see: for a turn through the worker, the worker's
/// own share (the request before the turn is accepted, and the delivery of its first output).
const OUTSIDE: &str = "outside the timeline (caller's first byte − accepted → stdout)";
const DIRECT_COLD: &str = "direct: the official e2b SDK and httpx, no pool";
const DIRECT_WARM: &str = "direct: the official e2b SDK and httpx, warm pool";

/// Samples a figure: enough for a stable p95 (the 19th of 20), little enough for a few minutes.
const N: usize = 20;
const N_FLOOR: usize = 30;
const POOL: usize = 8;

fn main() {
    let started = Instant::now();
    let out = std::env::args_os()
        .nth(1)
        .filter(|a| a != "--bench")
        .map_or_else(|| Tools::of_workspace().root.join("target/bench"), PathBuf::from);
    let mut report = Report {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        machine: machine(),
        wall_s: 0.0,
        figures: Vec::new(),
        concurrency: Vec::new(),
        streaming: Vec::new(),
        sizes: Vec::new(),
        budgets: Vec::new(),
        headline: Vec::new(),
        notes: Vec::new(),
        errors: Vec::new(),
    };
    // The panics of the harness's helpers are caught and reported; their default message would
    // only repeat them.
    std::panic::set_hook(Box::new(|_| {}));

    step("floors: bare bubblewrap");
    report.figures.push(sample(FLOORS, FLOOR_BWRAP, None, 3, N_FLOOR, measure::bwrap_true));
    let busy = mayfly_e2e::procfs::machine_busy_ms();
    report.figures.push(sample(FLOORS, FLOOR_PYTHON, None, 3, N_FLOOR, measure::bwrap_python));
    report.figures.push(cpu_floor(CPU_FLOOR_PYTHON, busy, N_FLOOR + 3));

    step("starting the stack without a database pool");
    match attempt(|| Ok(InProcessStack::start_with(TestStackOptions::default().pool(0)))) {
        Ok(stack) => {
            if let Err(err) = cold(&stack, &mut report) {
                report.errors.push(format!("cold stack: {err:#}"));
            }
        }
        Err(err) => report.errors.push(format!("the stack without a pool did not start: {err:#}")),
    }
    step(&format!("starting the stack with a pool of {POOL}"));
    // 32 turns at once from one tenant: its cap of running turns must not be what is measured.
    let options = TestStackOptions::default().pool(POOL).var("MAX_TURNS_PER_TENANT", "64");
    match attempt(|| Ok(InProcessStack::start_with(options))) {
        Ok(stack) => {
            if let Err(err) = warm(&stack, &mut report) {
                report.errors.push(format!("warm stack: {err:#}"));
            }
        }
        Err(err) => report.errors.push(format!("the stack with a pool did not start: {err:#}")),
    }
    report.figures.sort_by_key(|f| section_order(f.section));
    match sizes() {
        Ok(sizes) => report.sizes = sizes,
        Err(err) => report.errors.push(format!("sizes: {err:#}")),
    }
    budgets::budgets(&mut report);
    budgets::notes(&mut report);
    report.wall_s = started.elapsed().as_secs_f64();
    if let Err(err) = write(&report, &out) {
        report.errors.push(format!("writing the report: {err:#}"));
    }
    println!("\n{}", report::summary(&report));
    for line in &report.headline {
        println!("{line}");
    }
    println!("report: {}  ({:.0} s)", out.join("report.md").display(), report.wall_s);
    if !report.errors.is_empty() {
        std::process::exit(1);
    }
}

/// The machine's CPU time per run since `busy_before` (all cores, whatever ran): what one run of a
/// floor costs the machine, which bounds how many of them its cores can do at once.
fn cpu_floor(name: &str, busy_before: Option<f64>, runs: usize) -> Figure {
    let mut figure = Figure::new(FLOORS, name, None);
    match busy_before.zip(mayfly_e2e::procfs::machine_busy_ms()) {
        Some((before, after)) => figure.push((after - before) / runs as f64),
        None => figure.failures.push("/proc/stat could not be read".to_owned()),
    }
    figure
}

fn step(what: &str) {
    eprintln!("bench: {what}");
    let _ = std::io::stderr().flush();
}

fn section_order(section: &str) -> usize {
    [FLOORS, PROVISIONING, forks::FORKS, TURNS, PHASES, REAP, NAIVE]
        .iter()
        .position(|s| *s == section)
        .unwrap_or(usize::MAX)
}

/// The stack whose scratchdb keeps no pool: floors that need the stack, cold provisioning, cold
/// turns, streaming and the naive baseline.
fn cold(stack: &InProcessStack, report: &mut Report) -> anyhow::Result<()> {
    let providers = measure::providers(stack)?;
    let admin = measure::admin(stack)?;
    step("floors: CREATE DATABASE, HTTP");
    let (mut create, mut create_drop) =
        (Figure::new(FLOORS, FLOOR_CREATE, None), Figure::new(FLOORS, FLOOR_CREATE_DROP, None));
    let busy = mayfly_e2e::procfs::machine_busy_ms();
    for i in 0..N_FLOOR + 3 {
        match attempt(|| measure::create_drop(stack, &admin, i)) {
            Ok((c, cd)) if i >= 3 => {
                create.push(c);
                create_drop.push(cd);
            }
            Ok(_) => {}
            Err(err) => create.failures.push(format!("{err:#}")),
        }
    }
    report.figures.extend([create, create_drop, cpu_floor(CPU_FLOOR_CREATE_DROP, busy, N_FLOOR + 3)]);
    let api = stack.anonymous().keeping_connections();
    report.figures.push(sample(FLOORS, FLOOR_HTTP, None, 3, N_FLOOR, || measure::http_round_trip(&api)));
    report.figures.push(composite(FLOOR_TURN, report, true));
    report.figures.push(composite(FLOOR_NATIVE, report, false));

    step("provisioning without a pool");
    let p = &providers;
    report.figures.push(sample(
        PROVISIONING,
        "sandbox create (sandboxd; it keeps no pool)",
        Some(FLOOR_BWRAP),
        2,
        N,
        || measure::sandbox_create(stack, p),
    ));
    report.figures.push(sample(PROVISIONING, DB_COLD, Some(FLOOR_CREATE), 2, N, || measure::database_create(stack, p)));
    pairs(stack, p, &admin, 0, report);

    step("turns without a pool");
    let body = serde_json::json!({ "code": PRINT_1, "language": "python" }).to_string();
    let alice = measure::api(stack);
    let worker = turns(TURN_WORKER_COLD, FLOOR_TURN, report, || measure::worker_turn(&alice, &body));
    phases("worker, cold", &worker, report);
    reaps("worker, cold", stack, &worker, report);
    let native = turns(TURN_NATIVE_COLD, FLOOR_NATIVE, report, || measure::native_turn(stack, p, PRINT_1));
    phases("native, cold", &native, report);

    step("forks of a checkpoint");
    forks::forks(stack, p, &admin, report);
    let forked = forks::fork_turns(&alice, report);
    phases("worker, forked", &forked, report);

    step("naive baseline");
    report.figures.push(sample(NAIVE, NAIVE_TURN, Some(FLOOR_NATIVE), 1, N, || measure::naive_turn(stack, p)));
    step("direct-SDK baseline");
    report.figures.push(direct_sdk(stack, DIRECT_COLD, None));

    step(&format!("streaming {} MiB", measure::stream_mib()));
    let body =
        serde_json::json!({ "code": measure::stream_code(), "language": "python", "timeout_s": 120 }).to_string();
    for _ in 0..2 {
        let run = attempt(|| measure::worker_turn(&alice, &body));
        report.streaming.push(measure::streaming("sandboxd → core → worker → WebSocket", run));
    }
    let run = attempt(|| measure::native_turn(stack, p, &measure::stream_code()));
    report.streaming.push(measure::streaming("sandboxd → core (no worker)", run));
    let leaks = measure::leftovers(stack)?;
    anyhow::ensure!(leaks == 0, "{leaks} sandboxes or databases left after the cold stack's turns");
    Ok(())
}

/// The stack whose scratchdb keeps a pool: warm provisioning, warm turns and concurrency.
fn warm(stack: &InProcessStack, report: &mut Report) -> anyhow::Result<()> {
    let providers = measure::providers(stack)?;
    let p = &providers;
    let admin = measure::admin(stack)?;
    step("provisioning from a warm pool");
    report.figures.push(sample(PROVISIONING, DB_WARM, Some(FLOOR_CREATE), 2, N, || {
        measure::wait_pool(stack, &admin, POOL)?;
        measure::database_create(stack, p)
    }));
    pairs(stack, p, &admin, POOL, report);

    step("turns with a warm pool");
    let body = serde_json::json!({ "code": PRINT_1, "language": "python" }).to_string();
    let alice = measure::api(stack);
    let worker = turns(TURN_WORKER_WARM, FLOOR_TURN, report, || {
        measure::wait_pool(stack, &admin, POOL)?;
        measure::worker_turn(&alice, &body)
    });
    phases("worker, warm", &worker, report);
    reaps("worker, warm", stack, &worker, report);
    let native = turns(TURN_NATIVE_WARM, FLOOR_NATIVE, report, || {
        measure::wait_pool(stack, &admin, POOL)?;
        measure::native_turn(stack, p, PRINT_1)
    });
    phases("native, warm", &native, report);
    step("direct-SDK baseline with a warm pool");
    report.figures.push(direct_sdk(stack, DIRECT_WARM, Some(&admin)));

    for n in [8, 16, 32] {
        step(&format!("{n} concurrent turns"));
        measure::wait_pool(stack, &admin, POOL)?;
        report.concurrency.push(measure::concurrency(stack, n));
    }
    Ok(())
}

/// The seed's flow through the official SDK (`direct.rs`), each sample from the same state as
/// mayfly's turns meet: with a warm pool, once the pool is full again.
fn direct_sdk(stack: &InProcessStack, name: &str, pool: Option<&tokio_postgres::Client>) -> Figure {
    let mut sdk = match attempt(|| direct::DirectSdk::start(stack)) {
        Ok(sdk) => sdk,
        Err(err) => {
            let mut figure = Figure::new(NAIVE, name, Some(FLOOR_TURN));
            figure.failures.push(format!("{err:#}"));
            return figure;
        }
    };
    sample(NAIVE, name, Some(FLOOR_TURN), 2, N, || {
        if let Some(admin) = pool {
            measure::wait_pool(stack, admin, POOL)?;
        }
        sdk.turn()
    })
}

/// Sequential and parallel provisioning of the pair, alternating so drift hits both alike.
fn pairs(
    stack: &InProcessStack,
    p: &mayfly_cli::providers::NativeProviders,
    admin: &tokio_postgres::Client,
    pool: usize,
    report: &mut Report,
) {
    let kind = if pool == 0 { "no pool" } else { "warm pool" };
    let mut seq = Figure::new(PROVISIONING, format!("pair, sequential, {kind}"), None);
    let mut par = Figure::new(PROVISIONING, format!("pair, parallel, {kind}"), None);
    for i in 0..N + 2 {
        for (parallel, figure) in [(false, &mut seq), (true, &mut par)] {
            match attempt(|| {
                measure::wait_pool(stack, admin, pool)?;
                measure::pair(stack, p, parallel)
            }) {
                Ok(v) if i >= 2 => figure.push(v),
                Ok(_) => {}
                Err(err) => figure.failures.push(format!("{err:#}")),
            }
        }
    }
    report.figures.extend([seq, par]);
}

/// `N` turns of `print(1)`; the figure is POST (or the call) to the first stdout byte.
fn turns(
    name: &str,
    floor: &str,
    report: &mut Report,
    mut run: impl FnMut() -> anyhow::Result<TurnRun>,
) -> Vec<TurnRun> {
    let mut figure = Figure::new(TURNS, name, Some(floor));
    let mut runs = Vec::new();
    for _ in 0..N {
        let result = attempt(|| {
            let run = run()?;
            run.check(b"1\n")?;
            Ok(run)
        });
        match result {
            Ok(run) => {
                figure.push(run.first_stdout_ms.unwrap_or_default());
                runs.push(run);
            }
            Err(err) => figure.failures.push(format!("{err:#}")),
        }
    }
    report.figures.push(figure);
    runs
}

/// The turn's own timeline, phase by phase (`at_ms` differences between its events).
fn phases(label: &str, runs: &[TurnRun], report: &mut Report) {
    let mut add = |name: &str, f: &dyn Fn(&TurnRun) -> Option<f64>| {
        let mut figure = Figure::new(PHASES, format!("{label}: {name}"), None);
        for run in runs {
            match f(run) {
                Some(v) => figure.push(v),
                None => figure.failures.push("an event of the phase is missing".to_owned()),
            }
        }
        report.figures.push(figure);
    };
    let d = |run: &TurnRun, from: &str, to: &str| Some(run.at(to)?.checked_sub(run.at(from)?)? as f64);
    let ready = |run: &TurnRun| Some(run.at("sandbox.ready")?.max(run.at("database.ready")?));
    add("accepted → sandbox and database ready", &|r| Some(ready(r)?.checked_sub(r.at("turn.accepted")?)? as f64));
    // The upload starts at the sandbox's ready, overlapping the database's creation; the process
    // waits for the later of the two.
    add("sandbox ready → code uploaded", &|r| d(r, "sandbox.ready", "code.uploaded"));
    add("ready and uploaded → process started", &|r| {
        let waited = ready(r)?.max(r.at("code.uploaded")?);
        Some(r.at("process.started")?.checked_sub(waited)? as f64)
    });
    add("started → first stdout", &|r| d(r, "process.started", "stdout"));
    // What the turn's own clock does not see: the request before the turn is accepted, and the
    // delivery of its first output to the caller.
    add(OUTSIDE, &|r| Some(r.first_stdout_ms? - d(r, "turn.accepted", "stdout")?));
    if label.starts_with("worker") {
        // The create's part of that, split by the worker's own `Server-Timing`.
        add("POST → 201 at the caller", &|r| r.created_ms);
        add("in the create: the tenant ledger's admission", &|r| r.server_step("admit"));
        add("in the create: the turn object's start", &|r| r.server_step("start"));
    }
}

/// Process exit → both resources reaped, from the timeline; checked against the providers too.
fn reaps(label: &str, stack: &InProcessStack, runs: &[TurnRun], report: &mut Report) {
    let mut figure = Figure::new(REAP, format!("reap, {label}: process exit → both resources gone"), None);
    for run in runs {
        let reaped =
            || run.at("sandbox.reaped")?.max(run.at("database.reaped")?).checked_sub(run.at("process.exited")?);
        match reaped() {
            Some(v) => figure.push(v as f64),
            None => figure.failures.push("a reap event is missing".to_owned()),
        }
        if let Err(err) = attempt(|| measure::wait_reaped(stack, &run.turn_id)) {
            figure.failures.push(format!("{err:#}"));
        }
    }
    report.figures.push(figure);
}

/// A floor made of measured floors, sample by sample: what a turn cannot avoid doing.
fn composite(name: &str, report: &Report, http: bool) -> Figure {
    let mut figure = Figure::new(FLOORS, name, None);
    let samples = |n: &str| report.figure(n).map(|f| f.samples_ms.clone()).unwrap_or_default();
    let (python, create, rtt) = (samples(FLOOR_PYTHON), samples(FLOOR_CREATE), samples(FLOOR_HTTP));
    for i in 0..python.len().min(create.len()).min(if http { rtt.len() } else { usize::MAX }) {
        figure.push(python[i].max(create[i]) + if http { rtt[i] } else { 0.0 });
    }
    figure
}

fn sizes() -> anyhow::Result<Vec<Size>> {
    use flate2::{write::GzEncoder, Compression};
    let root = Tools::of_workspace().root;
    let measure = |name, path: PathBuf| -> anyhow::Result<Size> {
        let bytes =
            std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e} (run `cargo xtask build`)", path.display()))?;
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&bytes)?;
        Ok(Size { name, raw_bytes: bytes.len() as u64, gzip_bytes: gz.finish()?.len() as u64 })
    };
    Ok(vec![
        measure("worker wasm", root.join("worker/build/index_bg.wasm"))?,
        measure("web wasm", root.join("target/dist/web/pkg/mayfly_web_bg.wasm"))?,
    ])
}

fn write(report: &Report, out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(report)?)?;
    std::fs::write(out.join("report.md"), report::markdown(report))?;
    charts::load_font()?;
    charts::latency(report, &out.join("latency.png"))?;
    charts::concurrency(report, &out.join("concurrency.png"))?;
    Ok(())
}

fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let meminfo = read("/proc/meminfo");
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|v| v.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: kib / 1024.0 / 1024.0,
        cpu,
        os,
        load_at_start: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    }
}
