//! `mayfly selftest`: three real turns against the configured providers — the seed turn, a turn
//! cancelled with Ctrl-C, and a turn whose `mayfly run` is killed mid-run — then proof, from the
//! providers' own lists, that nothing of them is left.
//!
//! It drives this very binary's `mayfly run` as a user would (a child process, signals and all),
//! so what it proves is the command people use, not a test double of it. The crashed turn is
//! found and reaped the way an operator's `mayfly reap` would, by the providers' tags
//! (`docs/reliability.md`). `cargo xtask test --live` runs it against the real E2B and instanode.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use mayfly_core::providers::{database_turn, sandbox_turn, Clock, DatabaseProvider, SandboxProvider};
use mayfly_core::TemplateMap;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::clock::SystemClock;
use crate::providers::NativeProviders;

/// The seed turn of the README: a million rows into the scratch database, counted.
const SEED: &str = include_str!("../../../examples/seed_turn.py");
/// A turn that says it started and then waits to be ended from outside.
const WAITER: &str = "import time\nprint('waiting', flush=True)\ntime.sleep(600)\n";
/// How long a turn may take to reach its process against a cold provider.
const START_WITHIN: Duration = Duration::from_secs(180);
/// How long past its deadline the crashed turn's resources may take to be swept.
const SWEPT_WITHIN: Duration = Duration::from_secs(180);
/// The crashed turn's own deadline: short, so its resources are past it soon after the crash.
const CRASH_TIMEOUT_S: u32 = 5;

/// One turn's `mayfly run`, as its stderr told it.
struct RunLog {
    turn_id: String,
    stderr: String,
}

/// Runs the three turns and the checks, printing one line per step; fails at the first step
/// that does not hold, saying what was seen.
pub async fn run(exe: &Path, providers: &NativeProviders, templates: &TemplateMap) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a scratch directory for the turns' files")?;
    let seed_file = write(dir.path(), "seed_turn.py", SEED)?;
    let waiter_file = write(dir.path(), "waiter.py", WAITER)?;
    let runner = Runner { exe, templates };
    let mut turns = Vec::new();

    let (status, stdout, seed) = runner.run_to_end(&seed_file, &[]).await?;
    ensure!(status == Some(0), "the seed turn exited with {status:?}:\n{}", seed.stderr);
    ensure!(stdout.contains("(1000000,)"), "the seed turn printed {stdout:?}, not (1000000,)");
    ensure_reaped(&seed)?;
    println!("  ok  seed turn {}: printed (1000000,); sandbox and database reaped", seed.turn_id);
    turns.push(seed.turn_id);

    let mut child = runner.spawn(&waiter_file, &["--timeout", "300"])?;
    let started = wait_for_process(&mut child).await?;
    signal(&child, Signal::SIGINT)?;
    let cancelled = finish(child, started).await?;
    ensure!(
        cancelled.stderr.contains("turn finished: cancelled"),
        "Ctrl-C did not cancel the turn:\n{}",
        cancelled.stderr
    );
    ensure_reaped(&cancelled)?;
    println!("  ok  cancelled turn {}: Ctrl-C ended it; sandbox and database reaped", cancelled.turn_id);
    turns.push(cancelled.turn_id);

    let mut child = runner.spawn(&waiter_file, &["--timeout", &CRASH_TIMEOUT_S.to_string()])?;
    let crashed = wait_for_process(&mut child).await?;
    signal(&child, Signal::SIGKILL)?;
    let _ = child.wait().await;
    let crash_id = crashed.turn_id.clone();
    let left = leftovers(providers, std::slice::from_ref(&crash_id)).await?;
    ensure!(
        left.len() == 2,
        "a `mayfly run` killed mid-turn should leave its sandbox and database to the sweep; the providers list {left:?}"
    );
    let swept_in = sweep_until_gone(providers, &crash_id).await?;
    println!("  ok  crashed turn {crash_id}: killed mid-run; its sandbox and database were swept {swept_in} s later");
    turns.push(crash_id);

    let left = leftovers(providers, &turns).await?;
    ensure!(left.is_empty(), "left at the providers: {left:?}");
    println!("  ok  nothing left: neither provider lists a sandbox or database of these turns");
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Starts `mayfly run` children with this process's configuration.
struct Runner<'a> {
    exe: &'a Path,
    templates: &'a TemplateMap,
}

impl Runner<'_> {
    fn spawn(&self, file: &Path, flags: &[&str]) -> anyhow::Result<Child> {
        Command::new(self.exe)
            .arg("run")
            .args(flags)
            .arg(file)
            // The flags this process was given reach the child as the variables they stand for.
            .envs(self.templates.variables())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} run", self.exe.display()))
    }

    async fn run_to_end(&self, file: &Path, flags: &[&str]) -> anyhow::Result<(Option<i32>, String, RunLog)> {
        let child = self.spawn(file, flags)?;
        let out = tokio::time::timeout(START_WITHIN * 2, child.wait_with_output())
            .await
            .context("the turn did not end in time")??;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let turn_id = turn_id(&stderr)?;
        Ok((out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), RunLog { turn_id, stderr }))
    }
}

/// Reads the child's stderr until its process has started; returns what it said so far.
async fn wait_for_process(child: &mut Child) -> anyhow::Result<RunLog> {
    let stderr = child.stderr.as_mut().context("stderr is piped")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let started = async {
        while let Some(line) = lines.next_line().await? {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("process started") {
                return Ok(true);
            }
        }
        anyhow::Ok(false)
    };
    let started = tokio::time::timeout(START_WITHIN, started).await.context("the turn's process did not start")??;
    ensure!(started, "`mayfly run` ended before its process started:\n{seen}");
    Ok(RunLog { turn_id: turn_id(&seen)?, stderr: seen })
}

/// Waits for the child to end and adds the rest of its stderr to `log`.
async fn finish(mut child: Child, mut log: RunLog) -> anyhow::Result<RunLog> {
    let mut rest = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        tokio::time::timeout(START_WITHIN, stderr.read_to_string(&mut rest))
            .await
            .context("the turn did not end")??;
    }
    child.wait().await?;
    log.stderr.push_str(&rest);
    Ok(log)
}

fn signal(child: &Child, signal: Signal) -> anyhow::Result<()> {
    let pid = child.id().context("the child has ended already")?;
    let pid = i32::try_from(pid).context("a pid fits in i32")?;
    kill(Pid::from_raw(pid), signal).with_context(|| format!("sending {signal}"))
}

/// The id `mayfly run` prints on its first line: `mayfly: turn t_…: …`.
fn turn_id(stderr: &str) -> anyhow::Result<String> {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("mayfly: turn ")?.split(':').next())
        .map(str::to_owned)
        .with_context(|| format!("no turn id in:\n{stderr}"))
}

fn ensure_reaped(log: &RunLog) -> anyhow::Result<()> {
    ensure!(
        log.stderr.contains("mayfly: sandbox reaped, database reaped"),
        "turn {} did not reap both resources:\n{}",
        log.turn_id,
        log.stderr
    );
    Ok(())
}

/// What the providers list, by their mayfly tags, of `turns`: `sandbox <id>` or `database <name>`.
pub async fn leftovers(providers: &NativeProviders, turns: &[String]) -> anyhow::Result<Vec<String>> {
    let turns: BTreeSet<&str> = turns.iter().map(String::as_str).collect();
    let mut left = Vec::new();
    for sandbox in providers.sandboxes.list_tagged().await.context("listing E2B's sandboxes")? {
        if sandbox_turn(&sandbox.metadata).is_some_and(|turn| turns.contains(turn)) {
            left.push(format!("sandbox {}", sandbox.sandbox_id));
        }
    }
    for database in providers.databases.list().await.context("listing instanode's databases")? {
        if database_turn(&database.name).is_some_and(|turn| turns.contains(turn)) {
            left.push(format!("database {}", database.name));
        }
    }
    Ok(left)
}

/// Sweeps as `mayfly reap --grace-minutes 0` does until `turn`'s resources are gone; returns the
/// seconds it took. The sweep reaps only what is past its deadline, which the crashed turn's
/// short timeout brings within seconds.
async fn sweep_until_gone(providers: &NativeProviders, turn: &str) -> anyhow::Result<u64> {
    let began = Instant::now();
    let turns = [turn.to_owned()];
    loop {
        let report = mayfly_core::providers::sweep::sweep(providers, SystemClock.now_ms(), 0).await;
        if !report.errors.is_empty() {
            bail!("the sweep failed: {}", report.errors.join("; "));
        }
        if leftovers(providers, &turns).await?.is_empty() {
            return Ok(began.elapsed().as_secs());
        }
        if began.elapsed() > SWEPT_WITHIN + Duration::from_secs(CRASH_TIMEOUT_S.into()) {
            bail!("the crashed turn's resources were still listed {} s after the crash", began.elapsed().as_secs());
        }
        // The deadline is a wall-clock time at the provider; there is nothing to wait on but it.
        SystemClock.sleep(1000).await;
    }
}
