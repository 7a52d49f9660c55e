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
    Test(Test),
    /// Measure the stack against the performance budgets (release builds); writes target/bench/.
    Bench,
    /// Sequential turns, then a mixed concurrent load, with memory sampled; writes target/soak/.
    Soak(Soak),
    /// Build what `wrangler deploy --env production` would upload and check it against the
    /// Workers limits (only `--dry-run`: deploying needs an account, see README).
    Deploy(Deploy),
}

#[derive(Debug, Args)]
pub(crate) struct Deploy {
    /// Build and check, upload nothing.
    #[arg(long, required = true)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Test {
    /// Instead of the suite: `mayfly doctor` and `mayfly selftest` against the real E2B and
    /// instanode (needs E2B_API_KEY and INSTANODE_TOKEN; without them, says so and exits 2).
    #[arg(long)]
    pub(crate) live: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Dev {
    /// The port the worker listens on (127.0.0.1 only).
    #[arg(long, default_value_t = 8787)]
    pub(crate) port: u16,
}

#[derive(Debug, Args)]
pub(crate) struct Soak {
    /// Passed on to `mayfly-soak`, which owns them: `--turns N` (1000), `--minutes M` (10),
    /// `--concurrency C` (4).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_soaks_flags_pass_through_untouched() {
        let Command::Soak(soak) =
            Xtask::try_parse_from(["cargo xtask", "soak", "--turns", "5", "--minutes", "0.5"]).unwrap().command
        else {
            panic!("not the soak");
        };
        assert_eq!(soak.args, ["--turns", "5", "--minutes", "0.5"]);
    }
}
