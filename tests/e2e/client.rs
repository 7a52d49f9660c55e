//! The client library against the real stack. Natively: a turn created, followed across a stream
//! closed from the client's side and across one cut by the network, kept, cancelled and read,
//! with the API's refusals typed. The JavaScript package: in Node.js, and in a browser, where the
//! example page, served next to the API, runs a turn through it and shows its output and outcome.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use mayfly_client::native::Native;
use mayfly_client::routes::{Answer, Call, Endpoint};
use mayfly_client::{Backend, Client, ClientError, Update};
use mayfly_core::{CreateTurnRequest, ErrorCode, Event, EventBody, Language, Outcome};
use mayfly_e2e::fault_proxy::{Fault, FaultProxy, Rule};
use mayfly_e2e::{InProcessStack, TestStackOptions, Tools, ALICE_KEY};
use serde_json::Value;

use crate::browser::{artifacts, run_browser_script};

/// The native backend, except that the first event stream it opens is closed from this side
/// right after its first line of output, as a flaky network would close it.
#[derive(Debug, Clone)]
struct DropsFirstStream {
    inner: Native,
    opened_after: Arc<Mutex<Vec<u64>>>,
}

impl Backend for DropsFirstStream {
    type Frames = BoxStream<'static, mayfly_client::Result<String>>;

    fn send(&self, call: Call) -> impl Future<Output = mayfly_client::Result<Answer>> {
        self.inner.send(call)
    }

    fn open_events(
        &self,
        endpoint: &Endpoint,
        key: &str,
        turn_id: &str,
        after: u64,
    ) -> impl Future<Output = mayfly_client::Result<Self::Frames>> {
        let first = {
            let mut opened = self.opened_after.lock().unwrap();
            opened.push(after);
            opened.len() == 1
        };
        let opening = self.inner.open_events(endpoint, key, turn_id, after);
        async move {
            let frames = opening.await?;
            if !first {
                return Ok(frames);
            }
            // The frame after the first output is never seen: the connection closes before it.
            let mut printed = false;
            let cut = frames.take_while(move |frame| {
                let go_on = !printed;
                printed |= frame.as_ref().is_ok_and(|text| text.contains(r#""type":"stdout""#));
                futures::future::ready(go_on)
            });
            Ok(cut.boxed())
        }
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        self.inner.sleep(duration)
    }
}

fn events_of(updates: &[mayfly_client::Result<Update>]) -> Vec<Event> {
    updates
        .iter()
        .filter_map(|u| match u.as_ref().expect("no error ends the stream") {
            Update::Event(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn stdout_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| if let EventBody::Stdout { data } = &e.body { Some(data.as_str()) } else { None })
        .collect()
}

fn assert_whole_log(events: &[Event], expected_output: &str, who: &str) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "{who}: events missing, doubled or out of order");
    assert_eq!(stdout_of(events), expected_output, "{who}: output lost or doubled");
    let last = &events.last().expect("events").body;
    assert!(matches!(last, EventBody::TurnFinished { outcome: Outcome::Succeeded, .. }), "{who}: {last:?}");
}

#[test]
fn the_native_client_follows_a_turn_across_dropped_streams_keeps_cancels_and_reads_turns() {
    let stack = InProcessStack::start();
    let url = stack.worker.url.clone();
    let lines = 20;
    let code = format!(
        "import time\nfor i in range(1, {}):\n    print(f\"n{{i}}\", flush=True)\n    time.sleep(0.1)\n",
        lines + 1
    );
    let expected: String = (1..=lines).map(|i| format!("n{i}\n")).collect();
    let mut request = CreateTurnRequest::new(code, Language::Python);
    request.database = mayfly_core::DatabaseField::Enabled(false);

    let opened_after = Arc::new(Mutex::new(Vec::new()));
    let client = Client::with_backend(
        &url,
        ALICE_KEY,
        DropsFirstStream { inner: Native::new(), opened_after: opened_after.clone() },
    );
    // A second viewer reaches the worker through a proxy that cuts its first stream mid-answer.
    let proxy = FaultProxy::start("worker", 0, format!("127.0.0.1:{}", stack.worker.port).parse().unwrap()).unwrap();
    proxy.arm(Rule::new("GET", "/v1/turns/", Fault::Cut));
    let through_proxy = Client::new(&proxy.url(), ALICE_KEY);

    let (turn, dropped, cut, detail) = stack.runtime.block_on(async {
        // An idempotency key is harmless whether or not the API honours it.
        let turn = client.create_idempotent(&request, "e2e-client-follow").await.expect("the turn is created");
        let (dropped, cut) = futures::join!(
            client.follow(&turn.turn_id, 0).collect::<Vec<_>>(),
            through_proxy.events(&turn.turn_id).collect::<Vec<_>>(),
        );
        let detail = client.detail(&turn.turn_id).await.expect("the detail");
        (turn, dropped, cut, detail)
    });

    // Closed from this side after the first output: reopened after exactly what was taken.
    let events = events_of(&dropped);
    assert_whole_log(&events, &expected, "the dropped stream");
    let first_output = events.iter().find(|e| matches!(e.body, EventBody::Stdout { .. })).unwrap().seq;
    assert_eq!(*opened_after.lock().unwrap(), [0, first_output]);
    assert_eq!(dropped[0], Ok(Update::Connected { after: 0 }));
    assert!(
        dropped
            .iter()
            .any(|u| matches!(u, Ok(Update::Reconnecting { attempt: 1, after, .. }) if *after == first_output)),
        "{dropped:?}"
    );
    // Cut by the network mid-answer: the same log, once.
    let cut: Vec<Event> = cut.into_iter().map(|e| e.expect("no error ends the stream")).collect();
    assert_whole_log(&cut, &expected, "the cut stream");
    let fired = proxy.fired();
    assert_eq!(fired.len(), 1, "{fired:?}");
    // The proxy records the path without its query.
    assert_eq!((fired[0].fault, fired[0].path.as_str()), (Fault::Cut, &*format!("/v1/turns/{}/events", turn.turn_id)));

    assert_eq!(detail.outcome, Some(Outcome::Succeeded));
    assert_eq!(detail.events, events.len() as u64);
    stack.client(ALICE_KEY).wait_reaped(&turn.turn_id);

    keep_cancel_and_refusals(&stack, &Client::new(&url, ALICE_KEY), &turn.turn_id);
    the_package_runs_a_turn_in_node(&url);
}

/// `examples/client/node.mjs`: the JavaScript package in a runtime that is not a browser.
fn the_package_runs_a_turn_in_node(url: &str) {
    let tools = Tools::of_workspace();
    let out = std::process::Command::new("node")
        .env("PATH", tools.node_path())
        .env("MAYFLY_URL", url)
        .env("MAYFLY_KEY", ALICE_KEY)
        .arg(tools.root.join("examples/client/node.mjs"))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node.mjs: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("turn t_"), "{stdout}");
    assert_eq!(lines[1..], ["row 0", "row 1", "row 2", "outcome succeeded exit 0"], "{stdout}");
}

/// A turn with a database, kept and then cancelled while it runs; and the API's refusals, typed.
/// `without_database` is a finished turn that had no database.
fn keep_cancel_and_refusals(stack: &InProcessStack, client: &Client<Native>, without_database: &str) {
    let request = CreateTurnRequest::new("import time\nprint('ready', flush=True)\ntime.sleep(60)\n", Language::Python);
    let (turn_id, keep, kinds, finished) = stack.runtime.block_on(async {
        let turn = client.create(&request).await.expect("the turn is created");
        let mut events = client.events(&turn.turn_id);
        let mut kinds = Vec::new();
        while let Some(event) = events.next().await {
            let event = event.expect("no error ends the stream");
            kinds.push(event.body.kind());
            if matches!(&event.body, EventBody::Stdout { data } if data.contains("ready")) {
                break;
            }
        }
        let keep = client.keep(&turn.turn_id).await.expect("keeping while the code runs");
        client.cancel(&turn.turn_id).await.expect("the cancel is accepted");
        let mut finished = None;
        while let Some(event) = events.next().await {
            let event = event.expect("no error ends the stream");
            kinds.push(event.body.kind());
            finished = Some(event);
        }
        (turn.turn_id, keep, kinds, finished.unwrap())
    });
    assert!(keep.connection_url.starts_with("postgres"), "{keep:?}");
    assert!(!keep.claim.instructions.is_empty());
    assert!(kinds.contains(&"database.kept"), "{kinds:?}");
    assert!(matches!(finished.body, EventBody::TurnFinished { outcome: Outcome::Cancelled, .. }), "{finished:?}");

    let (again, no_database, missing, stream_of_missing, wrong_key) = stack.runtime.block_on(async {
        // Asked again after the turn, a kept database's answer is the same.
        let again = client.keep(&turn_id).await.expect("a kept database's answer, again");
        let no_database = client.keep(without_database).await.unwrap_err();
        let missing = client.detail("t_0000000000000000").await.unwrap_err();
        let stream_of_missing: Vec<_> = client.events("t_0000000000000000").collect().await;
        let wrong_key = Client::new(client.endpoint().base(), "not-a-key").detail(&turn_id).await.unwrap_err();
        (again, no_database, missing, stream_of_missing, wrong_key)
    });
    assert_eq!(again, keep);
    assert_eq!((no_database.status(), no_database.code()), (Some(409), Some(ErrorCode::Conflict)), "{no_database:?}");
    assert_eq!((missing.status(), missing.code()), (Some(404), Some(ErrorCode::NotFound)), "{missing:?}");
    assert!(
        matches!(stream_of_missing.as_slice(), [Err(ClientError::Api { status: 404, .. })]),
        "{stream_of_missing:?}"
    );
    assert_eq!((wrong_key.status(), wrong_key.code()), (Some(401), Some(ErrorCode::Unauthorized)), "{wrong_key:?}");
}

/// Copies the files of `from` into `to`, folders included.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|err| panic!("{}: {err}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_example_page_runs_a_turn_through_the_javascript_package_without_the_iframe() {
    // The page and the package are served by the worker itself, next to the API, so the page
    // calls an API of its own origin.
    let tools = Tools::of_workspace();
    let package = tools.root.join("target/dist/client");
    assert!(package.join("package.json").exists(), "the client package is not built: run `cargo xtask build`");
    let site = tempfile::Builder::new().prefix("mayfly-e2e-site-").tempdir().unwrap();
    let page = site.path().join("examples/client");
    copy_tree(&tools.root.join("examples/client"), &page);
    copy_tree(&package, &page.join("pkg"));
    let stack = InProcessStack::start_with(TestStackOptions::default().assets(site.path()));

    // The page holds a turn token, as a page should, never the tenant's key.
    let token = stack.client(ALICE_KEY).mint_token("{}").token;
    let report = run_browser_script("client.mjs", &[&stack.worker.url, &artifacts(), &token]);
    let str_of = |pointer: &str| report.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
    assert_eq!(str_of("/api"), stack.worker.url, "the page calls the API of its own origin");
    let expected: String = (1..=40).map(|i| format!("n{i}\n")).collect();
    assert_eq!(str_of("/run/output"), expected, "lines lost or doubled across the cut");
    assert!(str_of("/run/outcome").starts_with("succeeded · exit 0"), "{report:#}");
    assert!(report["closed"].as_u64().unwrap() >= 1, "{report:#}");
    let sockets: Vec<&str> =
        report.pointer("/run/sockets").and_then(Value::as_array).unwrap().iter().filter_map(Value::as_str).collect();
    assert!(sockets.len() >= 2 && sockets[0] == "/events?after=0", "{sockets:?}");
    let resumed: u64 = sockets[1].trim_start_matches("/events?after=").parse().unwrap();
    assert!(resumed >= 5, "the second socket did not resume after what was seen: {sockets:?}");
    for protocol in report.pointer("/run/protocols").and_then(Value::as_array).unwrap() {
        assert_eq!(protocol, "mayfly", "the token rides as a subprotocol, answered with `mayfly`");
    }
    let states: Vec<&str> =
        report.pointer("/run/states").and_then(Value::as_array).unwrap().iter().filter_map(Value::as_str).collect();
    assert!(states.contains(&"reconnecting") && states.last() == Some(&"done"), "{states:?}");
    let turn_id = str_of("/run/turn_id");
    let detail = stack.client(ALICE_KEY).wait_reaped(&turn_id);
    assert_eq!(detail.outcome, Some(Outcome::Succeeded));
}
