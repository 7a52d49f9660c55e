//! What mayfly takes from Debian: every file of a Debian package that setup, the build, the
//! stack or the tests run or read, with the package that provides it.
//!
//! Setup installs a package when its file is missing (so a package whose file another package
//! already provides — NodeSource's `nodejs` provides `npm` — is left alone), always with
//! `--no-install-recommends`: a file that only a Recommends would bring is named here, or a fresh
//! machine does not get it (`/usr/bin/rust-lld` is `rust-web-llvm`'s, a Recommends of `rustc-web`).
//! A tidy test asks dpkg which package owns each file that is present and fails, naming it, when
//! that package is not the one listed (or one the listed package depends on or provides).

use std::path::PathBuf;

/// A file mayfly relies on, and the package setup installs for it. `*` stands for one path part
/// (a version: `/usr/lib/postgresql/*/bin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Needed {
    pub(crate) file: &'static str,
    pub(crate) package: &'static str,
}

const fn needs(file: &'static str, package: &'static str) -> Needed {
    Needed { file, package }
}

/// What every machine needs.
pub(crate) const ALWAYS: &[Needed] = &[
    // scratchdb's private cluster, and the tests' look into it.
    needs("/usr/lib/postgresql/*/bin/initdb", "postgresql"),
    needs("/usr/lib/postgresql/*/bin/pg_ctl", "postgresql"),
    needs("/usr/bin/psql", "postgresql"),
    // A fork's copy of its checkpoint where the provider cannot fork, in the local template's jails.
    needs("/usr/bin/pg_dump", "postgresql-client-common"),
    needs("/usr/lib/postgresql/*/bin/pg_dump", "postgresql-client"),
    // sandboxd's jails and their network.
    needs("/usr/bin/bwrap", "bubblewrap"),
    needs("/usr/sbin/runuser", "util-linux"),
    needs("/usr/sbin/ip", "iproute2"),
    needs("/usr/bin/kill", "procps"),
    needs("/usr/bin/ps", "procps"),
    // The browser tests.
    needs("/usr/bin/chromium", "chromium"),
    needs("/usr/bin/chromedriver", "chromium-driver"),
    // The tools' venvs, and the Python turns run in sandboxes.
    needs("/usr/bin/python3", "python3-venv"),
    needs("/usr/lib/python3*/venv/__init__.py", "python3-venv"),
    // npm installs the pinned JavaScript tools; node runs them (when new enough) and the
    // sandboxes' Node turns.
    needs("/usr/bin/node", "nodejs"),
    needs("/usr/bin/npm", "npm"),
    // A C compiler: crates that build C, and the security suite's planted library.
    needs("/usr/bin/cc", "gcc"),
    // The API's shell example (`examples/api/turn.sh`), which the tests run.
    needs("/usr/bin/curl", "curl"),
    needs("/usr/bin/jq", "jq"),
    needs("/usr/include/stdio.h", "libc6-dev"),
    // TLS roots for the registries, and the bench charts' font.
    needs("/usr/share/ca-certificates", "ca-certificates"),
    needs("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core"),
];

/// The wasm32 route when rustup has no wasm32 target: Debian's rustc 1.96 with its std source.
pub(crate) const DEBIAN_WASM: &[Needed] = &[
    needs("/usr/bin/rustc", "rustc-web"),
    needs("/usr/bin/cargo", "cargo-web"),
    needs("/usr/lib/rustlib/src/rust/library/std/Cargo.toml", "rust-web-src"),
    needs("/usr/bin/rust-lld", "rust-web-llvm"),
    needs("/usr/lib/llvm-22/bin/lld", "lld-22"),
];

/// The paths `file` names on this machine (its one `*` expanded), existing ones only.
pub(crate) fn present(file: &str) -> Vec<PathBuf> {
    let Some((before, after)) = file.split_once('*') else {
        return Some(PathBuf::from(file)).filter(|p| p.exists()).into_iter().collect();
    };
    let (dir, prefix) = before.rsplit_once('/').unwrap_or(("", before));
    let (suffix, rest) = after.split_once('/').map_or((after, ""), |(s, r)| (s, r));
    let Ok(entries) = std::fs::read_dir(if dir.is_empty() { "/" } else { dir }) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .map(|e| if rest.is_empty() { e.path() } else { e.path().join(rest) })
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
}

/// The packages to install for `needed`: those whose file is missing.
pub(crate) fn missing<'a>(needed: impl IntoIterator<Item = &'a Needed>) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> =
        needed.into_iter().filter(|n| present(n.file).is_empty()).map(|n| n.package).collect();
    packages.dedup();
    packages.sort_unstable();
    packages.dedup();
    packages
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// The package dpkg says owns `path`: asked for the path as given, then as merged-usr systems
    /// record it (`/usr/bin/x` as `/bin/x`), then for what it links to.
    fn owner(path: &Path) -> Option<String> {
        let text = path.to_string_lossy().into_owned();
        let mut candidates = vec![text.clone()];
        if let Some(rest) = text.strip_prefix("/usr") {
            candidates.push(rest.to_owned());
        }
        if let Ok(real) = std::fs::canonicalize(path) {
            candidates.push(real.to_string_lossy().into_owned());
        }
        candidates.into_iter().find_map(|candidate| {
            let out = Command::new("dpkg-query").args(["-S", &candidate]).output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            // `package: path`, or `pkg1, pkg2: path`; diversions are said first, on their own lines.
            text.lines().filter(|l| !l.starts_with("diversion by")).find_map(|l| {
                let (packages, _) = l.split_once(": ")?;
                Some(packages.split(',').next()?.trim().split(':').next()?.to_owned())
            })
        })
    }

    /// A field of an installed package (`Depends`, `Provides`, `Essential`), empty when not installed.
    fn field(package: &str, name: &str) -> String {
        Command::new("dpkg-query")
            .args(["-W", &format!("-f=${{{name}}}"), package])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The package names in a `Depends`-style list (alternatives and versions dropped).
    fn names(list: &str) -> Vec<String> {
        list.split([',', '|'])
            .filter_map(|item| item.split_whitespace().next())
            .map(|name| name.split(':').next().unwrap_or(name).to_owned())
            .filter(|name| !name.is_empty())
            .collect()
    }

    /// Whether installing `listed` brings `owner`: it is `owner`, `owner` provides it, `owner` is
    /// essential (on every Debian), or `listed` depends on it (a few levels deep).
    fn brings(listed: &str, owner: &str) -> bool {
        if listed == owner || names(&field(owner, "Provides")).iter().any(|p| p == listed) {
            return true;
        }
        if field(owner, "Essential").trim() == "yes" {
            return true;
        }
        let mut level = vec![listed.to_owned()];
        let mut seen = level.clone();
        for _ in 0..4 {
            let mut next = Vec::new();
            for package in &level {
                let deps = format!("{}, {}", field(package, "Depends"), field(package, "Pre-Depends"));
                for dep in names(&deps) {
                    if dep == owner {
                        return true;
                    }
                    if !seen.contains(&dep) {
                        seen.push(dep.clone());
                        next.push(dep);
                    }
                }
            }
            level = next;
        }
        false
    }

    #[test]
    fn globs_and_lists_are_read_as_dpkg_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("15/bin")).unwrap();
        std::fs::write(dir.path().join("15/bin/initdb"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("16/bin")).unwrap();
        let pattern = format!("{}/*/bin/initdb", dir.path().display());
        assert_eq!(present(&pattern), [dir.path().join("15/bin/initdb")]);
        assert!(present(&format!("{}/none/*/x", dir.path().display())).is_empty());
        assert_eq!(
            names("libc6 (>= 2.34), python3.11-venv | python3-venv:any, "),
            ["libc6", "python3.11-venv", "python3-venv"]
        );
    }

    /// Every file mayfly takes from Debian comes from a package setup installs: on a machine set
    /// up with more than `--no-install-recommends` gives (or by hand), a file can be there without
    /// its package being named, and a fresh machine would lack it.
    #[test]
    fn every_debian_file_the_project_uses_comes_from_a_package_setup_installs() {
        let mut wrong = Vec::new();
        for needed in ALWAYS.iter().chain(DEBIAN_WASM) {
            for path in present(needed.file) {
                match owner(&path) {
                    Some(owner) if brings(needed.package, &owner) => {}
                    Some(owner) => wrong.push(format!(
                        "{} belongs to {owner}, which installing {} does not bring: name {owner} in xtask/src/debian.rs",
                        path.display(),
                        needed.package
                    )),
                    None => wrong.push(format!("{} belongs to no package: it is not Debian's", path.display())),
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Every program the code runs by an absolute system path is one of the files above, so the
    /// list cannot fall behind the code.
    #[test]
    fn every_system_program_the_code_names_is_listed() {
        let listed: Vec<&str> = ALWAYS.iter().chain(DEBIAN_WASM).map(|n| n.file).collect();
        // The jail's own programs run inside sandboxes from the host's /usr; these few come with
        // every Debian (essential packages), and are not listed.
        let essential = ["/bin/sh", "/bin/bash", "/bin/ls", "/bin/sleep", "/usr/bin/true", "/usr/bin/env"];
        let mut unlisted = Vec::new();
        for dir in ["crates", "xtask", "tests"] {
            for path in crate::tidy::source_files(&crate::project_root().join(dir), &["rs", "mjs", "py"]) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for start in text.match_indices("\"/usr/bin/").map(|(i, _)| i + 1) {
                    let name: String = text[start..].chars().take_while(|c| !matches!(c, '"' | ' ' | '\'')).collect();
                    let known = listed.contains(&name.as_str()) || essential.contains(&name.as_str());
                    if !known && name.len() > "/usr/bin/".len() && !name.contains("evil") {
                        unlisted.push(format!("{}: {name}", path.display()));
                    }
                }
            }
        }
        assert!(unlisted.is_empty(), "programs named by path but not in xtask/src/debian.rs:\n{}", unlisted.join("\n"));
    }
}
