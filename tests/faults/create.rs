//! A sandbox create is never sent twice once it may have reached the provider: a second would make
//! a second sandbox. Its connection dropped before any answer (the provider made the sandbox), the
//! turn fails saying so, and the one sandbox made is the sweep's (its tags name the turn).

use mayfly_core::providers::SandboxProvider;
use mayfly_core::{EventBody, Outcome};
use mayfly_e2e::fault_proxy::{Fault, Rule};
use mayfly_e2e::leftovers::sandboxd;
use mayfly_e2e::{Profile, SeparateProcessStack, TestStackOptions};

#[test]
fn a_sandbox_create_whose_connection_dropped_is_not_sent_again() {
    let stack =
        SeparateProcessStack::start(TestStackOptions::default().profile(Profile::Debug)).expect("the stack starts");
    let api = stack.client();
    stack.sandboxd_proxy.arm(Rule::new("POST", "/sandboxes", Fault::Drop));
    let body = serde_json::json!({ "code": "print('ran')", "database": false, "timeout_s": 5 });
    let turn = api.try_create_turn(&body.to_string()).expect("the turn is accepted");
    let (events, _) = api.read_events(&turn.turn_id, 0, |_| {});
    let finished = events.iter().find_map(|e| match &e.body {
        EventBody::TurnFinished { outcome, error, .. } => Some((*outcome, error.clone().unwrap_or_default())),
        _ => None,
    });
    let (outcome, error) = finished.unwrap_or_else(|| panic!("the turn did not finish: {events:?}"));
    assert_eq!(outcome, Outcome::Failed, "{events:?}");
    assert!(error.contains("may have reached"), "the error says why it was not sent again: {error}");
    assert_eq!(stack.sandboxd_proxy.fired().len(), 1, "the fault fired");
    // Exactly one sandbox carries the turn's tags: the create was sent once.
    let sandboxes = sandboxd(&stack.endpoints);
    let tagged = stack.runtime.block_on(sandboxes.list_tagged()).expect("sandboxd lists");
    let of_turn = tagged.iter().filter(|s| s.metadata.get("turn") == Some(&turn.turn_id)).count();
    assert_eq!(of_turn, 1, "the create was sent {of_turn} times: {tagged:?}");
}
