//! The `Turn` Durable Object: one per turn. It keeps the turn's checked spec, its leases, its
//! event log and a summary of that log in its own storage, runs core's orchestrator, and fans
//! every event out to its viewers.
//!
//! The turn runs inside the object's **alarm** handler, armed for "now" by `POST /start`: an
//! alarm is an invocation of its own (up to 15 minutes of wall time, into which core's
//! `Limits::max_timeout_s` fits the longest turn with its provisioning and reap), so the turn does
//! not depend on the request that created it, and a `fetch` that returned would
//! leave a spawned future at the mercy of the object's eviction. Before the turn starts, the alarm
//! is re-armed for the deadline: if the process dies mid-turn, that alarm finds a turn that
//! started but is not running in this instance and reaps its leases (re-arming while a reap
//! fails).
//!
//! The rooms: [`storage`] (the keys and what is under them), [`lifecycle`] (start, run, lost-turn
//! recovery), [`fanout`] (the log and its WebSocket and Server-Sent-Events viewers, with [`sse`]'s
//! bounded streams), [`keep`] (keeping the database), [`checkpoint`] (the database kept, frozen,
//! for forks) and [`detail`] (what the turn looks like now, from its summary).

mod checkpoint;
mod detail;
mod fanout;
mod keep;
mod lifecycle;
mod sse;
mod storage;

use std::cell::RefCell;
use std::rc::Rc;

use mayfly_core::turn::TurnControl;
use mayfly_core::{ApiError, ErrorCode, Event, KeepResponse, TurnProgress};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage,
};

use crate::reply;
pub(crate) use lifecycle::START_TOO_LATE;
pub(crate) use storage::{TurnRecord, START_WINDOW_MS};

/// The Durable Object binding of the turns (`wrangler.toml`).
pub(crate) const BINDING: &str = "TURN";

/// The object of the turn `turn_id`.
pub(crate) fn stub(env: &Env, turn_id: &str) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.id_from_name(turn_id)?.get_stub()
}

/// The header through which the router tells the object whose request it is forwarding.
pub(crate) const TENANT_HEADER: &str = "x-mayfly-tenant";

/// When a viewer turned away may try again, in seconds.
const VIEWER_RETRY_S: u64 = 5;

/// The turn as it runs in this instance: its log so far (for gap-free replay to new viewers) and
/// what the log says, the handle that cancels it, and the Server-Sent-Events viewers. SSE viewers
/// are plain response streams, not hibernatable WebSockets: they live exactly as long as this
/// instance holds the turn.
#[derive(Debug, Default)]
struct Live {
    log: Vec<Event>,
    progress: TurnProgress,
    control: TurnControl,
    running: bool,
    streams: Vec<sse::SseViewer>,
    /// The turn's database once created, for `POST /keep` only. Holds its connection URL.
    database: Rc<RefCell<Option<KeepResponse>>>,
}

impl Live {
    /// A turn taken up again by an instance that did not run it, from its stored summary.
    fn resumed(progress: TurnProgress) -> Live {
        Live { progress, ..Live::default() }
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
            (worker::Method::Get, "/checkpoint") => self.checkpoint(&req).await,
            (worker::Method::Post, "/checkpoint") => self.extend_checkpoint(req).await,
            (worker::Method::Delete, "/checkpoint") => self.release_checkpoint(&req).await,
            (worker::Method::Post, "/fork-source") => self.fork_source(&req).await,
            _ => Err(ApiError::new(ErrorCode::NotFound, "no such turn operation")),
        };
        match result {
            Ok(response) => Ok(response),
            Err(err) if err.code == ErrorCode::TooManyRequests => reply::too_many(&err, VIEWER_RETRY_S),
            Err(err) => reply::error(&err),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.wake().await
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
    /// The turn if it belongs to the tenant the router vouches for; others' turns and turns that do
    /// not exist look the same.
    async fn owned(&self, req: &Request) -> std::result::Result<TurnRecord, ApiError> {
        let tenant = req.headers().get(TENANT_HEADER).ok().flatten().unwrap_or_default();
        match self.record().await {
            Ok(Some(record)) if !tenant.is_empty() && record.tenant == tenant => Ok(record),
            Ok(_) => Err(ApiError::new(ErrorCode::NotFound, "no such turn")),
            Err(err) => Err(internal(&err)),
        }
    }

    async fn cancel(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        self.owned(req).await?;
        if let Some(live) = self.live.borrow().as_ref() {
            live.control.cancel();
        }
        Response::empty().map(|r| r.with_status(202)).map_err(|err| internal(&err))
    }
}

/// A fault of our own: logged here, answered without details.
fn internal(err: &worker::Error) -> ApiError {
    worker::console_error!("turn object: {err}");
    ApiError::new(ErrorCode::Internal, "the turn's state could not be read or written")
}
