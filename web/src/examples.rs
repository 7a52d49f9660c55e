//! The playground's example snippets: one per thing worth seeing, the seed's turn first.

use mayfly_core::Language;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Example {
    /// Stable name (the `<select>`'s value, and what tests pick).
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) language: Language,
    pub(crate) database: bool,
    pub(crate) code: &'static str,
}

pub(crate) const EXAMPLES: &[Example] = &[
    Example {
        id: "seed",
        title: "Scratch Postgres with psycopg (the seed turn)",
        language: Language::Python,
        database: true,
        code: r#"# A turn gets its own Postgres: use it freely, nothing persists past the turn.
import os

import psycopg

with psycopg.connect(os.environ["PG_URL"]) as conn:
    conn.execute("CREATE TABLE scratch AS SELECT * FROM generate_series(1,1000000)")
    print(conn.execute("SELECT COUNT(*) FROM scratch").fetchone())
"#,
    },
    Example {
        id: "hello",
        title: "Hello from the sandbox",
        language: Language::Python,
        database: false,
        code: r#"import os, platform

print("hello from", platform.node(), "as uid", os.getuid())
print("cwd:", os.getcwd())
print("database:", "on" if "PG_URL" in os.environ else "off")
"#,
    },
    Example {
        id: "count",
        title: "Counting slowly (try Cancel)",
        language: Language::Python,
        database: false,
        code: r#"import time

for i in range(1, 601):
    print(f"line {i}", flush=True)
    time.sleep(0.1)
"#,
    },
    Example {
        id: "fail",
        title: "A failing turn (stderr and exit code)",
        language: Language::Python,
        database: false,
        code: r#"import sys

print("about to fail")
print("something went wrong", file=sys.stderr)
sys.exit(3)
"#,
    },
    Example {
        id: "colours",
        title: "Terminal colours (bash)",
        language: Language::Bash,
        database: false,
        code: r#"for c in 31 32 33 34 35 36; do
  printf '\033[1;%sm colour %s \033[0m\n' "$c" "$c"
done
echo "psql is not needed: \$DATABASE_URL is set when the database is on"
"#,
    },
    Example {
        id: "node",
        title: "Node.js",
        language: Language::Node,
        database: false,
        code: r#"const os = require("os");
console.log(`node ${process.version} on ${os.platform()}`);
console.error("a line on stderr");
"#,
    },
];

pub(crate) fn by_id(id: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_have_unique_ids_and_the_seed_comes_first() {
        let mut ids: Vec<_> = EXAMPLES.iter().map(|e| e.id).collect();
        assert_eq!(ids[0], "seed");
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), EXAMPLES.len());
        assert!(by_id("seed").unwrap().database);
    }
}
