//! Tidy checks that run under `cargo test`: the tree keeps the promises its docs make.

#[cfg(test)]
use std::path::{Path, PathBuf};

/// The project's files below `dir` with one of `extensions`, skipping build output, installed
/// tools and VCS data.
#[cfg(test)]
pub(crate) fn source_files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            let skipped = ["target", "node_modules", "build", "venv", "sandbox-venv", ".wrangler", ".git"];
            if !skipped.contains(&name.to_string_lossy().as_ref()) {
                out.extend(source_files(&path, extensions));
            }
        } else if path.extension().is_some_and(|e| extensions.iter().any(|x| e == *x)) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::source_files;

    use crate::toolchain::{Toolchain, WASM_BINDGEN_VERSION};

    fn root() -> PathBuf {
        crate::project_root()
    }

    /// Every file under the project's source folders with the given extension, skipping build output.
    fn files_with_extension(ext: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in ["crates", "worker", "web", "tests", "xtask"] {
            out.extend(source_files(&root().join(dir), &[ext]));
        }
        assert!(!out.is_empty(), "no .{ext} files found under {}", root().display());
        out
    }

    #[test]
    fn every_rust_file_starts_with_a_module_doc() {
        let missing: Vec<String> = files_with_extension("rs")
            .into_iter()
            .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
            .map(|path| path.display().to_string())
            .collect();
        assert!(missing.is_empty(), "these files do not start with a `//!` doc comment:\n{}", missing.join("\n"));
    }

    /// A comment cites documents of the repository only: every `docs/….md` a source file names
    /// exists, and none points outside the checkout (`../`, or the founders' design by section).
    #[test]
    fn every_document_the_code_cites_is_in_the_repository() {
        // Spelled in two parts, so that this file does not name it.
        let outside_notes = ["shared", "reference"].join("/");
        let mut wrong = Vec::new();
        for dir in ["crates", "worker", "web", "tests", "xtask", "templates"] {
            for path in source_files(&root().join(dir), &["rs", "py", "mjs", "js", "toml"]) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (at, _) in text.match_indices("docs/") {
                    let cited: String = text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
                        .collect();
                    let cited = cited.trim_end_matches('.');
                    let outside = text[..at].ends_with("../") || text[..at].ends_with("shared/");
                    if !cited.ends_with(".md") {
                        continue;
                    }
                    let Ok(doc) = std::fs::read_to_string(root().join(cited)).map_err(drop).and_then(|doc| {
                        if outside {
                            Err(())
                        } else {
                            Ok(doc)
                        }
                    }) else {
                        wrong.push(format!("{}: {cited}", path.display()));
                        continue;
                    };
                    // A section cited right after the document (its name, then §1.6) is one of its headings.
                    let after = text[at + cited.len()..].trim_start_matches(['`', ' ', ',', '\n', '/']);
                    if let Some(section) = after.strip_prefix('§') {
                        let section: String = section.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
                        let section = section.trim_end_matches('.');
                        let heading = |line: &str| {
                            let title = line.trim_start_matches('#');
                            line.starts_with('#')
                                && (title.starts_with(&format!(" {section} "))
                                    || title.starts_with(&format!(" {section}. ")))
                        };
                        if !doc.lines().any(heading) {
                            wrong.push(format!("{}: {cited} has no section {section}", path.display()));
                        }
                    }
                }
                if text.contains(&outside_notes) || text.contains(&format!("{} §", "design")) {
                    wrong.push(format!("{}: cites a document outside the repository", path.display()));
                }
            }
        }
        assert!(wrong.is_empty(), "documents cited but not in the repository:\n{}", wrong.join("\n"));
    }

    /// A document shows an example file as `<!-- example: PATH -->` and a fenced block right after
    /// it; the block must be the file, which the tests run.
    #[test]
    fn documented_examples_are_the_files_the_tests_run() {
        let mut shown = 0;
        let mut docs = source_files(&root().join("docs"), &["md"]);
        docs.push(root().join("README.md"));
        for doc in docs {
            let text = std::fs::read_to_string(&doc).unwrap();
            for (marker, rest) in text.split("<!-- example: ").skip(1).map(|part| part.split_once(" -->").unwrap()) {
                let body = rest.trim_start().split_once('\n').map(|(_fence, body)| body).unwrap_or_default();
                let block = &body[..body.find("\n```").map_or(body.len(), |end| end + 1)];
                let file = std::fs::read_to_string(root().join(marker))
                    .unwrap_or_else(|err| panic!("{}: {marker}: {err}", doc.display()));
                assert_eq!(block, file, "{} shows {marker} other than it is", doc.display());
                shown += 1;
            }
        }
        assert!(shown >= 3, "the API's examples are shown in docs/api.md");
    }

    #[test]
    fn no_trailing_whitespace() {
        let mut files = files_with_extension("rs");
        files.extend(files_with_extension("toml"));
        files.extend(files_with_extension("mjs"));
        for doc in ["README.md", "ARCHITECTURE.md", "CHANGELOG.md", "Cargo.toml", "index.html"] {
            files.push(root().join(doc));
        }
        let mut bad = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                if line.ends_with(' ') || line.ends_with('\t') {
                    bad.push(format!("{}:{}", path.display(), i + 1));
                }
            }
        }
        assert!(bad.is_empty(), "trailing whitespace:\n{}", bad.join("\n"));
    }

    /// `unsafe` is denied in the workspace; the one block allowed it is the forked child's hook
    /// before it execs bwrap, where only async-signal-safe calls may run.
    #[test]
    fn unsafe_code_is_allowed_in_one_place_only() {
        let allowed: Vec<String> = files_with_extension("rs")
            .into_iter()
            .filter(|path| std::fs::read_to_string(path).unwrap().contains(&format!("allow({})", "unsafe_code")))
            .map(|path| path.strip_prefix(root()).unwrap().display().to_string())
            .collect();
        assert_eq!(allowed, ["crates/sandboxd/src/jail/command.rs"]);
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("unsafe_code = \"deny\""), "the workspace denies unsafe code");
    }

    fn workspace_members() -> Vec<String> {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let start = manifest.find("members = [").expect("a members list") + "members = [".len();
        let end = start + manifest[start..].find(']').unwrap();
        manifest[start..end]
            .split(',')
            .map(|m| m.trim().trim_matches('"').to_owned())
            .filter(|m| !m.is_empty())
            .collect()
    }

    /// Paths ARCHITECTURE.md names in backticks: anything with a `/` or a file extension.
    fn architecture_paths(text: &str) -> Vec<String> {
        let mut paths = Vec::new();
        for (i, chunk) in text.split('`').enumerate() {
            let looks_like_path = !chunk.contains(' ')
                && !chunk.contains("::")
                && !chunk.starts_with('-')
                && !chunk.starts_with("http")
                && (chunk.contains('/')
                    || [".rs", ".md", ".toml", ".html", ".mjs", ".css", ".json"].iter().any(|e| chunk.ends_with(e)));
            // Odd chunks are inside backticks.
            // A leading `/` marks an HTTP route, not a file of the tree.
            // `target/` holds build output, which a fresh clone does not have yet.
            let generated = chunk.starts_with("target/");
            if i % 2 == 1 && looks_like_path && !generated && !chunk.starts_with('/') && !chunk.contains('{') {
                paths.push(chunk.trim_end_matches('/').to_owned());
            }
        }
        paths
    }

    #[test]
    fn architecture_names_only_paths_that_exist_and_every_member() {
        let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
        let paths = architecture_paths(&text);
        assert!(paths.len() >= 10, "ARCHITECTURE.md names suspiciously few paths: {paths:?}");
        let missing: Vec<&String> = paths.iter().filter(|p| !root().join(p).exists()).collect();
        assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
        for member in workspace_members() {
            let heading = format!("### `{member}`");
            assert!(
                text.contains(&heading),
                "ARCHITECTURE.md has no `{heading}` section for workspace member {member}"
            );
        }
    }

    #[test]
    fn architecture_path_extraction() {
        let got = architecture_paths("see `crates/core/src/lib.rs`, `Cargo.toml`, `cargo xtask test`, `mayfly_core::Event`, `/v1/turns`, `web/`, `target/dist/web`");
        assert_eq!(got, ["crates/core/src/lib.rs", "Cargo.toml", "web"]);
    }

    /// Core's layers as ARCHITECTURE.md draws them: `wire` below `providers` below `turn`, and
    /// `url` below all three. A doc comment may point upwards; code may not, tests included.
    #[test]
    fn core_layers_depend_downwards_only() {
        let core = root().join("crates/core/src");
        let rules: [(&str, &[&str]); 3] = [
            ("url.rs", &["crate::wire", "crate::providers", "crate::turn"]),
            ("wire", &["crate::url", "crate::providers", "crate::turn"]),
            ("providers", &["crate::turn"]),
        ];
        let mut upwards = Vec::new();
        for (layer, above) in rules {
            let path = core.join(layer);
            let files = if path.is_dir() { source_files(&path, &["rs"]) } else { vec![path] };
            assert!(!files.is_empty(), "core has no {layer}");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if let Some(name) = above.iter().find(|name| code.contains(*name)) {
                        upwards.push(format!("{}:{}: {name}", file.display(), i + 1));
                    }
                }
            }
        }
        assert!(upwards.is_empty(), "core's layers import upwards:\n{}", upwards.join("\n"));
    }

    #[test]
    fn core_depends_on_no_runtime_framework_or_native_http() {
        for forbidden in ["tokio", "worker", "leptos", "reqwest", "web-sys", "axum"] {
            let out = Toolchain::native_cargo()
                .current_dir(root())
                .args(["tree", "-p", "mayfly-core", "-i", forbidden, "--target", "all", "-e", "normal"])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let absent =
                stdout.trim().is_empty() && (out.status.success() || stderr.contains("did not match any packages"));
            assert!(absent, "mayfly-core depends on {forbidden}:\n{stdout}{stderr}");
        }
    }

    #[test]
    fn wasm_bindgen_pin_matches_the_cli_setup_installs() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("wasm-bindgen = \"={WASM_BINDGEN_VERSION}\"")),
            "Cargo.toml must pin wasm-bindgen to ={WASM_BINDGEN_VERSION}, the CLI `cargo xtask setup` installs"
        );
        let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
        assert!(
            lock.contains(&format!("name = \"wasm-bindgen\"\nversion = \"{WASM_BINDGEN_VERSION}\"")),
            "Cargo.lock resolves wasm-bindgen to another version than {WASM_BINDGEN_VERSION}"
        );
    }

    #[test]
    fn ci_runs_exactly_the_readme_test_command() {
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        assert!(readme.contains("cargo xtask test"), "README.md must give the test command");
        assert!(readme.contains("cargo xtask dev"), "README.md must give the dev command");
        let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
        let commands: Vec<&str> = ci
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("set "))
            .collect();
        assert_eq!(commands.last(), Some(&"cargo xtask test"), ".ci/run must end by running the README's test command");
    }

    #[test]
    fn npm_tools_are_locked() {
        for dir in ["tools", "tools/node"] {
            let lock = root().join(dir).join("package-lock.json");
            assert!(lock.exists(), "{} is missing: npm installs must be reproducible", lock.display());
        }
    }
}
