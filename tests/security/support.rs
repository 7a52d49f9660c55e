//! What the security tests share: raw requests, the error shape, the providers' own lists and a
//! look at the host's processes.

use std::time::Duration;

use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_instanode};
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::InstanodeClient;
use mayfly_core::providers::{DatabaseProvider, SandboxProvider};
use mayfly_core::{CreateTurnResponse, ErrorBody, Event, EventBody, TurnList};
use mayfly_e2e::turns::{TurnStack, ALICE_KEY, BOB_KEY};

/// An answer as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
    /// `Retry-After`, in seconds, when the answer has one.
    pub(crate) retry_after: Option<u64>,
}

/// A request with exactly these headers and body bytes, whatever the answer's status.
pub(crate) fn raw(stack: &TurnStack, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
    let mut request = agent.request(method, &format!("{}{path}", stack.stack.url));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = if body.is_empty() && method != "POST" { request.call() } else { request.send_bytes(body) };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(err) => panic!("{method} {path}: {err}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_owned();
    let retry_after = response.header("Retry-After").and_then(|v| v.trim().parse().ok());
    let body = response.into_string().expect("a text body");
    Answer { status, content_type, body, retry_after }
}

/// The `{"error": {"code", "message"}}` of an answer; fails the test for any other shape.
pub(crate) fn error_of(answer: &Answer) -> ErrorBody {
    assert_eq!(answer.content_type, "application/json", "not the error shape: {answer:?}");
    serde_json::from_str(&answer.body).unwrap_or_else(|err| panic!("not the error shape ({err}): {answer:?}"))
}

/// Asserts that neither provider holds anything and that no tenant's ledger lists a turn: the
/// ledger records a turn before it starts, so an empty one means none was accepted.
pub(crate) fn assert_nothing_provisioned(stack: &TurnStack) {
    let endpoints = &stack.local().endpoints;
    let sandboxes = E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(endpoints));
    let databases = InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, local_instanode(endpoints));
    let (sandboxes, databases) = stack.runtime.block_on(async {
        (sandboxes.list_tagged().await.expect("sandboxd lists"), databases.list().await.expect("scratchdb lists"))
    });
    assert!(sandboxes.is_empty(), "sandboxes were provisioned: {sandboxes:?}");
    assert!(databases.is_empty(), "databases were provisioned: {databases:?}");
    for key in [ALICE_KEY, BOB_KEY] {
        let (status, body) = stack.call("GET", "/v1/turns", Some(key), None);
        assert_eq!(status, 200, "{body}");
        let list: TurnList = serde_json::from_str(&body).expect("a TurnList");
        assert!(list.turns.is_empty(), "turns were accepted: {body}");
    }
}

/// The host processes that belong to sandbox `sandbox_id`: in its cgroups (which jailed code
/// cannot leave), naming it (the jail's `bwrap`), or carrying `mark` in their command line or
/// environment. Zombies are left out: they run nothing and hold nothing.
pub(crate) fn host_processes(sandbox_id: &str, mark: &str) -> Vec<String> {
    let cgroup = format!("/mayfly-sandboxd/{sandbox_id}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let dir = entry.path();
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else { continue };
        let field = |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1));
        if matches!(field("State:"), Some("Z" | "X")) {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        let cgroups = std::fs::read(dir.join("cgroup")).unwrap_or_default();
        let has = |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        if has(&cgroups, &cgroup) || has(&cmdline, sandbox_id) || has(&cmdline, mark) || has(&environ, mark) {
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{} uid={:?} {args}", entry.file_name().to_string_lossy(), field("Uid:")));
        }
    }
    found
}

/// The lines a turn printed that start with `prefix`, without it.
pub(crate) fn lines_with<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    stdout.lines().filter_map(|line| line.strip_prefix(prefix)).collect()
}

/// The `sandbox.ready` id and the `database.ready` name of a turn's events, once there.
pub(crate) fn resources_of(events: &[Event]) -> (Option<String>, Option<(String, String)>) {
    let sandbox = events.iter().find_map(|e| match &e.body {
        EventBody::SandboxReady { sandbox_id, .. } => Some(sandbox_id.clone()),
        _ => None,
    });
    let database = events.iter().find_map(|e| match &e.body {
        EventBody::DatabaseReady { host, database, .. } => Some((host.clone(), database.clone())),
        _ => None,
    });
    (sandbox, database)
}

/// Cancels a turn when dropped, so a failing test does not wait for the turn's timeout.
pub(crate) struct CancelOnDrop<'a> {
    pub(crate) stack: &'a TurnStack,
    pub(crate) turn: &'a CreateTurnResponse,
    pub(crate) key: &'a str,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.stack.call("DELETE", &self.turn.status_url, Some(self.key), None);
    }
}

/// Follows `turn` on a thread of `scope` until its stdout says `ready` (failing the test if it ends
/// first): the events so far, and the follower, which reads on to the turn's end.
pub(crate) fn follow_until<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    stack: &'env TurnStack,
    turn: &'env CreateTurnResponse,
    key: &'env str,
    ready: &str,
) -> (Vec<Event>, std::thread::ScopedJoinHandle<'scope, Vec<Event>>) {
    let (sender, events) = std::sync::mpsc::channel();
    let follower = scope.spawn(move || {
        stack.follow_with(turn, key, 0, move |event| {
            let _ = sender.send(event.clone());
        })
    });
    let mut seen = Vec::new();
    while !mayfly_e2e::turns::stdout_of(&seen).contains(ready) {
        let event = events.recv_timeout(Duration::from_secs(120)).expect("the turn gets ready");
        assert!(!event.body.is_terminal(), "the turn ended before it was ready: {seen:?}");
        seen.push(event);
    }
    (seen, follower)
}
