//! `cargo xtask build`: the worker (worker-build, local binaries only), the web app (cargo →
//! wasm-bindgen → wasm-opt → `target/dist/web`) and the client library's npm package (the same
//! route → `target/dist/client`), then their sizes.

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
    build_client(root, toolchain)?;
    let artifacts = vec![
        measure("worker", root.join("worker/build/index_bg.wasm"))?,
        measure("web", web_dist(root).join("pkg/mayfly_web_bg.wasm"))?,
        measure("client", client_dist(root).join("mayfly_client_bg.wasm"))?,
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

/// Where the client library's npm package is assembled.
pub(crate) fn client_dist(root: &Path) -> PathBuf {
    root.join("target/dist/client")
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

/// The client library for JavaScript: `MayflyClient` (the `js` feature) as an ES module with its
/// `.d.ts` (wasm-bindgen's, with the event types of `crates/client/src/typescript.rs`), its wasm,
/// and a `package.json`.
fn build_client(root: &Path, toolchain: &Toolchain) -> anyhow::Result<()> {
    eprintln!("== build: client package");
    // A cdylib for this build only: the crate stays a plain library for the web app and for
    // native users, who would otherwise link a shared library they never load.
    run_checked(toolchain.wasm_cargo().args([
        "rustc",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "mayfly-client",
        "--features",
        "js",
        "--crate-type",
        "cdylib",
    ]))?;
    let dist = client_dist(root);
    std::fs::create_dir_all(&dist)?;
    run_checked(
        Command::new(toolchain.wasm_bindgen())
            .args(["--target", "web", "--out-name", "mayfly_client", "--out-dir"])
            .arg(&dist)
            .arg(root.join("target/wasm32-unknown-unknown/release/mayfly_client.wasm")),
    )?;
    let wasm = dist.join("mayfly_client_bg.wasm");
    run_checked(Command::new(toolchain.wasm_opt()).arg("-Oz").args(WASM_OPT_FEATURES).arg(&wasm).arg("-o").arg(&wasm))?;
    std::fs::write(dist.join("package.json"), client_package_json()).context("write package.json")?;
    Ok(())
}

fn client_package_json() -> String {
    let files = ["mayfly_client.js", "mayfly_client.d.ts", "mayfly_client_bg.wasm", "mayfly_client_bg.wasm.d.ts"];
    let files: Vec<String> = files.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        r#"{{
  "name": "mayfly-client",
  "version": "{version}",
  "description": "mayfly's client: run a turn, follow its events with automatic resume, cancel, keep, read",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "mayfly_client.js",
  "module": "mayfly_client.js",
  "types": "mayfly_client.d.ts",
  "files": [{files}],
  "sideEffects": false
}}
"#,
        version = env!("CARGO_PKG_VERSION"),
        files = files.join(", "),
    )
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
