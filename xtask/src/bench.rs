//! `cargo xtask bench`: the performance report against the budgets in `tests/bench/main.rs`. Sets
//! up, builds the wasm bundles (their sizes are part of the report and the worker serves them),
//! then runs the bench binary of `tests/bench/` in the `native` profile: it boots the stack itself
//! and writes `target/bench/`.

use std::path::Path;
use std::time::Instant;

use crate::process::run_checked;
use crate::toolchain::Toolchain;

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let toolchain = crate::setup::run(root)?;
    crate::build::run(root, &toolchain)?;
    let out = root.join("target/bench");
    let started = Instant::now();
    // The `native` profile: release speed without the wasm profile's fat LTO, which would make the
    // first build of the whole native stack take far longer than the run.
    run_checked(
        Toolchain::native_cargo()
            .args(["bench", "--profile", "native", "-p", "mayfly-e2e", "--bench", "bench", "--"])
            .arg(&out),
    )?;
    eprintln!("bench: done in {:.0} s; report in {}", started.elapsed().as_secs_f64(), out.display());
    Ok(())
}
