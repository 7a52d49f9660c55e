//! `mayfly-soak`, run by `cargo xtask soak`: many sequential turns, then a mixed concurrent load
//! for some minutes, against the stack as separate processes. It samples every component's
//! resident memory, the worker's own memory (JavaScript heap and wasm memory) and Postgres's
//! connections while it runs, checks every turn ended as its code says it should, finds nothing
//! left at the end, and writes `target/soak/report.md` and `report.json`. It exits non-zero when a turn failed for a reason not its code's own, something
//! leaked, a component's memory grew, or Postgres's connections did not return to their baseline.
//!
//! `turns.rs` has the turns and how each is judged, `measure.rs` the samples, `model.rs` what the
//! measurements say and `report.rs` its renderings.

mod measure;
mod model;
mod report;
mod turns;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use mayfly_core::{ReapState, TurnState};
use mayfly_e2e::{Profile, SeparateProcessStack, TestStackOptions, Tools};

use measure::sample;
use model::{connections_back, Soak};
use turns::{run_turn, Kind, TurnResult};

/// Long sequential and concurrent load against mayfly's stack, with memory sampled and leaks
/// looked for.
#[derive(Debug, Clone, Parser)]
#[command(name = "mayfly-soak")]
pub(crate) struct Args {
    /// How many turns to run one after the other.
    #[arg(long, default_value_t = 1000)]
    pub(crate) turns: usize,
    /// How long the mixed concurrent load runs, in minutes.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) minutes: f64,
    /// How many turns run at once during the mixed load.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// Runs the providers' debug build instead of the optimised `native` one.
    #[arg(long)]
    pub(crate) debug: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let out_dir = Tools::of_workspace().root.join("target/soak");
    std::fs::create_dir_all(&out_dir)?;
    eprintln!(
        "soak: {} sequential turns, then {} min of mixed load at concurrency {}",
        args.turns, args.minutes, args.concurrency
    );
    let profile = if args.debug { Profile::Debug } else { Profile::Native };
    let stack =
        SeparateProcessStack::start(TestStackOptions::default().profile(profile)).context("the stack starts")?;
    let soak = run(&stack, args)?;
    let findings = soak.findings();
    let markdown = report::markdown(&soak, &findings);
    std::fs::write(out_dir.join("report.json"), serde_json::to_string_pretty(&report::json(&soak, &findings))?)?;
    std::fs::write(out_dir.join("report.md"), &markdown)?;
    println!("{markdown}");
    eprintln!("written: {} and report.json", out_dir.join("report.md").display());
    drop(stack);
    if !findings.ok {
        bail!("the soak found problems: see {}", out_dir.join("report.md").display());
    }
    Ok(())
}

/// The load, sampled all along, then what it left behind.
fn run(stack: &SeparateProcessStack, args: Args) -> anyhow::Result<Soak> {
    let api = stack.client();
    let started = Instant::now();
    let baseline_connections = stack.postgres_connections_by_kind()?;
    let mut inspector = None;
    let samples = Mutex::new(vec![sample(stack, started, "start", &mut inspector)]);
    let phase = Mutex::new("sequential");
    let done = AtomicBool::new(false);
    let results = Mutex::new(Vec::<TurnResult>::new());

    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Sampled every 2 s; checked every 100 ms so that the end is not waited for.
            let mut next = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if Instant::now() >= next {
                    let phase = *phase.lock().unwrap();
                    samples.lock().unwrap().push(sample(stack, started, phase, &mut inspector));
                    next += Duration::from_secs(2);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });

        let sequential = Instant::now();
        for i in 0..args.turns {
            let kind = if i % 2 == 0 { Kind::Query } else { Kind::Bash };
            let result = run_turn(&api, kind);
            if let Some(failure) = &result.failure {
                eprintln!("turn {i} {}: {failure}", result.turn_id);
            }
            results.lock().unwrap().push(result);
            if (i + 1) % 100 == 0 {
                eprintln!("  {} sequential turns in {:.0}s", i + 1, sequential.elapsed().as_secs_f64());
            }
        }

        *phase.lock().unwrap() = "concurrent";
        let until = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
        std::thread::scope(|load| {
            for lane in 0..args.concurrency {
                let (api, results) = (&api, &results);
                load.spawn(move || {
                    let mut n = lane;
                    while Instant::now() < until {
                        let kind = Kind::MIX[n % Kind::MIX.len()];
                        n += args.concurrency + 1;
                        let result = run_turn(api, kind);
                        if let Some(failure) = &result.failure {
                            eprintln!("lane {lane} {}: {failure}", result.turn_id);
                        }
                        results.lock().unwrap().push(result);
                    }
                });
            }
        });
        *phase.lock().unwrap() = "settling";
        done.store(true, Ordering::SeqCst);
    });
    let wall_s = started.elapsed().as_secs_f64();

    // Everything a turn held is reaped by the turn itself; give the last reaps a moment to land.
    let settle_by = Instant::now() + Duration::from_secs(60);
    let (leftovers, after_connections) = loop {
        let leftovers = stack.leftovers()?;
        let connections = stack.postgres_connections_by_kind()?;
        if (leftovers.is_empty() && connections_back(baseline_connections, connections)) || Instant::now() > settle_by {
            break (leftovers, connections);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let last = sample(stack, started, "end", &mut inspector);
    let mut samples = samples.into_inner().unwrap();
    samples.push(last);
    let results = results.into_inner().unwrap();

    // Unfinished or unreaped ledger entries, for a sample of turns (every one would take long).
    let mut ledger_problems = Vec::new();
    for result in results.iter().filter(|r| !r.turn_id.is_empty()).step_by(25) {
        match api.try_detail(&result.turn_id) {
            Ok(detail) => {
                let reaped = detail.resources.iter().all(|r| r.reap == ReapState::Reaped);
                if detail.state != TurnState::Finished || !reaped {
                    ledger_problems.push(format!("{}: {:?} {:?}", result.turn_id, detail.state, detail.resources));
                }
            }
            Err(err) => ledger_problems.push(format!("{}: {err:#}", result.turn_id)),
        }
    }
    Ok(Soak { args, results, samples, baseline_connections, after_connections, leftovers, wall_s, ledger_problems })
}
