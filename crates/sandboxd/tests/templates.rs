//! sandboxd offers the templates the repository builds on E2B (`templates/<name>/template.py`),
//! under the same names and with what their definitions promise, and answers for templates as E2B
//! does: an alias lookup `200` for the team's own, `403` for E2B's public `base`, `404` for none,
//! and a create from a missing template `404` naming it.

mod common;

use std::path::{Path, PathBuf};

use common::Server;
use serde_json::json;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `python` from the tests' venv (which has the e2b SDK) with `args`; its stdout.
fn python(args: &[&str]) -> String {
    let out = std::process::Command::new(common::tools_venv().join("bin/python")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Every template definition in `templates/`, as (directory, the name it builds under).
fn definitions() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repository().join("templates")).unwrap() {
        let dir = entry.unwrap().path();
        let code = "import sys; sys.path.insert(0, sys.argv[1]); import template; print(template.NAME)";
        let name = python(&["-c", code, dir.to_str().unwrap()]).trim().to_owned();
        found.push((dir, name));
    }
    assert!(!found.is_empty(), "templates/ holds no definition");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_the_repository_builds_on_e2b_is_offered_under_its_name() {
    let s = Server::start().await;
    for (dir, name) in definitions() {
        assert_eq!(dir.file_name().unwrap().to_str().unwrap(), name, "a definition's directory is its name");
        let lookup = s.get(&format!("/templates/aliases/{name}")).send().await.unwrap();
        assert_eq!(lookup.status(), 200, "{name}");
        let body: serde_json::Value = lookup.json().await.unwrap();
        assert_eq!(body["templateID"], name.as_str());

        let sb = s.create(json!({"templateID": name, "timeout": 60})).await;
        let run = sb.run("python3 -c 'import psycopg; print(psycopg.__name__)' && node -e 'console.log(1+1)' && bash -c 'echo $0' && pg_dump --version >/dev/null && psql --version >/dev/null && echo pg").await;
        assert_eq!(run.exit_code(), 0, "{name}: {}", run.stderr());
        assert_eq!(run.stdout(), "psycopg\n2\nbash\npg\n", "{name}");
        s.kill(&sb.id).await;
    }
    s.finish().await;
}

/// The definition installs exactly the pinned packages the local venv has: one list, two places.
#[test]
fn the_definition_installs_the_packages_the_local_template_has() {
    let requirements = std::fs::read_to_string(repository().join("tools/sandbox-requirements.txt")).unwrap();
    for (dir, name) in definitions() {
        let dockerfile = python(&[dir.join("template.py").to_str().unwrap()]);
        assert!(dockerfile.starts_with("FROM e2bdev/base\n"), "{name}: {dockerfile}");
        for package in requirements.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            assert!(dockerfile.contains(&format!("pip install {package}")), "{name} lacks {package}: {dockerfile}");
        }
        // The client tools a fork's copy runs, which the local template takes from the host.
        assert!(dockerfile.contains("postgresql-client"), "{name} lacks the PostgreSQL client tools: {dockerfile}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_answer_as_on_e2b() {
    let s = Server::start().await;
    let base = s.get("/templates/aliases/base").send().await.unwrap();
    assert_eq!(base.status(), 403, "E2B's base exists but is not the caller's team's");
    let none = s.get("/templates/aliases/python").send().await.unwrap();
    assert_eq!(none.status(), 404, "no template is called python on E2B");

    let created = s.post("/sandboxes").json(&json!({"templateID": "python", "timeout": 60})).send().await.unwrap();
    assert_eq!(created.status(), 404);
    let body: serde_json::Value = created.json().await.unwrap();
    assert_eq!(body["message"], "template 'python' not found");
    assert!(s.state.sandboxes().is_empty());
    s.finish().await;
}
