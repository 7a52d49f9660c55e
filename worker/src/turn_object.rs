//! The `Turn` Durable Object: one per turn. It keeps the turn's spec, its leases and its event log
//! in its own storage, runs core's orchestrator, and fans every event out to the WebSockets it
//! accepted (hibernation API).
//!
//! The turn runs inside the object's **alarm** handler, armed for "now" by `POST /start`: an
//! alarm is an invocation of its own (up to 15 minutes of wall time, the longest turn allowed), so
//! the turn does not depend on the request that created it, and a `fetch` that returned would
//! leave a spawned future at the mercy of the object's eviction. Before the turn starts, the alarm
//! is re-armed for the deadline: if the process dies mid-turn, that alarm finds a turn that
//! started but is not running in this instance and reaps its leases (re-arming while a reap
//! fails).
//!
//! Storage keys: `meta` (tenant, request, creation time), `started`, `lease:sandbox`,
//! `lease:database`, and `ev:<seq, 12 digits>` per event. Values are JSON text.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::InstanodeClient;
use mayfly_core::providers::{
    Clock, Database, DatabaseInfo, DatabaseProvider, DatabaseRequest, ProviderError, Providers, SandboxProvider,
};
use mayfly_core::turn::{run_turn, Lease, LeasedResource, SinkError, TurnControl, TurnId, TurnOptions, TurnSink};
use mayfly_core::url::redact_credentials_in_text;
use mayfly_core::{
    ApiError, CreateTurnRequest, ErrorCode, Event, EventBody, KeepResponse, Limits, Outcome, ReapState, Resource,
    ResourceView, TemplateMap, Timings, TurnDetail, TurnSpec, TurnState,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, ListOptions, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::clock::WorkerClock;
use crate::config::Config;
use crate::fetch_client::FetchClient;
use crate::reply;
use crate::viewers::SseViewer;

/// The header through which the router tells the object whose request it is forwarding.
pub(crate) const TENANT_HEADER: &str = "x-mayfly-tenant";

/// How long after a turn's deadline the safety alarm fires: the turn's own reap normally ends
/// well within it.
pub(crate) const DEADLINE_SLACK_MS: u64 = 10_000;
/// How soon a failed reap is tried again.
const REAP_RETRY_MS: u64 = 5_000;
/// How many viewers (WebSockets and event streams together) one turn serves at once: each holds
/// memory of the object's and a connection of the runtime's, which every turn shares.
pub(crate) const MAX_VIEWERS: usize = 16;
/// When a viewer turned away may try again, in seconds.
const VIEWER_RETRY_S: u64 = 5;
/// How often a silent event stream gets a comment.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// What `POST /v1/turns` hands the object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StartTurn {
    pub(crate) tenant: String,
    pub(crate) turn_id: String,
    pub(crate) created_unix_ms: u64,
    pub(crate) request: CreateTurnRequest,
}

/// One resource's lease and how far its teardown got. Holds the database token: never shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    lease: Lease,
    reap: ReapState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl LeaseRecord {
    fn resource(&self) -> Resource {
        match self.lease.resource {
            LeasedResource::Sandbox { .. } => Resource::Sandbox,
            LeasedResource::Database { .. } => Resource::Database,
        }
    }

    fn view(&self) -> ResourceView {
        let id = match &self.lease.resource {
            LeasedResource::Sandbox { sandbox_id } => sandbox_id.clone(),
            LeasedResource::Database { name, .. } => name.clone(),
        };
        ResourceView {
            resource: self.resource(),
            id: Some(id),
            reap: self.reap,
            deadline_unix_ms: self.lease.reap_by_unix_ms,
            error: self.error.clone(),
        }
    }
}

fn lease_key(resource: Resource) -> &'static str {
    match resource {
        Resource::Sandbox => "lease:sandbox",
        Resource::Database => "lease:database",
    }
}

fn event_key(seq: u64) -> String {
    format!("ev:{seq:012}")
}

/// The turn as it runs in this instance: its log so far (for gap-free replay to new viewers),
/// the handle that cancels it, and the Server-Sent-Events viewers. SSE viewers are plain response
/// streams, not hibernatable WebSockets: they live exactly as long as this instance runs the turn.
#[derive(Debug, Default)]
struct Live {
    log: Vec<Event>,
    control: TurnControl,
    running: bool,
    streams: Vec<SseViewer>,
    /// The turn's database once created, for `POST /keep` only. Holds its connection URL.
    database: Rc<RefCell<Option<KeepResponse>>>,
}

/// Where a kept database's [`KeepResponse`] is stored, so that `/keep` can be answered again after
/// the turn. Written only when keeping is asked for: the connection URL is at rest nowhere else.
const KEPT_KEY: &str = "keep:database";

/// Wait for the database to exist this long at most when keeping is asked for early.
const KEEP_WAIT: Duration = Duration::from_secs(60);

/// The database provider as a turn of this object uses it: it also remembers the database it
/// created (in memory), which `/keep` answers with.
pub(crate) struct RememberingDatabases<D> {
    inner: D,
    created: Rc<RefCell<Option<KeepResponse>>>,
}

impl<D: DatabaseProvider> DatabaseProvider for RememberingDatabases<D> {
    fn create(&self, request: DatabaseRequest) -> LocalBoxFuture<'_, std::result::Result<Database, ProviderError>> {
        async move {
            let database = self.inner.create(request).await?;
            *self.created.borrow_mut() =
                Some(KeepResponse { claim: database.claim.clone(), connection_url: database.connection_url.clone() });
            Ok(database)
        }
        .boxed_local()
    }

    fn delete<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, std::result::Result<bool, ProviderError>> {
        self.inner.delete(token)
    }

    fn list(&self) -> LocalBoxFuture<'_, std::result::Result<Vec<DatabaseInfo>, ProviderError>> {
        self.inner.list()
    }
}

type WorkerProviders =
    Providers<E2bClient<FetchClient, WorkerClock>, RememberingDatabases<InstanodeClient<FetchClient, WorkerClock>>>;

/// The providers of this deployment, over the runtime's `fetch`; a database created through them
/// is remembered in `created`.
pub(crate) fn providers(config: &Config, created: Rc<RefCell<Option<KeepResponse>>>) -> WorkerProviders {
    Providers {
        sandboxes: config.e2b_client(),
        databases: RememberingDatabases { inner: config.instanode_client(), created },
    }
}

// `#[durable_object]` exports the type to JavaScript, which needs it `pub`.
#[allow(unreachable_pub)]
#[durable_object]
#[derive(Debug)]
pub struct Turn {
    state: State,
    env: Env,
    live: RefCell<Option<Live>>,
}

impl DurableObject for Turn {
    fn new(state: State, env: Env) -> Self {
        Turn { state, env, live: RefCell::new(None) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path();
        let result = match (req.method(), path.as_str()) {
            (worker::Method::Post, "/start") => self.start(req).await,
            (worker::Method::Get, "/detail") => self.detail(&req).await,
            (worker::Method::Get, "/events") => self.events(&req).await,
            (worker::Method::Post, "/cancel") => self.cancel(&req).await,
            (worker::Method::Post, "/keep") => self.keep(&req).await,
            _ => Err(ApiError::new(ErrorCode::NotFound, "no such turn operation")),
        };
        match result {
            Ok(response) => Ok(response),
            Err(err) if err.code == ErrorCode::TooManyRequests => reply::too_many(&err, VIEWER_RETRY_S),
            Err(err) => reply::error(&err),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(meta) = self.meta().await? else {
            return Response::ok("no turn");
        };
        let started = self.state.storage().get::<String>("started").await?.is_some();
        if !started {
            self.state.storage().put("started", "1").await?;
            self.run(&meta).await?;
        }
        if self.reap_leftovers(&meta).await? {
            // Everything is reaped or kept: the turn stops counting against its tenant's cap
            // only now, so that a turn whose reap keeps failing still holds its place.
            self.finished(&meta).await;
            // The safety alarm has nothing left to do, and nothing of the turn needs to stay in
            // memory (the log is in storage), so the runtime may evict the object.
            self.state.storage().delete_alarm().await?;
            self.live.borrow_mut().take();
        }
        Response::ok("ok")
    }

    async fn websocket_message(&self, _ws: WebSocket, _message: WebSocketIncomingMessage) -> Result<()> {
        // Viewers only listen; whatever they send is ignored.
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, _code: usize, _reason: String, _clean: bool) -> Result<()> {
        let _ = ws.close(Some(1000), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}

impl Turn {
    async fn meta(&self) -> Result<Option<StartTurn>> {
        let Some(json) = self.state.storage().get::<String>("meta").await? else { return Ok(None) };
        Ok(Some(serde_json::from_str(&json)?))
    }

    /// The turn's meta if it belongs to the tenant the router vouches for; others' turns and turns
    /// that do not exist look the same.
    async fn owned_meta(&self, req: &Request) -> std::result::Result<StartTurn, ApiError> {
        let tenant = req.headers().get(TENANT_HEADER).ok().flatten().unwrap_or_default();
        match self.meta().await {
            Ok(Some(meta)) if !tenant.is_empty() && meta.tenant == tenant => Ok(meta),
            Ok(_) => Err(ApiError::new(ErrorCode::NotFound, "no such turn")),
            Err(err) => Err(internal(&err)),
        }
    }

    async fn start(&self, mut req: Request) -> std::result::Result<Response, ApiError> {
        let start: StartTurn = req.json().await.map_err(|err| internal(&err))?;
        if self.meta().await.map_err(|err| internal(&err))?.is_some() {
            return Err(ApiError::new(ErrorCode::Conflict, "the turn exists already"));
        }
        let json = serde_json::to_string(&start).map_err(|err| internal(&err.into()))?;
        let storage = self.state.storage();
        storage.put("meta", json).await.map_err(|err| internal(&err))?;
        // The log starts here, in this instance, so a viewer that connects before the alarm fires
        // is already in the fan-out.
        *self.live.borrow_mut() = Some(Live::default());
        storage.set_alarm(0).await.map_err(|err| internal(&err))?;
        Response::empty().map(|r| r.with_status(201)).map_err(|err| internal(&err))
    }

    /// Runs the turn to its end in this invocation and records how each resource ended.
    async fn run(&self, meta: &StartTurn) -> Result<()> {
        let config = Config::from_env(&self.env);
        let clock = WorkerClock;
        let spec = match stored_spec(&meta.request) {
            Ok(spec) => spec,
            // The router validated the request; a refusal here means the limits changed since.
            Err(err) => return Err(worker::Error::RustError(format!("stored request refused: {err}"))),
        };
        let turn_id = TurnId::new(meta.turn_id.clone()).map_err(|err| worker::Error::RustError(err.to_string()))?;
        // Should this process die mid-turn, this alarm reaps what the turn leaves behind.
        let deadline = clock.now_ms() + u64::from(spec.timeout_s) * 1000;
        self.state.storage().set_alarm(ms_as_alarm(deadline + DEADLINE_SLACK_MS)).await?;

        let (control, created) = {
            let mut live = self.live.borrow_mut();
            let live = live.get_or_insert_with(Live::default);
            live.running = true;
            (live.control.clone(), live.database.clone())
        };
        let providers = providers(&config, created);
        let sink = ObjectSink { turn: self };
        let turn = std::pin::pin!(run_turn(turn_id, spec, TurnOptions::default(), &providers, &clock, &sink, &control));
        let report = match futures::future::select(turn, std::pin::pin!(self.keep_streams_alive())).await {
            futures::future::Either::Left((report, _)) => report,
            futures::future::Either::Right(((), turn)) => turn.await,
        };
        if let Some(live) = self.live.borrow_mut().as_mut() {
            live.running = false;
        }

        for (resource, reap) in [(Resource::Sandbox, &report.sandbox), (Resource::Database, &report.database)] {
            let Some(reap) = reap else { continue };
            if let Some(mut record) = self.lease(resource).await? {
                record.reap = reap.state;
                record.error = reap.error.clone();
                self.put_lease(&record).await?;
            }
        }
        Ok(())
    }

    async fn lease(&self, resource: Resource) -> Result<Option<LeaseRecord>> {
        let Some(json) = self.state.storage().get::<String>(lease_key(resource)).await? else { return Ok(None) };
        Ok(Some(serde_json::from_str(&json)?))
    }

    async fn put_lease(&self, record: &LeaseRecord) -> Result<()> {
        self.state.storage().put(lease_key(record.resource()), serde_json::to_string(record)?).await
    }

    /// Reaps every resource whose turn is not running here any more and that is not gone yet. A
    /// turn that started but neither runs nor finished was lost with its process: its log is closed
    /// with a `turn.finished` that says so. Idempotent; re-arms the alarm while a reap fails.
    /// `true` once nothing is left to watch: the turn is over and every resource reaped or kept.
    async fn reap_leftovers(&self, meta: &StartTurn) -> Result<bool> {
        if self.live.borrow().as_ref().is_some_and(|live| live.running) {
            return Ok(false);
        }
        let config = Config::from_env(&self.env);
        let providers = providers(&config, Rc::default());
        let clock = WorkerClock;
        let mut events = self.stored_events(0).await?;
        let lost = !events.last().is_some_and(|e| e.body.is_terminal());
        let mut failing = false;
        for resource in [Resource::Sandbox, Resource::Database] {
            let Some(mut record) = self.lease(resource).await? else { continue };
            if !matches!(record.reap, ReapState::Live | ReapState::Reaping | ReapState::Failed) {
                continue;
            }
            let started = clock.now_ms();
            let result = match &record.lease.resource {
                LeasedResource::Sandbox { sandbox_id } => providers.sandboxes.kill(sandbox_id).await,
                LeasedResource::Database { token, .. } => providers.databases.delete(token).await,
            };
            match result {
                // `false` is "already gone": as good as reaped.
                Ok(_) => {
                    record.reap = ReapState::Reaped;
                    record.error = None;
                    if lost {
                        let ms = clock.now_ms() - started;
                        let body = match resource {
                            Resource::Sandbox => EventBody::SandboxReaped { ms },
                            Resource::Database => EventBody::DatabaseReaped { ms },
                        };
                        events.push(self.append(meta, &events, body));
                    }
                }
                Err(err) => {
                    failing = true;
                    record.reap = ReapState::Failed;
                    record.error = Some(redact_credentials_in_text(&err.to_string()));
                }
            }
            self.put_lease(&record).await?;
        }
        if lost && !failing {
            let error = "the turn was lost when the worker restarted; its resources were reaped".to_owned();
            let timings =
                Timings { total_ms: clock.now_ms().saturating_sub(meta.created_unix_ms), ..Timings::default() };
            let body = EventBody::TurnFinished { outcome: Outcome::Failed, timings, error: Some(error) };
            events.push(self.append(meta, &events, body));
        }
        if failing {
            self.state.storage().set_alarm(ms_as_alarm(clock.now_ms() + REAP_RETRY_MS)).await?;
        }
        Ok(!failing)
    }

    /// Tells the tenant's ledger the turn no longer runs. A failure is only logged: the ledger
    /// stops counting the turn at its deadline anyway.
    async fn finished(&self, meta: &StartTurn) {
        if let Err(err) = crate::ledger::finished(&self.env, &meta.tenant, &meta.turn_id).await {
            worker::console_error!("turn object: ledger: {err}");
        }
    }

    /// While the turn runs, sends every event-stream viewer a comment now and then: proxies close a
    /// silent stream (Cloudflare's after 100 s), and a viewer that left is only noticed when
    /// something is sent to it — then its place under [`MAX_VIEWERS`] is free again.
    async fn keep_streams_alive(&self) {
        loop {
            worker::Delay::from(SSE_KEEPALIVE).await;
            let mut live = self.live.borrow_mut();
            let Some(live) = live.as_mut() else { return };
            live.streams.retain(|stream| stream.send(b": keepalive\n\n".to_vec()));
        }
    }

    /// Refuses a new viewer when the turn already has as many as it serves.
    fn check_viewers(&self) -> std::result::Result<(), ApiError> {
        let streams = self.live.borrow().as_ref().map_or(0, |live| live.streams.iter().filter(|s| s.is_open()).count());
        if self.state.get_websockets().len() + streams >= MAX_VIEWERS {
            let message = format!("the turn has {MAX_VIEWERS} viewers, the most it serves at once");
            return Err(ApiError::new(ErrorCode::TooManyRequests, message));
        }
        Ok(())
    }

    /// Appends an event the orchestrator did not emit (a lost turn's ending) and fans it out.
    fn append(&self, meta: &StartTurn, log: &[Event], body: EventBody) -> Event {
        let seq = log.last().map_or(1, |e| e.seq + 1);
        let at_ms = WorkerClock.now_ms().saturating_sub(meta.created_unix_ms);
        let event = Event { seq, at_ms, body };
        self.publish(&event);
        event
    }

    /// Writes `event` to the log and sends it to every viewer. The write is issued before the
    /// send, and the runtime's output gate holds the send until the write is durable.
    fn publish(&self, event: &Event) {
        let Ok(json) = serde_json::to_string(event) else { return };
        // Issued synchronously so writes land in `seq` order; the promise settles on its own.
        let _ = self.state.storage().as_raw().put(&event_key(event.seq), JsValue::from_str(&json));
        for ws in self.state.get_websockets() {
            let _ = ws.send_with_str(&json);
            if event.body.is_terminal() {
                let _ = ws.close(Some(1000), Some("turn finished"));
            }
        }
        if let Some(live) = self.live.borrow_mut().as_mut() {
            // A viewer that went away has dropped its receiver: its sender is forgotten here.
            live.streams.retain(|stream| stream.send(sse_frame(event.seq, &json)));
            if event.body.is_terminal() {
                // Dropping the senders ends the response bodies: the stream ends with the turn.
                live.streams.clear();
            }
        }
    }

    /// Events with `seq > after` from storage, in order.
    async fn stored_events(&self, after: u64) -> Result<Vec<Event>> {
        let start = event_key(after + 1);
        let map = self.state.storage().list_with_options(ListOptions::new().prefix("ev:").start(&start)).await?;
        let mut events = Vec::new();
        for value in map.values() {
            let value = value?;
            if let Some(json) = value.as_string() {
                events.push(serde_json::from_str::<Event>(&json)?);
            }
        }
        Ok(events)
    }

    /// Everything logged so far with `seq > after`: storage merged with what this instance holds
    /// in memory (writes in flight are not listed yet), without duplicates.
    fn merge(&self, mut stored: Vec<Event>, after: u64) -> Vec<Event> {
        if let Some(live) = self.live.borrow().as_ref() {
            let last = stored.last().map_or(after, |e| e.seq);
            stored.extend(live.log.iter().filter(|e| e.seq > last).cloned());
        }
        stored
    }

    async fn events(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        self.owned_meta(req).await?;
        self.check_viewers()?;
        let header = |name: &str| req.headers().get(name).ok().flatten().unwrap_or_default();
        if header("Accept").contains("text/event-stream") {
            return self.event_source(req).await;
        }
        if !header("Upgrade").eq_ignore_ascii_case("websocket") {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the event stream is a WebSocket (send `Upgrade: websocket`) or Server-Sent Events \
                 (send `Accept: text/event-stream`)",
            ));
        }
        let after = after_param(req)?;
        let stored = self.stored_events(after).await.map_err(|err| internal(&err))?;
        // From here to the return nothing awaits: the replay and joining the fan-out happen in one
        // step, so no event is sent twice or missed in between.
        let events = self.merge(stored, after);
        let pair = WebSocketPair::new().map_err(|err| internal(&err))?;
        let finished = events.last().is_some_and(|e| e.body.is_terminal());
        if !finished {
            self.state.accept_web_socket(&pair.server);
        } else {
            pair.server.accept().map_err(|err| internal(&err))?;
        }
        for event in &events {
            if let Ok(json) = serde_json::to_string(event) {
                let _ = pair.server.send_with_str(json);
            }
        }
        if finished {
            let _ = pair.server.close(Some(1000), Some("turn finished"));
        }
        let response = Response::from_websocket(pair.client).map_err(|err| internal(&err))?;
        // A browser that offered a subprotocol drops a handshake that does not pick one.
        if crate::auth::offers_ws_protocol(&header("Sec-WebSocket-Protocol")) {
            let headers = worker::Headers::new();
            headers.set("Sec-WebSocket-Protocol", crate::auth::WS_PROTOCOL).map_err(|err| internal(&err))?;
            return Ok(response.with_headers(headers));
        }
        Ok(response)
    }

    /// The event stream as Server-Sent Events: the replay, then live events, ending after
    /// `turn.finished`. `Last-Event-ID` (an `EventSource` reconnecting) counts like `after`.
    async fn event_source(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let after = after_param(req)?.max(last_event_id(req)?);
        let stored = self.stored_events(after).await.map_err(|err| internal(&err))?;
        // As for WebSockets, nothing awaits between reading the log and joining the fan-out.
        let events = self.merge(stored, after);
        let (viewer, body) = SseViewer::new();
        for event in &events {
            if let Ok(json) = serde_json::to_string(event) {
                viewer.replay(sse_frame(event.seq, &json));
            }
        }
        let finished = events.last().is_some_and(|e| e.body.is_terminal());
        if !finished {
            // This instance holds the turn from `/start` until it ends. A turn unfinished and not
            // held here was lost with its process: the alarm closes its log, and the viewer gets
            // what there is now.
            if let Some(live) = self.live.borrow_mut().as_mut() {
                live.streams.push(viewer);
            }
        }
        let headers = worker::Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).map_err(|err| internal(&err));
        set("Content-Type", "text/event-stream")?;
        set("Cache-Control", "no-cache")?;
        Response::from_stream(body).map(|r| r.with_headers(headers)).map_err(|err| internal(&err))
    }

    async fn detail(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let meta = self.owned_meta(req).await?;
        let stored = self.stored_events(0).await.map_err(|err| internal(&err))?;
        let events = self.merge(stored, 0);
        let mut resources = Vec::new();
        for resource in [Resource::Sandbox, Resource::Database] {
            if let Some(record) = self.lease(resource).await.map_err(|err| internal(&err))? {
                resources.push(record.view());
            }
        }
        let spec = stored_spec(&meta.request).map_err(|err| ApiError::new(ErrorCode::Internal, err.to_string()))?;
        let mut detail = TurnDetail {
            turn_id: meta.turn_id.clone(),
            created_unix_ms: meta.created_unix_ms,
            state: TurnState::Accepted,
            outcome: None,
            error: None,
            exit_code: None,
            spec: spec.view(),
            timings: Timings::default(),
            resources,
            events: events.len() as u64,
        };
        for event in &events {
            match &event.body {
                EventBody::SandboxCreating { .. } | EventBody::DatabaseCreating {} => {
                    detail.state = TurnState::Provisioning;
                }
                EventBody::ProcessStarted { .. } => detail.state = TurnState::Running,
                EventBody::ProcessExited { exit_code, .. } => {
                    detail.exit_code = Some(*exit_code);
                    detail.state = TurnState::Reaping;
                }
                EventBody::SandboxReaped { .. } | EventBody::DatabaseReaped { .. } | EventBody::ReapFailed { .. } => {
                    detail.state = TurnState::Reaping;
                }
                EventBody::TurnFinished { outcome, timings, error } => {
                    detail.state = TurnState::Finished;
                    detail.outcome = Some(*outcome);
                    detail.timings = timings.clone();
                    detail.error = error.clone();
                }
                _ => {}
            }
        }
        Response::from_json(&detail).map_err(|err| internal(&err))
    }

    async fn cancel(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        self.owned_meta(req).await?;
        if let Some(live) = self.live.borrow().as_ref() {
            live.control.cancel();
        }
        Response::empty().map(|r| r.with_status(202)).map_err(|err| internal(&err))
    }
}

impl Turn {
    /// `POST /keep`: asks the running turn to keep its database and, once the database exists,
    /// answers how to claim it. After the turn, a kept database's answer is given again; a reaped
    /// one is a conflict.
    async fn keep(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let meta = self.owned_meta(req).await?;
        if !meta.request.database {
            return Err(ApiError::new(ErrorCode::Conflict, "the turn has no database"));
        }
        let storage = self.state.storage();
        let give = |kept: &KeepResponse| Response::from_json(kept).map_err(|err| internal(&err));
        if let Some(json) = storage.get::<String>(KEPT_KEY).await.map_err(|err| internal(&err))? {
            let kept: KeepResponse = serde_json::from_str(&json).map_err(|err| internal(&err.into()))?;
            return give(&kept);
        }
        let too_late = || ApiError::new(ErrorCode::Conflict, "the turn's database is being reaped or is gone already");
        let waited_from = WorkerClock.now_ms();
        loop {
            let found = {
                let live = self.live.borrow();
                let Some(live) = live.as_ref().filter(|live| live.running) else { return Err(too_late()) };
                // Once the turn is past its run, its database may be deleted any moment: keeping is
                // refused rather than promised and then broken.
                if live.control.is_cancelled() || reaping_started(&live.log, meta.created_unix_ms) {
                    return Err(too_late());
                }
                live.control.keep_database();
                let database = live.database.borrow().clone();
                database
            };
            if let Some(kept) = found {
                let json = serde_json::to_string(&kept).map_err(|err| internal(&err.into()))?;
                storage.put(KEPT_KEY, json).await.map_err(|err| internal(&err))?;
                return give(&kept);
            }
            if WorkerClock.now_ms().saturating_sub(waited_from) > KEEP_WAIT.as_millis() as u64 {
                return Err(ApiError::new(ErrorCode::Conflict, "the turn's database was not created in time"));
            }
            worker::Delay::from(Duration::from_millis(100)).await;
        }
    }
}

/// Whether the turn whose log is `log` has ended its run (its process exited, a reap began, or
/// its deadline passed): from then on its database may be reaped at any moment.
fn reaping_started(log: &[Event], created_unix_ms: u64) -> bool {
    log.iter().any(|event| match &event.body {
        EventBody::ProcessExited { .. }
        | EventBody::SandboxReaped { .. }
        | EventBody::DatabaseReaped { .. }
        | EventBody::ReapFailed { .. }
        | EventBody::TurnFinished { .. } => true,
        EventBody::TurnAccepted { deadline_ms, .. } => created_unix_ms + deadline_ms <= WorkerClock.now_ms(),
        _ => false,
    })
}

/// The sink the orchestrator reports to: the object's log, its viewers and its lease records.
struct ObjectSink<'a> {
    turn: &'a Turn,
}

impl TurnSink for ObjectSink<'_> {
    fn emit(&self, event: Event) -> std::result::Result<(), SinkError> {
        self.turn.publish(&event);
        if let Some(live) = self.turn.live.borrow_mut().as_mut() {
            live.log.push(event);
        }
        Ok(())
    }

    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, std::result::Result<(), SinkError>> {
        async move {
            let record = LeaseRecord { lease, reap: ReapState::Live, error: None };
            self.turn
                .put_lease(&record)
                .await
                .map_err(|_| SinkError::LeaseNotRecorded("storage refused the write".into()))
        }
        .boxed_local()
    }
}

fn after_param(req: &Request) -> std::result::Result<u64, ApiError> {
    let url = req.url().map_err(|err| internal(&err))?;
    match url.query_pairs().find(|(name, _)| name == "after") {
        None => Ok(0),
        Some((_, value)) => value
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "`after` must be a whole number (an event's seq)")),
    }
}

/// `Last-Event-ID`, 0 when absent.
fn last_event_id(req: &Request) -> std::result::Result<u64, ApiError> {
    match req.headers().get("Last-Event-ID").ok().flatten() {
        None => Ok(0),
        Some(value) => value.trim().parse().map_err(|_| {
            ApiError::new(ErrorCode::InvalidRequest, "`Last-Event-ID` must be a whole number (an event's seq)")
        }),
    }
}

/// One event as a Server-Sent Events frame: its seq as the id, its JSON as the data.
fn sse_frame(seq: u64, json: &str) -> Vec<u8> {
    format!("id: {seq}\ndata: {json}\n\n").into_bytes()
}

fn ms_as_alarm(unix_ms: u64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(worker::js_sys::Date::new(&JsValue::from_f64(unix_ms as f64)))
}

/// A fault of our own: logged here, answered without details.
fn internal(err: &worker::Error) -> ApiError {
    worker::console_error!("turn object: {err}");
    ApiError::new(ErrorCode::Internal, "the turn's state could not be read or written")
}

/// The spec of a stored request. The router settled its template before storing it, so the
/// template map is never asked.
fn stored_spec(request: &CreateTurnRequest) -> std::result::Result<TurnSpec, mayfly_core::SpecError> {
    TurnSpec::from_request(request.clone(), &Limits::default(), &TemplateMap::default())
}
