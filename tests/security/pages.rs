//! Every page of the app carries a Content-Security-Policy and framing rules: the app's pages may
//! be framed by nobody, the embed view only by the origins the deployment names.

use mayfly_e2e::{InProcessStack, TestStackOptions};

/// The answer's status and the headers this test reads.
fn page(stack: &InProcessStack, path: &str) -> (u16, String, Option<String>, Option<String>, Option<String>) {
    let answer = stack.anonymous().raw("GET", path, &[], b"");
    let header = |name: &str| answer.header(name).map(str::to_owned);
    (
        answer.status,
        answer.content_type.clone(),
        header("Content-Security-Policy"),
        header("X-Frame-Options"),
        header("X-Content-Type-Options"),
    )
}

#[test]
fn every_page_carries_a_content_security_policy_and_framing_rules() {
    let origins = "https://ide.example, http://127.0.0.1:5173";
    let stack = InProcessStack::start_with(TestStackOptions::default().var("EMBED_ORIGINS", origins));
    for path in ["/", "/turns", "/turns/t_0123", "/any/path/the/app/routes"] {
        let (status, content_type, policy, frame_options, nosniff) = page(&stack, path);
        assert_eq!((status, content_type.as_str()), (200, "text/html"), "{path}");
        let policy = policy.unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"));
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(frame_options.as_deref(), Some("DENY"), "{path}");
        assert_eq!(nosniff.as_deref(), Some("nosniff"), "{path}");
    }
    let (status, _, policy, frame_options, _) = page(&stack, "/embed");
    assert_eq!(status, 200);
    let policy = policy.expect("the embed view has a Content-Security-Policy");
    assert!(policy.contains("frame-ancestors https://ide.example http://127.0.0.1:5173"), "{policy}");
    assert_eq!(frame_options, None, "X-Frame-Options cannot name origins: the policy does");
    // Files are not pages, but are never sniffed into something else.
    let (status, content_type, _, _, nosniff) = page(&stack, "/style.css");
    assert_eq!((status, content_type.as_str(), nosniff.as_deref()), (200, "text/css", Some("nosniff")));
}

#[test]
fn without_configured_origins_nobody_may_frame_the_embed_view() {
    let stack = InProcessStack::start();
    let (_, _, policy, frame_options, _) = page(&stack, "/embed");
    assert!(policy.expect("a policy").contains("frame-ancestors 'none'"));
    assert_eq!(frame_options.as_deref(), Some("DENY"));
}
