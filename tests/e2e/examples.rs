//! The API's documented examples (`examples/api/`, shown in `docs/api.md`) run against the stack
//! as a reader would run them: each starts a turn, streams its output, drops its stream after the
//! first line and resumes, then reads the final detail. Each must print every row once, in order.

use std::process::Command;

use mayfly_e2e::{InProcessStack, Tools, ALICE_KEY};

/// What every example prints of the turn, whatever its language.
const ROWS: &str = "row 0\nrow 1\nrow 2\n";

fn run(stack: &InProcessStack, command: &mut Command) -> String {
    let out = command
        .env("MAYFLY_URL", &stack.worker.url)
        .env("MAYFLY_KEY", ALICE_KEY)
        .env("PATH", Tools::of_workspace().node_path())
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{command:?} failed: {stdout}\n{stderr}");
    stdout
}

fn check(printed: &str) {
    let turn_id = printed.lines().find_map(|l| l.strip_prefix("turn ")).expect("the turn's id is printed");
    assert!(turn_id.starts_with("t_"), "{printed}");
    let rows: String = printed.lines().filter(|l| l.starts_with("row ")).map(|l| format!("{l}\n")).collect();
    assert_eq!(rows, ROWS, "every row once, in order, across the dropped stream: {printed}");
    assert!(printed.contains("outcome succeeded exit 0"), "{printed}");
    assert!(printed.lines().any(|l| l.eq_ignore_ascii_case("reaped true")), "{printed}");
}

#[test]
fn the_documented_examples_run_and_resume_a_dropped_stream() {
    let stack = InProcessStack::start();
    let examples = Tools::of_workspace().root.join("examples/api");

    check(&run(&stack, Command::new("python3").arg(examples.join("turn.py"))));
    check(&run(&stack, Command::new("sh").arg(examples.join("turn.sh"))));

    // TypeScript as a reader would run it: compiled by esbuild (setup installs it), run by node.
    let built = tempfile::tempdir().unwrap();
    let script = built.path().join("turn.mjs");
    let tools = Tools::of_workspace();
    run(
        &stack,
        Command::new(tools.npm_bin("esbuild"))
            .arg(examples.join("turn.ts"))
            .args(["--format=esm", "--platform=node", "--target=node18", "--log-level=warning"])
            .arg(format!("--outfile={}", script.display())),
    );
    check(&run(&stack, Command::new("node").arg(&script)));
}
