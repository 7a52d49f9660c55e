//! `mayfly doctor` against the local stack, with good and bad keys, tokens and templates: every
//! check that fails says so with its fix, and the exit status tells a script whether a first turn
//! can run. scratchdb answers as hosted instanode does (`--like-hosted`), where a token it does not
//! know would quietly make anonymous databases: the doctor is what catches that before a turn.

use mayfly_cli::stack::{LocalStack, StackOptions};
use mayfly_scratchdb::LikeHosted;

/// Runs the `mayfly doctor` binary with only `vars` of the provider settings; (exit code, stdout).
fn doctor(stack: &LocalStack, vars: &[(&str, &str)]) -> (i32, String) {
    let endpoints = &stack.endpoints;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mayfly"));
    command.arg("doctor");
    for name in ["E2B_API_KEY", "E2B_API_URL", "E2B_DOMAIN", "INSTANODE_URL", "INSTANODE_TOKEN"] {
        command.env_remove(name);
    }
    for name in ["E2B_TEMPLATE_PYTHON", "E2B_TEMPLATE_BASH", "E2B_TEMPLATE_NODE"] {
        command.env_remove(name);
    }
    command
        .env("E2B_API_URL", &endpoints.sandboxd_url)
        .env("E2B_API_KEY", &endpoints.sandboxd_api_key)
        .env("INSTANODE_URL", &endpoints.scratchdb_url)
        .env("INSTANODE_TOKEN", &endpoints.scratchdb_token);
    for (name, value) in vars {
        command.env(name, value);
    }
    let out = command.output().expect("mayfly runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

fn line<'a>(output: &'a str, check: &str) -> &'a str {
    output.lines().find(|l| l.contains(&format!(" {check}: "))).unwrap_or_else(|| panic!("no {check} in:\n{output}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_passes_a_good_setup_and_names_each_bad_part_with_its_fix() {
    let options = StackOptions { like_hosted: Some(LikeHosted { anonymous_daily_cap: 5 }), ..StackOptions::default() };
    let stack = LocalStack::start(options).await.expect("the local stack starts");
    let mayfly = [("E2B_TEMPLATE_PYTHON", "mayfly"), ("E2B_TEMPLATE_BASH", "mayfly"), ("E2B_TEMPLATE_NODE", "mayfly")];

    let (status, out) = doctor(&stack, &mayfly);
    assert_eq!(status, 0, "{out}");
    assert!(line(&out, "e2b key").trim_start().starts_with("ok"), "{out}");
    assert!(line(&out, "e2b template mayfly").contains("your team's template, for python, bash, node"), "{out}");
    assert!(line(&out, "instanode token").contains("INSTANODE_TOKEN is team"), "{out}");
    assert!(out.trim_end().ends_with("ready for a first turn"), "{out}");
    assert!(!out.contains(&stack.endpoints.sandboxd_api_key) && !out.contains(&stack.endpoints.scratchdb_token));

    // E2B's defaults: base exists for everyone, though it is not the team's own.
    let (status, out) = doctor(&stack, &[]);
    assert_eq!(status, 0, "{out}");
    assert!(line(&out, "e2b template base").contains("not your team's"), "{out}");

    let (status, out) = doctor(&stack, &[("E2B_API_KEY", "e2b_wrong")]);
    assert_eq!(status, 1, "{out}");
    assert!(line(&out, "e2b key").contains("FAIL"), "{out}");
    assert!(out.contains("fix: make an API key at https://e2b.dev/dashboard?tab=keys and set E2B_API_KEY"), "{out}");
    assert!(!out.contains("e2b_wrong"), "a key is never printed:\n{out}");

    let (status, out) = doctor(&stack, &[("E2B_TEMPLATE_NODE", "nodejs")]);
    assert_eq!(status, 1, "{out}");
    assert!(line(&out, "e2b template nodejs").contains("E2B has no template \"nodejs\" (E2B_TEMPLATE_NODE)"), "{out}");
    assert!(out.contains("fix: set E2B_TEMPLATE_NODE to a template that exists"), "{out}");

    // Hosted instanode makes an anonymous database for a create with a token it does not take.
    let (status, out) = doctor(&stack, &[("INSTANODE_TOKEN", "ink_revoked")]);
    assert_eq!(status, 1, "{out}");
    assert!(line(&out, "instanode token").contains("FAIL"), "{out}");
    assert!(out.contains("would make anonymous databases mayfly cannot delete"), "{out}");
    assert!(!out.contains("ink_revoked"), "a token is never printed:\n{out}");

    let (status, out) = doctor(&stack, &[("INSTANODE_TOKEN", "")]);
    assert_eq!(status, 0, "anonymous mode works, with a warning:\n{out}");
    assert!(line(&out, "instanode token").trim_start().starts_with("warn"), "{out}");

    let (status, out) = doctor(&stack, &[("INSTANODE_URL", "http://127.0.0.1:9")]);
    assert_eq!(status, 1, "{out}");
    assert!(line(&out, "instanode reachable").contains("FAIL"), "{out}");
    assert!(out.contains("fix: check INSTANODE_URL (http://127.0.0.1:9)"), "{out}");
    stack.shutdown().await;
}
