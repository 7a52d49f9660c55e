//! A user (or a monitor) asks the API whether it is up and what it talks to.

use mayfly_core::{ErrorBody, ErrorCode, EventBody, Health, Outcome, SecretState, Verdict, VERSION};
use mayfly_e2e::inspector::Inspector;
use mayfly_e2e::turns::outcome_of;
use mayfly_e2e::{InProcessStack, TestStackOptions, ALICE_KEY};

use crate::support::worker_with;

#[test]
fn health_reports_version_and_providers_without_secrets() {
    let worker = worker_with(&[
        ("E2B_API_URL", "http://sandbox-user:hunter2@127.0.0.1:49982"),
        ("E2B_API_KEY", "e2b_secret_key_123"),
        ("INSTANODE_URL", "http://127.0.0.1:49983/?token=hunter3"),
    ]);
    let api = worker.client(None);
    let (status, body) = api.call("GET", "/v1/health", None);
    assert_eq!(status, 200, "{body}");
    let health: Health = serde_json::from_str(&body).expect("health is core's Health");
    assert!(health.ok);
    assert_eq!(health.version, VERSION);
    assert_eq!(health.providers.e2b_api_url, "http://***@127.0.0.1:49982");
    assert_eq!(health.providers.instanode_url, "http://127.0.0.1:49983/?***");
    assert_eq!(health.providers.e2b_api_key, SecretState::Set);
    assert_eq!(health.providers.instanode_token, SecretState::Unset);
    for secret in ["hunter2", "hunter3", "e2b_secret_key_123"] {
        assert!(!body.contains(secret), "health leaks {secret}: {body}");
    }
}

#[test]
fn unknown_api_route_is_a_json_404_and_app_routes_serve_the_app() {
    let worker = worker_with(&[]);
    let api = worker.client(None);
    let (status, body) = api.call("GET", "/v1/no-such-thing", None);
    assert_eq!(status, 404);
    let error: ErrorBody = serde_json::from_str(&body).expect("the error shape");
    assert_eq!(error.error.code, ErrorCode::NotFound);
    assert!(error.error.message.contains("/v1/no-such-thing"), "{body}");

    // The API describes itself (the worker's unit tests check it matches the route table).
    let (status, body) = api.call("GET", "/v1/openapi.json", None);
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/v1/turns/{id}/events"]["get"].is_object(), "{body}");

    for path in ["/", "/turns", "/turns/t_0123456789abcdef"] {
        let (status, body) = api.call("GET", path, None);
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("/boot.js"), "{path} is not the app's index.html: {body}");
    }
    let (status, body) = api.call("GET", "/boot.js", None);
    assert_eq!(status, 200);
    assert!(body.contains("/pkg/mayfly_web.js"), "the app's start script is served: {body}");
    let (status, body) = api.call("GET", "/pkg/mayfly_web.js", None);
    assert_eq!(status, 200);
    assert!(body.contains("mayfly_web_bg.wasm"), "the wasm-bindgen glue is served");
}

#[test]
fn the_workers_own_memory_is_readable_over_the_inspector() {
    // The soak judges the worker by these two figures; this keeps the instrument working.
    let worker = worker_with(&[]);
    let api = worker.client(None);
    let (status, _) = api.call("GET", "/v1/health", None);
    assert_eq!(status, 200);
    let mut inspector = Inspector::connect(worker.inspector_port).expect("wrangler's inspector answers");
    // The worker is one wasm module: at least its initial memory, a whole number of 64 KiB pages.
    let wasm = inspector.wasm_memory().expect("the wasm memories are counted");
    assert!(wasm >= 1 << 20 && wasm.is_multiple_of(64 << 10), "wasm memory {wasm} B");
    let heap = inspector.heap_usage().expect("the heap usage is read");
    assert!(heap.used > 0 && heap.used <= heap.total, "{heap:?}");
}

/// An operator asks the deployment to check its providers for real: a template that E2B does not
/// have and an instanode token it does not take are each named with the fix, the answer is a 503,
/// and a turn that needs the missing template fails saying which it is and how to build one.
#[test]
fn the_providers_check_names_a_missing_template_and_a_refused_token() {
    let options = TestStackOptions::default().var("E2B_TEMPLATE_NODE", "nodejs").var("INSTANODE_TOKEN", "ink_revoked");
    let stack = InProcessStack::start_with(options);
    let alice = stack.client(ALICE_KEY);
    let (status, body) = stack.anonymous().call("GET", "/v1/health?check=providers", None);
    assert_eq!(status, 401, "the checks spend the deployment's keys: {body}");

    let (status, body) = alice.call("GET", "/v1/health?check=providers", None);
    assert_eq!(status, 503, "{body}");
    let health: Health = serde_json::from_str(&body).unwrap();
    assert!(!health.ok);
    assert_eq!(health.providers.templates["node"], "nodejs");
    let checks = health.checks.expect("the checks are listed");
    let verdict = |name: &str| checks.iter().find(|c| c.check == name).unwrap_or_else(|| panic!("{name}: {body}"));
    assert_eq!(verdict("e2b key").verdict, Verdict::Ok, "{body}");
    assert_eq!(verdict("e2b template mayfly").verdict, Verdict::Ok, "{body}");
    let template = verdict("e2b template nodejs");
    assert_eq!(template.verdict, Verdict::Fail, "{body}");
    assert!(template.fix.as_deref().unwrap_or_default().contains("E2B_TEMPLATE_NODE"), "{body}");
    assert_eq!(verdict("instanode token").verdict, Verdict::Fail, "{body}");
    assert!(!body.contains("ink_revoked"), "the token is never shown: {body}");

    let (status, body) = alice.call("GET", "/v1/health?check=everything", None);
    assert_eq!(status, 400, "{body}");

    let turn = alice.create_turn(r#"{"code":"console.log(1)","language":"node","database":false}"#);
    let events = alice.follow(&turn.turn_id, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::Failed), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(&e.body, EventBody::SandboxCreating { template } if template == "nodejs")),
        "{events:?}"
    );
    let detail = alice.wait_reaped(&turn.turn_id);
    let error = detail.error.unwrap_or_default();
    assert!(error.contains("E2B has no template \"nodejs\""), "{error}");
    assert!(error.contains("templates/mayfly/build.py"), "{error}");
}
