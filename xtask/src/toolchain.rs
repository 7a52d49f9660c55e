//! Where the tools are and how to call them: the wasm32 compiler (rustup's when it has the target,
//! else Debian's `rustc-web` with build-std), the pinned CLIs, and the project-local npm tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use mayfly_e2e::Tools;

/// Must equal the `wasm-bindgen` pin in the root `Cargo.toml` (a tidy test checks it).
pub(crate) const WASM_BINDGEN_VERSION: &str = "0.2.130";
/// Must match the `worker` crate's minor version.
pub(crate) const WORKER_BUILD_VERSION: &str = "0.8.7";
/// wrangler 4 refuses older Node.js.
pub(crate) const MIN_NODE_FOR_WRANGLER: (u32, u32) = (22, 12);
/// The wasm features rustc enables by default for wasm32; wasm-opt must accept the same.
pub(crate) const WASM_OPT_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-reference-types",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-multivalue",
];

/// Which compiler builds wasm32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WasmMode {
    /// A rustup toolchain with the wasm32 target installed, as on an ordinary laptop.
    Rustup,
    /// Debian's `rustc-web` 1.96 building std from `rust-web-src` (`-Zbuild-std`).
    Debian,
}

#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    pub(crate) root: PathBuf,
    pub(crate) mode: WasmMode,
}

impl Toolchain {
    pub(crate) fn detect(root: &Path) -> Toolchain {
        let rustup_has_wasm = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-unknown-unknown"))
            .unwrap_or(false);
        let mode = if rustup_has_wasm { WasmMode::Rustup } else { WasmMode::Debian };
        Toolchain { root: root.to_path_buf(), mode }
    }

    /// Where `cargo install` puts the pinned CLIs.
    pub(crate) fn cargo_bin_dir() -> PathBuf {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
        home.join("bin")
    }

    /// The cargo that builds and tests natively: the one running xtask.
    pub(crate) fn native_cargo() -> Command {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    }

    pub(crate) fn tools(&self) -> Tools {
        Tools { root: self.root.clone() }
    }

    pub(crate) fn tools_dir(&self) -> PathBuf {
        self.tools().tools_dir()
    }

    pub(crate) fn npm_bin(&self, name: &str) -> PathBuf {
        self.tools().npm_bin(name)
    }

    pub(crate) fn wasm_bindgen(&self) -> PathBuf {
        Self::cargo_bin_dir().join("wasm-bindgen")
    }

    pub(crate) fn wasm_opt(&self) -> PathBuf {
        self.npm_bin("wasm-opt")
    }

    /// `program` set up to build for wasm32 with this machine's route (cargo, rustc, worker-build).
    pub(crate) fn wasm_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        if self.mode == WasmMode::Debian {
            // Debian's cargo must find Debian's rustc, not rustup's proxy, whatever PATH says;
            // tools that run `cargo` themselves (worker-build) find Debian's first on PATH.
            let mut dirs = vec![PathBuf::from("/usr/bin")];
            dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
            cmd.env("PATH", std::env::join_paths(dirs).expect("valid PATH"))
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC_WRAPPER")
                .env_remove("RUSTDOC");
        }
        cmd.current_dir(&self.root);
        cmd
    }

    /// The cargo that builds for wasm32.
    pub(crate) fn wasm_cargo(&self) -> Command {
        match self.mode {
            WasmMode::Rustup => self.wasm_command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
            WasmMode::Debian => self.wasm_command("/usr/bin/cargo"),
        }
    }

    /// The rustc that builds for wasm32.
    pub(crate) fn wasm_rustc(&self) -> Command {
        match self.mode {
            WasmMode::Rustup => self.wasm_command("rustc"),
            WasmMode::Debian => self.wasm_command("/usr/bin/rustc"),
        }
    }

    pub(crate) fn mode_name(&self) -> &'static str {
        match self.mode {
            WasmMode::Rustup => "rustup (wasm32 target installed)",
            WasmMode::Debian => "Debian rustc-web + build-std",
        }
    }
}

/// Parses `v22.12.0` or `node 22.12.0` into (major, minor).
pub(crate) fn parse_node_version(text: &str) -> Option<(u32, u32)> {
    let version = text.trim().trim_start_matches('v');
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions() {
        assert_eq!(parse_node_version("v20.20.2\n"), Some((20, 20)));
        assert_eq!(parse_node_version("v22.23.5"), Some((22, 23)));
        assert_eq!(parse_node_version("garbage"), None);
        assert!(parse_node_version("v20.20.2").unwrap() < MIN_NODE_FOR_WRANGLER);
        assert!(parse_node_version("v22.12.0").unwrap() >= MIN_NODE_FOR_WRANGLER);
    }
}
