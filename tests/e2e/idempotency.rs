//! An agent retries a turn's creation without fear: with an `Idempotency-Key`, a `POST /v1/turns`
//! whose answer was lost, or that is sent again while the first is still on its way, gets the same
//! turn and starts no second one; the key with another body is a `409`, and keys are the tenant's
//! own.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};

use mayfly_core::{CreateTurnResponse, ErrorBody, ErrorCode, Outcome, TurnList};
use mayfly_e2e::fault_proxy::{Fault, FaultProxy, Rule};
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{Answer, ApiClient, InProcessStack, ALICE_KEY, BOB_KEY};

const BODY: &str = r#"{"code":"echo ran","language":"bash","database":false}"#;

/// `POST /v1/turns` with the client's key and `Idempotency-Key: key`; an error when no whole answer
/// came back.
fn post(client: &ApiClient, key: &str, body: &str) -> anyhow::Result<Answer> {
    let bearer = format!("Bearer {}", client.key().expect("a client with a key"));
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json"), ("Idempotency-Key", key)];
    client.try_raw("POST", "/v1/turns", &headers, body.as_bytes())
}

/// The turn a `201` answer names.
fn created(answer: &Answer) -> CreateTurnResponse {
    assert_eq!(answer.status, 201, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("a CreateTurnResponse")
}

/// Every turn the client's tenant has, newest first.
fn listed(client: &ApiClient) -> Vec<String> {
    let (status, body) = client.call("GET", "/v1/turns", None);
    assert_eq!(status, 200, "{body}");
    let list: TurnList = serde_json::from_str(&body).expect("a TurnList");
    assert_eq!(list.next_cursor, None, "every turn fits one page: {body}");
    list.turns.into_iter().map(|turn| turn.turn_id).collect()
}

/// The turn ran exactly once, as asked, and left nothing behind.
fn ran_once(stack: &InProcessStack, client: &ApiClient, turn_id: &str) {
    let events = client.follow(turn_id, 0);
    assert_eq!(stdout_of(&events), "ran\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    client.wait_reaped(turn_id);
    stack.assert_nothing_left(turn_id);
}

#[test]
fn a_retried_creation_gets_the_same_turn_and_never_a_second() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let worker: SocketAddr = stack.worker.url.strip_prefix("http://").unwrap().parse().unwrap();

    // The answer is lost on its way back: the worker answered in full, the agent saw the
    // connection close. The retry gets the turn the first request started, and that is all.
    let proxy = FaultProxy::start("worker", 0, worker).unwrap();
    proxy.arm(Rule::new("POST", "/v1/turns", Fault::Drop));
    let lost = post(&ApiClient::new(&proxy.url(), Some(ALICE_KEY)), "lost-answer-1", BODY);
    assert!(lost.is_err(), "the answer was to be lost: {lost:?}");
    assert_eq!(proxy.fired().len(), 1);
    let retried = post(&alice, "lost-answer-1", BODY).unwrap();
    let turn = created(&retried);
    assert_eq!(listed(&alice), std::slice::from_ref(&turn.turn_id), "one turn for the request and its retry");
    let again = post(&alice, "lost-answer-1", BODY).unwrap();
    assert_eq!((again.status, &again.body), (201, &retried.body), "the same answer every time");
    let mut alices = vec![turn.turn_id];

    // The connection closes right after the request is sent, and the retry follows at once: the
    // worker may see the first request whole, in part, or after the retry. One turn, whichever.
    let mut cut = TcpStream::connect(worker).unwrap();
    let request = format!(
        "POST /v1/turns HTTP/1.1\r\nHost: {worker}\r\nAuthorization: Bearer {ALICE_KEY}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: cut-short-2\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    cut.write_all(request.as_bytes()).unwrap();
    cut.shutdown(Shutdown::Both).unwrap();
    drop(cut);
    let retried = created(&post(&alice, "cut-short-2", BODY).unwrap());
    assert_eq!(created(&post(&alice, "cut-short-2", BODY).unwrap()).turn_id, retried.turn_id);
    alices.insert(0, retried.turn_id);
    assert_eq!(listed(&alice), alices);

    // Retries racing each other: four at once, one turn, the same answer to each.
    let racing: Vec<Answer> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..4).map(|_| scope.spawn(|| post(&alice, "racing-3", BODY).unwrap())).collect();
        posts.into_iter().map(|post| post.join().unwrap()).collect()
    });
    let first = created(&racing[0]);
    assert!(racing.iter().all(|answer| answer.status == 201 && answer.body == racing[0].body), "{racing:?}");
    alices.insert(0, first.turn_id);
    assert_eq!(listed(&alice), alices);

    // The key with another body is refused, and starts nothing.
    let other = post(&alice, "racing-3", r#"{"code":"echo other","language":"bash","database":false}"#).unwrap();
    assert_eq!(other.status, 409, "{}", other.body);
    let error = serde_json::from_str::<ErrorBody>(&other.body).expect("the error shape").error;
    assert_eq!(error.code, ErrorCode::Conflict);
    assert!(error.message.contains("Idempotency-Key was sent before with another request body"), "{error:?}");
    // Byte for byte: the same request with spaces is another body.
    let spaced = post(&alice, "racing-3", &BODY.replace(':', ": ")).unwrap();
    assert_eq!(spaced.status, 409, "{}", spaced.body);
    // A key that is no key is refused before anything is recorded.
    for bad in ["", "two words", &"k".repeat(256)] {
        let refused = post(&alice, bad, BODY).unwrap();
        assert_eq!(refused.status, 400, "{bad:?}: {}", refused.body);
        assert!(refused.body.contains("Idempotency-Key must be 1 to 255 visible ASCII characters"), "{}", refused.body);
    }
    assert_eq!(listed(&alice), alices);

    // Keys are the tenant's: Bob's request with Alice's key is his own new turn.
    let bobs = created(&post(&bob, "lost-answer-1", BODY).unwrap());
    assert!(!alices.contains(&bobs.turn_id), "{bobs:?}");
    assert_eq!(listed(&bob), std::slice::from_ref(&bobs.turn_id));
    assert_eq!(listed(&alice), alices);

    for turn_id in &alices {
        ran_once(&stack, &alice, turn_id);
    }
    ran_once(&stack, &bob, &bobs.turn_id);
}
