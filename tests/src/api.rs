//! The one client every test, the soak and the bench speak to mayfly's API with: plain requests,
//! turns created and read back, and a turn's events over a WebSocket or as Server-Sent Events.
//!
//! Every request opens a connection of its own unless [`ApiClient::keeping_connections`] says
//! otherwise: a test that kills the worker must not find its next request on a dead pooled one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mayfly_core::{CreateTurnResponse, Event, ReapState, TokenResponse, TurnDetail, TurnState};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// A turn's event stream over a WebSocket, as [`ApiClient::connect_events`] opens it.
pub type EventSocket = tungstenite::WebSocket<TcpStream>;

/// mayfly's API at `base_url`, called with `key` (or with no key at all).
#[derive(Debug, Clone)]
pub struct ApiClient {
    base_url: String,
    key: Option<String>,
    /// The longest a request waits for its answer.
    timeout: Duration,
    /// The longest an event stream stays silent before its reader gives up.
    stream_timeout: Duration,
    /// One agent for every request, when connections are to be kept between them.
    agent: Option<ureq::Agent>,
    /// Whether a WebSocket carries the key as a browser's must: as the subprotocol `bearer.<key>`.
    key_as_subprotocol: bool,
}

/// An answer as the client saw it, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// Every header of the answer, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// The header `name` (any case), when the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// `Retry-After`, in seconds, when the answer has one.
    pub fn retry_after(&self) -> Option<u64> {
        self.header("Retry-After").and_then(|v| v.trim().parse().ok())
    }

    fn read(response: ureq::Response) -> anyhow::Result<Answer> {
        let status = response.status();
        let content_type = response.content_type().to_owned();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| Some((name.to_ascii_lowercase(), response.header(&name)?.to_owned())))
            .collect();
        let body = response.into_string()?;
        Ok(Answer { status, content_type, body, headers })
    }
}

impl ApiClient {
    pub fn new(base_url: &str, key: Option<&str>) -> ApiClient {
        ApiClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.map(str::to_owned),
            timeout: Duration::from_secs(60),
            stream_timeout: Duration::from_secs(120),
            agent: None,
            key_as_subprotocol: false,
        }
    }

    /// The same client, opening event streams as a browser does: a browser's `WebSocket` cannot
    /// send `Authorization`, so the key (or token) is offered as `mayfly, bearer.<key>`, and the
    /// server must answer `mayfly`.
    pub fn key_as_subprotocol(mut self) -> ApiClient {
        self.key_as_subprotocol = true;
        self
    }

    /// The same client with other limits on how long a request and a silent event stream may take.
    pub fn with_timeouts(mut self, request: Duration, stream: Duration) -> ApiClient {
        self.timeout = request;
        self.stream_timeout = stream;
        self
    }

    /// The same client, reusing its connections from one request to the next as a browser would:
    /// for measuring a round trip, not a connection's setup.
    pub fn keeping_connections(mut self) -> ApiClient {
        self.agent = Some(self.agent());
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn agent(&self) -> ureq::Agent {
        match &self.agent {
            Some(agent) => agent.clone(),
            None => ureq::AgentBuilder::new().timeout(self.timeout).build(),
        }
    }

    /// `host:port` of the API, for the connections that are not plain HTTP requests.
    fn authority(&self) -> &str {
        self.base_url.strip_prefix("http://").expect("the stack serves plain HTTP")
    }

    /// A request with exactly `headers` (the client's key is not added) and these body bytes.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.try_raw(method, path, headers, body).unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// [`ApiClient::raw`] that fails, rather than the test, when no whole answer came.
    pub fn try_raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Answer> {
        let mut request = self.agent().request(method, &format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let result = if body.is_empty() && method != "POST" { request.call() } else { request.send_bytes(body) };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(err) => anyhow::bail!("{method} {path}: {err}"),
        };
        Answer::read(response).map_err(|err| anyhow::anyhow!("{method} {path}: {err}"))
    }

    /// A request with the client's key and a JSON body when given: (status, body), whatever the
    /// status. Fails only when no answer came.
    pub fn try_call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<(u16, String)> {
        self.try_call_with_header(method, path, body, "").map(|(status, body, _)| (status, body))
    }

    /// [`ApiClient::try_call`], with the answer's `header` (empty when absent).
    pub fn try_call_with_header(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        header: &str,
    ) -> anyhow::Result<(u16, String, String)> {
        let mut request = self.agent().request(method, &format!("{}{path}", self.base_url));
        if let Some(key) = &self.key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let result = match body {
            Some(body) => request.set("Content-Type", "application/json").send_string(body),
            None => request.call(),
        };
        match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                let value = response.header(header).unwrap_or_default().to_owned();
                Ok((response.status(), response.into_string()?, value))
            }
            Err(err) => Err(anyhow::anyhow!("{method} {path}: {err}")),
        }
    }

    /// [`ApiClient::try_call`] that fails the test when no answer came.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.try_call(method, path, body).unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// `POST /v1/turns` with `body`, which must be accepted.
    pub fn try_create_turn(&self, body: &str) -> anyhow::Result<CreateTurnResponse> {
        let (status, answer) = self.try_call("POST", "/v1/turns", Some(body))?;
        anyhow::ensure!(status == 201, "POST /v1/turns: {status} {answer}");
        Ok(serde_json::from_str(&answer)?)
    }

    /// [`ApiClient::try_create_turn`], with the answer's `Server-Timing`: each step's name and
    /// milliseconds.
    pub fn try_create_turn_timed(&self, body: &str) -> anyhow::Result<(CreateTurnResponse, Vec<(String, f64)>)> {
        let (status, answer, timing) = self.try_call_with_header("POST", "/v1/turns", Some(body), "Server-Timing")?;
        anyhow::ensure!(status == 201, "POST /v1/turns: {status} {answer}");
        Ok((serde_json::from_str(&answer)?, server_timing(&timing)))
    }

    pub fn create_turn(&self, body: &str) -> CreateTurnResponse {
        self.try_create_turn(body).unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// `POST /v1/tokens` with `body`: a turn token for the client's tenant, which must be minted.
    pub fn mint_token(&self, body: &str) -> TokenResponse {
        let (status, answer) = self.call("POST", "/v1/tokens", Some(body));
        assert_eq!(status, 200, "POST /v1/tokens: {answer}");
        serde_json::from_str(&answer).unwrap_or_else(|err| panic!("not a token answer ({err}): {answer}"))
    }

    /// `GET /v1/turns/{id}`, which must answer 200.
    pub fn try_detail(&self, turn_id: &str) -> anyhow::Result<TurnDetail> {
        let (status, body) = self.try_call("GET", &format!("/v1/turns/{turn_id}"), None)?;
        anyhow::ensure!(status == 200, "GET /v1/turns/{turn_id}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }

    pub fn detail(&self, turn_id: &str) -> TurnDetail {
        self.try_detail(turn_id).unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// Polls the turn until it is finished with its resources all reaped; fails after 30 s.
    pub fn wait_reaped(&self, turn_id: &str) -> TurnDetail {
        self.wait_reaped_within(turn_id, Duration::from_secs(30))
    }

    pub fn wait_reaped_within(&self, turn_id: &str, patience: Duration) -> TurnDetail {
        let deadline = Instant::now() + patience;
        loop {
            let detail = self.detail(turn_id);
            if detail.state == TurnState::Finished && detail.resources.iter().all(|r| r.reap == ReapState::Reaped) {
                return detail;
            }
            assert!(Instant::now() < deadline, "resources not reaped: {detail:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs the worker's cron sweep now (wrangler dev's `--test-scheduled`).
    pub fn trigger_sweep(&self) {
        let (status, body) = self.call("GET", "/__scheduled?cron=*/5+*+*+*+*", None);
        assert_eq!(status, 200, "the sweep trigger answered {status}: {body}");
    }

    /// Opens a turn's event stream over a WebSocket from `after`; a refused handshake is its
    /// status (`status 404 Not Found`).
    pub fn connect_events(&self, turn_id: &str, after: u64) -> Result<EventSocket, String> {
        let url = format!("ws://{}/v1/turns/{turn_id}/events?after={after}", self.authority());
        loop {
            let mut request = url.as_str().into_client_request().map_err(|err| err.to_string())?;
            if let Some(key) = &self.key {
                let (name, value) = if self.key_as_subprotocol {
                    ("Sec-WebSocket-Protocol", format!("mayfly, bearer.{key}"))
                } else {
                    ("Authorization", format!("Bearer {key}"))
                };
                let value = value.parse().map_err(|_| "a key that is no header value")?;
                request.headers_mut().insert(name, value);
            }
            let stream = TcpStream::connect(self.authority()).map_err(|err| err.to_string())?;
            // A turn that stalls ends the read instead of hanging it.
            stream.set_read_timeout(Some(self.stream_timeout)).map_err(|err| err.to_string())?;
            match tungstenite::client(request, stream) {
                Ok((socket, _)) => return Ok(socket),
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

    /// Reads a turn's events over a WebSocket from `after` until its last one, or until the stream
    /// closes or breaks (the worker was killed, say), calling `on_event` with each as it comes. The
    /// events come back with why the reading stopped early, if it did.
    pub fn read_events(&self, turn_id: &str, after: u64, on_event: impl FnMut(&Event)) -> (Vec<Event>, Option<String>) {
        match self.connect_events(turn_id, after) {
            Ok(mut socket) => read_events(&mut socket, on_event),
            Err(err) => (Vec::new(), Some(format!("the WebSocket handshake failed: {err}"))),
        }
    }

    /// A turn's events from `after` to its end; fails the test if the stream is refused or breaks.
    pub fn follow(&self, turn_id: &str, after: u64) -> Vec<Event> {
        self.follow_with(turn_id, after, |_| {})
    }

    /// [`ApiClient::follow`], calling `on_event` with each event as it arrives.
    pub fn follow_with(&self, turn_id: &str, after: u64, on_event: impl FnMut(&Event)) -> Vec<Event> {
        let (events, failure) = self.read_events(turn_id, after, on_event);
        if let Some(err) = failure {
            panic!("reading events of {turn_id}: {err} (so far: {events:?})");
        }
        events
    }

    /// Opens a turn's event stream as Server-Sent Events, with `after` in the query and
    /// `last_event_id` as the header when given; a refusal is its answer.
    pub fn open_sse(&self, turn_id: &str, after: u64, last_event_id: Option<u64>) -> Result<ureq::Response, Answer> {
        let url = format!("{}/v1/turns/{turn_id}/events?after={after}", self.base_url);
        let mut request = self.agent().get(&url).timeout(self.stream_timeout).set("Accept", "text/event-stream");
        if let Some(key) = &self.key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        if let Some(id) = last_event_id {
            request = request.set("Last-Event-ID", &id.to_string());
        }
        match request.call() {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(_, response)) => {
                Err(Answer::read(response).unwrap_or_else(|err| panic!("GET {url}: {err}")))
            }
            Err(err) => panic!("GET {url}: {err}"),
        }
    }

    /// Reads a turn's event stream as Server-Sent Events to its end (see [`ApiClient::open_sse`]).
    /// Checks each frame's `id` is its event's seq.
    pub fn follow_sse(&self, turn_id: &str, after: u64, last_event_id: Option<u64>) -> Vec<Event> {
        let response = self
            .open_sse(turn_id, after, last_event_id)
            .unwrap_or_else(|answer| panic!("the event stream of {turn_id} is refused: {answer:?}"));
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

    /// Sends `head` and then `body` on a connection of its own (never finishing a chunked body,
    /// say, which no HTTP client would send), and returns the status line of the answer, or why
    /// none came within a minute.
    pub fn status_line_of_raw(&self, head: &str, body: Vec<u8>) -> Result<String, String> {
        let mut stream = TcpStream::connect(self.authority()).map_err(|err| err.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|err| err.to_string())?;
        stream.write_all(head.as_bytes()).map_err(|err| err.to_string())?;
        let mut writer = stream.try_clone().map_err(|err| err.to_string())?;
        // The worker may answer and close while this is still being written: errors are expected.
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&body);
        });
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let line = loop {
            match stream.read(&mut buf) {
                Ok(0) => break Err(format!("closed without an answer: {:?}", String::from_utf8_lossy(&answer))),
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
                        break Ok(String::from_utf8_lossy(&answer[..end]).into_owned());
                    }
                }
                Err(err) => break Err(format!("no answer: {err}")),
            }
        };
        drop(stream);
        let _ = sender.join();
        line
    }
}

/// Reads a turn's events from `socket` until its last one or the stream's end, calling `on_event`
/// with each as it comes. A read that fails ends it too: the events so far come back with why.
pub fn read_events(socket: &mut EventSocket, mut on_event: impl FnMut(&Event)) -> (Vec<Event>, Option<String>) {
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

/// The steps of a `Server-Timing` value, `name;dur=ms, …`; a step without a duration is left out.
pub fn server_timing(value: &str) -> Vec<(String, f64)> {
    value
        .split(',')
        .filter_map(|step| {
            let mut parts = step.split(';').map(str::trim);
            let name = parts.next()?.to_owned();
            let ms = parts.find_map(|p| p.strip_prefix("dur="))?.parse().ok()?;
            Some((name, ms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_timing_reads_each_step_with_a_duration() {
        let steps = super::server_timing("admit;dur=13, start;desc=\"x\";dur=2.5, cache");
        assert_eq!(steps, [("admit".to_owned(), 13.0), ("start".to_owned(), 2.5)]);
    }
}
