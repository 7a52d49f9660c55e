//! The soak's model: what it measured (every turn, every sample, what was left at the end) and
//! what that says (failures by cause, memory per component and phase, the verdict).
//! `report.rs` renders it.

use std::collections::BTreeMap;

use mayfly_core::Outcome;
use mayfly_e2e::leftovers::Leftovers;

use crate::measure::{Sample, ADMIN_POOL_MAX, JUDGED, RUNTIME};
use crate::turns::{Kind, TurnResult};
use crate::Args;

/// What one soak measured.
#[derive(Debug)]
pub(crate) struct Soak {
    pub(crate) args: Args,
    pub(crate) results: Vec<TurnResult>,
    pub(crate) samples: Vec<Sample>,
    /// Postgres's client connections (turns' roles, the admin pool) before the first turn.
    pub(crate) baseline_connections: (i64, i64),
    /// The same once the load has settled.
    pub(crate) after_connections: (i64, i64),
    pub(crate) leftovers: Leftovers,
    pub(crate) wall_s: f64,
    /// Ledger entries, of a sample of turns, that are not final.
    pub(crate) ledger_problems: Vec<String>,
}

/// One component's memory over the load: the mean of the first and the last quarter of each
/// phase's samples, its peak, and whether it stayed flat (`None`: reported, not judged).
#[derive(Debug)]
pub(crate) struct Memory {
    pub(crate) name: &'static str,
    pub(crate) sequential: Option<(u64, u64)>,
    pub(crate) mixed: Option<(u64, u64)>,
    pub(crate) peak: u64,
    pub(crate) flat: Option<bool>,
}

/// What the measurements say.
#[derive(Debug)]
pub(crate) struct Findings<'a> {
    /// Turns that failed for a reason not their code's own.
    pub(crate) failures: Vec<&'a TurnResult>,
    /// Turns whose code failed, timed out or was cancelled, as it should.
    pub(crate) own_failures: usize,
    pub(crate) by_kind: BTreeMap<String, usize>,
    /// POST to `turn.finished` of the quick turns (query, bash), in milliseconds, sorted.
    pub(crate) quick_ms: Vec<u64>,
    /// How many samples were taken during the load.
    pub(crate) load_samples: usize,
    pub(crate) memory: Vec<Memory>,
    pub(crate) peak_connections: (i64, i64),
    pub(crate) leaked_sandboxes: usize,
    pub(crate) leaked_databases: usize,
    pub(crate) ok: bool,
}

/// A component's memory is flat when the mean of the last quarter of samples is within 20 % (or
/// 16 MiB, for small processes) of the mean of the first quarter.
fn flat(first_kib: u64, last_kib: u64) -> bool {
    last_kib <= first_kib + (first_kib / 5).max(16 * 1024)
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl Soak {
    pub(crate) fn findings(&self) -> Findings<'_> {
        let results = &self.results;
        let failures: Vec<&TurnResult> = results.iter().filter(|r| r.failure.is_some()).collect();
        let own_failures =
            results.iter().filter(|r| r.failure.is_none() && r.kind.expected().0 != Outcome::Succeeded).count();
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for result in results {
            *by_kind.entry(format!("{:?}", result.kind)).or_default() += 1;
        }
        let mut quick_ms: Vec<u64> =
            results.iter().filter(|r| matches!(r.kind, Kind::Query | Kind::Bash)).map(|r| r.ms).collect();
        quick_ms.sort_unstable();

        // Memory is compared within each steady phase, not across them: the mixed load keeps more
        // turns alive at once than the sequential one, so its level is higher by design. A leak
        // still shows as growth within a phase.
        let load: Vec<&Sample> =
            self.samples.iter().filter(|s| s.phase == "sequential" || s.phase == "concurrent").collect();
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
            memory.push(Memory { name, sequential, mixed, peak, flat: is_flat });
        }
        let peak_connections = (
            self.samples.iter().map(|s| s.turn_connections).max().unwrap_or(0),
            self.samples.iter().map(|s| s.admin_connections).max().unwrap_or(0),
        );
        let (leaked_sandboxes, leaked_databases) = self.leftovers.counts();
        let ok = failures.is_empty()
            && self.leftovers.is_empty()
            && all_flat
            && connections_back(self.baseline_connections, self.after_connections)
            && self.ledger_problems.is_empty()
            && !results.is_empty();
        Findings {
            failures,
            own_failures,
            by_kind,
            quick_ms,
            load_samples: load.len(),
            memory,
            peak_connections,
            leaked_sandboxes,
            leaked_databases,
            ok,
        }
    }
}

/// Whether Postgres's connections are back where they were: turns' connections end with their
/// databases; the admin pool keeps idle connections, up to its bound, for the next turns.
pub(crate) fn connections_back(baseline: (i64, i64), now: (i64, i64)) -> bool {
    now.0 <= baseline.0 && now.1 <= ADMIN_POOL_MAX
}
