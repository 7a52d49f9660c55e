//! Secret hygiene after real turns: the database passwords, the tenants' API keys, a turn token
//! and the secret that signs it, the providers' keys and the cluster's admin password appear in no
//! event, no answer of the API (but the token in the one that mints it), no log and nothing the
//! worker stored (its Durable Objects: turns, events, the ledger).

use std::path::{Path, PathBuf};

use mayfly_core::{Outcome, TurnDetail};
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{InProcessStack, ALICE_KEY, BOB_KEY, TOKEN_SECRET};

use crate::support::lines_with;

/// Prints the database password reversed, so the test learns it while the turn's output (a
/// stdout event) never holds it, then proves the password works.
const PRINT_PASSWORD: &str = r#"
import os, urllib.parse, psycopg
url = os.environ["PG_URL"]
print("reversed-password", urllib.parse.urlsplit(url).password[::-1], flush=True)
with psycopg.connect(url) as conn:
    print("connected", conn.execute("select 1").fetchone()[0], flush=True)
"#;

/// An env value the caller considers secret: the detail shows env names only.
const ENV_SECRET: &str = "env-secret-5b0c9e2f71d84a6a";

#[test]
fn secrets_appear_in_no_event_answer_log_or_storage() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    // Three ends a turn can have: success, failure after running, timeout while running.
    let bodies = [
        serde_json::json!({ "code": PRINT_PASSWORD, "env": { "MY_TOKEN": ENV_SECRET } }),
        serde_json::json!({ "code": format!("{PRINT_PASSWORD}\nraise SystemExit(3)") }),
        serde_json::json!({ "code": format!("{PRINT_PASSWORD}\nimport time\ntime.sleep(60)"), "timeout_s": 3 }),
    ];
    let mut passwords = Vec::new();
    let mut seen = String::new();
    let mut turns = Vec::new();
    for (body, outcome) in bodies.iter().zip([Outcome::Succeeded, Outcome::Failed, Outcome::TimedOut]) {
        let turn = alice.create_turn(&body.to_string());
        let events = alice.follow(&turn.turn_id, 0);
        assert_eq!(outcome_of(&events), Some(outcome), "{events:?}");
        let stdout = stdout_of(&events);
        assert!(stdout.contains("connected 1"), "{stdout}");
        let reversed = lines_with(&stdout, "reversed-password ");
        let password: String = reversed.first().expect("the turn printed it").trim().chars().rev().collect();
        assert!(password.len() >= 16, "a real password: {password:?}");
        passwords.push(password);
        alice.wait_reaped(&turn.turn_id);
        stack.assert_nothing_left(&turn.turn_id);
        turns.push(turn);
    }

    // Everything a client can read: every event (WebSocket and SSE), every answer.
    for turn in &turns {
        seen += &serde_json::to_string(&alice.follow(&turn.turn_id, 0)).unwrap();
        seen += &serde_json::to_string(&alice.follow_sse(&turn.turn_id, 0, None)).unwrap();
        let detail: TurnDetail = alice.detail(&turn.turn_id);
        // The detail names the env, never its values.
        assert!(detail.spec.env.iter().all(|name| name == "MY_TOKEN"), "{detail:?}");
        for (method, path) in [("GET", turn.status_url.clone()), ("POST", format!("{}/keep", turn.status_url))] {
            seen += &alice.call(method, &path, None).1;
        }
        seen += &bob.call("GET", &turn.status_url, None).1;
    }
    // A turn token, used as a page uses it: a turn watched over a WebSocket with the token as its
    // subprotocol, which is handed on towards the turn's object.
    let token = alice.mint_token("{}").token;
    let by_token = stack.client(&token).key_as_subprotocol();
    let turn = by_token.create_turn(r#"{"code":"print('by token')","database":false}"#);
    seen += &serde_json::to_string(&by_token.follow(&turn.turn_id, 0)).unwrap();
    seen += &by_token.call("GET", &turn.status_url, None).1;
    seen += &by_token.call("GET", "/v1/turns", None).1;
    alice.wait_reaped(&turn.turn_id);
    for path in ["/v1/turns", "/v1/reaper", "/v1/health", "/v1/openapi.json", "/v1/nothing"] {
        seen += &alice.call("GET", path, None).1;
    }
    seen += &stack.client("wrong-key").call("GET", "/v1/turns", None).1;
    let bad_env = serde_json::json!({ "code": "1", "env": { "PG_URL": format!("postgres://u:{}@h/d", passwords[0]) } });
    let refused = alice.call("POST", "/v1/turns", Some(&bad_env.to_string()));
    assert_eq!(refused.0, 400, "{refused:?}");
    seen += &refused.1;
    let auth = format!("Bearer {ALICE_KEY}");
    seen += &stack.anonymous().raw("POST", "/v1/turns", &[("Authorization", &auth)], b"\xff{not json").body;
    assert!(seen.contains("reversed-password"), "the events were read");

    let endpoints = &stack.local().endpoints;
    let admin_url = stack.local().postgres_admin_url();
    let admin_password = admin_url.split_once("://").unwrap().1.split_once('@').unwrap().0.split_once(':').unwrap().1;
    let mut secrets: Vec<(&str, &str)> = vec![
        ("alice's API key", ALICE_KEY),
        ("bob's API key", BOB_KEY),
        ("sandboxd's API key", &endpoints.sandboxd_api_key),
        ("scratchdb's token", &endpoints.scratchdb_token),
        ("the cluster's admin password", admin_password),
        ("a turn token", &token),
        ("the turn tokens' secret", TOKEN_SECRET),
    ];
    for password in &passwords {
        secrets.push(("a turn's database password", password));
    }
    for (what, secret) in &secrets {
        assert!(!seen.contains(secret), "{what} is in an answer or event");
    }
    assert!(!seen.contains(ENV_SECRET), "an env value is in an answer or event");

    // Every log and everything the worker stored. The cluster's own files hold its password
    // hashes and scratchdb's registry by design; its log is checked.
    let mut files = vec![stack.worker.wrangler_log.clone()];
    files.extend(files_under(&stack.data_dir().join("worker-state")));
    files.extend(files_under(stack.data_dir()).into_iter().filter(|f| f.extension().is_some_and(|e| e == "log")));
    assert!(files.len() > 2, "the worker stored something: {files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        for (what, secret) in &secrets {
            let utf16: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
            for needle in [secret.as_bytes(), &utf16] {
                assert!(!contains(&bytes, needle), "{what} is in {}", file.display());
            }
        }
    }
    eprintln!(
        "secrets: {} secrets checked in {} bytes of answers and events and {} files",
        secrets.len(),
        seen.len(),
        files.len()
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files.extend(files_under(&path)),
            Ok(t) if t.is_file() => files.push(path),
            _ => {}
        }
    }
    files
}
