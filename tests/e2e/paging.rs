//! An agent reads its turns a page at a time: `GET /v1/turns?limit=N` and the `next_cursor` of
//! each page give every turn exactly once, newest first, and a cursor only ever lists the
//! caller's own turns. A bad limit or cursor is a `400` that says why.

use mayfly_core::{ErrorBody, ErrorCode, TurnList};
use mayfly_e2e::{ApiClient, InProcessStack, ALICE_KEY, BOB_KEY};

fn turn(n: usize) -> String {
    serde_json::json!({ "code": format!("echo {n}"), "language": "bash", "database": false }).to_string()
}

fn page(client: &ApiClient, query: &str) -> TurnList {
    let (status, body) = client.call("GET", &format!("/v1/turns{query}"), None);
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).expect("a TurnList")
}

/// Every page of `limit` from the newest: the size of each, and the turns in the order shown.
fn every_page(client: &ApiClient, limit: usize) -> (Vec<usize>, Vec<String>) {
    let (mut sizes, mut turns) = (Vec::new(), Vec::new());
    let mut query = format!("?limit={limit}");
    loop {
        let list = page(client, &query);
        sizes.push(list.turns.len());
        turns.extend(list.turns.into_iter().map(|turn| turn.turn_id));
        let Some(cursor) = list.next_cursor else { return (sizes, turns) };
        query = format!("?limit={limit}&cursor={cursor}");
        assert!(sizes.len() <= 10, "the pages do not end: {turns:?}");
    }
}

#[test]
fn turns_are_listed_a_page_at_a_time_newest_first_each_once() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let bobs = bob.create_turn(&turn(0)).turn_id;
    let created: Vec<String> = (1..=5).map(|n| alice.create_turn(&turn(n)).turn_id).collect();
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    assert_eq!(every_page(&alice, 2), (vec![2, 2, 1], newest_first.clone()));
    assert_eq!(every_page(&alice, 1), (vec![1; 5], newest_first.clone()));
    // A page that ends where the turns do says there is no more.
    assert_eq!(every_page(&alice, 5), (vec![5], newest_first.clone()));
    let whole = page(&alice, "");
    assert_eq!(whole.turns.iter().map(|t| t.turn_id.clone()).collect::<Vec<_>>(), newest_first);
    assert_eq!(whole.next_cursor, None);
    let times: Vec<u64> = whole.turns.iter().map(|t| t.created_unix_ms).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    // Alice's cursor in Bob's hands lists Bob's turns older than that place: his own, never hers.
    let cursor = page(&alice, "?limit=2").next_cursor.expect("more than one page");
    let bobs_page = page(&bob, &format!("?cursor={cursor}"));
    assert_eq!(bobs_page.turns.iter().map(|t| t.turn_id.clone()).collect::<Vec<_>>(), std::slice::from_ref(&bobs));
    assert_eq!(bobs_page.next_cursor, None);

    // Mistakes are 400s that say what is wrong, never a server error.
    let refusals = [
        ("?limit=0", "limit must be a whole number from 1 to 50, got \"0\""),
        ("?limit=51", "limit must be a whole number from 1 to 50, got \"51\""),
        ("?limit=all", "limit must be a whole number from 1 to 50, got \"all\""),
        ("?limit=1&limit=2", "limit is given more than once"),
        ("?cursor=", "cursor is not one this API gave out"),
        ("?cursor=bm90LWEtY3Vyc29y", "cursor is not one this API gave out"),
        ("?cursor=%00%FF", "cursor is not one this API gave out"),
    ];
    for (query, says) in refusals {
        let (status, body) = alice.call("GET", &format!("/v1/turns{query}"), None);
        assert_eq!(status, 400, "{query}: {body}");
        let error = serde_json::from_str::<ErrorBody>(&body).expect("the error shape").error;
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{query}");
        assert!(error.message.contains(says), "{query}: {}", error.message);
    }

    for turn_id in created.iter().chain([&bobs]) {
        let client = if *turn_id == bobs { &bob } else { &alice };
        client.wait_reaped(turn_id);
        stack.assert_nothing_left(turn_id);
    }
}
