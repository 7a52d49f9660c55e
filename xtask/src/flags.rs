//! The command line of `cargo xtask`.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "mayfly's repository automation")]
pub(crate) struct Xtask {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Install every tool the build and the tests need (apt, cargo, npm, pip); safe to run again.
    Setup,
    /// Build the worker and the web app to wasm and print their sizes.
    Build,
    /// Build, then run the stack locally and print its URL; Ctrl-C stops everything.
    Dev(Dev),
    /// The whole suite: setup, fmt, clippy, native and wasm32 tests, wasm builds, end-to-end tests.
    Test,
}

#[derive(Debug, Args)]
pub(crate) struct Dev {
    /// The port the worker listens on (127.0.0.1 only).
    #[arg(long, default_value_t = 8787)]
    pub(crate) port: u16,
}
