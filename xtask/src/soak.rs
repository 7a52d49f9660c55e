//! `cargo xtask soak`: builds the stack in the optimised `native` profile and runs `mayfly-soak` (`tests/soak/`):
//! sequential turns, then a mixed concurrent load, with memory sampled and a report written to
//! `target/soak/`. Long by design, so not part of `cargo xtask test`.

use std::path::Path;

use crate::flags::Soak;
use crate::process::run_checked;
use crate::toolchain::Toolchain;
use crate::{build, setup};

pub(crate) fn run(root: &Path, soak: &Soak) -> anyhow::Result<()> {
    let toolchain = setup::run(root)?;
    build::run(root, &toolchain)?;
    run_checked(Toolchain::native_cargo().args([
        "build",
        "--profile",
        "native",
        "-p",
        "mayfly-sandboxd",
        "-p",
        "mayfly-scratchdb",
        "-p",
        "mayfly-e2e",
        "--bin",
        "mayfly-sandboxd",
        "--bin",
        "mayfly-scratchdb",
        "--bin",
        "mayfly-soak",
    ]))?;
    let soak_bin = root.join("target/native/mayfly-soak");
    run_checked(std::process::Command::new(soak_bin).args(&soak.args))
}
