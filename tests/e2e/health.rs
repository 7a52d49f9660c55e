//! A user (or a monitor) asks the API whether it is up and what it talks to.

use mayfly_core::{ErrorBody, ErrorCode, Health, SecretState, VERSION};
use mayfly_e2e::inspector::Inspector;

use crate::support::{get, stack_with};

#[test]
fn health_reports_version_and_providers_without_secrets() {
    let stack = stack_with(&[
        ("E2B_API_URL", "http://sandbox-user:hunter2@127.0.0.1:49982"),
        ("E2B_API_KEY", "e2b_secret_key_123"),
        ("INSTANODE_URL", "http://127.0.0.1:49983/?token=hunter3"),
    ]);
    let (status, body) = get(&format!("{}/v1/health", stack.url));
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
    let stack = stack_with(&[]);
    let (status, body) = get(&format!("{}/v1/no-such-thing", stack.url));
    assert_eq!(status, 404);
    let error: ErrorBody = serde_json::from_str(&body).expect("the error shape");
    assert_eq!(error.error.code, ErrorCode::NotFound);
    assert!(error.error.message.contains("/v1/no-such-thing"), "{body}");

    // The API describes itself (the worker's unit tests check it matches the route table).
    let (status, body) = get(&format!("{}/v1/openapi.json", stack.url));
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/v1/turns/{id}/events"]["get"].is_object(), "{body}");

    for path in ["/", "/turns", "/turns/t_0123456789abcdef"] {
        let (status, body) = get(&format!("{}{path}", stack.url));
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("/boot.js"), "{path} is not the app's index.html: {body}");
    }
    let (status, body) = get(&format!("{}/boot.js", stack.url));
    assert_eq!(status, 200);
    assert!(body.contains("/pkg/mayfly_web.js"), "the app's start script is served: {body}");
    let (status, body) = get(&format!("{}/pkg/mayfly_web.js", stack.url));
    assert_eq!(status, 200);
    assert!(body.contains("mayfly_web_bg.wasm"), "the wasm-bindgen glue is served");
}

#[test]
fn the_workers_own_memory_is_readable_over_the_inspector() {
    // The soak judges the worker by these two figures; this keeps the instrument working.
    let stack = stack_with(&[]);
    let (status, _) = get(&format!("{}/v1/health", stack.url));
    assert_eq!(status, 200);
    let mut inspector = Inspector::connect(stack.inspector_port).expect("wrangler's inspector answers");
    // The worker is one wasm module: at least its initial memory, a whole number of 64 KiB pages.
    let wasm = inspector.wasm_memory().expect("the wasm memories are counted");
    assert!(wasm >= 1 << 20 && wasm.is_multiple_of(64 << 10), "wasm memory {wasm} B");
    let heap = inspector.heap_usage().expect("the heap usage is read");
    assert!(heap.used > 0 && heap.used <= heap.total, "{heap:?}");
}
