//! The soak's two renderings of its model: `report.md` (also printed) and `report.json` (every
//! sample kept).

use serde_json::json;

use crate::measure::ADMIN_POOL_MAX;
use crate::model::{percentile, Findings, Soak};

pub(crate) fn markdown(soak: &Soak, findings: &Findings<'_>) -> String {
    let (baseline, after, peak) = (soak.baseline_connections, soak.after_connections, findings.peak_connections);
    let ms = &findings.quick_ms;
    let mut md = String::new();
    md.push_str("# mayfly soak report\n\n");
    md.push_str(&format!(
        "{} sequential turns, then {} min of mixed load at concurrency {} ({} build); wall time {:.1} min.\n\n",
        soak.args.turns,
        soak.args.minutes,
        soak.args.concurrency,
        if soak.args.debug { "debug" } else { "native" },
        soak.wall_s / 60.0
    ));
    md.push_str(&format!("**Verdict: {}**\n\n", if findings.ok { "pass" } else { "FAIL" }));
    md.push_str("| | |\n|---|---|\n");
    md.push_str(&format!("| turns | {} ({:?}) |\n", soak.results.len(), findings.by_kind));
    md.push_str(&format!("| failures not the code's own | {} |\n", findings.failures.len()));
    md.push_str(&format!(
        "| the code's own failures, timeouts and cancels (as expected) | {} |\n",
        findings.own_failures
    ));
    md.push_str(&format!(
        "| leaked sandboxes / databases or roles | {} / {} |\n",
        findings.leaked_sandboxes, findings.leaked_databases
    ));
    md.push_str(&format!(
        "| Postgres connections of turns' roles: baseline / peak / after | {} / {} / {} |\n",
        baseline.0, peak.0, after.0
    ));
    md.push_str(&format!(
        "| Postgres connections of scratchdb's admin pool (at most {ADMIN_POOL_MAX}): baseline / peak / after | {} / {} / {} |\n",
        baseline.1, peak.1, after.1
    ));
    md.push_str(&format!(
        "| quick turns (query, bash), POST to turn.finished: p50 / p95 / max | {} / {} / {} ms |\n",
        percentile(ms, 0.5),
        percentile(ms, 0.95),
        ms.last().copied().unwrap_or(0)
    ));
    md.push_str(&format!("| ledger entries checked (every 25th) not final | {} |\n\n", soak.ledger_problems.len()));
    md.push_str(&format!(
        "Memory, {} samples every 2 s during the load: proportional resident memory (PSS) of each process group, \
         and, over wrangler's inspector, the worker's own: what its JavaScript heap holds after a collection and \
         the linear memory of its wasm instances. Mean of the first and the last quarter of each phase (flat: \
         the last within 20 % or 16 MiB of the first, in both phases):\n\n",
        findings.load_samples
    ));
    md.push_str("| component | sequential: first → last quarter | mixed load: first → last quarter | peak | flat |\n");
    md.push_str("|---|---|---|---|---|\n");
    let mib = |q: &Option<(u64, u64)>| match q {
        Some((first, last)) => format!("{:.1} → {:.1} MiB", *first as f64 / 1024.0, *last as f64 / 1024.0),
        None => "—".to_owned(),
    };
    for memory in &findings.memory {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} MiB | {} |\n",
            memory.name,
            mib(&memory.sequential),
            mib(&memory.mixed),
            memory.peak as f64 / 1024.0,
            match memory.flat {
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
    if !findings.failures.is_empty() {
        md.push_str("\n## Failures\n\n");
        for failure in findings.failures.iter().take(50) {
            md.push_str(&format!(
                "- {} {:?}: {}\n",
                failure.turn_id,
                failure.kind,
                failure.failure.as_deref().unwrap_or("")
            ));
        }
    }
    if !soak.leftovers.is_empty() {
        md.push_str(&format!("\n## Left behind\n\n```\n{:#?}\n```\n", soak.leftovers));
    }
    if !soak.ledger_problems.is_empty() {
        md.push_str(&format!("\n## Ledger entries not final\n\n{}\n", soak.ledger_problems.join("\n")));
    }
    md
}

pub(crate) fn json(soak: &Soak, findings: &Findings<'_>) -> serde_json::Value {
    let (baseline, after, peak) = (soak.baseline_connections, soak.after_connections, findings.peak_connections);
    let ms = &findings.quick_ms;
    json!({
        "ok": findings.ok,
        "options": { "turns": soak.args.turns, "minutes": soak.args.minutes, "concurrency": soak.args.concurrency },
        "wall_s": soak.wall_s,
        "turns": soak.results.len(),
        "by_kind": findings.by_kind,
        "failures": findings.failures.iter().map(|f| json!({ "turn_id": f.turn_id, "kind": format!("{:?}", f.kind), "why": f.failure })).collect::<Vec<_>>(),
        "own_failures": findings.own_failures,
        "leaked_sandboxes": findings.leaked_sandboxes,
        "leaked_databases": findings.leaked_databases,
        "postgres_connections": {
            "turn_roles": { "baseline": baseline.0, "peak": peak.0, "after": after.0 },
            "admin_pool": { "baseline": baseline.1, "peak": peak.1, "after": after.1, "max": ADMIN_POOL_MAX },
        },
        "quick_turn_ms": { "p50": percentile(ms, 0.5), "p95": percentile(ms, 0.95), "max": ms.last().copied().unwrap_or(0) },
        "memory_kib": findings.memory.iter().map(|m| json!({ "component": m.name, "sequential_quarters": m.sequential, "mixed_quarters": m.mixed, "peak": m.peak, "flat": m.flat })).collect::<Vec<_>>(),
        "ledger_problems": soak.ledger_problems,
        "samples": soak.samples,
    })
}
