//! `cargo xtask setup`: installs what the build and the tests need, skipping what is there.
//!
//! Every step checks before it acts, so a second run does no installs and takes seconds. apt runs
//! only as root; otherwise the exact command is printed and setup stops.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::debian;
use crate::process::{output, run_checked, version_of};
use crate::toolchain::{
    parse_node_version, Toolchain, WasmMode, MIN_NODE_FOR_WRANGLER, WASM_BINDGEN_VERSION, WORKER_BUILD_VERSION,
};

pub(crate) fn run(root: &Path) -> anyhow::Result<Toolchain> {
    let started = Instant::now();
    let toolchain = rustup_wasm_target(root);
    eprintln!("== setup: wasm32 via {}", toolchain.mode_name());
    apt(&toolchain)?;
    cargo_tools()?;
    npm_tools(&toolchain)?;
    python_tools(&toolchain)?;
    print_versions(&toolchain);
    eprintln!("== setup done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(toolchain)
}

/// Where rustup is, its own wasm32 target is the simplest route: it is asked for once (quietly
/// refused where rustup cannot download), and Debian's compiler is the fallback.
fn rustup_wasm_target(root: &Path) -> Toolchain {
    let toolchain = Toolchain::detect(root);
    if toolchain.mode == WasmMode::Debian && Command::new("rustup").arg("--version").output().is_ok() {
        eprintln!("$ rustup target add wasm32-unknown-unknown");
        // Bounded: a network that drops packets must not hold setup up.
        let added = Command::new("timeout")
            .args(["120", "rustup", "target", "add", "wasm32-unknown-unknown"])
            .status()
            .is_ok_and(|status| status.success());
        if added {
            return Toolchain::detect(root);
        }
        eprintln!("rustup could not add the wasm32 target; building wasm32 with Debian's rustc-web");
    }
    toolchain
}

fn apt(toolchain: &Toolchain) -> anyhow::Result<()> {
    let mut needed: Vec<&debian::Needed> = debian::ALWAYS.iter().collect();
    if toolchain.mode == WasmMode::Debian {
        needed.extend(debian::DEBIAN_WASM);
    }
    let missing = debian::missing(needed);
    if missing.is_empty() {
        eprintln!("apt: all packages present");
    } else {
        let install = format!("apt-get update && apt-get install -y {}", missing.join(" "));
        if !is_root() {
            bail!("missing Debian packages; run as root:\n    sudo sh -c '{install}'");
        }
        run_checked(Command::new("apt-get").args(["update", "-qq"]))?;
        run_checked(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    if toolchain.mode == WasmMode::Debian {
        let version = output(Command::new("/usr/bin/rustc").arg("--version"))?;
        let minor: u32 = version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0);
        if minor < 91 {
            bail!(
                "{} is older than 1.91 (worker needs it): enable bookworm-security and upgrade rustc-web",
                version.trim()
            );
        }
        if !Path::new("/usr/bin/rust-lld").exists() {
            bail!("/usr/bin/rust-lld does not resolve: install rust-web-llvm (it links to lld-22's lld)");
        }
        // worker-build insists that the target's libdir exists; with build-std nothing is read
        // from it, so an empty directory satisfies the check.
        let libdir = output(Command::new("/usr/bin/rustc").args([
            "--target",
            "wasm32-unknown-unknown",
            "--print",
            "target-libdir",
        ]))?;
        let libdir = libdir.trim();
        if !Path::new(libdir).exists() {
            if !is_root() {
                bail!("missing {libdir}; run as root: mkdir -p {libdir}");
            }
            std::fs::create_dir_all(libdir).with_context(|| format!("cannot create {libdir}"))?;
        }
    }
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).map(|uid| uid.trim() == "0").unwrap_or(false)
}

fn cargo_tools() -> anyhow::Result<()> {
    cargo_install("wasm-bindgen-cli", WASM_BINDGEN_VERSION, "wasm-bindgen")?;
    cargo_install("worker-build", WORKER_BUILD_VERSION, "worker-build")
}

fn cargo_install(krate: &str, version: &str, bin: &str) -> anyhow::Result<()> {
    let path = Toolchain::cargo_bin_dir().join(bin);
    if version_of(Command::new(&path).arg("--version")).contains(version) {
        eprintln!("cargo: {krate} {version} present");
        return Ok(());
    }
    let install = |locked: bool| {
        let mut cmd = Toolchain::native_cargo();
        cmd.args(["install", krate, "--version", version, "--force"]);
        if locked {
            cmd.arg("--locked");
        }
        run_checked(&mut cmd)
    };
    // A locked dependency is sometimes missing from the registry mirror; resolving afresh works.
    install(true).or_else(|_| install(false))
}

fn npm_tools(toolchain: &Toolchain) -> anyhow::Result<()> {
    npm_ci(&toolchain.tools_dir())?;
    let system_node = version_of(Command::new("node").arg("--version"));
    match parse_node_version(&system_node) {
        Some(version) if version >= MIN_NODE_FOR_WRANGLER => {
            eprintln!("node: system {system_node} is new enough");
        }
        _ => {
            eprintln!("node: system {system_node} is older than wrangler needs; using Node.js 22 from npm");
            npm_ci(&toolchain.tools_dir().join("node"))?;
        }
    }
    Ok(())
}

/// `npm ci` in `dir` unless its node_modules already match its lock file.
fn npm_ci(dir: &Path) -> anyhow::Result<()> {
    let lock =
        std::fs::read(dir.join("package-lock.json")).with_context(|| format!("{}/package-lock.json", dir.display()))?;
    let stamp = dir.join("node_modules/.mayfly-installed-lock");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        eprintln!("npm: {} up to date", dir.display());
        return Ok(());
    }
    run_checked(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir))?;
    std::fs::write(&stamp, lock)?;
    Ok(())
}

/// Two venvs built from the system's Python: `tools/venv` with the tests' tools (the official e2b
/// SDK, psycopg, schemathesis), and `tools/sandbox-venv` with only what the `mayfly` template
/// gives every sandbox (psycopg). The sandboxes see only system paths, so the system's Python
/// runs the latter's packages there.
fn python_tools(toolchain: &Toolchain) -> anyhow::Result<()> {
    let tools = toolchain.tools_dir();
    let pip = tools.join("venv/bin/pip");
    venv(&tools.join("venv"), &tools.join("requirements.txt"), None)?;
    // Without pip of its own: pip and setuptools would be most of it, in every sandbox.
    venv(&tools.join("sandbox-venv"), &tools.join("sandbox-requirements.txt"), Some(&pip))
}

/// Makes the venv at `venv` hold exactly what `requirements` pins, unless it already does; with
/// `installer`, the venv gets no pip and that pip installs into it.
fn venv(venv: &Path, requirements: &Path, installer: Option<&Path>) -> anyhow::Result<()> {
    let pinned = std::fs::read(requirements).with_context(|| requirements.display().to_string())?;
    let stamp = venv.join(".mayfly-installed-requirements");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == pinned) {
        eprintln!("pip: {} up to date", venv.display());
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        let mut create = Command::new("/usr/bin/python3");
        create.arg("-m").arg("venv");
        if installer.is_some() {
            create.arg("--without-pip");
        }
        run_checked(create.arg(venv))?;
    }
    let mut install = match installer {
        Some(pip) => {
            let mut install = Command::new(pip);
            install.arg("--python").arg(venv.join("bin/python"));
            install
        }
        None => Command::new(venv.join("bin/pip")),
    };
    run_checked(install.args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(requirements))?;
    std::fs::write(&stamp, pinned)?;
    Ok(())
}

fn print_versions(toolchain: &Toolchain) {
    let mut rows: Vec<(&str, String)> = vec![
        ("cargo (native)", version_of(Toolchain::native_cargo().arg("--version"))),
        ("cargo (wasm32)", version_of(toolchain.wasm_cargo().arg("--version"))),
        ("rustc (wasm32)", version_of(toolchain.wasm_rustc().arg("--version"))),
        ("wasm-bindgen", version_of(Command::new(toolchain.wasm_bindgen()).arg("--version"))),
        ("worker-build", version_of(Command::new(Toolchain::cargo_bin_dir().join("worker-build")).arg("--version"))),
        ("wasm-opt", version_of(Command::new(toolchain.wasm_opt()).arg("--version"))),
        (
            "node (wrangler)",
            version_of(Command::new("node").env("PATH", toolchain.tools().node_path()).arg("--version")),
        ),
        (
            "wrangler",
            version_of(
                Command::new(toolchain.npm_bin("wrangler")).arg("--version").env("PATH", toolchain.tools().node_path()),
            ),
        ),
        ("esbuild", version_of(Command::new(toolchain.npm_bin("esbuild")).arg("--version"))),
        ("chromium", version_of(Command::new("/usr/bin/chromium").arg("--version"))),
        ("chromedriver", version_of(Command::new("/usr/bin/chromedriver").arg("--version"))),
        ("bwrap", version_of(Command::new("bwrap").arg("--version"))),
        ("postgres", version_of(Command::new("psql").arg("--version"))),
        ("python (venv)", version_of(Command::new(toolchain.tools_dir().join("venv/bin/python")).arg("--version"))),
    ];
    rows.push((
        "playwright-core",
        version_of(Command::new("node").arg("-p").arg(format!(
            "require('{}').version",
            toolchain.tools_dir().join("node_modules/playwright-core/package.json").display()
        ))),
    ));
    rows.push((
        "e2b (python)",
        version_of(
            Command::new(toolchain.tools_dir().join("venv/bin/python"))
                .args(["-c", "import importlib.metadata as m; print(m.version('e2b'))"]),
        ),
    ));
    eprintln!("== versions");
    for (name, version) in rows {
        eprintln!("  {name:<17} {version}");
    }
}
