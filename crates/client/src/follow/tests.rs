//! The resuming stream over a scripted backend: connections that replay the log from `after` and
//! break where the script says, refusals, and the detail a retry asks for. Nothing here waits on
//! real I/O, so each test runs to its end in one poll.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{self, Iter};
use futures::StreamExt;
use mayfly_core::{Event, EventBody, Outcome, Timings};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::resume::RetryPolicy;
use crate::routes::{Answer, Call, Endpoint};

/// What one attempt to open the stream meets.
#[derive(Debug, Clone)]
enum Attempt {
    /// The log after `after`, cut after this many events (the connection then ends).
    Replay {
        cut: usize,
    },
    /// The log after `after + 1`: the server skipped one.
    Skipping,
    Refused(ClientError),
}

#[derive(Debug, Default)]
struct Script {
    log: Vec<Event>,
    attempts: VecDeque<Attempt>,
    /// What `GET /v1/turns/{id}` answers.
    detail: Option<Answer>,
    opened_after: Vec<u64>,
    slept: Vec<Duration>,
    details_asked: usize,
}

#[derive(Debug, Clone, Default)]
struct Scripted(Rc<RefCell<Script>>);

impl Backend for Scripted {
    type Frames = Iter<std::vec::IntoIter<Result<String>>>;

    fn send(&self, call: Call) -> impl Future<Output = Result<Answer>> {
        let mut script = self.0.borrow_mut();
        assert!(call.url.ends_with("/v1/turns/t_1"), "{call:?}");
        script.details_asked += 1;
        let answer = script.detail.clone().ok_or_else(|| ClientError::Transport("down".into()));
        async move { answer }
    }

    fn open_events(
        &self,
        _: &Endpoint,
        key: &str,
        turn_id: &str,
        after: u64,
    ) -> impl Future<Output = Result<Self::Frames>> {
        assert_eq!((key, turn_id), ("k", "t_1"));
        let mut script = self.0.borrow_mut();
        script.opened_after.push(after);
        let attempt = script.attempts.pop_front().unwrap_or(Attempt::Replay { cut: usize::MAX });
        let frames = |from: u64, cut: usize, log: &[Event]| -> Vec<Result<String>> {
            log.iter().filter(|e| e.seq > from).take(cut).map(|e| Ok(serde_json::to_string(e).unwrap())).collect()
        };
        let opened = match attempt {
            Attempt::Replay { cut } => Ok(stream::iter(frames(after, cut, &script.log))),
            Attempt::Skipping => Ok(stream::iter(frames(after + 1, usize::MAX, &script.log))),
            Attempt::Refused(err) => Err(err),
        };
        async move { opened }
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        self.0.borrow_mut().slept.push(duration);
        async {}
    }
}

fn log(n: u64) -> Vec<Event> {
    (1..=n)
        .map(|seq| {
            let body = if seq == n {
                EventBody::TurnFinished { outcome: Outcome::Succeeded, timings: Timings::default(), error: None }
            } else {
                EventBody::Stdout { data: format!("{seq}\n") }
            };
            Event { seq, at_ms: seq, body }
        })
        .collect()
}

fn client(attempts: Vec<Attempt>, detail: Option<Answer>) -> (Client<Scripted>, Scripted) {
    let backend = Scripted::default();
    {
        let mut script = backend.0.borrow_mut();
        script.log = log(10);
        script.attempts = attempts.into();
        script.detail = detail;
    }
    (Client::with_backend("http://api", "k", backend.clone()), backend)
}

/// Runs a future that never waits on anything outside it.
fn finish<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the scripted backend never waits"),
    }
}

fn updates(client: &Client<Scripted>) -> Vec<Result<Update>> {
    finish(client.follow("t_1", 0).collect())
}

fn seqs(updates: &[Result<Update>]) -> Vec<u64> {
    updates.iter().filter_map(|u| if let Ok(Update::Event(e)) = u { Some(e.seq) } else { None }).collect()
}

#[test]
fn a_dropped_connection_is_reopened_after_the_last_event_and_nothing_repeats() {
    let (client, backend) = client(vec![Attempt::Replay { cut: 3 }, Attempt::Replay { cut: 4 }], None);
    let updates = updates(&client);
    assert_eq!(seqs(&updates), (1..=10).collect::<Vec<_>>());
    let script = backend.0.borrow();
    assert_eq!(script.opened_after, [0, 3, 7]);
    assert_eq!(script.slept, [Duration::from_millis(200); 2], "an opened connection resets the wait");
    let reconnects: Vec<&Update> =
        updates.iter().filter_map(|u| u.as_ref().ok()).filter(|u| matches!(u, Update::Reconnecting { .. })).collect();
    assert_eq!(
        reconnects,
        [
            &Update::Reconnecting { attempt: 1, after: 3, delay: Duration::from_millis(200) },
            &Update::Reconnecting { attempt: 1, after: 7, delay: Duration::from_millis(200) },
        ]
    );
    assert_eq!(updates[0], Ok(Update::Connected { after: 0 }));
}

#[test]
fn a_gap_reopens_the_stream_and_the_events_stream_holds_only_events() {
    let (client, backend) = client(vec![Attempt::Replay { cut: 2 }, Attempt::Skipping], None);
    let events: Vec<Result<Event>> = finish(client.events("t_1").collect());
    let seqs: Vec<u64> = events.into_iter().map(|e| e.unwrap().seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert_eq!(backend.0.borrow().opened_after, [0, 2, 2]);
}

#[test]
fn refusals_that_pass_are_retried_with_growing_waits_and_the_api_is_asked_after_four() {
    let down = || Attempt::Refused(ClientError::Transport("refused".into()));
    let detail = Answer { status: 503, body: String::new() };
    let (client, backend) = client(vec![down(), down(), down(), down(), down()], Some(detail));
    assert_eq!(seqs(&updates(&client)), (1..=10).collect::<Vec<_>>());
    let script = backend.0.borrow();
    assert_eq!(script.opened_after, [0; 6]);
    let waits: Vec<u128> = script.slept.iter().map(Duration::as_millis).collect();
    assert_eq!(waits, [200, 400, 800, 1600, 3200]);
    assert_eq!(script.details_asked, 2, "asked after the 4th and 5th failure; a 503 is no reason to stop");
}

#[test]
fn a_turn_the_api_no_longer_knows_ends_the_stream_with_the_apis_error() {
    let gone = Answer { status: 404, body: r#"{"error":{"code":"not_found","message":"no such turn"}}"#.into() };
    let down = || Attempt::Refused(ClientError::Transport("refused".into()));
    let (client, backend) = client(vec![Attempt::Replay { cut: 2 }, down(), down(), down()], Some(gone));
    let updates = updates(&client);
    assert_eq!(seqs(&updates), [1, 2]);
    let last = updates.last().unwrap().clone().unwrap_err();
    assert_eq!((last.status(), last.to_string()), (Some(404), "no such turn (404)".to_owned()));
    // The connection that ended counts as the first failure; the API is asked after the fourth.
    assert_eq!(backend.0.borrow().opened_after, [0, 2, 2, 2]);
    assert_eq!(backend.0.borrow().details_asked, 1);
}

#[test]
fn a_refusal_with_a_status_ends_the_stream_at_once() {
    let unauthorized = ClientError::from_answer(401, r#"{"error":{"code":"unauthorized","message":"unknown key"}}"#);
    let (client, backend) = client(vec![Attempt::Refused(unauthorized.clone())], None);
    assert_eq!(updates(&client), [Err(unauthorized)]);
    assert!(backend.0.borrow().slept.is_empty());
}

#[test]
fn a_policy_with_a_limit_stops_retrying() {
    let down = || Attempt::Refused(ClientError::Transport("refused".into()));
    let (client, _) = client(vec![down(), down(), down()], None);
    let client = client.with_retry_policy(RetryPolicy { max_failures: Some(2), ..RetryPolicy::default() });
    let updates = updates(&client);
    assert_eq!(updates.last(), Some(&Err(ClientError::Transport("refused".into()))));
    assert_eq!(seqs(&updates), Vec::<u64>::new());
}

#[test]
fn calls_answer_their_types_and_the_apis_errors() {
    let detail = Answer { status: 404, body: r#"{"error":{"code":"not_found","message":"no such turn"}}"#.into() };
    let (client, _) = client(Vec::new(), Some(detail));
    let err = finish(client.detail("t_1")).unwrap_err();
    assert_eq!(err.code(), Some(mayfly_core::ErrorCode::NotFound));
}
