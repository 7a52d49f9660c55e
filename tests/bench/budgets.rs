//! The report's budgets, each a ratio or a bound measured in the same run, and the notes that say
//! how to read the figures.

use crate::forks::{FORK, FORK_FLOOR};
use crate::measure;
use crate::report::{self, percentile, Budget, Report};
use crate::{
    CPU_FLOOR_CREATE_DROP, CPU_FLOOR_PYTHON, DB_COLD, DB_WARM, DIRECT_COLD, DIRECT_WARM, FLOOR_HTTP, FLOOR_TURN,
    NAIVE_TURN, OUTSIDE, POOL, REAP, TURN_NATIVE_COLD, TURN_NATIVE_WARM, TURN_WORKER_COLD, TURN_WORKER_WARM,
};

pub(crate) fn budgets(report: &mut Report) {
    let mut budgets = Vec::new();
    // The headline figures: a turn through the worker against the same turn without mayfly, and
    // against what a turn cannot avoid, each in this run.
    for (turn, direct, kind) in [(TURN_WORKER_COLD, DIRECT_COLD, "cold"), (TURN_WORKER_WARM, DIRECT_WARM, "warm pool")]
    {
        let (turn, direct, floor) = (report.p50(turn), report.p50(direct), report.p50(FLOOR_TURN));
        let (vs_direct, vs_floor) = (ratio(turn, direct), ratio(turn, floor));
        report.headline.push(format!(
            "{kind}: a turn through the worker reaches its first stdout byte at p50 {} ms: {:.2} × the direct SDK \
             flow ({} ms) and {:.2} × the floor ({} ms).",
            report::ms(turn),
            vs_direct.unwrap_or(f64::NAN),
            report::ms(direct),
            vs_floor.unwrap_or(f64::NAN),
            report::ms(floor)
        ));
        budgets.push(ratio_budget(
            format!("turn via the worker ÷ the direct SDK flow, {kind} (p50)"),
            turn,
            direct,
            0.8,
        ));
        budgets.push(ratio_budget(format!("turn via the worker ÷ the turn floor, {kind} (p50)"), turn, floor, 1.5));
    }
    // The worker's own share of a turn, against a bare round trip to it.
    let http = report.p50(FLOOR_HTTP);
    for kind in ["cold", "warm"] {
        let share = report.p50(&format!("worker, {kind}: {OUTSIDE}"));
        let over = share.zip(http).map(|(share, http)| share - http);
        budgets.push(Budget {
            name: format!("the worker's own share of a turn, {kind} (p50), over a bare HTTP round trip"),
            target: "≤ 2 ms".into(),
            measured: format!("{} ms ({} ms − {} ms)", report::ms(over), report::ms(share), report::ms(http)),
            met: over.map(|over| over <= 2.0),
        });
    }
    let warm = report.p50(DB_WARM);
    budgets.push(Budget {
        name: "warm-pool database hand-out (p50)".into(),
        target: "≤ 15 ms".into(),
        measured: format!("{} ms", report::ms(warm)),
        met: warm.map(|v| v <= 15.0),
    });
    let cold_ratio = ratio(report.p50("pair, parallel, no pool"), report.p50("pair, sequential, no pool"));
    let warm_ratio = ratio(report.p50("pair, parallel, warm pool"), report.p50("pair, sequential, warm pool"));
    budgets.push(Budget {
        name: "parallel / sequential provisioning (p50)".into(),
        target: "≤ 0.6".into(),
        measured: format!(
            "{:.2} no pool, {:.2} warm pool",
            cold_ratio.unwrap_or(f64::NAN),
            warm_ratio.unwrap_or(f64::NAN)
        ),
        met: cold_ratio.map(|r| r <= 0.6),
    });
    let reap: Vec<f64> =
        report.figures.iter().filter(|f| f.section == REAP).flat_map(|f| f.samples_ms.clone()).collect();
    let reap_failed = report.figures.iter().filter(|f| f.section == REAP).any(|f| !f.failures.is_empty());
    let (reap50, reap95) = (percentile(&reap, 0.5), percentile(&reap, 0.95));
    budgets.push(Budget {
        name: "reap after process exit (p95, all worker turns)".into(),
        target: "≤ 100 ms".into(),
        measured: format!("p50 {} ms, p95 {} ms", report::ms(reap50), report::ms(reap95)),
        met: reap95.map(|v| v <= 100.0 && !reap_failed),
    });
    let c32 = report.concurrency.iter().find(|c| c.turns == 32);
    let single = report.p50(TURN_WORKER_WARM);
    let slowdown = c32.and_then(|c| ratio(c.first_byte_p50_ms, single));
    budgets.push(Budget {
        name: "32 concurrent turns (first byte p50 ÷ a single warm turn's)".into(),
        target: "0 failures, 0 leaks, ≤ 4".into(),
        measured: c32.map_or_else(
            || "not run".to_owned(),
            |c| {
                format!(
                    "{} failures, {} leaks, {:.2} ({} ms ÷ {} ms); {} ms of CPU a turn, so the 32 need the \
                     machine's cores for {} s at the least",
                    c.failures.len(),
                    c.leaks.map_or("?".into(), |l| l.to_string()),
                    slowdown.unwrap_or(f64::NAN),
                    report::ms(c.first_byte_p50_ms),
                    report::ms(single),
                    report::ms(c.cpu_ms_per_turn),
                    c.cpu_bound_s.map_or_else(|| "?".to_owned(), |s| format!("{s:.2}")),
                )
            },
        ),
        met: c32.map(|c| c.failures.is_empty() && c.leaks == Some(0) && slowdown.is_some_and(|s| s <= 4.0)),
    });
    // What the budget asks of the machine before mayfly adds anything: 32 turns' floors alone, on
    // its cores, against four single turns.
    let floor_cpu = report.p50(CPU_FLOOR_PYTHON).zip(report.p50(CPU_FLOOR_CREATE_DROP)).map(|(a, b)| a + b);
    if let (Some(floor_cpu), Some(single)) = (floor_cpu, single) {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let floor_ms = floor_cpu * 32.0 / cores;
        report.notes.push(format!(
            "The work 32 turns cannot avoid — a bare jail's `python3 -c print(1)` and a bare CREATE + DROP \
             DATABASE each — costs {floor_cpu:.1} ms of CPU a turn; on {cores} cores the 32 take {floor_ms:.0} ms \
             of the cores at the least, {:.1} × a single warm turn ({single:.1} ms), before mayfly does anything.",
            floor_ms / single
        ));
    }
    let through_worker: Vec<_> = report.streaming.iter().filter(|s| s.path.contains("worker")).collect();
    let slowest = through_worker.iter().map(|s| s.stream_mb_per_s).fold(f64::INFINITY, f64::min);
    budgets.push(Budget {
        name: format!("{} MiB stdout, a turn's whole output, through the worker (slowest run)", measure::stream_mib()),
        target: "intact, ≥ 50 MB/s".into(),
        measured: format!(
            "{:.1} MB/s, intact: {}",
            if through_worker.is_empty() { 0.0 } else { slowest },
            through_worker.iter().all(|s| s.intact)
        ),
        met: (!through_worker.is_empty()).then(|| slowest >= 50.0 && through_worker.iter().all(|s| s.intact)),
    });
    for (name, artifact, limit, text) in [
        ("worker wasm, gzipped", "worker wasm", 1_000_000, "≤ 1 MB"),
        ("web wasm, gzipped", "web wasm", 300_000, "≤ 300 KB"),
    ] {
        let size = report.sizes.iter().find(|s| s.name == artifact);
        budgets.push(Budget {
            name: name.into(),
            target: text.into(),
            measured: size.map_or_else(|| "not built".to_owned(), |s| format!("{} bytes", s.gzip_bytes)),
            met: size.map(|s| s.gzip_bytes <= limit),
        });
    }
    report.budgets = budgets;
}

/// `a ÷ b`, when both were measured.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

/// A budget on `turn ÷ base`, met at most at `limit`.
fn ratio_budget(name: String, turn: Option<f64>, base: Option<f64>, limit: f64) -> Budget {
    let measured = ratio(turn, base);
    Budget {
        name,
        target: format!("≤ {limit}"),
        measured: format!("{:.2} ({} ms ÷ {} ms)", measured.unwrap_or(f64::NAN), report::ms(turn), report::ms(base)),
        met: measured.map(|r| r <= limit),
    }
}

pub(crate) fn notes(report: &mut Report) {
    let saved = |mayfly: &str| {
        let (naive, ours) = (report.p50(NAIVE_TURN)?, report.p50(mayfly)?);
        Some(format!(
            "The naive flow reaches its first stdout byte at p50 {naive:.1} ms; {mayfly} at {ours:.1} ms: mayfly's \
             design saves {:.0}% ({:.1} ms).",
            (1.0 - ours / naive) * 100.0,
            naive - ours
        ))
    };
    let mut notes: Vec<String> =
        [TURN_NATIVE_COLD, TURN_NATIVE_WARM, TURN_WORKER_WARM].iter().filter_map(|m| saved(m)).collect();
    // A fork against what it replaces (a cold create) and against the copy itself.
    let (fork, cold, floor) = (report.p50(FORK), report.p50(DB_COLD), report.p50(FORK_FLOOR));
    if let (Some(fork), Some(cold), Some(floor)) = (fork, cold, floor) {
        notes.push(format!(
            "A fork of a checkpoint takes p50 {fork:.1} ms: {:.2} × a cold create ({cold:.1} ms) and {:.2} × a \
             bare CREATE DATABASE … TEMPLATE of the same database ({floor:.1} ms).",
            fork / cold,
            fork / floor
        ));
    }
    notes.extend([
        "sandboxd keeps no warm pool: a create makes a directory and a registry entry, and the jail starts with the \
         process, so its create is the same cold or warm."
            .to_owned(),
        format!(
            "Warm means scratchdb keeps a pool of {POOL} ready databases; each warm sample starts once the pool is \
             full again (untimed), the state a turn normally meets."
        ),
        "The turn floor is, sample by sample, an HTTP round trip to wrangler dev plus the larger of a bare bwrap \
         running `python3 -c print(1)` and a bare CREATE DATABASE: the work a turn cannot avoid."
            .to_owned(),
        "Turns through the worker are timed from the POST (on a connection kept from the turn before, as an \
         agent's HTTP client keeps it) to the first stdout event read from the WebSocket, which is a connection of \
         its own; the create's `Server-Timing` splits its part. Through `mayfly run`'s path (core's `run_turn` over \
         the CLI's providers) from the call to the first stdout event at the sink."
            .to_owned(),
        "Reap is the turn's own timeline: `process.exited` to the later of `sandbox.reaped` and `database.reaped` \
         (each emitted once its provider confirmed the delete); each turn is also checked as reaped through the API."
            .to_owned(),
        "The parallel/sequential ratio cannot go below max(a, b) / (a + b): when one resource takes most of the \
         time (a database create without a pool), provisioning in parallel saves little, and the ratio says so."
            .to_owned(),
        "The direct SDK flow is the seed's own, written as a user would without mayfly: the official `e2b` Python \
         SDK and httpx, sandbox and database at once (`asyncio.gather`), `files.write`, `commands.run` with the \
         database's URL, then kill and delete; one process runs all its turns against the same sandboxd and \
         scratchdb, timed from the start to the first stdout callback (`tests/bench/direct_sdk.py`)."
            .to_owned(),
        "Leaks are the sandboxes and scratch databases the providers still list after the turns are over.".to_owned(),
    ]);
    // Notes the sections wrote as they measured come after these.
    notes.append(&mut report.notes);
    report.notes = notes;
}
