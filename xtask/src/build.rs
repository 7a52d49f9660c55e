//! `cargo xtask build`: the worker (worker-build, local binaries only) and the web app
//! (cargo → wasm-bindgen → wasm-opt → `target/dist/web`), then their sizes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use flate2::{write::GzEncoder, Compression};

use crate::process::run_checked;
use crate::toolchain::{Toolchain, WASM_OPT_FEATURES};

/// What a build produced, for the size report.
#[derive(Debug)]
pub(crate) struct Artifact {
    pub(crate) name: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) raw: u64,
    pub(crate) gzip: u64,
}

pub(crate) fn run(root: &Path, toolchain: &Toolchain) -> anyhow::Result<Vec<Artifact>> {
    build_worker(toolchain)?;
    build_web(root, toolchain)?;
    let artifacts = vec![
        measure("worker", root.join("worker/build/index_bg.wasm"))?,
        measure("web", web_dist(root).join("pkg/mayfly_web_bg.wasm"))?,
    ];
    eprintln!("== wasm sizes");
    for a in &artifacts {
        eprintln!(
            "  {:<7} {:>9} bytes raw  {:>8} bytes gzip  {}",
            a.name,
            a.raw,
            a.gzip,
            a.path.strip_prefix(root).unwrap_or(&a.path).display()
        );
    }
    Ok(artifacts)
}

/// Where the web app is assembled; the worker's `[assets]` serves this directory.
pub(crate) fn web_dist(root: &Path) -> PathBuf {
    root.join("target/dist/web")
}

fn build_worker(toolchain: &Toolchain) -> anyhow::Result<()> {
    eprintln!("== build: worker");
    // worker-build runs `cargo` itself, and downloads wasm-bindgen, wasm-opt and esbuild unless
    // the three *_BIN variables name local ones.
    let mut cmd = toolchain.wasm_command(Toolchain::cargo_bin_dir().join("worker-build"));
    cmd.arg("--release")
        .current_dir(toolchain.root.join("worker"))
        .env("WASM_BINDGEN_BIN", toolchain.wasm_bindgen())
        .env("WASM_OPT_BIN", toolchain.wasm_opt())
        .env("ESBUILD_BIN", toolchain.tools_dir().join("node_modules/esbuild/bin/esbuild"));
    run_checked(&mut cmd)
}

fn build_web(root: &Path, toolchain: &Toolchain) -> anyhow::Result<()> {
    eprintln!("== build: web");
    run_checked(toolchain.wasm_cargo().args([
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "mayfly-web",
    ]))?;
    let dist = web_dist(root);
    // Update the directory in place: a running `wrangler dev` loses an assets directory that is
    // deleted and made again.
    std::fs::create_dir_all(dist.join("pkg"))?;
    run_checked(
        Command::new(toolchain.wasm_bindgen())
            .args(["--target", "web", "--no-typescript", "--out-name", "mayfly_web", "--out-dir"])
            .arg(dist.join("pkg"))
            .arg(root.join("target/wasm32-unknown-unknown/release/mayfly-web.wasm")),
    )?;
    let wasm = dist.join("pkg/mayfly_web_bg.wasm");
    run_checked(Command::new(toolchain.wasm_opt()).arg("-Oz").args(WASM_OPT_FEATURES).arg(&wasm).arg("-o").arg(&wasm))?;
    std::fs::copy(root.join("index.html"), dist.join("index.html")).context("copy index.html")?;
    std::fs::copy(root.join("web/style.css"), dist.join("style.css")).context("copy style.css")?;
    std::fs::copy(root.join("web/boot.js"), dist.join("boot.js")).context("copy boot.js")?;
    Ok(())
}

fn measure(name: &'static str, path: PathBuf) -> anyhow::Result<Artifact> {
    let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    Ok(Artifact { name, path, raw: bytes.len() as u64, gzip: gzip_len(&bytes)? })
}

/// How many bytes `bytes` take gzipped at the best level: what the platforms' size limits count.
pub(crate) fn gzip_len(bytes: &[u8]) -> anyhow::Result<u64> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len() as u64)
}
