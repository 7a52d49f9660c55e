//! An agent runs turns through the edge API: it creates one with its API key, follows the events
//! over a WebSocket (late viewers replay from any `seq`), reads the turn back, and finds both
//! resources gone afterwards. Keys are tenants: no key is a 401, someone else's turn a 404.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_instanode, worker_vars};
use mayfly_cli::stack::{LocalStack, StackOptions as LocalStackOptions};
use mayfly_core::e2b_client::E2bClient;
use mayfly_core::instanode::InstanodeClient;
use mayfly_core::provider::{DatabaseProvider, SandboxProvider};
use mayfly_core::{
    CreateTurnResponse, ErrorBody, ErrorCode, Event, EventBody, KeepResponse, Outcome, ReapState, ReaperStatus,
    Resource, TurnDetail, TurnList, TurnState,
};
use mayfly_e2e::{Stack, StackOptions, Tools};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

const ALICE_KEY: &str = "key-alice-0123456789";
const BOB_KEY: &str = "key-bob-9876543210";

/// The worker wired to a local stack (Postgres, scratchdb, sandboxd) that runs in this process.
struct TurnStack {
    stack: Stack,
    /// How the worker was started, so a test can start it again on the same state and port.
    options: StackOptions,
    local: Option<LocalStack>,
    runtime: tokio::runtime::Runtime,
    /// The local stack's data. Each stack needs its own: sandboxd's default state directory is per
    /// process, and one stack shutting down would remove it under another's feet.
    _data: tempfile::TempDir,
}

impl Drop for TurnStack {
    fn drop(&mut self) {
        self.stack.stop();
        if let Some(local) = self.local.take() {
            self.runtime.block_on(local.shutdown());
        }
    }
}

impl TurnStack {
    fn start() -> TurnStack {
        // The local stack's servers are tokio tasks: a multi-threaded runtime keeps serving them
        // while the test thread makes blocking calls.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let data = tempfile::Builder::new().prefix("mayfly-e2e-turns-").tempdir().unwrap();
        let options = LocalStackOptions { data_dir: Some(data.path().to_path_buf()), ..LocalStackOptions::default() };
        let local = runtime.block_on(LocalStack::start(options)).expect("the local stack starts");
        let endpoints = &local.endpoints;
        let mut vars = worker_vars(endpoints);
        vars.push(("MAYFLY_API_KEYS", format!("alice:{ALICE_KEY},bob:{BOB_KEY}")));
        let options = StackOptions {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            port: Some(mayfly_e2e::stack::free_port().unwrap()),
            state_dir: Some(data.path().join("worker-state")),
        };
        let stack = Stack::start(&Tools::of_workspace(), options.clone()).expect("the worker starts");
        TurnStack { stack, options, local: Some(local), runtime, _data: data }
    }

    fn local(&self) -> &LocalStack {
        self.local.as_ref().expect("the local stack runs until drop")
    }

    /// A request to the API with `key` (none when `None`): (status, body), whatever the status.
    fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (u16, String) {
        let mut request = ureq::request(method, &format!("{}{path}", self.stack.url));
        if let Some(key) = key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let result = match body {
            Some(body) => request.set("Content-Type", "application/json").send_string(body),
            None => request.call(),
        };
        match result {
            Ok(resp) => (resp.status(), resp.into_string().expect("a text body")),
            Err(ureq::Error::Status(status, resp)) => (status, resp.into_string().expect("a text body")),
            Err(err) => panic!("{method} {path}: {err}"),
        }
    }

    fn create(&self, key: &str, body: &str) -> CreateTurnResponse {
        let (status, answer) = self.call("POST", "/v1/turns", Some(key), Some(body));
        assert_eq!(status, 201, "{answer}");
        serde_json::from_str(&answer).expect("a CreateTurnResponse")
    }

    /// Connects to a turn's event stream and reads it to its end (the turn's last event closes
    /// it). Fails the test if the handshake is refused.
    fn follow(&self, turn: &CreateTurnResponse, key: &str, after: u64) -> Vec<Event> {
        self.follow_with(turn, key, after, |_| {})
    }

    /// [`TurnStack::follow`], calling `on_event` with each event as it arrives.
    fn follow_with(
        &self,
        turn: &CreateTurnResponse,
        key: &str,
        after: u64,
        mut on_event: impl FnMut(&Event),
    ) -> Vec<Event> {
        let (mut socket, _) = self.connect(turn, key, after).expect("the WebSocket handshake succeeds");
        let mut events = Vec::new();
        loop {
            match socket.read() {
                Ok(Message::Text(text)) => {
                    let event: Event = serde_json::from_str(text.as_str()).expect("an event");
                    on_event(&event);
                    let last = event.body.is_terminal();
                    events.push(event);
                    if last {
                        break;
                    }
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                // A signal to this process (a child of the in-process stack exiting, say) interrupts
                // the blocking read; tungstenite keeps what it had read, so reading again resumes.
                Err(tungstenite::Error::Io(err)) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
                Err(err) => panic!("reading events of {}: {err} (so far: {events:?})", turn.turn_id),
            }
        }
        events
    }

    fn connect(
        &self,
        turn: &CreateTurnResponse,
        key: &str,
        after: u64,
    ) -> Result<(tungstenite::WebSocket<TcpStream>, tungstenite::handshake::client::Response), String> {
        let url = format!("ws://127.0.0.1:{}{}?after={after}", self.stack.port, turn.events_url);
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Authorization", format!("Bearer {key}").parse().unwrap());
        let stream = TcpStream::connect(("127.0.0.1", self.stack.port)).unwrap();
        // A turn that stalls fails the test instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        tungstenite::client(request, stream).map_err(|err| match err {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp)) => format!("status {}", resp.status()),
            other => other.to_string(),
        })
    }

    /// Reads a turn's event stream as Server-Sent Events to its end, with `after` in the query and
    /// `last_event_id` as the header when given. Checks each frame's `id` is its event's seq.
    fn follow_sse(&self, turn: &CreateTurnResponse, key: &str, after: u64, last_event_id: Option<u64>) -> Vec<Event> {
        let url = format!("{}{}?after={after}", self.stack.url, turn.events_url);
        let mut request = ureq::get(&url)
            .timeout(Duration::from_secs(120))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.set("Last-Event-ID", &id.to_string());
        }
        let response = request.call().expect("the event stream opens");
        assert_eq!(response.content_type(), "text/event-stream");
        // The stream ends after `turn.finished`, so reading to the end returns.
        let text = response.into_string().expect("a text stream");
        let mut events = Vec::new();
        for frame in text.split("\n\n").filter(|frame| !frame.trim().is_empty()) {
            let field = |name: &str| {
                frame.lines().find_map(|line| line.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {frame:?}"))
            };
            let event: Event = serde_json::from_str(field("data: ")).expect("an event");
            assert_eq!(field("id: "), event.seq.to_string(), "{frame:?}");
            events.push(event);
        }
        events
    }

    fn detail(&self, turn: &CreateTurnResponse, key: &str) -> TurnDetail {
        let (status, body) = self.call("GET", &turn.status_url, Some(key), None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("a TurnDetail")
    }

    /// Kills the worker's processes with SIGKILL and starts it again on the same state and port.
    fn crash_and_restart(&mut self) {
        self.stack.kill_hard();
        self.stack = Stack::start(&Tools::of_workspace(), self.options.clone()).expect("the worker starts again");
    }

    /// Polls the turn until its resources are all reaped, or fails at the deadline.
    fn wait_reaped(&self, turn: &CreateTurnResponse, key: &str) -> TurnDetail {
        self.wait_reaped_within(turn, key, Duration::from_secs(30))
    }

    fn wait_reaped_within(&self, turn: &CreateTurnResponse, key: &str, patience: Duration) -> TurnDetail {
        let deadline = Instant::now() + patience;
        loop {
            let detail = self.detail(turn, key);
            if detail.state == TurnState::Finished && detail.resources.iter().all(|r| r.reap == ReapState::Reaped) {
                return detail;
            }
            assert!(Instant::now() < deadline, "resources not reaped: {detail:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks sandboxd and scratchdb directly whether anything of the turn is left.
    fn assert_nothing_left(&self, turn_id: &str) {
        let endpoints = &self.local().endpoints;
        let sandboxes = E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(endpoints));
        let databases = InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, local_instanode(endpoints));
        let (sandboxes, databases) = self.runtime.block_on(async {
            let sandboxes = sandboxes.list_tagged().await.expect("sandboxd lists");
            let databases = databases.list().await.expect("scratchdb lists");
            (sandboxes, databases)
        });
        let left: Vec<_> = sandboxes.iter().filter(|s| s.metadata.values().any(|v| v.contains(turn_id))).collect();
        assert!(left.is_empty(), "sandboxes of {turn_id} left: {left:?}");
        let left: Vec<_> = databases.iter().filter(|d| d.name.contains(turn_id)).map(|d| &d.name).collect();
        assert!(left.is_empty(), "databases of {turn_id} left: {left:?}");
        // Postgres itself agrees with scratchdb's registry: every scratch database it holds is one
        // the registry lists (a kept one, say), so nothing was dropped from the books but not the disk.
        let in_postgres = self.runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(self.local().postgres_admin_url(), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let rows = client.query("SELECT count(*) FROM pg_database WHERE datname LIKE 'db\\_%'", &[]).await.unwrap();
            rows[0].get::<_, i64>(0)
        });
        assert_eq!(
            in_postgres as usize,
            databases.len(),
            "pg_database holds scratch databases the registry does not list"
        );
    }
}

fn stdout_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Stdout { data } => Some(data.as_str()),
            _ => None,
        })
        .collect()
}

fn outcome_of(events: &[Event]) -> Option<Outcome> {
    events.iter().find_map(|e| match &e.body {
        EventBody::TurnFinished { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

#[test]
fn turns_run_stream_replay_and_leave_nothing_behind() {
    let stack = TurnStack::start();

    // print(1): the whole life of a turn, live from seq 1.
    let posted = Instant::now();
    let turn = stack.create(ALICE_KEY, r#"{"code":"print(1)","language":"python"}"#);
    assert_eq!(turn.events_url, format!("/v1/turns/{}/events", turn.turn_id));
    let mut first_stdout = None;
    let events = stack.follow_with(&turn, ALICE_KEY, 0, |event| {
        if matches!(event.body, EventBody::Stdout { .. }) && first_stdout.is_none() {
            first_stdout = Some(posted.elapsed());
        }
    });
    // Reported, not asserted: the number is for the issue's closing note, and timing asserts flake.
    eprintln!("print(1): POST to first stdout byte over the WebSocket: {first_stdout:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "no gaps, no duplicates: {events:?}");
    assert_eq!(stdout_of(&events), "1\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert!(events.iter().any(|e| matches!(e.body, EventBody::SandboxReaped { .. })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e.body, EventBody::DatabaseReaped { .. })), "{events:?}");

    // A late viewer replays exactly what came after the seq it names.
    let after = 3;
    let replay = stack.follow(&turn, ALICE_KEY, after);
    assert_eq!(replay, events[after as usize..].to_vec());
    assert_eq!(stack.follow(&turn, ALICE_KEY, 0), events, "a viewer after the end gets the whole log");
    // The same log as Server-Sent Events; `Last-Event-ID` counts like `after`.
    assert_eq!(stack.follow_sse(&turn, ALICE_KEY, after, None), events[after as usize..].to_vec());
    assert_eq!(stack.follow_sse(&turn, ALICE_KEY, 0, Some(5)), events[5..].to_vec());
    assert_eq!(stack.follow_sse(&turn, ALICE_KEY, 0, None), events);

    let detail = stack.wait_reaped(&turn, ALICE_KEY);
    assert_eq!(detail.outcome, Some(Outcome::Succeeded));
    assert_eq!(detail.exit_code, Some(0));
    assert_eq!(detail.events, events.len() as u64);
    assert_eq!(detail.resources.len(), 2, "{detail:?}");
    stack.assert_nothing_left(&turn.turn_id);

    // The seed turn: a million rows in the scratch database, counted.
    let code = std::fs::read_to_string(Tools::of_workspace().root.join("examples/seed_turn.py")).unwrap();
    let body = serde_json::json!({ "code": code, "language": "python" }).to_string();
    let seed = stack.create(ALICE_KEY, &body);
    let events = stack.follow(&seed, ALICE_KEY, 0);
    assert_eq!(stdout_of(&events), "(1000000,)\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    stack.wait_reaped(&seed, ALICE_KEY);
    stack.assert_nothing_left(&seed.turn_id);
}

#[test]
fn keys_are_tenants_and_requests_are_checked() {
    let stack = TurnStack::start();
    let error_code = |body: &str| serde_json::from_str::<ErrorBody>(body).expect("the error shape").error.code;

    let (status, body) = stack.call("POST", "/v1/turns", None, Some(r#"{"code":"print(1)"}"#));
    assert_eq!((status, error_code(&body)), (401, ErrorCode::Unauthorized), "{body}");
    let (status, body) = stack.call("POST", "/v1/turns", Some("not-a-key"), Some(r#"{"code":"print(1)"}"#));
    assert_eq!((status, error_code(&body)), (401, ErrorCode::Unauthorized), "{body}");

    let (status, body) = stack.call("POST", "/v1/turns", Some(ALICE_KEY), Some(r#"{"code":"x","timeout":5}"#));
    assert_eq!((status, error_code(&body)), (400, ErrorCode::InvalidJson), "{body}");
    assert!(body.contains("unknown field `timeout`"), "{body}");
    let (status, body) = stack.call("POST", "/v1/turns", Some(ALICE_KEY), Some(r#"{"code":" "}"#));
    assert_eq!((status, error_code(&body)), (400, ErrorCode::InvalidRequest), "{body}");
    let big = serde_json::json!({ "code": "#".repeat(300 * 1024) }).to_string();
    let (status, body) = stack.call("POST", "/v1/turns", Some(ALICE_KEY), Some(&big));
    assert_eq!((status, error_code(&body)), (413, ErrorCode::PayloadTooLarge), "{body}");

    let turn = stack.create(ALICE_KEY, r#"{"code":"print(2)","database":false}"#);
    // Followed live as Server-Sent Events from the start, then replayed over the WebSocket.
    let events = stack.follow_sse(&turn, ALICE_KEY, 0, None);
    assert_eq!(stdout_of(&events), "2\n", "{events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert_eq!(stack.follow(&turn, ALICE_KEY, 0), events);

    // Bob sees nothing of Alice's turn: not its state, not its events, and cannot cancel it.
    for (method, path) in [("GET", turn.status_url.as_str()), ("DELETE", turn.status_url.as_str())] {
        let (status, body) = stack.call(method, path, Some(BOB_KEY), None);
        assert_eq!((status, error_code(&body)), (404, ErrorCode::NotFound), "{method} {path}: {body}");
    }
    assert_eq!(stack.connect(&turn, BOB_KEY, 0).err().as_deref(), Some("status 404 Not Found"));
    let (status, _) = stack.call("GET", &turn.status_url, None, None);
    assert_eq!(status, 401);
    let (status, body) = stack.call("GET", "/v1/turns/no-such-turn", Some(ALICE_KEY), None);
    assert_eq!((status, error_code(&body)), (404, ErrorCode::NotFound), "{body}");

    let detail = stack.wait_reaped(&turn, ALICE_KEY);
    assert_eq!(detail.resources.len(), 1, "a turn without a database holds only a sandbox: {detail:?}");
    stack.assert_nothing_left(&turn.turn_id);
    let (status, body) = stack.call("POST", &format!("{}/keep", turn.status_url), Some(ALICE_KEY), None);
    assert_eq!((status, error_code(&body)), (409, ErrorCode::Conflict), "nothing to keep: {body}");
}

#[test]
fn keep_saves_the_database_and_says_how_to_claim_it() {
    let stack = TurnStack::start();
    let code = "import time\nprint('started', flush=True)\ntime.sleep(3)\nprint('done')\n";
    let turn = stack.create(ALICE_KEY, &serde_json::json!({ "code": code }).to_string());
    let keep_path = format!("{}/keep", turn.status_url);
    let mut kept = None;
    let events = stack.follow_with(&turn, ALICE_KEY, 0, |event| {
        if matches!(&event.body, EventBody::Stdout { data } if data.contains("started")) && kept.is_none() {
            let (status, _) = stack.call("POST", &keep_path, Some(BOB_KEY), None);
            assert_eq!(status, 404, "another tenant cannot keep it");
            let (status, body) = stack.call("POST", &keep_path, Some(ALICE_KEY), None);
            assert_eq!(status, 200, "{body}");
            kept = Some(serde_json::from_str::<KeepResponse>(&body).expect("a KeepResponse"));
        }
    });
    let kept = kept.unwrap_or_else(|| panic!("the turn never printed: {events:?}"));
    assert!(kept.connection_url.starts_with("postgres"), "{kept:?}");
    assert!(!kept.claim.instructions.is_empty(), "{kept:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{events:?}");
    assert!(events.iter().any(|e| matches!(&e.body, EventBody::DatabaseKept { claim } if *claim == kept.claim)));
    assert!(!events.iter().any(|e| matches!(e.body, EventBody::DatabaseReaped { .. })), "{events:?}");
    // The connection URL is in the keep answer only: never in an event.
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains(&kept.connection_url), "{log}");

    // The sandbox is reaped, the database is kept and still at scratchdb.
    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let detail = stack.detail(&turn, ALICE_KEY);
        let sandbox_reaped =
            detail.resources.iter().any(|r| r.resource == Resource::Sandbox && r.reap == ReapState::Reaped);
        if detail.state == TurnState::Finished && sandbox_reaped {
            break detail;
        }
        assert!(Instant::now() < deadline, "sandbox not reaped: {detail:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let database = detail.resources.iter().find(|r| r.resource == Resource::Database).expect("a database");
    assert_eq!(database.reap, ReapState::Kept, "{detail:?}");
    let databases =
        InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, local_instanode(&stack.local().endpoints));
    let listed = stack.runtime.block_on(databases.list()).expect("scratchdb lists");
    assert!(listed.iter().any(|d| d.name.contains(&turn.turn_id)), "the kept database is gone: {listed:?}");

    // Asked again after the turn: the same answer, from the object's storage.
    let (status, body) = stack.call("POST", &keep_path, Some(ALICE_KEY), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<KeepResponse>(&body).unwrap(), kept);

    // The tenant's ledger lists the turn with how each resource ended; another tenant's is empty.
    let (status, body) = stack.call("GET", "/v1/turns", Some(ALICE_KEY), None);
    assert_eq!(status, 200, "{body}");
    let list: TurnList = serde_json::from_str(&body).expect("a TurnList");
    let summary = list.turns.iter().find(|t| t.turn_id == turn.turn_id).unwrap_or_else(|| panic!("{body}"));
    assert_eq!(summary.outcome, Some(Outcome::Succeeded), "{body}");
    assert_eq!(summary.resources, detail.resources, "{body}");
    assert!(!body.contains(&kept.connection_url), "{body}");
    let (status, body) = stack.call("GET", "/v1/turns", Some(BOB_KEY), None);
    assert_eq!((status, serde_json::from_str::<TurnList>(&body).unwrap().turns.len()), (200, 0), "{body}");
    assert_eq!(stack.call("GET", "/v1/turns", None, None).0, 401);

    // The cron's sweep (triggered as wrangler's `--test-scheduled` allows) finds the kept database,
    // leaves it (its deadline is ahead), and the reaper shows the report.
    let (status, body) = stack.call("GET", "/v1/reaper", Some(ALICE_KEY), None);
    assert_eq!(status, 200, "{body}");
    let before: ReaperStatus = serde_json::from_str(&body).expect("a ReaperStatus");
    assert_eq!((before.alive, before.overdue.len(), before.failed.len()), (0, 0, 0), "{body}");
    let (status, body) = stack.call("GET", "/__scheduled?cron=*/5+*+*+*+*", None, None);
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let sweep = loop {
        let (status, body) = stack.call("GET", "/v1/reaper", Some(ALICE_KEY), None);
        assert_eq!(status, 200, "{body}");
        let status: ReaperStatus = serde_json::from_str(&body).expect("a ReaperStatus");
        if let Some(sweep) = status.last_sweep {
            break sweep;
        }
        assert!(Instant::now() < deadline, "no sweep reported: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sweep.errors.is_empty(), "{sweep:?}");
    assert!(sweep.databases_seen >= 1, "{sweep:?}");
    assert_eq!(sweep.databases_reaped, 0, "{sweep:?}");
    let listed = stack.runtime.block_on(databases.list()).expect("scratchdb lists");
    assert!(listed.iter().any(|d| d.name.contains(&turn.turn_id)), "the sweep took the kept database: {listed:?}");
}

#[test]
fn cancel_timeout_and_failure_end_turns_and_reap() {
    let stack = TurnStack::start();

    // Cancelled while it runs: the process is killed and both resources are reaped.
    let code = "import time\nprint('started', flush=True)\ntime.sleep(60)\n";
    let turn = stack.create(ALICE_KEY, &serde_json::json!({ "code": code }).to_string());
    let mut cancelled = false;
    let events = stack.follow_with(&turn, ALICE_KEY, 0, |event| {
        if matches!(&event.body, EventBody::Stdout { data } if data.contains("started")) && !cancelled {
            let (status, body) = stack.call("DELETE", &turn.status_url, Some(ALICE_KEY), None);
            assert_eq!(status, 202, "{body}");
            cancelled = true;
        }
    });
    assert!(cancelled, "the turn never printed: {events:?}");
    assert_eq!(outcome_of(&events), Some(Outcome::Cancelled), "{events:?}");
    stack.wait_reaped(&turn, ALICE_KEY);
    stack.assert_nothing_left(&turn.turn_id);

    // Non-zero exit: a failed turn with its exit code.
    let turn = stack.create(ALICE_KEY, r#"{"code":"import sys; sys.exit(3)","database":false}"#);
    let events = stack.follow(&turn, ALICE_KEY, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::Failed), "{events:?}");
    let detail = stack.wait_reaped(&turn, ALICE_KEY);
    assert_eq!(detail.exit_code, Some(3), "{detail:?}");
    assert_eq!(detail.error.as_deref(), Some("the code exited with status 3"));

    // Past its timeout: stopped at the deadline and reaped.
    let turn = stack.create(ALICE_KEY, r#"{"code":"import time; time.sleep(60)","timeout_s":2}"#);
    let events = stack.follow(&turn, ALICE_KEY, 0);
    assert_eq!(outcome_of(&events), Some(Outcome::TimedOut), "{events:?}");
    stack.wait_reaped(&turn, ALICE_KEY);
    stack.assert_nothing_left(&turn.turn_id);
}

/// The edge process dies mid-turn (SIGKILL of wrangler and workerd); started again on the same
/// state, the turn's alarm finds the leases it recorded and reaps both resources, and the turn
/// says so.
#[test]
fn a_turn_is_reaped_after_the_worker_is_killed_mid_run() {
    let mut stack = TurnStack::start();
    let code = r#"{"code":"import time\nprint('up', flush=True)\ntime.sleep(120)","timeout_s":3}"#;
    let turn = stack.create(ALICE_KEY, code);
    let running_by = Instant::now() + Duration::from_secs(30);
    loop {
        let detail = stack.detail(&turn, ALICE_KEY);
        if detail.state == TurnState::Running && detail.resources.len() == 2 {
            break;
        }
        assert!(Instant::now() < running_by, "the turn never got running: {detail:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    stack.crash_and_restart();

    // The deadline is 3 s away and the safety alarm fires 10 s after it; give it a generous minute.
    let killed_at = Instant::now();
    let detail = stack.wait_reaped_within(&turn, ALICE_KEY, Duration::from_secs(60));
    eprintln!(
        "kill -9 mid-turn: both resources reaped {:?} after the kill; outcome {:?}: {:?}",
        killed_at.elapsed(),
        detail.outcome,
        detail.error
    );
    assert_eq!(detail.state, TurnState::Finished);
    assert_ne!(detail.outcome, Some(Outcome::Succeeded), "{detail:?}");
    assert!(detail.error.is_some(), "the user is told what happened: {detail:?}");
    stack.assert_nothing_left(&turn.turn_id);
    let (status, list) = stack.call("GET", "/v1/turns", Some(ALICE_KEY), None);
    assert_eq!(status, 200, "{list}");
    let list: mayfly_core::TurnList = serde_json::from_str(&list).unwrap();
    let entry = list.turns.iter().find(|t| t.turn_id == turn.turn_id).expect("the ledger lists the turn");
    assert!(entry.resources.iter().all(|r| r.reap == ReapState::Reaped), "{entry:?}");
}
