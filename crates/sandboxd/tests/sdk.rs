//! The official `e2b` Python SDK, unmodified, against sandboxd (`tests/sdk/compat.py`).
//!
//! The SDK reaches a local plain-HTTP host through its ordinary settings: `E2B_API_URL` and
//! `E2B_SANDBOX_URL` at sandboxd's address (envd calls then carry `E2b-Sandbox-Id`/`-Port`, which
//! sandboxd routes on for an IP-literal host), `E2B_API_KEY` and `E2B_DOMAIN`.

mod common;

use common::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk() {
    let python = common::tools_venv().join("bin/python");
    assert!(python.exists(), "{} is missing; `cargo xtask setup` builds it", python.display());
    let s = Server::start().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/compat.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .env_remove("E2B_DEBUG")
        .env("E2B_API_URL", &s.base)
        .env("E2B_SANDBOX_URL", &s.base)
        .env("E2B_API_KEY", common::KEY)
        .env("E2B_DOMAIN", "localhost")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out).await.expect("SDK script hung").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "create",
        "commands.run callbacks",
        "non-zero exit",
        "files.write/read",
        "files gzip + metadata",
        "files.list order + symlink info",
        "connect",
        "list with metadata filter",
        "list order, template and started_after",
        "set_timeout",
        "kill twice",
    ] {
        assert!(stdout.contains(&format!("ok {step}")), "step {step} missing:\n{stdout}");
    }
    assert!(stdout.trim_end().ends_with("ALL OK"));
    assert!(s.state.sandboxes().is_empty(), "the script killed every sandbox it made");
    s.finish().await;
}
