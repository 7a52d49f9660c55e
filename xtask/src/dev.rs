//! `cargo xtask dev`: set up, build, then run the whole stack on 127.0.0.1 — Postgres, scratchdb
//! and sandboxd in this process (`mayfly stack`'s code), and `wrangler dev` wired to them — and
//! print its URL with a curl example. Ctrl-C (or SIGTERM) stops every process it started.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mayfly_cli::providers::worker_vars;
use mayfly_cli::stack::{LocalStack, StackOptions as LocalStackOptions};
use mayfly_e2e::{WranglerDev, WranglerOptions};

use crate::{build, flags, setup};

pub(crate) fn run(root: &Path, flags: &flags::Dev) -> anyhow::Result<()> {
    let toolchain = setup::run(root)?;
    build::run(root, &toolchain)?;
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;

    // The providers' servers are tokio tasks; a runtime of their own keeps them serving while this
    // thread waits for Ctrl-C.
    let runtime = tokio::runtime::Runtime::new()?;
    let local_options =
        LocalStackOptions { data_dir: Some(root.join("target/dev/stack")), pool: 2, ..LocalStackOptions::default() };
    let local = runtime.block_on(LocalStack::start(local_options))?;
    let api_key = std::env::var("MAYFLY_API_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| format!("dev_{}", uuid::Uuid::new_v4().simple()));
    let mut vars: Vec<(String, String)> =
        worker_vars(&local.endpoints).into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    vars.push(("MAYFLY_API_KEYS".to_owned(), format!("local:{api_key}")));
    // Turn tokens live minutes: a secret of this run's own costs nothing but the tokens of the last.
    let token_secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    vars.push(("MAYFLY_TOKEN_SECRET".to_owned(), token_secret));
    let options = WranglerOptions {
        port: Some(flags.port),
        // Durable Object state survives restarts of `cargo xtask dev`.
        state_dir: Some(root.join("target/dev/wrangler-state")),
        vars,
        assets: None,
    };
    let started = WranglerDev::start(&toolchain.tools(), options);
    let mut worker = match started {
        Ok(worker) => worker,
        Err(err) => {
            runtime.block_on(local.shutdown());
            return Err(err);
        }
    };
    let url = &worker.url;
    println!("ready: {url}");
    println!();
    // The key rides in the fragment, which the browser keeps to itself; the app saves it.
    println!("  the playground:   {url}/#key={api_key}");
    println!("  your API key:     {api_key}   (set MAYFLY_API_KEY to choose it)");
    println!("  sandboxd:         {}", local.endpoints.sandboxd_url);
    println!("  scratchdb:        {}", local.endpoints.scratchdb_url);
    println!("  worker log:       {}", worker.wrangler_log.display());
    println!();
    println!("  # create a turn, then follow its events as Server-Sent Events:");
    println!("  curl -s -X POST {url}/v1/turns -H 'Authorization: Bearer {api_key}' \\");
    println!("       -H 'Content-Type: application/json' -d '{{\"code\": \"print(1)\"}}'");
    println!("  curl -N {url}/v1/turns/<turn_id>/events -H 'Authorization: Bearer {api_key}' \\");
    println!("       -H 'Accept: text/event-stream'");
    println!("  # a turn token for a page in a browser (creates and watches turns, for 10 minutes):");
    println!("  curl -s -X POST {url}/v1/tokens -H 'Authorization: Bearer {api_key}' -d '{{\"ttl_s\": 600}}'");
    println!();
    println!("Ctrl-C stops everything.");
    let result = loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            break Ok(());
        }
        if let Err(err) = worker.check_alive() {
            break Err(err);
        }
    };
    eprintln!("stopping: worker, sandboxes, scratch databases, Postgres…");
    worker.stop();
    runtime.block_on(local.shutdown());
    result
}
