//! Turn tokens: what a page in a browser holds instead of the tenant's key. A token creates,
//! reads, watches and cancels its tenant's turns and nothing else; it is refused once expired,
//! and any change to it makes it worthless; it never reaches another tenant's turns.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mayfly_core::{ErrorCode, Outcome, TokenScope, TurnList};
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{
    Answer, ApiClient, InProcessStack, Tools, WranglerDev, WranglerOptions, ALICE_KEY, BOB_KEY, TOKEN_SECRET,
};

use crate::support::error_of;

/// A well-formed turn id that is nobody's.
const UNKNOWN: &str = "t_0123456789abcdef0123456789abcdef";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `client`'s request with its credential in `Authorization`, as `ApiClient::call` sends it, but
/// the whole answer back.
fn request(client: &ApiClient, method: &str, path: &str, body: &str) -> Answer {
    let authorization = format!("Bearer {}", client.key().expect("a credential"));
    let mut headers = vec![("Authorization", authorization.as_str()), ("Content-Type", "application/json")];
    if path.contains("/events") {
        headers.push(("Accept", "text/event-stream"));
    }
    client.raw(method, path, &headers, body.as_bytes())
}

/// `token` with its claims (the JSON between the dots) changed by `change`, its signature kept.
fn with_claims(token: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    change(&mut claims);
    let encoded = URL_SAFE_NO_PAD.encode(claims.to_string());
    parts[1] = &encoded;
    parts.join(".")
}

#[test]
fn a_turn_token_runs_and_watches_its_tenants_turns_and_nothing_else() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let minted_at = now_ms();
    let minted = alice.mint_token(r#"{"ttl_s": 600}"#);
    assert_eq!(minted.scope, TokenScope::Turns);
    let lifetime = minted.expires_unix_ms.saturating_sub(minted_at);
    assert!((590_000..=610_000).contains(&lifetime), "the token lives {lifetime} ms");
    assert!(!minted.token.contains(ALICE_KEY), "the key is in the token");
    // As a page uses it: `Authorization` on requests, the subprotocol on the WebSocket.
    let token = stack.client(&minted.token).key_as_subprotocol();
    let mut answers = String::new();

    // It creates a turn and watches it to its end, over a WebSocket and as Server-Sent Events.
    let turn = token.create_turn(r#"{"code":"print('run with a token')","database":false}"#);
    let events = token.follow(&turn.turn_id, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert_eq!(stdout_of(&events), "run with a token\n");
    assert_eq!(token.follow_sse(&turn.turn_id, 0, None), events);
    let detail = token.detail(&turn.turn_id);
    assert_eq!(detail.turn_id, turn.turn_id);
    // The turn is the tenant's, as if its key had made it.
    let (status, list) = alice.call("GET", "/v1/turns", None);
    assert_eq!(status, 200, "{list}");
    assert!(serde_json::from_str::<TurnList>(&list).unwrap().turns.iter().any(|t| t.turn_id == turn.turn_id));

    // It cancels a turn.
    let long = token.create_turn(r#"{"code":"import time\ntime.sleep(60)","database":false}"#);
    let cancel = request(&token, "DELETE", &long.status_url, "");
    assert_eq!(cancel.status, 202, "{cancel:?}");
    assert_eq!(outcome_of(&token.follow(&long.turn_id, 0)), Some(Outcome::Cancelled));

    // Every route that is not a turn's own refuses it, with a 403 that says why.
    // Keeping a checkpoint longer, reaping it, or copying it into a fork reaches what the
    // tenant's other turns left (`docs/checkpoints.md`): the key's too.
    let keep = format!("/v1/turns/{}/keep", turn.turn_id);
    let checkpoint = format!("/v1/turns/{}/checkpoint", turn.turn_id);
    let fork = format!(r#"{{"code":"print(1)","database":{{"from":"{}"}}}}"#, turn.turn_id);
    let key_only = [
        ("GET", "/v1/turns", ""),
        ("GET", "/v1/reaper", ""),
        ("POST", "/v1/tokens", r#"{"ttl_s": 60}"#),
        ("POST", "/v1/tokens", ""),
        ("POST", keep.as_str(), ""),
        ("GET", "/v1/health?check=providers", ""),
        ("POST", checkpoint.as_str(), r#"{"keep_s": 60}"#),
        ("DELETE", checkpoint.as_str(), ""),
        ("POST", "/v1/turns", fork.as_str()),
    ];
    for (method, path, body) in key_only {
        let answer = request(&token, method, path, body);
        assert_eq!(answer.status, 403, "{method} {path}: {answer:?}");
        let error = error_of(&answer).error;
        assert_eq!(error.code, ErrorCode::Forbidden, "{method} {path}");
        assert!(error.message.contains("API key"), "{method} {path}: {}", error.message);
        answers += &answer.body;
    }
    // The key still may.
    // (Not those of a turn that has no database and no checkpoint: the key is taken there, and the
    // turn's state refuses.)
    let of_this_turn = |path: &str, body: &str| path.contains(&turn.turn_id) || body.contains(&turn.turn_id);
    for (method, path, body) in key_only.iter().filter(|(_, path, body)| !of_this_turn(path, body)) {
        let answer = request(&alice, method, path, body);
        // A provider check that fails is the deployment's 503, not a refusal of the key.
        let taken = answer.status == 200 || (path.contains("check=") && answer.status == 503);
        assert!(taken, "{method} {path} with the key: {answer:?}");
    }

    // Bob's token finds none of Alice's turns: the same 404 as a turn that never existed.
    let bobs = stack.client(BOB_KEY).mint_token("{}");
    let bob = stack.client(&bobs.token).key_as_subprotocol();
    for (method, template) in
        [("GET", "/v1/turns/{id}"), ("DELETE", "/v1/turns/{id}"), ("GET", "/v1/turns/{id}/events")]
    {
        let theirs = request(&bob, method, &template.replace("{id}", &turn.turn_id), "");
        let nobodys = request(&bob, method, &template.replace("{id}", UNKNOWN), "");
        assert_eq!(theirs.status, 404, "{method} {template} with bob's token: {theirs:?}");
        assert_eq!(theirs.body.replace(&turn.turn_id, UNKNOWN), nobodys.body, "{method} {template}");
        answers += &theirs.body;
    }
    assert_eq!(bob.connect_events(&turn.turn_id, 0).err().as_deref(), Some("status 404 Not Found"));
    // Nor does Alice's token relabelled as Bob's: its signature no longer holds.
    let relabelled = with_claims(&minted.token, |claims| claims["tenant"] = "bob".into());
    let answer = request(&stack.client(&relabelled), "GET", &format!("/v1/turns/{}", turn.turn_id), "");
    assert_eq!(answer.status, 401, "{answer:?}");

    for (what, secret) in [("alice's token", &minted.token), ("bob's token", &bobs.token)] {
        assert!(!answers.contains(secret.as_str()), "{what} is in an answer");
    }
    alice.wait_reaped(&turn.turn_id);
    alice.wait_reaped(&long.turn_id);
    stack.assert_nothing_left(&turn.turn_id);
    stack.assert_nothing_left(&long.turn_id);
}

#[test]
fn an_expired_or_altered_token_is_refused_on_every_route() {
    // No provider is needed: every request here is refused before a turn could start.
    let vars = [("MAYFLY_API_KEYS", format!("alice:{ALICE_KEY}")), ("MAYFLY_TOKEN_SECRET", TOKEN_SECRET.to_owned())];
    let options = WranglerOptions {
        vars: vars.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
        ..WranglerOptions::default()
    };
    let worker = WranglerDev::start(&Tools::of_workspace(), options).expect("the worker starts");
    let alice = worker.client(Some(ALICE_KEY));
    let minted = alice.mint_token(r#"{"ttl_s": 1}"#);
    let token = worker.client(Some(&minted.token));

    // Polled until the worker refuses it: until then it is a valid token of Alice's, for whom
    // this turn does not exist.
    let detail = format!("/v1/turns/{UNKNOWN}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let refusal = loop {
        let answer = request(&token, "GET", &detail, "");
        match answer.status {
            404 => {}
            401 => break answer,
            _ => panic!("neither a valid nor an expired token's answer: {answer:?}"),
        }
        assert!(Instant::now() < deadline, "the token was still taken 30 s after minting: {answer:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(now_ms() >= minted.expires_unix_ms, "refused before it expired: {refusal:?}");
    assert!(error_of(&refusal).error.message.contains("expired"), "{refusal:?}");

    // Expired: refused on every route that takes a token, and on those that never would.
    let events = format!("/v1/turns/{UNKNOWN}/events");
    let routes = [
        ("POST", "/v1/turns", r#"{"code":"print(1)","database":false}"#),
        ("GET", detail.as_str(), ""),
        ("DELETE", detail.as_str(), ""),
        ("GET", events.as_str(), ""),
        ("GET", "/v1/turns", ""),
        ("POST", "/v1/tokens", ""),
    ];
    for (method, path, body) in routes {
        let answer = request(&token, method, path, body);
        assert_eq!(answer.status, 401, "{method} {path}: {answer:?}");
        assert!(error_of(&answer).error.message.contains("expired"), "{method} {path}: {answer:?}");
    }
    let socket = token.key_as_subprotocol().connect_events(UNKNOWN, 0);
    assert_eq!(socket.err().as_deref(), Some("status 401 Unauthorized"));

    // Altered: a later expiry, another tenant, another signature, or none. Only a token whose
    // signature holds is ever called expired; these are simply not valid.
    let fresh = alice.mint_token("{}");
    let later = now_ms() + 3_600_000;
    let signature = |token: &str| token.rsplit_once('.').unwrap().1.to_owned();
    let unsigned = minted.token.rsplit_once('.').unwrap().0.to_owned();
    let altered = [
        with_claims(&minted.token, |claims| claims["exp_ms"] = later.into()),
        with_claims(&fresh.token, |claims| claims["tenant"] = "bob".into()),
        with_claims(&fresh.token, |claims| claims["scope"] = "admin".into()),
        format!("{unsigned}.{}", signature(&fresh.token)),
        format!("{unsigned}."),
        unsigned,
        format!("{}A", fresh.token),
        "mft1.e30.AAAA".to_owned(),
    ];
    for forged in &altered {
        let answer = request(&worker.client(Some(forged)), "GET", &detail, "");
        assert_eq!(answer.status, 401, "{forged}: {answer:?}");
        let message = error_of(&answer).error.message;
        assert!(message.contains("not valid"), "{forged}: {message}");
    }
    // The unaltered fresh token is fine, so the refusals above are the alterations'.
    assert_eq!(request(&worker.client(Some(&fresh.token)), "GET", &detail, "").status, 404);

    let log = std::fs::read_to_string(&worker.wrangler_log).unwrap_or_default();
    for (what, secret) in
        [("a token", fresh.token.as_str()), ("the token secret", TOKEN_SECRET), ("the key", ALICE_KEY)]
    {
        assert!(!log.contains(secret), "{what} is in the worker's log");
    }
}
