//! `cargo xtask test`: the whole suite, exactly as CI runs it, failing at the first red step.

use std::path::Path;
use std::time::Instant;

use crate::process::{run_checked, run_tests, TestCount};
use crate::toolchain::Toolchain;
use crate::{build, deploy, setup};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut steps: Vec<(&str, f64)> = Vec::new();
    let mut step = |name: &'static str, f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<()> {
        eprintln!("\n==== {name}");
        let t = Instant::now();
        f()?;
        steps.push((name, t.elapsed().as_secs_f64()));
        Ok(())
    };
    let mut count = TestCount::default();

    let mut toolchain = None;
    step("setup", &mut || {
        toolchain = Some(setup::run(root)?);
        Ok(())
    })?;
    let toolchain = toolchain.expect("setup ran");
    step("fmt", &mut || run_checked(Toolchain::native_cargo().args(["fmt", "--all", "--check"])))?;
    step("clippy", &mut || {
        run_checked(Toolchain::native_cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    step("native tests", &mut || {
        run_tests(Toolchain::native_cargo().args(["test", "--workspace", "--exclude", "mayfly-e2e"]), &mut count)
    })?;
    step("core+client on wasm32", &mut || {
        let runner = Toolchain::cargo_bin_dir().join("wasm-bindgen-test-runner");
        run_tests(
            toolchain
                .wasm_cargo()
                .args(["test", "-p", "mayfly-core", "-p", "mayfly-client", "--target", "wasm32-unknown-unknown"])
                // The JavaScript API compiles with the tests, so that it is checked on its target.
                .args(["--features", "mayfly-client/js"])
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner),
            &mut count,
        )
    })?;
    let mut sizes = Vec::new();
    step("wasm builds", &mut || {
        sizes = build::run(root, &toolchain)?;
        Ok(())
    })?;
    step("deploy dry-run", &mut || deploy::dry_run(root, &toolchain).map(drop))?;
    // The fault suite runs the providers as processes of their own, so that it can kill them.
    step("provider binaries", &mut || {
        run_checked(Toolchain::native_cargo().args(["build", "-p", "mayfly-sandboxd", "-p", "mayfly-scratchdb"]))
    })?;
    step("end-to-end tests", &mut || {
        run_tests(Toolchain::native_cargo().args(["test", "-p", "mayfly-e2e", "--", "--test-threads", "2"]), &mut count)
    })?;

    eprintln!("\n==== summary");
    for (name, secs) in &steps {
        eprintln!("  {name:<22} {secs:>7.1}s");
    }
    for a in &sizes {
        eprintln!("  {:<7} wasm {:>9} bytes raw  {:>8} bytes gzip", a.name, a.raw, a.gzip);
    }
    eprintln!("  total                  {:>7.1}s", started.elapsed().as_secs_f64());
    // One closing line for the whole suite: native, wasm32 and end to end together.
    println!("{} passed, {} failed", count.passed, count.failed);
    Ok(())
}
