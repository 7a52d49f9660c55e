//! The whole local stack for turn tests: Postgres, scratchdb and sandboxd in this process, and
//! `wrangler dev` wired to them, with the API calls the tests make.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::{Stack, StackOptions, Tools};
use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_instanode, worker_vars};
use mayfly_cli::stack::{LocalStack, StackOptions as LocalStackOptions};
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::InstanodeClient;
use mayfly_core::providers::{DatabaseProvider, SandboxProvider};
use mayfly_core::{CreateTurnResponse, Event, EventBody, Outcome, ReapState, TurnDetail, TurnState};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

pub const ALICE_KEY: &str = "key-alice-0123456789";
pub const BOB_KEY: &str = "key-bob-9876543210";

/// The worker wired to a local stack (Postgres, scratchdb, sandboxd) that runs in this process.
pub struct TurnStack {
    pub stack: Stack,
    /// How the worker was started, so a test can start it again on the same state and port.
    options: StackOptions,
    local: Option<LocalStack>,
    pub runtime: tokio::runtime::Runtime,
    /// The local stack's data. Each stack needs its own: sandboxd's default state directory is per
    /// process, and one stack shutting down would remove it under another's feet.
    _data: tempfile::TempDir,
}

impl std::fmt::Debug for TurnStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnStack").field("url", &self.stack.url).finish_non_exhaustive()
    }
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
    pub fn start() -> TurnStack {
        TurnStack::start_with_pool(0)
    }

    /// [`TurnStack::start`] with scratchdb keeping `pool` ready databases to hand out.
    pub fn start_with_pool(pool: usize) -> TurnStack {
        TurnStack::start_with(pool, &[])
    }

    /// [`TurnStack::start`] with the worker given `vars` besides the stack's own (a limit, say).
    pub fn start_with_vars(vars: &[(&str, &str)]) -> TurnStack {
        TurnStack::start_with(0, vars)
    }

    fn start_with(pool: usize, extra_vars: &[(&str, &str)]) -> TurnStack {
        // The local stack's servers are tokio tasks: a multi-threaded runtime keeps serving them
        // while the test thread makes blocking calls.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let data = tempfile::Builder::new().prefix("mayfly-e2e-turns-").tempdir().unwrap();
        let options =
            LocalStackOptions { data_dir: Some(data.path().to_path_buf()), pool, ..LocalStackOptions::default() };
        let local = runtime.block_on(LocalStack::start(options)).expect("the local stack starts");
        let endpoints = &local.endpoints;
        let mut vars: Vec<(String, String)> =
            worker_vars(endpoints).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        vars.push(("MAYFLY_API_KEYS".to_owned(), format!("alice:{ALICE_KEY},bob:{BOB_KEY}")));
        // A test's own value of a variable replaces the stack's.
        vars.retain(|(name, _)| !extra_vars.iter().any(|(extra, _)| extra == name));
        vars.extend(extra_vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let options = StackOptions {
            vars,
            port: Some(crate::stack::free_port().unwrap()),
            state_dir: Some(data.path().join("worker-state")),
        };
        let stack = Stack::start(&Tools::of_workspace(), options.clone()).expect("the worker starts");
        TurnStack { stack, options, local: Some(local), runtime, _data: data }
    }

    pub fn local(&self) -> &LocalStack {
        self.local.as_ref().expect("the local stack runs until drop")
    }

    /// Where this stack keeps its state: the worker's Durable Object storage, sandboxd's state
    /// directory and the Postgres cluster, for tests that look at what was written to disk.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// A request to the API with `key` (none when `None`): (status, body), whatever the status.
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (u16, String) {
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

    pub fn create(&self, key: &str, body: &str) -> CreateTurnResponse {
        let (status, answer) = self.call("POST", "/v1/turns", Some(key), Some(body));
        assert_eq!(status, 201, "{answer}");
        serde_json::from_str(&answer).expect("a CreateTurnResponse")
    }

    /// Connects to a turn's event stream and reads it to its end (the turn's last event closes
    /// it). Fails the test if the handshake is refused.
    pub fn follow(&self, turn: &CreateTurnResponse, key: &str, after: u64) -> Vec<Event> {
        self.follow_with(turn, key, after, |_| {})
    }

    /// [`TurnStack::follow`], calling `on_event` with each event as it arrives.
    pub fn follow_with(
        &self,
        turn: &CreateTurnResponse,
        key: &str,
        after: u64,
        on_event: impl FnMut(&Event),
    ) -> Vec<Event> {
        let (mut socket, _) = self.connect(turn, key, after).expect("the WebSocket handshake succeeds");
        let (events, failure) = read_events(&mut socket, on_event);
        if let Some(err) = failure {
            panic!("reading events of {}: {err} (so far: {events:?})", turn.turn_id);
        }
        events
    }

    pub fn connect(
        &self,
        turn: &CreateTurnResponse,
        key: &str,
        after: u64,
    ) -> Result<(tungstenite::WebSocket<TcpStream>, tungstenite::handshake::client::Response), String> {
        let url = format!("ws://127.0.0.1:{}{}?after={after}", self.stack.port, turn.events_url);
        loop {
            let mut request = url.as_str().into_client_request().unwrap();
            request.headers_mut().insert("Authorization", format!("Bearer {key}").parse().unwrap());
            let stream = TcpStream::connect(("127.0.0.1", self.stack.port)).unwrap();
            // A turn that stalls fails the test instead of hanging it.
            stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
            match tungstenite::client(request, stream) {
                Ok(connected) => return Ok(connected),
                // A signal to this process (a child of the in-process stack exiting) interrupts the
                // handshake's blocking read; the handshake is simply made again.
                Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Io(err)))
                    if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                    return Err(format!("status {}", resp.status()))
                }
                Err(other) => return Err(other.to_string()),
            }
        }
    }

    /// Reads a turn's event stream as Server-Sent Events to its end, with `after` in the query and
    /// `last_event_id` as the header when given. Checks each frame's `id` is its event's seq.
    pub fn follow_sse(
        &self,
        turn: &CreateTurnResponse,
        key: &str,
        after: u64,
        last_event_id: Option<u64>,
    ) -> Vec<Event> {
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
        // Frames of comments only (`: keepalive`) carry no event.
        let frames =
            text.split("\n\n").filter(|frame| frame.lines().any(|line| !line.is_empty() && !line.starts_with(':')));
        for frame in frames {
            let field = |name: &str| {
                frame.lines().find_map(|line| line.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {frame:?}"))
            };
            let event: Event = serde_json::from_str(field("data: ")).expect("an event");
            assert_eq!(field("id: "), event.seq.to_string(), "{frame:?}");
            events.push(event);
        }
        events
    }

    pub fn detail(&self, turn: &CreateTurnResponse, key: &str) -> TurnDetail {
        let (status, body) = self.call("GET", &turn.status_url, Some(key), None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("a TurnDetail")
    }

    /// Kills the worker's processes with SIGKILL and starts it again on the same state and port.
    pub fn crash_and_restart(&mut self) {
        self.stack.kill_hard();
        self.stack = Stack::start(&Tools::of_workspace(), self.options.clone()).expect("the worker starts again");
    }

    /// Polls the turn until its resources are all reaped, or fails at the deadline.
    pub fn wait_reaped(&self, turn: &CreateTurnResponse, key: &str) -> TurnDetail {
        self.wait_reaped_within(turn, key, Duration::from_secs(30))
    }

    pub fn wait_reaped_within(&self, turn: &CreateTurnResponse, key: &str, patience: Duration) -> TurnDetail {
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
    pub fn assert_nothing_left(&self, turn_id: &str) {
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

/// Everything the turn printed to stdout, in order.
pub fn stdout_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Stdout { data } => Some(data.as_str()),
            _ => None,
        })
        .collect()
}

pub fn outcome_of(events: &[Event]) -> Option<Outcome> {
    events.iter().find_map(|e| match &e.body {
        EventBody::TurnFinished { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

/// Reads a turn's events from `socket` until its last one or the stream's end, calling `on_event`
/// with each as it comes. A read that fails ends it too: the events so far come back with why.
pub fn read_events(
    socket: &mut tungstenite::WebSocket<TcpStream>,
    mut on_event: impl FnMut(&Event),
) -> (Vec<Event>, Option<String>) {
    let mut events = Vec::new();
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                let event: Event = match serde_json::from_str(text.as_str()) {
                    Ok(event) => event,
                    Err(err) => return (events, Some(format!("not an event ({err}): {text}"))),
                };
                on_event(&event);
                let last = event.body.is_terminal();
                events.push(event);
                if last {
                    return (events, None);
                }
            }
            Ok(Message::Close(_)) => return (events, None),
            Ok(_) => {}
            // A signal to this process (a child of the in-process stack exiting, say) interrupts
            // the blocking read; tungstenite keeps what it had read, so reading again resumes.
            Err(tungstenite::Error::Io(err)) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return (events, None),
            Err(err) => return (events, Some(err.to_string())),
        }
    }
}
