//! Where the project's tools are, as `cargo xtask setup` installs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The project-local tools: npm packages under `tools/`, Node.js 22 when the system's is older.
#[derive(Debug, Clone)]
pub struct Tools {
    pub root: PathBuf,
}

impl Tools {
    /// The tools of the workspace this crate is part of.
    pub fn of_workspace() -> Tools {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_path_buf();
        Tools { root }
    }

    pub fn tools_dir(&self) -> PathBuf {
        self.root.join("tools")
    }

    pub fn npm_bin(&self, name: &str) -> PathBuf {
        self.tools_dir().join("node_modules/.bin").join(name)
    }

    /// Node.js 22 from npm; setup installs it only when the system node is too old for wrangler.
    pub fn node22_dir(&self) -> PathBuf {
        self.tools_dir().join("node/node_modules/.bin")
    }

    /// `PATH` for node tools: Node.js 22 first when present, then the npm tools, then the rest.
    pub fn node_path(&self) -> OsString {
        let mut dirs = Vec::new();
        if self.node22_dir().join("node").exists() {
            dirs.push(self.node22_dir());
        }
        dirs.push(self.tools_dir().join("node_modules/.bin"));
        dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        std::env::join_paths(dirs).expect("PATH entries have no separator in them")
    }

    /// The built worker that `wrangler dev` serves.
    pub fn worker_bundle(&self) -> PathBuf {
        self.root.join("worker/build/worker/shim.mjs")
    }

    /// The built web app the worker's assets point at.
    pub fn web_dist(&self) -> PathBuf {
        self.root.join("target/dist/web")
    }

    /// Where tests keep what a person may want to look at afterwards (screenshots, logs).
    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("target/e2e")
    }
}
