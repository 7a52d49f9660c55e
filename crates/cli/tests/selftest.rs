//! `mayfly selftest`, the command `cargo xtask test --live` runs against the real E2B and
//! instanode, run here against stand-ins that answer as those do (scratchdb `--like-hosted`,
//! sandboxd with the `mayfly` template), configured only as a user configures the real ones.

use mayfly_cli::stack::{LocalStack, StackOptions};
use mayfly_core::providers::{DatabaseProvider, SandboxProvider};
use mayfly_scratchdb::LikeHosted;

/// Runs `mayfly selftest` with the stack as its providers plus `vars`; (exit code, stdout, stderr).
fn selftest(stack: &LocalStack, vars: &[(&str, &str)]) -> (i32, String, String) {
    let endpoints = &stack.endpoints;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mayfly"));
    command
        .arg("selftest")
        .env("E2B_API_URL", &endpoints.sandboxd_url)
        .env("E2B_ENVD_URL", &endpoints.sandboxd_url)
        .env("E2B_DOMAIN", "localhost")
        .env("E2B_API_KEY", &endpoints.sandboxd_api_key)
        .env("INSTANODE_URL", &endpoints.scratchdb_url)
        .env("INSTANODE_TOKEN", &endpoints.scratchdb_token);
    for language in ["PYTHON", "BASH", "NODE"] {
        command.env(format!("E2B_TEMPLATE_{language}"), "mayfly");
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let out = command.output().expect("mayfly runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_runs_a_seed_a_cancelled_and_a_crashed_turn_and_finds_nothing_left() {
    let options = StackOptions { like_hosted: Some(LikeHosted { anonymous_daily_cap: 5 }), ..StackOptions::default() };
    let stack = LocalStack::start(options).await.expect("the local stack starts");

    let (status, out, err) = selftest(&stack, &[]);
    assert_eq!(status, 0, "stdout:\n{out}\nstderr:\n{err}");
    for step in
        ["ok  seed turn t_", "ok  cancelled turn t_", "ok  crashed turn t_", "ok  nothing left: neither provider lists"]
    {
        assert!(out.contains(step), "no {step:?} in:\n{out}");
    }
    assert!(out.trim_end().ends_with("selftest passed"), "{out}");
    let secrets = [&stack.endpoints.sandboxd_api_key, &stack.endpoints.scratchdb_token];
    assert!(secrets.iter().all(|secret| !out.contains(secret.as_str())), "a key or token was printed:\n{out}");

    // The stand-ins' own lists agree, whatever the selftest's check says.
    let providers = mayfly_cli::providers::build(&Default::default(), Some(&stack.endpoints)).unwrap();
    assert!(providers.sandboxes.list_tagged().await.unwrap().is_empty(), "a sandbox is left");
    assert!(providers.databases.list().await.unwrap().is_empty(), "a database is left");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selftest_that_cannot_run_its_turns_fails_saying_why() {
    let stack = LocalStack::start(StackOptions::default()).await.expect("the local stack starts");
    let (status, out, err) = selftest(&stack, &[("E2B_TEMPLATE_PYTHON", "nope")]);
    assert_eq!(status, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("selftest FAILED: the seed turn exited with Some(1)"), "{err}");
    assert!(
        err.contains("template 'nope'") || err.contains("template \"nope\""),
        "the missing template is named:\n{err}"
    );
    assert!(!out.contains("selftest passed"), "{out}");
    stack.shutdown().await;
}
