//! The code's shape, kept by tests: no room too big to hold in one's head, and no import circles
//! between the modules of a crate. ARCHITECTURE.md describes the rooms; these tests keep them so.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use crate::tidy::source_files;

    /// The most lines a source file has. A file of tests may have a little more: its cases are
    /// read one at a time.
    const MAX_LINES: usize = 450;
    const MAX_TEST_LINES: usize = 500;

    /// The source folders of the workspace's crates, each with its root module's file.
    const CRATES: [&str; 10] = [
        "crates/core/src",
        "crates/client/src",
        "crates/sandboxd/src",
        "crates/scratchdb/src",
        "crates/cli/src",
        "worker/src",
        "web/src",
        "xtask/src",
        "tests/src",
        "tests/soak",
    ];

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    fn is_test_file(path: &Path) -> bool {
        let text = path.to_string_lossy();
        text.starts_with("tests/") || text.contains("/tests/") || text.ends_with("/tests.rs")
    }

    #[test]
    fn no_source_file_is_too_big_to_hold_in_ones_head() {
        let root = root();
        let mut big = Vec::new();
        for file in source_files(&root, &["rs"]) {
            let relative = file.strip_prefix(&root).unwrap().to_path_buf();
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            let max = if is_test_file(&relative) { MAX_TEST_LINES } else { MAX_LINES };
            if lines > max {
                big.push(format!("{} has {lines} lines (at most {max})", relative.display()));
            }
        }
        assert!(big.is_empty(), "split these by concern:\n{}", big.join("\n"));
    }

    /// A crate's modules: each file's module path (`["turn", "spec"]` for `turn/spec.rs`; the root
    /// is `[]`).
    fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
        let mut modules = BTreeMap::new();
        for file in source_files(src, &["rs"]) {
            let relative = file.strip_prefix(src).unwrap();
            let mut path: Vec<String> =
                relative.with_extension("").iter().map(|part| part.to_string_lossy().into_owned()).collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                path.pop();
            }
            modules.insert(path, file);
        }
        modules
    }

    /// Every path a file names that starts at `crate::` or `super::`, made absolute; `use` trees
    /// with braces are expanded.
    fn named_paths(text: &str, here: &[String], is_folder_face: bool) -> Vec<Vec<String>> {
        let code: String =
            text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
        // `super` of a folder's `mod.rs` is the folder's parent; of any other file, its folder.
        let parent: Vec<String> =
            if is_folder_face { here[..here.len().saturating_sub(1)].to_vec() } else { here.to_vec() };
        let parent = if is_folder_face { parent } else { parent[..parent.len().saturating_sub(1)].to_vec() };
        let mut found = Vec::new();
        for start in ["crate::", "super::"] {
            let mut rest = code.as_str();
            while let Some(at) = rest.find(start) {
                let before = rest[..at].chars().last();
                rest = &rest[at..];
                let is_word_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                let base: Vec<String> = if start == "crate::" { Vec::new() } else { parent.clone() };
                let tail = &rest[start.len()..];
                if is_word_start {
                    for path in expand(tail) {
                        let mut full = base.clone();
                        full.extend(path);
                        found.push(full);
                    }
                }
                rest = tail;
            }
        }
        found
    }

    /// The paths of a `use` tree's text, up to where the tree ends (`a::b`, `a::{b, c::d}`).
    fn expand(text: &str) -> Vec<Vec<String>> {
        let mut prefix = Vec::new();
        let mut rest = text;
        loop {
            let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if word.is_empty() {
                if let Some(inner) = rest.strip_prefix('{') {
                    return group(inner)
                        .into_iter()
                        .flat_map(|item| expand(item.trim()))
                        .map(|tail| prefix.iter().cloned().chain(tail).collect())
                        .collect();
                }
                return vec![prefix];
            }
            rest = &rest[word.len()..];
            prefix.push(word);
            match rest.strip_prefix("::") {
                Some(after) => rest = after,
                None => return vec![prefix],
            }
        }
    }

    /// The comma-separated items of a brace group whose opening brace is already taken.
    fn group(text: &str) -> Vec<&str> {
        let (mut depth, mut from, mut items) = (0usize, 0, Vec::new());
        for (i, c) in text.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&text[from..i]);
                    return items;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&text[from..i]);
                    from = i + 1;
                }
                _ => {}
            }
        }
        items
    }

    /// The module of `modules` a path lands in: its longest prefix that is a module.
    fn landing(modules: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
        (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|prefix| modules.contains_key(prefix))
    }

    /// The circles among the rooms of each folder: a room is a file or a whole subfolder, and a
    /// folder's own `mod.rs` is its face (it declares its rooms; they may use what it holds).
    fn circles(src: &Path) -> Vec<String> {
        let modules = modules(src);
        // folder -> room -> rooms it uses
        let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (here, file) in &modules {
            let text = std::fs::read_to_string(file).unwrap();
            let face = file.file_name().is_some_and(|name| name == "mod.rs" || name == "lib.rs" || name == "main.rs");
            for path in named_paths(&text, here, face) {
                let Some(there) = landing(&modules, &path) else { continue };
                let common = here.iter().zip(&there).take_while(|(a, b)| a == b).count();
                // A folder's face, and its rooms using it, make no circle.
                if common == here.len() || common == there.len() {
                    continue;
                }
                let folder = here[..common].to_vec();
                let rooms = edges.entry(folder).or_default();
                rooms.entry(here[common].clone()).or_default().insert(there[common].clone());
            }
        }
        let mut found = Vec::new();
        for (folder, rooms) in &edges {
            for start in rooms.keys() {
                if let Some(cycle) = cycle_from(rooms, start) {
                    let place = if folder.is_empty() { String::new() } else { format!("{}/", folder.join("/")) };
                    found.push(format!("{}: {place}{}", src.display(), cycle.join(" -> ")));
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// A way from `start` back to itself, if there is one.
    fn cycle_from(rooms: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
        let mut stack = vec![vec![start.to_owned()]];
        let mut seen = BTreeSet::new();
        while let Some(way) = stack.pop() {
            let last = way.last().unwrap();
            for next in rooms.get(last).into_iter().flatten() {
                if next == start {
                    return Some(way.iter().cloned().chain([next.clone()]).collect());
                }
                if seen.insert(next.clone()) {
                    stack.push(way.iter().cloned().chain([next.clone()]).collect());
                }
            }
        }
        None
    }

    #[test]
    fn no_crate_has_an_import_circle() {
        let found: Vec<String> = CRATES.iter().flat_map(|src| circles(&root().join(src))).collect();
        assert!(found.is_empty(), "import circles (a room is a file or a folder):\n{}", found.join("\n"));
    }

    #[test]
    fn circles_are_found_through_use_trees_and_super() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        write("lib.rs", "//! x\nmod a;\nmod b;\nmod c;\npub use a::A;\n");
        write("a.rs", "//! x\nuse crate::{b::{self, B}, c};\n");
        write("b.rs", "//! x\nuse crate::c::C; // crate::a::A in a comment is no import\n");
        write("c.rs", "//! x\nfn f() { crate::a::A::new(); }\n");
        write("d/mod.rs", "//! x\nmod e;\nmod f;\npub(crate) use e::E;\n");
        write("d/e.rs", "//! x\nuse super::f::F;\n");
        write("d/f.rs", "//! x\nuse super::E;\n");
        let found = circles(dir.path());
        assert!(!found.is_empty(), "a -> c -> a is a circle");
        assert!(found.iter().all(|circle| !circle.contains("/: ") && !circle.contains("d/")), "{found:?}");
        assert_eq!(expand("a::{b, c::{d, e}}, x"), [vec!["a", "b"], vec!["a", "c", "d"], vec!["a", "c", "e"]]);
    }
}
