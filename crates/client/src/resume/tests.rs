//! The resume machine fed by hand: every event once and in order across drops, replays and gaps;
//! when it waits, for how long, and when it gives up.

use std::time::Duration;

use mayfly_core::{Event, EventBody, Outcome, Timings};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

/// A turn's log of `n` events: accepted, output lines, finished.
fn log(n: u64) -> Vec<Event> {
    (1..=n)
        .map(|seq| {
            let body = match seq {
                1 => EventBody::TurnAccepted { turn_id: "t_1".into(), deadline_ms: 30_000 },
                _ if seq == n => {
                    EventBody::TurnFinished { outcome: Outcome::Succeeded, timings: Timings::default(), error: None }
                }
                _ => EventBody::Stdout { data: format!("line {seq}\n") },
            };
            Event { seq, at_ms: seq * 10, body }
        })
        .collect()
}

fn json(event: &Event) -> String {
    serde_json::to_string(event).unwrap()
}

#[test]
fn each_event_is_delivered_once_and_in_order() {
    let log = log(4);
    let mut resume = Resume::new(RetryPolicy::default());
    assert_eq!(resume.frame(&json(&log[0])), Take::Deliver(log[0].clone()));
    assert_eq!(resume.frame(&json(&log[0])), Take::Skip, "a replayed event is dropped");
    assert_eq!(resume.frame(&json(&log[1])), Take::Deliver(log[1].clone()));
    assert_eq!(resume.last_seq(), 2);
    assert_eq!(resume.frame(&json(&log[3])), Take::Reopen, "an event after a gap closes the connection");
    assert_eq!(resume.last_seq(), 2, "a gap takes nothing");
    assert_eq!(resume.frame(&json(&log[2])), Take::Deliver(log[2].clone()));
    assert_eq!(resume.frame(&json(&log[3])), Take::Deliver(log[3].clone()));
    assert!(resume.is_finished());
    assert_eq!(resume.progress().outcome, Some(Outcome::Succeeded));
    assert_eq!(resume.dropped(None), Next::Done, "a finished turn is not reopened");
}

#[test]
fn an_event_type_newer_than_the_client_keeps_its_place() {
    let mut resume = Resume::new(RetryPolicy::default());
    let log = log(3);
    assert!(matches!(resume.frame(&json(&log[0])), Take::Deliver(_)));
    assert_eq!(resume.frame(r#"{"seq":2,"at_ms":5,"type":"sandbox.paused"}"#), Take::Skip);
    assert_eq!(resume.last_seq(), 2, "passed over, not a gap");
    assert_eq!(resume.frame(r#"{"seq":2,"at_ms":5,"type":"sandbox.paused"}"#), Take::Skip, "replayed");
    assert_eq!(resume.frame(r#"{"seq":9,"at_ms":5,"type":"sandbox.paused"}"#), Take::Reopen, "after a gap");
    assert_eq!(resume.frame("not json"), Take::Skip);
    assert!(matches!(resume.frame(&json(&log[2])), Take::Deliver(_)));
}

#[test]
fn a_viewer_that_has_events_already_resumes_after_them() {
    let log = log(5);
    let mut resume = Resume::after(3, RetryPolicy::default());
    assert_eq!(resume.frame(&json(&log[2])), Take::Skip);
    assert_eq!(resume.frame(&json(&log[3])), Take::Deliver(log[3].clone()));
}

#[test]
fn waits_double_up_to_the_cap_and_an_open_connection_resets_them() {
    let mut resume = Resume::new(RetryPolicy::default());
    let waits: Vec<(u32, u64, bool)> = (0..7)
        .map(|_| match resume.dropped(Some(ClientError::Transport("reset".into()))) {
            Next::Retry { attempt, delay, check } => (attempt, delay.as_millis() as u64, check),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        waits,
        [
            (1, 200, false),
            (2, 400, false),
            (3, 800, false),
            (4, 1600, true),
            (5, 3200, true),
            (6, 5000, true),
            (7, 5000, true)
        ]
    );
    resume.opened();
    assert_eq!(resume.dropped(None), Next::Retry { attempt: 1, delay: Duration::from_millis(200), check: false });
}

#[test]
fn a_refusal_for_good_ends_the_stream_and_a_limit_does_not() {
    let mut resume = Resume::new(RetryPolicy::default());
    let not_found = ClientError::from_answer(404, r#"{"error":{"code":"not_found","message":"no such turn"}}"#);
    assert_eq!(resume.dropped(Some(not_found.clone())), Next::GiveUp(not_found.clone()));
    let busy = ClientError::from_answer(429, r#"{"error":{"code":"too_many_requests","message":"16 viewers"}}"#);
    assert!(matches!(resume.dropped(Some(busy)), Next::Retry { attempt: 1, .. }));

    // What the detail says when a retry checks.
    assert_eq!(resume.checked(Err(not_found.clone())), Some(not_found));
    assert_eq!(resume.checked(Err(ClientError::Transport("down".into()))), None, "no answer: retry");
    assert_eq!(resume.checked(Err(ClientError::from_answer(503, ""))), None, "a fault of the server: retry");
    assert_eq!(resume.checked(Ok(())), None);
}

#[test]
fn a_policy_with_a_limit_gives_up_with_the_last_failure() {
    let policy = RetryPolicy { max_failures: Some(2), ..RetryPolicy::default() };
    let mut resume = Resume::new(policy);
    assert!(matches!(resume.dropped(None), Next::Retry { .. }));
    let last = ClientError::Transport("refused".into());
    assert_eq!(resume.dropped(Some(last.clone())), Next::GiveUp(last));
}

/// A server that replays the log after `after` on each connection, but whose connections break:
/// each one carries at most `cut` new frames, and some start with an overlap the client has seen
/// or skip one ahead (a gap). Whatever the cuts, the client ends with every event once, in order.
#[test]
fn any_pattern_of_drops_replays_and_gaps_delivers_the_whole_log_once() {
    let log = log(40);
    for cut in 1..=7usize {
        for overlap in 0..3u64 {
            let mut resume = Resume::new(RetryPolicy::default());
            let mut delivered = Vec::new();
            let mut connections = 0;
            while !resume.is_finished() {
                connections += 1;
                assert!(connections < 400, "no progress (cut {cut}, overlap {overlap})");
                resume.opened();
                let after = resume.last_seq();
                // Every third connection starts one event late (a gap), the others replay an overlap.
                let from = if connections % 3 == 0 { after + 1 } else { after.saturating_sub(overlap) };
                for event in log.iter().filter(|e| e.seq > from).take(cut + overlap as usize) {
                    match resume.frame(&json(event)) {
                        Take::Deliver(event) => delivered.push(event.seq),
                        Take::Skip => {}
                        Take::Reopen => break,
                    }
                }
                if let Next::Retry { attempt, .. } = resume.dropped(None) {
                    assert_eq!(attempt, 1, "an opened connection resets the failures");
                }
            }
            assert_eq!(delivered, (1..=40).collect::<Vec<u64>>(), "cut {cut}, overlap {overlap}");
            assert_eq!(resume.dropped(None), Next::Done);
        }
    }
}
