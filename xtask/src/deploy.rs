//! `cargo xtask deploy --dry-run`: builds exactly what `wrangler deploy --env production` would
//! upload, and checks it against the Workers platform's limits: the worker's size, the web app's
//! assets, and the subrequests of the largest turn the limits allow (a turn runs in one Durable
//! Object alarm, and the platform caps the subrequests of one invocation). It runs in
//! `cargo xtask test`, so a change that would not deploy fails there.
//!
//! The deploy itself is `wrangler deploy --env production` from `worker/`, with the secrets set
//! (README, "Deploy to Cloudflare"); it needs an account, so it is not run here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use mayfly_core::providers::retry::RetryPolicy;
use mayfly_core::turn::{provider_requests_at_most, ReapPolicy};
use mayfly_core::Limits;

use crate::build::{gzip_len, web_dist};
use crate::process::run_checked;
use crate::toolchain::Toolchain;

/// A Worker's size after compression, on the Paid plan (Free: 3 MiB).
const WORKER_GZIP_LIMIT: u64 = 10 << 20;
const WORKER_GZIP_LIMIT_FREE: u64 = 3 << 20;
/// Static assets: files per Worker, and the size of one.
const ASSET_FILES_LIMIT: usize = 20_000;
const ASSET_SIZE_LIMIT: u64 = 25 << 20;
/// Subrequests of one invocation, on the Paid plan (Free: 50).
const SUBREQUESTS_LIMIT: u32 = 1_000;
const SUBREQUESTS_LIMIT_FREE: u32 = 50;
/// What a turn's object asks other objects besides the providers: its tenant's ledger, once, when
/// the turn is over.
const OBJECT_REQUESTS_PER_TURN: u32 = 1;

/// Bundles the production worker with wrangler's dry run and checks it; the report's lines.
pub(crate) fn dry_run(root: &Path, toolchain: &Toolchain) -> anyhow::Result<Vec<String>> {
    let out = root.join("target/deploy");
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = Command::new(toolchain.npm_bin("wrangler"));
    cmd.current_dir(root.join("worker"))
        .env("PATH", toolchain.tools().node_path())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .args(["deploy", "--dry-run", "--env", "production", "--outdir"])
        .arg(&out);
    run_checked(&mut cmd)?;
    let mut report = Vec::new();
    let mut problems = Vec::new();

    let (raw, gzip) = files(&out)?.iter().try_fold((0, 0), |(raw, gzip), path| {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        anyhow::Ok((raw + bytes.len() as u64, gzip + gzip_len(&bytes)?))
    })?;
    report.push(format!("worker bundle: {raw} bytes raw, {gzip} bytes gzip (limit {WORKER_GZIP_LIMIT}; Free plan {WORKER_GZIP_LIMIT_FREE})"));
    if gzip > WORKER_GZIP_LIMIT {
        problems.push(format!("the worker is {gzip} bytes compressed; Workers take {WORKER_GZIP_LIMIT}"));
    }

    let assets = files(&web_dist(root))?;
    let largest = assets.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).max().unwrap_or(0);
    report.push(format!("assets: {} files, the largest {largest} bytes (limits {ASSET_FILES_LIMIT} files, {ASSET_SIZE_LIMIT} bytes each)", assets.len()));
    if assets.len() > ASSET_FILES_LIMIT || largest > ASSET_SIZE_LIMIT {
        problems.push("the web app's assets are past Workers' static asset limits".to_owned());
    }

    let requests = provider_requests_at_most(&Limits::default(), &RetryPolicy::default(), &ReapPolicy::default())
        + OBJECT_REQUESTS_PER_TURN;
    report.push(format!(
        "the largest turn: at most {requests} subrequests in its alarm (limit {SUBREQUESTS_LIMIT}; \
         Free plan {SUBREQUESTS_LIMIT_FREE}, so the Paid plan is needed)"
    ));
    if requests > SUBREQUESTS_LIMIT {
        problems.push(format!(
            "the largest turn makes {requests} subrequests; one invocation may make {SUBREQUESTS_LIMIT}"
        ));
    }
    for line in &report {
        eprintln!("  {line}");
    }
    if !problems.is_empty() {
        bail!("the worker would not deploy as it is:\n  {}", problems.join("\n  "));
    }
    Ok(report)
}

/// Every file below `dir`.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(files(&path)?);
        } else {
            found.push(path);
        }
    }
    Ok(found)
}
