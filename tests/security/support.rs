//! What the security tests share: the error shape, the providers' own lists, and turns followed
//! or cancelled on the side.

use std::time::Duration;

use mayfly_core::{CreateTurnResponse, ErrorBody, Event, EventBody, TurnList};
use mayfly_e2e::leftovers::list_at_providers;
use mayfly_e2e::{Answer, ApiClient, InProcessStack, ALICE_KEY, BOB_KEY};

/// The `{"error": {"code", "message"}}` of an answer; fails the test for any other shape.
pub(crate) fn error_of(answer: &Answer) -> ErrorBody {
    assert_eq!(answer.content_type, "application/json", "not the error shape: {answer:?}");
    serde_json::from_str(&answer.body).unwrap_or_else(|err| panic!("not the error shape ({err}): {answer:?}"))
}

/// Asserts that neither provider holds anything and that no tenant's ledger lists a turn: the
/// ledger records a turn before it starts, so an empty one means none was accepted.
pub(crate) fn assert_nothing_provisioned(stack: &InProcessStack) {
    let listed = list_at_providers(&stack.runtime, &stack.local().endpoints).expect("the providers list");
    assert!(listed.sandboxes.is_empty(), "sandboxes were provisioned: {:?}", listed.sandboxes);
    assert!(listed.databases.is_empty(), "databases were provisioned: {:?}", listed.databases);
    for key in [ALICE_KEY, BOB_KEY] {
        let (status, body) = stack.client(key).call("GET", "/v1/turns", None);
        assert_eq!(status, 200, "{body}");
        let list: TurnList = serde_json::from_str(&body).expect("a TurnList");
        assert!(list.turns.is_empty(), "turns were accepted: {body}");
    }
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
    /// The client of the turn's tenant.
    pub(crate) client: &'a ApiClient,
    pub(crate) turn: &'a CreateTurnResponse,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.client.call("DELETE", &self.turn.status_url, None);
    }
}

/// Follows `turn` on a thread of `scope` until its stdout says `ready` (failing the test if it ends
/// first): the events so far, and the follower, which reads on to the turn's end.
pub(crate) fn follow_until<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    client: &'env ApiClient,
    turn: &'env CreateTurnResponse,
    ready: &str,
) -> (Vec<Event>, std::thread::ScopedJoinHandle<'scope, Vec<Event>>) {
    let (sender, events) = std::sync::mpsc::channel();
    let follower = scope.spawn(move || {
        client.follow_with(&turn.turn_id, 0, move |event| {
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
