//! The report's model and its three renderings: `report.json` (every sample kept), `report.md` and
//! the summary table printed at the end. Percentiles are exact nearest-rank over the sorted samples.

use std::fmt::Write as _;

use serde::Serialize;

/// One measured quantity: its samples in milliseconds, and every failed attempt with its cause.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    pub(crate) section: &'static str,
    pub(crate) name: String,
    pub(crate) samples_ms: Vec<f64>,
    pub(crate) failures: Vec<String>,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
    /// The name of the floor figure this one is compared with.
    pub(crate) floor: Option<String>,
}

impl Figure {
    pub(crate) fn new(section: &'static str, name: impl Into<String>, floor: Option<&str>) -> Figure {
        Figure {
            section,
            name: name.into(),
            samples_ms: Vec::new(),
            failures: Vec::new(),
            p50_ms: None,
            p95_ms: None,
            floor: floor.map(str::to_owned),
        }
    }

    pub(crate) fn push(&mut self, ms: f64) {
        self.samples_ms.push(ms);
        self.p50_ms = percentile(&self.samples_ms, 0.50);
        self.p95_ms = percentile(&self.samples_ms, 0.95);
    }
}

/// The nearest-rank percentile: the smallest sample with at least `p` of the samples at or below it.
pub(crate) fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).copied()
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Concurrency {
    pub(crate) turns: usize,
    pub(crate) wall_s: f64,
    pub(crate) throughput_per_s: f64,
    pub(crate) first_byte_p50_ms: Option<f64>,
    pub(crate) first_byte_p95_ms: Option<f64>,
    pub(crate) finished_p95_ms: Option<f64>,
    pub(crate) failures: Vec<String>,
    /// Sandboxes and scratch databases still listed by the providers once every turn is over.
    pub(crate) leaks: Option<usize>,
    /// The machine's CPU time (every process, every core) while the turns ran, per turn.
    pub(crate) cpu_ms_per_turn: Option<f64>,
    /// That time split by program (`cpu.rs`), in ms a turn.
    pub(crate) cpu_by_program: Vec<(String, f64)>,
    /// How long the machine's cores need for that much CPU time at the least: turns × CPU a turn ÷
    /// cores. No first byte can come later than the slowest turn's, and this bounds that from below.
    pub(crate) cpu_bound_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Streaming {
    pub(crate) path: &'static str,
    pub(crate) bytes: usize,
    pub(crate) intact: bool,
    /// From the first stdout byte to the last, as the client saw them.
    pub(crate) stream_mb_per_s: f64,
    /// From the request to the last stdout byte.
    pub(crate) end_to_end_mb_per_s: f64,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Size {
    pub(crate) name: &'static str,
    pub(crate) raw_bytes: u64,
    pub(crate) gzip_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Budget {
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) measured: String,
    /// `None` when the figure could not be measured, which counts as not met.
    pub(crate) met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) memory_gib: f64,
    pub(crate) cpu: String,
    pub(crate) os: String,
    /// `/proc/loadavg` when the run began: other work on the machine skews every figure.
    pub(crate) load_at_start: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) date: String,
    pub(crate) machine: Machine,
    pub(crate) wall_s: f64,
    pub(crate) figures: Vec<Figure>,
    pub(crate) concurrency: Vec<Concurrency>,
    pub(crate) streaming: Vec<Streaming>,
    pub(crate) sizes: Vec<Size>,
    pub(crate) budgets: Vec<Budget>,
    /// A turn through the worker against the direct SDK flow and against the floor, in words.
    pub(crate) headline: Vec<String>,
    pub(crate) notes: Vec<String>,
    /// Sections that could not run at all, with why.
    pub(crate) errors: Vec<String>,
}

impl Report {
    pub(crate) fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    pub(crate) fn p50(&self, name: &str) -> Option<f64> {
        self.figure(name).and_then(|f| f.p50_ms)
    }
}

pub(crate) fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}"))
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "NOT MEASURED",
    }
}

/// The table printed at the end of the run, one line a figure, then the budgets.
pub(crate) fn summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<58} {:>9} {:>9} {:>5} {:>5}  floor p50", "figure", "p50 ms", "p95 ms", "n", "fail");
    for f in &report.figures {
        let floor = f.floor.as_deref().map(|floor| ms(report.p50(floor))).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<58} {:>9} {:>9} {:>5} {:>5}  {floor}",
            f.name,
            ms(f.p50_ms),
            ms(f.p95_ms),
            f.samples_ms.len(),
            f.failures.len()
        );
    }
    for c in &report.concurrency {
        let _ = writeln!(
            out,
            "{:<58} {:>9} {:>9} {:>5} {:>5}  {:.2} turns/s, leaks {}",
            format!("concurrency {}: POST → first stdout byte", c.turns),
            ms(c.first_byte_p50_ms),
            ms(c.first_byte_p95_ms),
            c.turns,
            c.failures.len(),
            c.throughput_per_s,
            c.leaks.map_or_else(|| "unknown".to_owned(), |l| l.to_string())
        );
    }
    for s in &report.streaming {
        let _ = writeln!(
            out,
            "streaming, {:<47} {:>7.1} MB/s stream, {:>7.1} MB/s end to end, intact: {}",
            s.path, s.stream_mb_per_s, s.end_to_end_mb_per_s, s.intact
        );
    }
    for s in &report.sizes {
        let _ = writeln!(out, "size {:<12} {:>10} bytes raw {:>10} bytes gzip", s.name, s.raw_bytes, s.gzip_bytes);
    }
    let _ = writeln!(out, "\n{:<44} {:<28} {:<34} verdict", "budget", "target", "measured");
    for b in &report.budgets {
        let _ = writeln!(out, "{:<44} {:<28} {:<34} {}", b.name, b.target, b.measured, met(b.met));
    }
    for e in &report.errors {
        let _ = writeln!(out, "FAILED SECTION: {e}");
    }
    out
}

pub(crate) fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# mayfly benchmark report\n");
    let _ = writeln!(
        md,
        "Run on {} — {} cores, {:.1} GiB memory, {}; {}; load average at the start {}. The whole run took \
         {:.0} s.\n",
        report.date, m.cores, m.memory_gib, m.cpu, m.os, m.load_at_start, report.wall_s
    );
    let _ = writeln!(
        md,
        "Every figure is p50 / p95 in milliseconds over its samples (exact nearest rank), next to the p50 of the \
         floor it is compared with. Failed attempts are counted, never dropped. Raw samples are in `report.json`.\n"
    );
    if !report.errors.is_empty() {
        let _ = writeln!(md, "## Sections that failed\n");
        for e in &report.errors {
            let _ = writeln!(md, "- {e}");
        }
        md.push('\n');
    }
    if !report.headline.is_empty() {
        let _ = writeln!(md, "## Headline\n");
        for line in &report.headline {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Budgets\n\n| budget | target | measured | verdict |\n|---|---|---|---|");
    for b in &report.budgets {
        let _ = writeln!(md, "| {} | {} | {} | **{}** |", b.name, b.target, b.measured, met(b.met));
    }
    let mut section = "";
    for f in &report.figures {
        if f.section != section {
            section = f.section;
            let _ = writeln!(
                md,
                "\n## {section}\n\n| figure | p50 | p95 | n | failed | floor p50 |\n|---|---|---|---|---|---|"
            );
        }
        let floor = f.floor.as_deref().map(|floor| format!("{} ({floor})", ms(report.p50(floor)))).unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {floor} |",
            f.name,
            ms(f.p50_ms),
            ms(f.p95_ms),
            f.samples_ms.len(),
            f.failures.len()
        );
    }
    let failures: Vec<_> = report.figures.iter().flat_map(|f| f.failures.iter().map(move |e| (&f.name, e))).collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "\nFailed attempts:\n");
        for (name, e) in failures {
            let _ = writeln!(md, "- {name}: {e}");
        }
    }
    let _ = writeln!(
        md,
        "\n## Concurrency (through the worker)\n\n| turns | wall s | turns/s | first byte p50 | first byte p95 | \
         finished p95 | failures | leaks | CPU ms a turn | CPU-bound wall s |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &report.concurrency {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
            c.turns,
            c.wall_s,
            c.throughput_per_s,
            ms(c.first_byte_p50_ms),
            ms(c.first_byte_p95_ms),
            ms(c.finished_p95_ms),
            c.failures.len(),
            c.leaks.map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
            ms(c.cpu_ms_per_turn),
            c.cpu_bound_s.map_or_else(|| "?".to_owned(), |s| format!("{s:.2}")),
        );
        for e in &c.failures {
            let _ = writeln!(md, "\n- failure with {} turns: {e}", c.turns);
        }
    }
    for c in report.concurrency.iter().filter(|c| !c.cpu_by_program.is_empty()) {
        let split: Vec<String> = c.cpu_by_program.iter().map(|(name, ms)| format!("{name} {ms:.1}")).collect();
        let _ = writeln!(md, "\n- {} turns, CPU ms a turn by program: {}.", c.turns, split.join(", "));
    }
    let _ = writeln!(
        md,
        "\n## Streaming a turn's whole output (stdout up to the output limit)\n\n| path | bytes | intact (SHA-256) | stream MB/s | end to end MB/s | error |\n\
         |---|---|---|---|---|---|"
    );
    for s in &report.streaming {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.1} | {} |",
            s.path,
            s.bytes,
            s.intact,
            s.stream_mb_per_s,
            s.end_to_end_mb_per_s,
            s.error.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(md, "\n## Sizes\n\n| artifact | raw bytes | gzip bytes |\n|---|---|---|");
    for s in &report.sizes {
        let _ = writeln!(md, "| {} | {} | {} |", s.name, s.raw_bytes, s.gzip_bytes);
    }
    let _ = writeln!(md, "\n## Notes\n");
    for n in &report.notes {
        let _ = writeln!(md, "- {n}");
    }
    let _ = writeln!(md, "\n![latency](latency.png)\n\n![concurrency](concurrency.png)");
    md
}
