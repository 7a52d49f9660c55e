//! A tenant's ledger stays bounded however many turns it runs: it keeps the newest turns
//! (`MAX_TURN_HISTORY`) and remembers the newest idempotency keys (`MAX_IDEMPOTENCY_KEYS`),
//! forgetting the older ones as new ones come. Here both bounds are small, to be reached.

use mayfly_core::{CreateTurnResponse, TurnList};
use mayfly_e2e::{ApiClient, InProcessStack, TestStackOptions, ALICE_KEY};

fn body(n: usize) -> String {
    serde_json::json!({ "code": format!("echo {n}"), "language": "bash", "database": false }).to_string()
}

/// `POST /v1/turns` with `Idempotency-Key: key`, which must be answered `201`.
fn create(client: &ApiClient, key: &str, body: &str) -> CreateTurnResponse {
    let bearer = format!("Bearer {ALICE_KEY}");
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json"), ("Idempotency-Key", key)];
    let answer = client.raw("POST", "/v1/turns", &headers, body.as_bytes());
    assert_eq!(answer.status, 201, "{key}: {}", answer.body);
    serde_json::from_str(&answer.body).expect("a CreateTurnResponse")
}

fn listed(client: &ApiClient, query: &str) -> (Vec<String>, Option<String>) {
    let (status, body) = client.call("GET", &format!("/v1/turns{query}"), None);
    assert_eq!(status, 200, "{body}");
    let list: TurnList = serde_json::from_str(&body).expect("a TurnList");
    (list.turns.into_iter().map(|turn| turn.turn_id).collect(), list.next_cursor)
}

#[test]
fn a_tenants_ledger_keeps_its_newest_turns_and_keys_and_forgets_the_rest() {
    let options = TestStackOptions::default().var("MAX_TURN_HISTORY", "3").var("MAX_IDEMPOTENCY_KEYS", "2");
    let stack = InProcessStack::start_with(options);
    let alice = stack.client(ALICE_KEY);
    let turns: Vec<String> = (1..=5).map(|n| create(&alice, &format!("key-{n}"), &body(n)).turn_id).collect();

    // The newest three turns are listed, one page or two; the two oldest dropped out of the list,
    // yet their own objects still answer.
    let newest: Vec<String> = turns.iter().rev().take(3).cloned().collect();
    assert_eq!(listed(&alice, ""), (newest.clone(), None));
    let (first, cursor) = listed(&alice, "?limit=2");
    let (rest, end) = listed(&alice, &format!("?limit=2&cursor={}", cursor.expect("a second page")));
    assert_eq!(([first, rest].concat(), end), (newest, None));
    assert_eq!(alice.detail(&turns[0]).turn_id, turns[0]);

    // The two newest keys are remembered: their retries get their turns.
    assert_eq!(create(&alice, "key-5", &body(5)).turn_id, turns[4]);
    assert_eq!(create(&alice, "key-4", &body(4)).turn_id, turns[3]);
    // An older one is forgotten: the same request with it is a new turn.
    let anew = create(&alice, "key-3", &body(3)).turn_id;
    assert!(!turns.contains(&anew), "{anew} is one of {turns:?}");
    assert_eq!(listed(&alice, "").0, [anew.clone(), turns[4].clone(), turns[3].clone()]);

    for turn_id in turns.iter().chain([&anew]) {
        alice.wait_reaped(turn_id);
        stack.assert_nothing_left(turn_id);
    }
}
