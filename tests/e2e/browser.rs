//! A person opens the web app in a browser (headless Chromium driven by Playwright).

use std::process::Command;

use mayfly_e2e::Tools;

use crate::support::stack_with;

/// Runs a Playwright script from `tests/browser/` against `url`; returns what it printed last,
/// a JSON object.
fn run_browser_script(script: &str, url: &str, screenshot: &str) -> serde_json::Value {
    let tools = Tools::of_workspace();
    std::fs::create_dir_all(tools.artifacts_dir()).unwrap();
    let shot = tools.artifacts_dir().join(screenshot);
    let out = Command::new("node")
        .env("PATH", tools.node_path())
        .env("MAYFLY_TOOLS_DIR", tools.tools_dir())
        .arg(tools.root.join("tests/browser").join(script))
        .arg(url)
        .arg(&shot)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(shot.exists(), "{script} left no screenshot at {}", shot.display());
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|err| panic!("{script} printed no JSON ({err}): {stdout}"))
}

#[test]
fn app_shell_shows_health_from_the_api_and_navigates() {
    let stack = stack_with(&[("E2B_API_URL", "http://127.0.0.1:49982")]);
    let report = run_browser_script("shell.mjs", &stack.url, "shell.png");
    assert_eq!(report["health_state"], "ok", "{report}");
    let health = report["health_text"].as_str().unwrap();
    assert!(health.contains(&format!("v{}", mayfly_core::VERSION)), "{health}");
    assert!(health.contains("http://127.0.0.1:49982"), "{health}");
    assert_eq!(report["turns_path"], "/turns", "{report}");
    assert_eq!(report["back_home"], true, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
}
