//! A page of another site calls the API from a browser: the origins the deployment names in
//! `CORS_ORIGINS` get the headers their browser needs, and every other origin gets none. (The
//! browser test drives the same through Chromium's own preflights.)

use mayfly_e2e::Answer;

use crate::support::worker_with;

const ALLOWED: &str = "https://ide.example";
const OTHER: &str = "https://evil.example";

fn cors_headers(answer: &Answer) -> Vec<(String, String)> {
    answer.headers.iter().filter(|(name, _)| name.starts_with("access-control-")).cloned().collect()
}

#[test]
fn only_the_allowed_origins_may_call_the_api_from_a_page() {
    let worker = worker_with(&[("CORS_ORIGINS", &format!("{ALLOWED}, http://127.0.0.1:5173"))]);
    let client = worker.client(None);
    let preflight = |path: &str, origin: Option<&str>| {
        let mut headers = vec![
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type, idempotency-key"),
        ];
        if let Some(origin) = origin {
            headers.push(("Origin", origin));
        }
        client.raw("OPTIONS", path, &headers, b"")
    };

    // From an allowed origin, a preflight to any route of the API: 204 and what may be sent.
    for path in ["/v1/turns", "/v1/turns/t_0123/events", "/v1/tokens", "/v1/health", "/v1/no-such-route"] {
        let answer = preflight(path, Some(ALLOWED));
        assert_eq!(answer.status, 204, "{path}: {answer:?}");
        assert_eq!(answer.header("Access-Control-Allow-Origin"), Some(ALLOWED), "{path}");
        assert_eq!(answer.header("Access-Control-Allow-Methods"), Some("GET, POST, DELETE"), "{path}");
        let allowed_headers = answer.header("Access-Control-Allow-Headers").unwrap_or_default().to_ascii_lowercase();
        for header in ["authorization", "content-type", "idempotency-key", "last-event-id"] {
            assert!(allowed_headers.contains(header), "{path}: {header} is not allowed: {answer:?}");
        }
        assert_eq!(answer.header("Access-Control-Max-Age"), Some("600"), "{path}");
        assert!(answer.header("Vary").is_some_and(|v| v.contains("Origin")), "{path}: {answer:?}");
        assert_eq!(answer.header("Access-Control-Allow-Credentials"), None, "{path}");
        assert!(answer.body.is_empty(), "{path}: {answer:?}");
    }
    let second = preflight("/v1/turns", Some("http://127.0.0.1:5173"));
    assert_eq!(second.header("Access-Control-Allow-Origin"), Some("http://127.0.0.1:5173"), "{second:?}");

    // From another origin (or a near miss of the allowed one): 403 with no CORS header at all.
    for origin in [OTHER, "http://ide.example", "https://ide.example.evil.example", "null"] {
        let answer = preflight("/v1/turns", Some(origin));
        assert_eq!(answer.status, 403, "{origin}: {answer:?}");
        assert_eq!(cors_headers(&answer), [], "{origin}: {answer:?}");
        let body: mayfly_core::ErrorBody = serde_json::from_str(&answer.body).expect("the one error shape");
        assert_eq!(body.error.code, mayfly_core::ErrorCode::Forbidden);
        assert!(!answer.body.contains(origin), "the origin is echoed: {answer:?}");
    }
    // Without an `Origin` it is no preflight: OPTIONS is a method the API does not have.
    let answer = preflight("/v1/turns", None);
    assert_eq!(answer.status, 405, "{answer:?}");
    assert_eq!(cors_headers(&answer), [], "{answer:?}");

    // The request itself: an allowed origin may read the answer and its `Retry-After`, errors
    // included; anyone else gets no CORS header, and nothing is ever `*`.
    for path in ["/v1/health", "/v1/turns", "/v1/no-such-route"] {
        let get = |origin: Option<&str>| {
            let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
            client.raw("GET", path, &headers, b"")
        };
        let answer = get(Some(ALLOWED));
        assert_eq!(answer.header("Access-Control-Allow-Origin"), Some(ALLOWED), "{path}: {answer:?}");
        assert_eq!(answer.header("Access-Control-Expose-Headers"), Some("Retry-After"), "{path}");
        assert!(answer.header("Vary").is_some_and(|v| v.contains("Origin")), "{path}: {answer:?}");
        assert_eq!(answer.header("Access-Control-Allow-Credentials"), None, "{path}");
        for origin in [Some(OTHER), None] {
            let other = get(origin);
            assert_eq!(other.status, answer.status, "{path}: the origin changed the answer itself");
            assert_eq!(cors_headers(&other), [], "{path} from {origin:?}: {other:?}");
        }
    }
    let health = client.raw("GET", "/v1/health", &[("Origin", ALLOWED)], b"");
    assert_eq!(health.status, 200, "{health:?}");
    let refused = client.raw("GET", "/v1/turns", &[("Origin", ALLOWED)], b"");
    assert_eq!(refused.status, 401, "a page may read why it was refused: {refused:?}");
}
