//! `cargo xtask`: mayfly's repository automation, one module per task.
//!
//! - `setup` installs every tool the build and the tests need, and is cheap to run again;
//! - `build` builds the worker and the web app to wasm and prints their sizes;
//! - `dev` builds, then runs the stack and prints its URL;
//! - `test` runs the whole suite, exactly as CI does; `test --live` proves turns against the real
//!   providers instead;
//! - `bench` measures the stack against the performance budgets and writes a report;
//! - `soak` runs many turns and a long mixed load, sampling memory, and writes a report;
//! - `deploy --dry-run` builds what a production deploy uploads and checks it against the limits.

mod bench;
mod build;
mod debian;
mod deploy;
mod dev;
mod flags;
mod live;
mod process;
mod setup;
mod shape;
mod soak;
mod test;
mod tidy;
mod toolchain;

use std::path::{Path, PathBuf};

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match flags.command {
        flags::Command::Setup => setup::run(&root).map(drop),
        flags::Command::Build => build::run(&root, &setup::run(&root)?).map(drop),
        flags::Command::Dev(dev) => dev::run(&root, &dev),
        flags::Command::Test(test) if test.live => live::run(&root),
        flags::Command::Test(_) => test::run(&root),
        flags::Command::Bench => bench::run(&root),
        flags::Command::Soak(soak) => soak::run(&root, &soak),
        flags::Command::Deploy(_) => {
            let toolchain = setup::run(&root)?;
            build::run(&root, &toolchain)?;
            deploy::dry_run(&root, &toolchain).map(drop)
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}
