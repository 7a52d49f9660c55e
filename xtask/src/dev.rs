//! `cargo xtask dev`: set up, build, run the stack on 127.0.0.1 and print its URL; Ctrl-C (or
//! SIGTERM) stops every process it started.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mayfly_e2e::{Stack, StackOptions};

use crate::{build, flags, setup};

pub(crate) fn run(root: &Path, flags: &flags::Dev) -> anyhow::Result<()> {
    let toolchain = setup::run(root)?;
    build::run(root, &toolchain)?;
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    let options = StackOptions {
        port: Some(flags.port),
        // Durable Object state survives restarts of `cargo xtask dev`.
        state_dir: Some(root.join("target/dev/wrangler-state")),
        ..StackOptions::default()
    };
    let mut stack = Stack::start(&toolchain.tools(), options)?;
    println!("ready: {}", stack.url);
    println!("  health:  curl -s {}/v1/health", stack.url);
    println!("  logs:    {}", stack.wrangler_log.display());
    println!("Ctrl-C stops everything.");
    loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            break;
        }
        stack.check_alive()?;
    }
    eprintln!("stopping…");
    stack.stop();
    Ok(())
}
