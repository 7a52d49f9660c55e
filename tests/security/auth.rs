//! Keys on every route: no key, a malformed or wrong one is a 401 that says nothing about the
//! turn asked for; another tenant's key is the same 404 as a turn that never existed, and its
//! lists show nothing of the other tenant.

use mayfly_core::{ErrorCode, Outcome, ReaperStatus, TurnList};
use mayfly_e2e::turns::outcome_of;
use mayfly_e2e::{Answer, InProcessStack, ALICE_KEY, BOB_KEY};

use crate::support::error_of;

/// A route, with the placeholder `{id}` for a turn id, and the body it is sent with.
const ROUTES: [(&str, &str, &str); 9] = [
    ("POST", "/v1/turns", r#"{"code":"print(1)","database":false}"#),
    ("GET", "/v1/turns", ""),
    ("GET", "/v1/reaper", ""),
    ("GET", "/v1/turns/{id}", ""),
    ("DELETE", "/v1/turns/{id}", ""),
    ("GET", "/v1/turns/{id}/events", ""),
    ("GET", "/v1/turns/{id}/events?after=0", ""),
    ("POST", "/v1/turns/{id}/keep", ""),
    ("POST", "/v1/tokens", r#"{"ttl_s":60}"#),
];

fn request(stack: &InProcessStack, method: &str, path: &str, authorization: Option<&str>, body: &str) -> Answer {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    // The event stream's SSE form, so a request that gets through is a stream, not a 400.
    if path.contains("/events") {
        headers.push(("Accept", "text/event-stream"));
    }
    stack.anonymous().raw(method, path, &headers, body.as_bytes())
}

#[test]
fn every_route_refuses_missing_wrong_and_foreign_keys_alike() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let turn = alice.create_turn(r#"{"code":"print('alice')","database":false}"#);
    let events = alice.follow(&turn.turn_id, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    alice.wait_reaped(&turn.turn_id);
    // Well-formed, but never a turn of anyone's.
    let unknown = "t_0123456789abcdef0123456789abcdef";

    let basic = "Basic YWxpY2U6a2V5LWFsaWNlLTAxMjM0NTY3ODk=";
    let near_misses = [
        format!("Bearer {}", &ALICE_KEY[..ALICE_KEY.len() - 1]),
        format!("Bearer {ALICE_KEY}x"),
        format!("Bearer {}", ALICE_KEY.to_uppercase()),
        format!("Bearer alice:{ALICE_KEY}"),
        format!("Bearer  {ALICE_KEY} {BOB_KEY}"),
        format!("Token {ALICE_KEY}"),
        ALICE_KEY.to_owned(),
    ];
    let mut unauthorized: Vec<Option<&str>> =
        vec![None, Some(""), Some("Bearer"), Some("Bearer "), Some("Bearer not-a-key"), Some(basic)];
    unauthorized.extend(near_misses.iter().map(|v| Some(v.as_str())));

    let mut checked = 0;
    for (method, template, body) in ROUTES {
        let mut bodies = std::collections::BTreeSet::new();
        for authorization in &unauthorized {
            let mut answers = Vec::new();
            for id in [turn.turn_id.as_str(), unknown] {
                let path = template.replace("{id}", id);
                let answer = request(&stack, method, &path, *authorization, body);
                let what = format!("{method} {path} with {authorization:?}");
                assert_eq!(answer.status, 401, "{what}: {answer:?}");
                assert_eq!(error_of(&answer).error.code, ErrorCode::Unauthorized, "{what}");
                for secret in [ALICE_KEY, BOB_KEY, "alice", "bob", &turn.turn_id] {
                    assert!(!answer.body.contains(secret), "{what} tells {secret:?}: {answer:?}");
                }
                answers.push(answer);
                checked += 1;
            }
            // Whether the turn exists changes nothing in the answer.
            let seen = |a: &Answer| (a.status, a.content_type.clone(), a.body.clone(), a.retry_after());
            assert_eq!(seen(&answers[0]), seen(&answers[1]), "{method} {template} with {authorization:?}");
            bodies.insert(answers.remove(0).body);
        }
        // One wording for a missing key, one for any key that is not known, however near it is.
        assert!(bodies.len() <= 2, "{method} {template}: the refusals differ: {bodies:#?}");
    }

    // Bob's key: Alice's turn is the same 404 as one that never existed, on every turn route,
    // even when Bob names Alice as the tenant himself.
    let bobs = format!("Bearer {BOB_KEY}");
    for (method, template, body) in ROUTES.iter().filter(|(_, t, _)| t.contains("{id}")) {
        let theirs = request(&stack, method, &template.replace("{id}", &turn.turn_id), Some(&bobs), body);
        let nobodys = request(&stack, method, &template.replace("{id}", unknown), Some(&bobs), body);
        let what = format!("{method} {template} as bob");
        assert_eq!(theirs.status, 404, "{what}: {theirs:?}");
        assert_eq!(error_of(&theirs).error.code, ErrorCode::NotFound, "{what}");
        assert_eq!(theirs.body.replace(&turn.turn_id, unknown), nobodys.body, "{what}");
        assert!(!theirs.body.contains("alice"), "{what}: {theirs:?}");
        let headers = [("Authorization", bobs.as_str()), ("x-mayfly-tenant", "alice"), ("X-Mayfly-Tenant", "alice")];
        let spoofed =
            stack.anonymous().raw(method, &template.replace("{id}", &turn.turn_id), &headers, body.as_bytes());
        assert_eq!(spoofed.status, 404, "{what} claiming to be alice: {spoofed:?}");
        checked += 3;
    }
    assert_eq!(bob.connect_events(&turn.turn_id, 0).err().as_deref(), Some("status 404 Not Found"));
    assert_eq!(
        stack.client("not-a-key").connect_events(&turn.turn_id, 0).err().as_deref(),
        Some("status 401 Unauthorized")
    );

    // Bob's lists hold nothing of Alice's; Alice's hold her turn.
    let (status, body) = bob.call("GET", "/v1/turns", None);
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<TurnList>(&body).unwrap().turns.is_empty(), "{body}");
    let (status, body) = bob.call("GET", "/v1/reaper", None);
    assert_eq!(status, 200, "{body}");
    let reaper: ReaperStatus = serde_json::from_str(&body).unwrap();
    assert_eq!((reaper.alive, reaper.overdue.len(), reaper.failed.len()), (0, 0, 0), "{body}");
    assert!(!body.contains(&turn.turn_id), "{body}");
    let (status, body) = alice.call("GET", "/v1/turns", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&turn.turn_id), "{body}");

    // The public routes are public and say nothing secret.
    for path in ["/v1/health", "/v1/openapi.json"] {
        let answer = request(&stack, "GET", path, None, "");
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        for secret in
            [ALICE_KEY, BOB_KEY, &stack.local().endpoints.sandboxd_api_key, &stack.local().endpoints.scratchdb_token]
        {
            assert!(!answer.body.contains(secret), "{path} tells a key: {}", answer.body);
        }
    }
    eprintln!("auth: {checked} refused requests over {} routes", ROUTES.len());
    stack.assert_nothing_left(&turn.turn_id);
}
