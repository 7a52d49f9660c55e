//! `mayfly-soak`, run by `cargo xtask soak`: many sequential turns, then a mixed concurrent load
//! for some minutes, against the stack as separate processes. It samples every component's
//! resident memory, the worker's own memory (JavaScript heap and wasm memory) and Postgres's
//! connections while it runs, checks every turn ended as its code says it should, finds nothing
//! left at the end, and writes `target/soak/report.md` and `report.json`. It exits non-zero when a turn failed for a reason not its code's own, something
//! leaked, a component's memory grew, or Postgres's connections did not return to their baseline.
//!
//! `mayfly-soak [--turns N] [--minutes M] [--concurrency C] [--debug]`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mayfly_core::{Event, EventBody, Outcome, ReapState, TurnState};
use mayfly_e2e::inspector::Inspector;
use mayfly_e2e::process_stack::{pss_kib, ProcessStack, ProcessStackOptions, Profile};
use mayfly_e2e::Tools;
use serde_json::json;

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    turns: usize,
    minutes: f64,
    concurrency: usize,
    profile: Profile,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options { turns: 1000, minutes: 10.0, concurrency: 4, profile: Profile::Native };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--turns" => options.turns = value()?.parse()?,
            "--minutes" => options.minutes = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--debug" => options.profile = Profile::Debug,
            other => {
                bail!("unknown argument {other}: mayfly-soak [--turns N] [--minutes M] [--concurrency C] [--debug]")
            }
        }
    }
    anyhow::ensure!(options.concurrency >= 1, "--concurrency must be at least 1");
    Ok(options)
}

/// The kinds of turn the load mixes, each with what its code must make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A query in the scratch database; prints 42.
    Query,
    /// Bash, no database.
    Bash,
    /// A thousand lines of output.
    Chatty,
    /// Exits 3: a failure that is the code's own.
    ExitsThree,
    /// Sleeps past its 2 s timeout.
    Overstays,
    /// Cancelled by the caller while it runs.
    Cancelled,
}

impl Kind {
    const MIX: [Kind; 10] = [
        Kind::Query,
        Kind::Query,
        Kind::Query,
        Kind::Bash,
        Kind::Bash,
        Kind::Chatty,
        Kind::ExitsThree,
        Kind::Overstays,
        Kind::Cancelled,
        Kind::Query,
    ];

    fn body(self) -> String {
        let query = "import os, psycopg\nwith psycopg.connect(os.environ['DATABASE_URL']) as c:\n    print(c.execute('select 40 + 2').fetchone()[0])\n";
        let body = match self {
            Kind::Query => json!({ "code": query, "language": "python", "timeout_s": 30 }),
            Kind::Bash => json!({ "code": "echo soak", "language": "bash", "database": false, "timeout_s": 30 }),
            Kind::Chatty => {
                json!({ "code": "for i in range(1000): print(i)", "language": "python", "database": false })
            }
            Kind::ExitsThree => json!({ "code": "import sys; sys.exit(3)", "language": "python", "database": false }),
            Kind::Overstays => json!({ "code": "import time; time.sleep(30)", "language": "python", "timeout_s": 2 }),
            Kind::Cancelled => {
                json!({ "code": "import time\nprint('up', flush=True)\ntime.sleep(30)", "language": "python" })
            }
        };
        body.to_string()
    }

    /// What the turn must end with, and what it must print.
    fn expected(self) -> (Outcome, Option<String>) {
        match self {
            Kind::Query => (Outcome::Succeeded, Some("42\n".into())),
            Kind::Bash => (Outcome::Succeeded, Some("soak\n".into())),
            Kind::Chatty => (Outcome::Succeeded, Some((0..1000).map(|i| format!("{i}\n")).collect())),
            Kind::ExitsThree => (Outcome::Failed, None),
            Kind::Overstays => (Outcome::TimedOut, None),
            Kind::Cancelled => (Outcome::Cancelled, None),
        }
    }
}

/// How one turn went.
#[derive(Debug, Clone)]
struct TurnResult {
    kind: Kind,
    turn_id: String,
    ms: u64,
    /// Why it is a failure that is not its code's own, if it is one.
    failure: Option<String>,
}

fn run_turn(stack: &ProcessStack, kind: Kind) -> TurnResult {
    let started = Instant::now();
    let mut result = TurnResult { kind, turn_id: String::new(), ms: 0, failure: None };
    let turn = match stack.create(&kind.body()) {
        Ok(turn) => turn,
        Err(err) => {
            result.failure = Some(format!("create: {err:#}"));
            return result;
        }
    };
    result.turn_id = turn.turn_id.clone();
    let mut cancelled = false;
    let events = stack.events(&turn.turn_id, 0, |event| {
        let up = matches!(&event.body, EventBody::Stdout { data } if data.contains("up"));
        if kind == Kind::Cancelled && up && !cancelled {
            cancelled = true;
            let _ = stack.call("DELETE", &turn.status_url, None);
        }
    });
    result.ms = started.elapsed().as_millis() as u64;
    result.failure = judge(kind, &events).err();
    result
}

/// Whether the turn ended as its code says it must.
fn judge(kind: Kind, events: &[Event]) -> Result<(), String> {
    let Some(EventBody::TurnFinished { outcome, error, .. }) = events.last().map(|e| &e.body) else {
        return Err(format!("the event stream ended without turn.finished after {} events", events.len()));
    };
    let (want, stdout) = kind.expected();
    if *outcome != want {
        return Err(format!("{kind:?} ended {outcome:?} ({error:?}), not {want:?}"));
    }
    if let Some(stdout) = stdout {
        let printed: String = mayfly_e2e::turns::stdout_of(events);
        if printed != stdout {
            return Err(format!("{kind:?} printed {} bytes, not the {} it should", printed.len(), stdout.len()));
        }
    }
    let reaped = events.iter().any(|e| matches!(e.body, EventBody::SandboxReaped { .. }));
    if !reaped {
        return Err(format!("{kind:?}: no sandbox.reaped in the log"));
    }
    Ok(())
}

/// One memory and connection sample.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    at_s: f64,
    phase: &'static str,
    /// Proportional resident memory per process group, and the worker's heap and wasm memory.
    memory_kib: BTreeMap<&'static str, u64>,
    /// Postgres client connections of turns' database roles.
    turn_connections: i64,
    /// Postgres client connections of everyone else: scratchdb's admin pool.
    admin_connections: i64,
}

/// scratchdb's admin pool holds at most this many connections (its `admin_connections` default).
const ADMIN_POOL_MAX: i64 = 8;

/// The worker's JavaScript heap after a collection. workerd's resident memory is the runtime's and
/// the worker's together, and keeps its high-water mark (workerd's allocator returns nothing to
/// the system), so the worker is judged by its own memory and workerd's rows are reported.
const WORKER_HEAP: &str = "worker: JavaScript heap";

/// The worker's Rust side: the linear memory of its wasm instances.
const WORKER_WASM: &str = "worker: wasm memory";

/// Judged flat or not, in the order the report lists them.
const JUDGED: [&str; 6] = [WORKER_HEAP, WORKER_WASM, "wrangler", "sandboxd", "scratchdb", "postgres"];

/// The local Workers runtime's processes: reported, not judged (see docs/reliability.md).
const RUNTIME: [&str; 2] = ["workerd: worker", "workerd: proxy"];

fn sample(stack: &ProcessStack, started: Instant, phase: &'static str, inspector: &mut Option<Inspector>) -> Sample {
    let mut memory_kib: BTreeMap<&'static str, u64> =
        stack.pids().into_iter().map(|(name, pids)| (name, pids.into_iter().map(pss_kib).sum())).collect();
    // A session that broke is opened again at the next sample; a sample without it has no heap row.
    if inspector.is_none() {
        *inspector = Inspector::connect(stack.inspector_port()).map_err(|err| eprintln!("inspector: {err:#}")).ok();
    }
    if let Some(session) = inspector.as_mut() {
        // The wasm memories are counted first: finding them collects garbage, so the heap read
        // right after is what the worker holds live.
        match session.wasm_memory().and_then(|wasm| Ok((wasm, session.heap_usage()?))) {
            Ok((wasm, heap)) => {
                memory_kib.insert(WORKER_WASM, wasm / 1024);
                memory_kib.insert(WORKER_HEAP, heap.used / 1024);
            }
            Err(err) => {
                eprintln!("inspector: {err:#}");
                *inspector = None;
            }
        }
    }
    let (turn_connections, admin_connections) = stack.postgres_connections_by_kind().unwrap_or((-1, -1));
    Sample { at_s: started.elapsed().as_secs_f64(), phase, memory_kib, turn_connections, admin_connections }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let out_dir = Tools::of_workspace().root.join("target/soak");
    std::fs::create_dir_all(&out_dir)?;
    eprintln!(
        "soak: {} sequential turns, then {} min of mixed load at concurrency {}",
        options.turns, options.minutes, options.concurrency
    );
    let stack = ProcessStack::start(ProcessStackOptions { profile: options.profile }).context("the stack starts")?;
    let started = Instant::now();
    let baseline_connections = stack.postgres_connections_by_kind()?;
    let mut inspector = None;
    let samples = Mutex::new(vec![sample(&stack, started, "start", &mut inspector)]);
    let phase = Mutex::new("sequential");
    let done = AtomicBool::new(false);
    let results = Mutex::new(Vec::<TurnResult>::new());

    std::thread::scope(|scope| -> anyhow::Result<()> {
        scope.spawn(|| {
            // Sampled every 2 s; checked every 100 ms so that the end is not waited for.
            let mut next = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if Instant::now() >= next {
                    let phase = *phase.lock().unwrap();
                    samples.lock().unwrap().push(sample(&stack, started, phase, &mut inspector));
                    next += Duration::from_secs(2);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let finish = || done.store(true, Ordering::SeqCst);

        let sequential = Instant::now();
        for i in 0..options.turns {
            let kind = if i % 2 == 0 { Kind::Query } else { Kind::Bash };
            let result = run_turn(&stack, kind);
            if let Some(failure) = &result.failure {
                eprintln!("turn {i} {}: {failure}", result.turn_id);
            }
            results.lock().unwrap().push(result);
            if (i + 1) % 100 == 0 {
                eprintln!("  {} sequential turns in {:.0}s", i + 1, sequential.elapsed().as_secs_f64());
            }
        }

        *phase.lock().unwrap() = "concurrent";
        let until = Instant::now() + Duration::from_secs_f64(options.minutes * 60.0);
        std::thread::scope(|load| {
            for lane in 0..options.concurrency {
                let (stack, results) = (&stack, &results);
                load.spawn(move || {
                    let mut n = lane;
                    while Instant::now() < until {
                        let kind = Kind::MIX[n % Kind::MIX.len()];
                        n += options.concurrency + 1;
                        let result = run_turn(stack, kind);
                        if let Some(failure) = &result.failure {
                            eprintln!("lane {lane} {}: {failure}", result.turn_id);
                        }
                        results.lock().unwrap().push(result);
                    }
                });
            }
        });
        *phase.lock().unwrap() = "settling";
        finish();
        Ok(())
    })?;
    let load_s = started.elapsed().as_secs_f64();

    // Everything a turn held is reaped by the turn itself; give the last reaps a moment to land.
    let settle_by = Instant::now() + Duration::from_secs(60);
    let (leftovers, after_connections) = loop {
        let leftovers = stack.leftovers()?;
        let connections = stack.postgres_connections_by_kind()?;
        let back = connections.0 <= baseline_connections.0 && connections.1 <= ADMIN_POOL_MAX;
        if (leftovers.is_empty() && back) || Instant::now() > settle_by {
            break (leftovers, connections);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let last = sample(&stack, started, "end", &mut inspector);
    let mut samples = samples.into_inner().unwrap();
    samples.push(last);
    let results = results.into_inner().unwrap();

    // Unfinished or unreaped ledger entries, for a sample of turns (every one would take long).
    let mut ledger_problems = Vec::new();
    for result in results.iter().filter(|r| !r.turn_id.is_empty()).step_by(25) {
        match stack.detail(&result.turn_id) {
            Ok(detail) => {
                let reaped = detail.resources.iter().all(|r| r.reap == ReapState::Reaped);
                if detail.state != TurnState::Finished || !reaped {
                    ledger_problems.push(format!("{}: {:?} {:?}", result.turn_id, detail.state, detail.resources));
                }
            }
            Err(err) => ledger_problems.push(format!("{}: {err:#}", result.turn_id)),
        }
    }

    let report = Report::new(
        &options,
        &results,
        &samples,
        baseline_connections,
        after_connections,
        &leftovers,
        load_s,
        ledger_problems,
    );
    std::fs::write(out_dir.join("report.json"), serde_json::to_string_pretty(&report.json)?)?;
    std::fs::write(out_dir.join("report.md"), &report.markdown)?;
    println!("{}", report.markdown);
    eprintln!("written: {} and report.json", out_dir.join("report.md").display());
    drop(stack);
    if !report.ok {
        bail!("the soak found problems: see {}", out_dir.join("report.md").display());
    }
    Ok(())
}

/// The soak's findings as Markdown and JSON, and whether they pass.
struct Report {
    markdown: String,
    json: serde_json::Value,
    ok: bool,
}

/// A component's memory is flat when the mean of the last quarter of samples is within 20 % (or
/// 16 MiB, for small processes) of the mean of the first quarter.
fn flat(first_kib: u64, last_kib: u64) -> bool {
    last_kib <= first_kib + (first_kib / 5).max(16 * 1024)
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn new(
        options: &Options,
        results: &[TurnResult],
        samples: &[Sample],
        baseline_connections: (i64, i64),
        after_connections: (i64, i64),
        leftovers: &mayfly_e2e::process_stack::Leftovers,
        wall_s: f64,
        ledger_problems: Vec<String>,
    ) -> Report {
        let failures: Vec<&TurnResult> = results.iter().filter(|r| r.failure.is_some()).collect();
        let own_failures =
            results.iter().filter(|r| r.failure.is_none() && r.kind.expected().0 != Outcome::Succeeded).count();
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for result in results {
            *by_kind.entry(format!("{:?}", result.kind)).or_default() += 1;
        }
        let mut ms: Vec<u64> =
            results.iter().filter(|r| matches!(r.kind, Kind::Query | Kind::Bash)).map(|r| r.ms).collect();
        ms.sort_unstable();

        // Memory is compared within each steady phase, not across them: the mixed load keeps more
        // turns alive at once than the sequential one, so its level is higher by design. A leak
        // still shows as growth within a phase.
        let load: Vec<&Sample> =
            samples.iter().filter(|s| s.phase == "sequential" || s.phase == "concurrent").collect();
        // A phase's first and last quarter, over the samples that have the component (the worker's
        // can miss one when the inspector does not answer).
        let quarters = |phase: &str, name: &str| -> Option<(u64, u64)> {
            let values: Vec<u64> =
                load.iter().filter(|s| s.phase == phase).filter_map(|s| s.memory_kib.get(name).copied()).collect();
            if values.len() < 4 {
                return None;
            }
            let quarter = values.len() / 4;
            let mean = |part: &[u64]| part.iter().sum::<u64>() / part.len() as u64;
            Some((mean(&values[..quarter]), mean(&values[values.len() - quarter..])))
        };
        let mut memory = Vec::new();
        let mut all_flat = true;
        for name in JUDGED.into_iter().chain(RUNTIME) {
            let sequential = quarters("sequential", name);
            let mixed = quarters("concurrent", name);
            let peak = load.iter().filter_map(|s| s.memory_kib.get(name).copied()).max().unwrap_or(0);
            // Judged components need both phases sampled: no samples is not a pass.
            let is_flat = JUDGED.contains(&name).then(|| match (sequential, mixed) {
                (Some(sequential), Some(mixed)) => [sequential, mixed].iter().all(|&(first, last)| flat(first, last)),
                _ => false,
            });
            all_flat &= is_flat != Some(false);
            memory.push((name, sequential, mixed, peak, is_flat));
        }
        let peak_connections = (
            samples.iter().map(|s| s.turn_connections).max().unwrap_or(0),
            samples.iter().map(|s| s.admin_connections).max().unwrap_or(0),
        );
        let (leaked_sandboxes, leaked_databases) = leftovers.counts();
        // Turns' connections end with their databases; the admin pool keeps idle connections, up
        // to its bound, for the next turns.
        let connections_back = after_connections.0 <= baseline_connections.0 && after_connections.1 <= ADMIN_POOL_MAX;
        let ok = failures.is_empty()
            && leftovers.is_empty()
            && all_flat
            && connections_back
            && ledger_problems.is_empty()
            && !results.is_empty();

        let mut md = String::new();
        md.push_str("# mayfly soak report\n\n");
        md.push_str(&format!(
            "{} sequential turns, then {} min of mixed load at concurrency {} ({} build); wall time {:.1} min.\n\n",
            options.turns,
            options.minutes,
            options.concurrency,
            if options.profile == Profile::Native { "native" } else { "debug" },
            wall_s / 60.0
        ));
        md.push_str(&format!("**Verdict: {}**\n\n", if ok { "pass" } else { "FAIL" }));
        md.push_str("| | |\n|---|---|\n");
        md.push_str(&format!("| turns | {} ({by_kind:?}) |\n", results.len()));
        md.push_str(&format!("| failures not the code's own | {} |\n", failures.len()));
        md.push_str(&format!("| the code's own failures, timeouts and cancels (as expected) | {own_failures} |\n"));
        md.push_str(&format!("| leaked sandboxes / databases or roles | {leaked_sandboxes} / {leaked_databases} |\n"));
        md.push_str(&format!(
            "| Postgres connections of turns' roles: baseline / peak / after | {} / {} / {} |\n",
            baseline_connections.0, peak_connections.0, after_connections.0
        ));
        md.push_str(&format!(
            "| Postgres connections of scratchdb's admin pool (at most {ADMIN_POOL_MAX}): baseline / peak / after | {} / {} / {} |\n",
            baseline_connections.1, peak_connections.1, after_connections.1
        ));
        md.push_str(&format!(
            "| quick turns (query, bash), POST to turn.finished: p50 / p95 / max | {} / {} / {} ms |\n",
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms.last().copied().unwrap_or(0)
        ));
        md.push_str(&format!("| ledger entries checked (every 25th) not final | {} |\n\n", ledger_problems.len()));
        md.push_str(&format!(
            "Memory, {} samples every 2 s during the load: proportional resident memory (PSS) of each process group, \
             and, over wrangler's inspector, the worker's own: what its JavaScript heap holds after a collection and \
             the linear memory of its wasm instances. Mean of the first and the last quarter of each phase (flat: \
             the last within 20 % or 16 MiB of the first, in both phases):\n\n",
            load.len()
        ));
        md.push_str(
            "| component | sequential: first → last quarter | mixed load: first → last quarter | peak | flat |\n",
        );
        md.push_str("|---|---|---|---|---|\n");
        let mib = |q: &Option<(u64, u64)>| match q {
            Some((first, last)) => format!("{:.1} → {:.1} MiB", *first as f64 / 1024.0, *last as f64 / 1024.0),
            None => "—".to_owned(),
        };
        for (name, sequential, mixed, peak, is_flat) in &memory {
            md.push_str(&format!(
                "| {name} | {} | {} | {:.1} MiB | {} |\n",
                mib(sequential),
                mib(mixed),
                *peak as f64 / 1024.0,
                match is_flat {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "reported",
                }
            ));
        }
        md.push_str(
            "\npostgres is the postmaster and all its backends, shared memory counted once. wrangler is its two Node \
             processes. The workerd rows are the local Workers runtime `wrangler dev` runs, not a part of mayfly: \
             `workerd: worker` runs mayfly's worker (whose own memory is the first two rows), `workerd: proxy` is \
             wrangler's proxy in front of it and runs none of mayfly's code. workerd's allocator keeps what it has \
             freed, so its resident memory follows the runtime's high-water mark, not what the worker holds; \
             docs/reliability.md has the measurements.\n",
        );
        if !failures.is_empty() {
            md.push_str("\n## Failures\n\n");
            for failure in failures.iter().take(50) {
                md.push_str(&format!(
                    "- {} {:?}: {}\n",
                    failure.turn_id,
                    failure.kind,
                    failure.failure.as_deref().unwrap_or("")
                ));
            }
        }
        if !leftovers.is_empty() {
            md.push_str(&format!("\n## Left behind\n\n```\n{leftovers:#?}\n```\n"));
        }
        if !ledger_problems.is_empty() {
            md.push_str(&format!("\n## Ledger entries not final\n\n{}\n", ledger_problems.join("\n")));
        }

        let json = json!({
            "ok": ok,
            "options": { "turns": options.turns, "minutes": options.minutes, "concurrency": options.concurrency },
            "wall_s": wall_s,
            "turns": results.len(),
            "by_kind": by_kind,
            "failures": failures.iter().map(|f| json!({ "turn_id": f.turn_id, "kind": format!("{:?}", f.kind), "why": f.failure })).collect::<Vec<_>>(),
            "own_failures": own_failures,
            "leaked_sandboxes": leaked_sandboxes,
            "leaked_databases": leaked_databases,
            "postgres_connections": {
                "turn_roles": { "baseline": baseline_connections.0, "peak": peak_connections.0, "after": after_connections.0 },
                "admin_pool": { "baseline": baseline_connections.1, "peak": peak_connections.1, "after": after_connections.1, "max": ADMIN_POOL_MAX },
            },
            "quick_turn_ms": { "p50": percentile(&ms, 0.5), "p95": percentile(&ms, 0.95), "max": ms.last().copied().unwrap_or(0) },
            "memory_kib": memory.iter().map(|(name, sequential, mixed, peak, is_flat)| json!({ "component": name, "sequential_quarters": sequential, "mixed_quarters": mixed, "peak": peak, "flat": is_flat })).collect::<Vec<_>>(),
            "ledger_problems": ledger_problems,
            "samples": samples,
        });
        Report { markdown: md, json, ok }
    }
}
