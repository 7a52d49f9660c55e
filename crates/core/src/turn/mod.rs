//! The turn orchestrator: provision a sandbox and a database in parallel, run the code
//! with the database URL in its environment, stream its output, and reap both — always.
//!
//! [`run_turn`] is sans-IO: providers, the clock and the event sink come in as arguments, so the very
//! same code runs in the worker's Durable Object, in the CLI and under a virtual clock in tests.
//!
//! Reaping is the point of the design, so the control flow is arranged around it: every phase
//! returns an `Ending` instead of returning early with `?`, and the reap phase runs after all of
//! them with whatever resources exist. A provider call that is in flight when the turn is cancelled
//! or times out during provisioning is allowed to finish, so that the resource it creates is known
//! and reaped here rather than left for the sweep.

mod budget;
mod recovery;

pub use budget::provider_requests_at_most;
pub use recovery::{reap_leftovers, LeaseRecord, Leftovers, LOST_TURN_ERROR};

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use futures::future::{self, Either, LocalBoxFuture};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::{Event, EventBody, Outcome, ReapState, Resource, Timings};
use crate::provider::redact_credentials_in_text;
use crate::provider::{
    database_name, sandbox_metadata, Clock, Database, DatabaseMode, DatabaseProvider, DatabaseRequest, ProcessEvent,
    ProcessEvents, ProcessRequest, ProviderError, Providers, SandboxHandle, SandboxProvider, SandboxRequest,
};
use crate::spec::TurnSpec;
use crate::utf8::Utf8StreamDecoder;

/// Runs one turn to the end and reports how it went. It never fails: every failure becomes an
/// outcome, and every resource that was created is reaped (or kept, when asked) before it returns.
///
/// Events go to `sink` as they happen, `seq` from 1 without gaps, `at_ms` since this call. Each
/// resource's [`Lease`] is handed to `sink` as soon as the resource exists, and the turn waits for
/// it to be recorded before it goes on.
pub async fn run_turn<S, D, C, K>(
    turn_id: TurnId,
    spec: TurnSpec,
    options: TurnOptions,
    providers: &Providers<S, D>,
    clock: &C,
    sink: &K,
    control: &TurnControl,
) -> TurnReport
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    let accepted_unix_ms = clock.now_ms();
    let turn = Turn {
        turn_id: &turn_id,
        spec: &spec,
        options: &options,
        sandboxes: &providers.sandboxes,
        databases: &providers.databases,
        clock,
        control,
        emitter: Emitter {
            sink,
            clock,
            accepted_unix_ms,
            next_seq: Cell::new(1),
            closed: Cell::new(false),
            secrets: RefCell::new(Vec::new()),
        },
        accepted_unix_ms,
        deadline_unix_ms: accepted_unix_ms + u64::from(spec.timeout_s) * 1000,
        timings: RefCell::new(Timings::default()),
        run_started_at: Cell::new(None),
        output_bytes: Cell::new(0),
        output_truncated: Cell::new(false),
    };
    turn.run().await
}

/// A turn's id: 1 to 40 of `A-Z a-z 0-9 _ -`, so it fits sandbox metadata and database names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TurnId(String);

impl TurnId {
    pub fn new(id: impl Into<String>) -> Result<TurnId, TurnIdError> {
        let id = id.into();
        let ok =
            (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(TurnId(id))
        } else {
            Err(TurnIdError(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TurnId {
    type Error = TurnIdError;
    fn try_from(id: String) -> Result<TurnId, TurnIdError> {
        TurnId::new(id)
    }
}

impl From<TurnId> for String {
    fn from(id: TurnId) -> String {
        id.0
    }
}

/// Why a string is not a [`TurnId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("turn id {0:?} is not allowed: use 1-40 of A-Z a-z 0-9 _ -")]
pub struct TurnIdError(pub String);

/// How a turn runs, beyond what the request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOptions {
    /// Keep the database after the turn instead of deleting it (`--keep-db`).
    pub keep_database: bool,
    /// How long past the deadline the sandbox may live: its provider timeout is deadline + grace.
    pub grace_s: u32,
    pub reap: ReapPolicy,
    /// The output the turn keeps ([`crate::spec::Limits::max_output_bytes`]).
    pub max_output_bytes: usize,
}

impl Default for TurnOptions {
    fn default() -> TurnOptions {
        TurnOptions {
            keep_database: false,
            grace_s: 60,
            reap: ReapPolicy::default(),
            max_output_bytes: crate::spec::Limits::default().max_output_bytes,
        }
    }
}

/// How often and how patiently a reap is tried before it is reported failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapPolicy {
    pub attempts: NonZeroU32,
    /// The wait after the first failure; it doubles after each further one.
    pub first_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for ReapPolicy {
    fn default() -> ReapPolicy {
        ReapPolicy { attempts: NonZeroU32::new(4).expect("4 is not zero"), first_backoff_ms: 250, max_backoff_ms: 4000 }
    }
}

impl ReapPolicy {
    /// The wait after the `failures`-th failed attempt (1-based).
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(32);
        self.first_backoff_ms.saturating_mul(1u64 << doublings).min(self.max_backoff_ms)
    }
}

/// The caller's hold on a running turn: cancel it, or ask to keep its database. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct TurnControl {
    state: Rc<RefCell<ControlState>>,
}

#[derive(Debug, Default)]
struct ControlState {
    cancelled: bool,
    keep_database: bool,
    wakers: Vec<Waker>,
}

impl TurnControl {
    /// Stops the turn: the process is killed (with its sandbox) and everything is reaped.
    pub fn cancel(&self) {
        let wakers = {
            let mut state = self.state.borrow_mut();
            state.cancelled = true;
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn is_cancelled(&self) -> bool {
        self.state.borrow().cancelled
    }

    /// Keeps the database past the turn; takes effect if asked before the turn reaps it.
    pub fn keep_database(&self) {
        self.state.borrow_mut().keep_database = true;
    }

    pub fn is_database_kept(&self) -> bool {
        self.state.borrow().keep_database
    }

    /// Resolves once [`TurnControl::cancel`] has been called.
    pub fn cancelled(&self) -> impl Future<Output = ()> + '_ {
        future::poll_fn(move |cx| {
            let mut state = self.state.borrow_mut();
            if state.cancelled {
                return Poll::Ready(());
            }
            if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// Where a turn's events and leases go: the worker's event log, the CLI's terminal, a test's vector.
pub trait TurnSink {
    /// Takes one event. `Err(SinkError::Closed)` says nobody listens any more; the turn then stops
    /// and reaps, and emits nothing further.
    fn emit(&self, event: Event) -> Result<(), SinkError>;
    /// Records a lease durably. The turn waits for it before it uses the resource, so a crash
    /// right after cannot lose track of the resource; an error stops the turn, which then reaps.
    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, Result<(), SinkError>>;
}

/// Why a sink refused an event or a lease.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SinkError {
    #[error("the event sink is closed")]
    Closed,
    #[error("the lease could not be recorded: {0}")]
    LeaseNotRecorded(String),
}

/// One resource a turn holds, as a durable caller records it to reap it if the turn is lost.
///
/// There is one lease per resource (not one per turn growing over time) because the two resources
/// appear concurrently: two records of one growing value could land in either order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub turn_id: TurnId,
    /// When the turn's code is stopped, in Unix milliseconds.
    pub deadline_unix_ms: u64,
    /// When the resource must be gone at the latest, in Unix milliseconds (deadline + grace).
    pub reap_by_unix_ms: u64,
    pub resource: LeasedResource,
}

/// The resource of a [`Lease`], with what it takes to reap it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resource", rename_all = "snake_case")]
pub enum LeasedResource {
    Sandbox { sandbox_id: String },
    Database { token: String, name: String, mode: DatabaseMode },
}

/// How a turn went, for the caller (the events say the same to viewers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnReport {
    pub turn_id: TurnId,
    pub outcome: Outcome,
    /// Absent when the process never exited on its own (not started, killed at the deadline, ...).
    pub exit_code: Option<i32>,
    /// Why the turn did not succeed, in words meant for the user.
    pub error: Option<String>,
    pub timings: Timings,
    /// Absent when no sandbox was created.
    pub sandbox: Option<ResourceReap>,
    /// Absent when the turn had no database, or its creation failed.
    pub database: Option<ResourceReap>,
    /// How many events the sink accepted.
    pub events: u64,
}

/// What became of one resource at the end of a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceReap {
    /// The sandbox id, or the database's name; never a credential.
    pub id: String,
    /// `Reaped`, `Kept`, or `Failed` when every attempt failed.
    pub state: ReapState,
    pub error: Option<String>,
    /// When it is to be tried again (ms since acceptance), if it failed.
    pub retry_at_ms: Option<u64>,
}

/// How the provisioning-and-running part of a turn ended; the reap phase follows any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Exited(i32),
    Failed(String),
    Cancelled,
    TimedOut,
    SinkClosed,
}

/// One running turn: borrowed inputs and the little state the phases share.
struct Turn<'a, S, D, C, K> {
    turn_id: &'a TurnId,
    spec: &'a TurnSpec,
    options: &'a TurnOptions,
    sandboxes: &'a S,
    databases: &'a D,
    clock: &'a C,
    control: &'a TurnControl,
    emitter: Emitter<'a, K, C>,
    accepted_unix_ms: u64,
    deadline_unix_ms: u64,
    timings: RefCell<Timings>,
    /// When the process was started (Unix ms), once it was.
    run_started_at: Cell<Option<u64>>,
    /// Output kept so far; once it reaches the limit, everything after is dropped.
    output_bytes: Cell<usize>,
    output_truncated: Cell<bool>,
}

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    async fn run(&self) -> TurnReport {
        self.emitter.emit(EventBody::TurnAccepted {
            turn_id: self.turn_id.to_string(),
            deadline_ms: u64::from(self.spec.timeout_s) * 1000,
        });

        let (sandbox, database, provision_failure) = self.provision().await;

        let ending = if let Some(failure) = provision_failure {
            Ending::Failed(failure)
        } else if self.control.is_cancelled() {
            Ending::Cancelled
        } else if self.emitter.is_closed() {
            Ending::SinkClosed
        } else if self.clock.now_ms() >= self.deadline_unix_ms {
            Ending::TimedOut
        } else {
            // Unreachable `expect`: no provisioning failure means the sandbox exists.
            let sandbox = sandbox.as_ref().expect("a sandbox when provisioning did not fail");
            self.execute_until_interrupted(sandbox, database.as_ref()).await
        };

        // A process that failed may have failed because the provider stopped its database; asked
        // before the reap deletes it.
        let failed_run = matches!(ending, Ending::Exited(code) if code != 0)
            || (matches!(ending, Ending::Failed(_)) && self.run_started_at.get().is_some());
        let database_stopped = match &database {
            Some(database) if failed_run => self.database_stopped(database).await,
            _ => None,
        };

        let reap_started = self.clock.now_ms();
        let (sandbox_reap, database_reap) =
            future::join(self.reap_sandbox(sandbox.as_ref()), self.reap_database(database.as_ref())).await;
        let reap_ms = self.clock.now_ms() - reap_started;

        let (outcome, exit_code, error) = match ending {
            Ending::Exited(0) => (Outcome::Succeeded, Some(0), None),
            Ending::Exited(code) => (Outcome::Failed, Some(code), Some(format!("the code exited with status {code}"))),
            Ending::Failed(error) => (Outcome::Failed, None, Some(error)),
            Ending::Cancelled => (Outcome::Cancelled, None, Some("the turn was cancelled".to_owned())),
            Ending::TimedOut => {
                (Outcome::TimedOut, None, Some(format!("the code ran past its {} s timeout", self.spec.timeout_s)))
            }
            Ending::SinkClosed => {
                (Outcome::Cancelled, None, Some("nobody is watching the turn any more: its event sink closed".into()))
            }
        };
        let error = match (error, database_stopped) {
            (Some(error), Some(why)) => Some(format!("{error}; {why}")),
            (error, _) => error,
        };
        let error = error.map(|e| self.emitter.scrub(&e));
        let timings = {
            let mut timings = self.timings.borrow_mut();
            if sandbox.is_some() || database.is_some() {
                timings.reap_ms = Some(reap_ms);
            }
            timings.total_ms = self.clock.now_ms() - self.accepted_unix_ms;
            timings.clone()
        };
        self.emitter.emit(EventBody::TurnFinished { outcome, timings: timings.clone(), error: error.clone() });

        TurnReport {
            turn_id: self.turn_id.clone(),
            outcome,
            exit_code,
            error,
            timings,
            sandbox: sandbox_reap,
            database: database_reap,
            events: self.emitter.next_seq.get() - 1,
        }
    }

    /// Requests the sandbox and the database at the same time and records each lease as soon as
    /// its resource exists. Returns what exists, and why the turn cannot go on, if it cannot.
    async fn provision(&self) -> (Option<SandboxHandle>, Option<Database>, Option<String>) {
        let started = self.clock.now_ms();
        let deadline_unix_s = self.deadline_unix_ms.div_ceil(1000);
        let reap_by_unix_ms = self.deadline_unix_ms + u64::from(self.options.grace_s) * 1000;
        let lease = |resource| Lease {
            turn_id: self.turn_id.clone(),
            deadline_unix_ms: self.deadline_unix_ms,
            reap_by_unix_ms,
            resource,
        };

        self.emitter.emit(EventBody::SandboxCreating { template: self.spec.template.clone() });
        if self.spec.database {
            self.emitter.emit(EventBody::DatabaseCreating {});
        }

        let sandbox_side = async {
            let request = SandboxRequest {
                template: self.spec.template.clone(),
                timeout_s: self.spec.timeout_s + self.options.grace_s,
                env: self.spec.env.clone(),
                metadata: sandbox_metadata(self.turn_id.as_str(), deadline_unix_s),
            };
            let handle = match self.sandboxes.create(request).await {
                Ok(handle) => handle,
                Err(error) => return (None, Some(format!("the sandbox could not be created: {error}"))),
            };
            let ms = self.clock.now_ms() - started;
            self.timings.borrow_mut().sandbox_ms = Some(ms);
            self.emitter.emit(EventBody::SandboxReady { sandbox_id: handle.sandbox_id.clone(), ms });
            let recorded = self
                .emitter
                .sink
                .record_lease(lease(LeasedResource::Sandbox { sandbox_id: handle.sandbox_id.clone() }))
                .await;
            let failure = recorded.err().map(|error| format!("the sandbox's lease could not be recorded: {error}"));
            (Some(handle), failure)
        };

        let database_side = async {
            if !self.spec.database {
                return (None, None);
            }
            let name = database_name(self.turn_id.as_str(), deadline_unix_s);
            let request = DatabaseRequest { name: name.clone(), idempotency_key: format!("mayfly-{}", self.turn_id) };
            let database = match self.databases.create(request).await {
                Ok(database) => database,
                Err(error) => return (None, Some(format!("the database could not be created: {error}"))),
            };
            self.emitter.add_secret(&database.connection_url);
            let ms = self.clock.now_ms() - started;
            self.timings.borrow_mut().database_ms = Some(ms);
            self.emitter.emit(EventBody::DatabaseReady {
                ms,
                host: database.host.clone(),
                database: database.database.clone(),
            });
            let recorded = self
                .emitter
                .sink
                .record_lease(lease(LeasedResource::Database {
                    token: database.token.clone(),
                    name: database.name.clone(),
                    mode: database.mode,
                }))
                .await;
            let failure = recorded.err().map(|error| format!("the database's lease could not be recorded: {error}"));
            (Some(database), failure)
        };

        let ((sandbox, sandbox_failure), (database, database_failure)) =
            future::join(sandbox_side, database_side).await;
        self.timings.borrow_mut().provision_ms = Some(self.clock.now_ms() - started);
        let failure = match (sandbox_failure, database_failure) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        (sandbox, database, failure)
    }

    /// Uploads and runs the code, stopping early at the deadline or on cancellation. Stopping is
    /// just dropping the work: the reap that follows kills the sandbox, and the process with it.
    async fn execute_until_interrupted(&self, sandbox: &SandboxHandle, database: Option<&Database>) -> Ending {
        let work = pin!(self.execute(sandbox, database));
        let interrupt = pin!(async {
            let until_deadline = self.deadline_unix_ms.saturating_sub(self.clock.now_ms());
            match future::select(pin!(self.control.cancelled()), self.clock.sleep(until_deadline)).await {
                Either::Left(_) => Ending::Cancelled,
                Either::Right(_) => Ending::TimedOut,
            }
        });
        let ending = match future::select(work, interrupt).await {
            Either::Left((ending, _)) | Either::Right((ending, _)) => ending,
        };
        // Every way out of the run passes here, so the run's duration is taken here.
        if let Some(started) = self.run_started_at.get() {
            self.timings.borrow_mut().run_ms = Some(self.clock.now_ms() - started);
        }
        ending
    }

    /// Whether a broken-off process stream is the provider stopping the process at the turn's
    /// deadline. The provider's timer starts after this turn's (it counts from when it got the
    /// request), so its stop always comes at or after the deadline by this turn's clock.
    fn is_provider_deadline(&self) -> bool {
        self.clock.now_ms() >= self.deadline_unix_ms
    }

    async fn execute(&self, sandbox: &SandboxHandle, database: Option<&Database>) -> Ending {
        let upload_started = self.clock.now_ms();
        let code_path = self.spec.language.code_path();
        let uploads = std::iter::once((code_path.to_owned(), self.spec.code.as_str()))
            .chain(self.spec.files.iter().map(|file| (file.sandbox_path(), file.content.as_str())));
        for (path, content) in uploads {
            let bytes = Bytes::copy_from_slice(content.as_bytes());
            if let Err(error) = self.sandboxes.upload(sandbox, &path, bytes).await {
                return Ending::Failed(format!("{path} could not be uploaded: {error}"));
            }
            self.emitter.emit(EventBody::CodeUploaded { path, bytes: content.len() as u64 });
            if self.emitter.is_closed() {
                return Ending::SinkClosed;
            }
        }
        self.timings.borrow_mut().upload_ms = Some(self.clock.now_ms() - upload_started);

        let mut env = Vec::new();
        if let Some(database) = database {
            // The one place the URL with its password goes: the process's environment.
            env.push(("PG_URL".to_owned(), database.connection_url.clone()));
            env.push(("DATABASE_URL".to_owned(), database.connection_url.clone()));
        }
        let process = ProcessRequest {
            command: self.spec.language.command(),
            env,
            cwd: "/home/user".to_owned(),
            timeout_ms: self.deadline_unix_ms.saturating_sub(self.clock.now_ms()),
        };
        self.run_started_at.set(Some(self.clock.now_ms()));
        let mut events = match self.sandboxes.start(sandbox, process).await {
            Ok(events) => events,
            Err(error) => return Ending::Failed(format!("the code could not be started: {error}")),
        };
        let mut stdout = Utf8StreamDecoder::default();
        let mut stderr = Utf8StreamDecoder::default();
        // An item read ahead while batching output, to be handled next.
        let mut carried = None;
        let ending = loop {
            let next = match carried.take() {
                Some(next) => next,
                None => events.next().await,
            };
            let event = match next {
                Some(Ok(event)) => event,
                // The provider enforces the same deadline (E2B's `Connect-Timeout-Ms`) and may end
                // the stream a moment before this turn's own timer fires: that is a timeout too.
                Some(Err(_)) if self.is_provider_deadline() => break Ending::TimedOut,
                Some(Err(error)) => break Ending::Failed(format!("the process's output broke off: {error}")),
                None if self.is_provider_deadline() => break Ending::TimedOut,
                None => {
                    break Ending::Failed(format!("the process's output broke off: {}", ProviderError::StreamTruncated))
                }
            };
            match event {
                ProcessEvent::Started { pid } => self.emitter.emit(EventBody::ProcessStarted { pid }),
                ProcessEvent::Stdout(bytes) => {
                    let data = batch_output(&mut events, &mut carried, &mut stdout, &bytes, true);
                    self.emit_output(Stream::Stdout, data);
                }
                ProcessEvent::Stderr(bytes) => {
                    let data = batch_output(&mut events, &mut carried, &mut stderr, &bytes, false);
                    self.emit_output(Stream::Stderr, data);
                }
                ProcessEvent::Exited { exit_code } => break Ending::Exited(exit_code),
            }
            if self.emitter.is_closed() {
                break Ending::SinkClosed;
            }
        };
        // Whatever way the output ended, an incomplete character left over is shown as U+FFFD.
        self.emit_output(Stream::Stdout, stdout.finish());
        self.emit_output(Stream::Stderr, stderr.finish());
        if let Ending::Exited(exit_code) = ending {
            let ms = self.clock.now_ms() - self.run_started_at.get().unwrap_or(self.clock.now_ms());
            self.emitter.emit(EventBody::ProcessExited { exit_code, ms });
        }
        ending
    }
}

/// Output is sent as it comes, but chunks that are already waiting when one is read go out with it
/// as one event, up to this size. A slow consumer (a viewer, the log's storage) then sees fewer,
/// larger events instead of falling further behind; a fast one sees each chunk alone.
pub const OUTPUT_BATCH_BYTES: usize = 64 * 1024;

/// The text of `first` and of every chunk of the same stream that is ready now, up to
/// [`OUTPUT_BATCH_BYTES`]. Anything else that is ready is left in `carried` for the caller.
fn batch_output(
    events: &mut ProcessEvents<'_>,
    carried: &mut Option<Option<Result<ProcessEvent, ProviderError>>>,
    decoder: &mut Utf8StreamDecoder,
    first: &[u8],
    stdout: bool,
) -> String {
    let mut data = decoder.push(first);
    while data.len() < OUTPUT_BATCH_BYTES {
        // Polled once: only what has already arrived joins the batch, nothing waits for more.
        match events.next().now_or_never() {
            None => break,
            Some(Some(Ok(ProcessEvent::Stdout(more)))) if stdout => data.push_str(&decoder.push(&more)),
            Some(Some(Ok(ProcessEvent::Stderr(more)))) if !stdout => data.push_str(&decoder.push(&more)),
            Some(other) => {
                *carried = Some(other);
                break;
            }
        }
    }
    data
}

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Emits output while the turn's output limit allows; the output that reaches the limit is cut
    /// on a character boundary, followed by one `output.truncated`, and later output is dropped.
    fn emit_output(&self, stream: Stream, mut data: String) {
        if data.is_empty() || self.output_truncated.get() {
            return;
        }
        let room = self.options.max_output_bytes.saturating_sub(self.output_bytes.get());
        let over = data.len() > room;
        if over {
            let mut cut = room;
            while !data.is_char_boundary(cut) {
                cut -= 1;
            }
            data.truncate(cut);
        }
        self.output_bytes.set(self.output_bytes.get() + data.len());
        if !data.is_empty() {
            self.emitter.emit(match stream {
                Stream::Stdout => EventBody::Stdout { data },
                Stream::Stderr => EventBody::Stderr { data },
            });
        }
        if over {
            self.output_truncated.set(true);
            self.emitter.emit(EventBody::OutputTruncated { kept_bytes: self.output_bytes.get() as u64 });
        }
    }

    /// Why the provider stopped the turn's database, when it did (and can say so).
    async fn database_stopped(&self, database: &Database) -> Option<String> {
        let status = self.databases.status(&database.token).await.ok().flatten()?;
        if !status.storage_exceeded {
            return None;
        }
        Some(match status.storage_limit_bytes {
            Some(bytes) => {
                format!("the provider stopped its database: it went past its storage limit of {} MB", bytes >> 20)
            }
            None => "the provider stopped its database: it went past its storage limit".to_owned(),
        })
    }

    async fn reap_sandbox(&self, sandbox: Option<&SandboxHandle>) -> Option<ResourceReap> {
        let sandbox_id = sandbox?.sandbox_id.as_str();
        let started = self.clock.now_ms();
        let failure = self.retry_reap(Resource::Sandbox, || self.sandboxes.kill(sandbox_id)).await;
        Some(self.reap_result(Resource::Sandbox, sandbox_id, started, failure))
    }

    async fn reap_database(&self, database: Option<&Database>) -> Option<ResourceReap> {
        let database = database?;
        // Anonymous databases cannot be deleted early: they are kept until the provider's expiry,
        // and the user is told how to claim them, exactly as when keeping was asked for.
        let keep = self.options.keep_database || self.control.is_database_kept();
        if keep || database.mode == DatabaseMode::Anonymous {
            self.emitter.emit(EventBody::DatabaseKept { claim: database.claim.clone() });
            return Some(ResourceReap {
                id: database.name.clone(),
                state: ReapState::Kept,
                error: None,
                retry_at_ms: None,
            });
        }
        let started = self.clock.now_ms();
        let failure = self.retry_reap(Resource::Database, || self.databases.delete(&database.token)).await;
        Some(self.reap_result(Resource::Database, &database.name, started, failure))
    }

    fn reap_result(&self, resource: Resource, id: &str, started: u64, failure: Option<(String, u64)>) -> ResourceReap {
        match failure {
            None => {
                let ms = self.clock.now_ms() - started;
                self.emitter.emit(match resource {
                    Resource::Sandbox => EventBody::SandboxReaped { ms },
                    Resource::Database => EventBody::DatabaseReaped { ms },
                });
                ResourceReap { id: id.to_owned(), state: ReapState::Reaped, error: None, retry_at_ms: None }
            }
            Some((error, retry_at_ms)) => ResourceReap {
                id: id.to_owned(),
                state: ReapState::Failed,
                error: Some(error),
                retry_at_ms: Some(retry_at_ms),
            },
        }
    }

    /// Tries a reap up to the policy's number of attempts with a doubling backoff, emitting
    /// `reap.failed` for each failure. Returns the last error and when to try next if all failed;
    /// after the last attempt that is for the caller's alarm or the sweep to do.
    async fn retry_reap<'f, F>(&self, resource: Resource, mut attempt: F) -> Option<(String, u64)>
    where
        F: FnMut() -> LocalBoxFuture<'f, Result<bool, ProviderError>>,
    {
        let policy = &self.options.reap;
        let mut failures = 0;
        loop {
            let error = match attempt().await {
                // Already gone counts as reaped: the reap is idempotent.
                Ok(_was_alive) => return None,
                Err(error) => self.emitter.scrub(&error.to_string()),
            };
            failures += 1;
            let backoff_ms = policy.backoff_ms(failures);
            let retry_at = self.emitter.at_ms() + backoff_ms;
            self.emitter.emit(EventBody::ReapFailed { resource, error: error.clone(), retry_at });
            if failures >= policy.attempts.get() {
                return Some((error, retry_at));
            }
            self.clock.sleep(backoff_ms).await;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Numbers events and hands them to the sink; once the sink is closed it drops them.
struct Emitter<'a, K, C> {
    sink: &'a K,
    clock: &'a C,
    accepted_unix_ms: u64,
    next_seq: Cell<u64>,
    closed: Cell<bool>,
    /// Strings that must never appear in an event (the database URL and its password).
    secrets: RefCell<Vec<String>>,
}

impl<K: TurnSink, C: Clock> Emitter<'_, K, C> {
    fn at_ms(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.accepted_unix_ms)
    }

    fn emit(&self, body: EventBody) {
        if self.closed.get() {
            return;
        }
        let event = Event { seq: self.next_seq.get(), at_ms: self.at_ms(), body };
        match self.sink.emit(event) {
            Ok(()) => self.next_seq.set(self.next_seq.get() + 1),
            Err(_) => self.closed.set(true),
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Remembers the URL and its password so that [`Emitter::scrub`] removes them from provider
    /// error messages, which sometimes echo what they were given.
    fn add_secret(&self, connection_url: &str) {
        let mut secrets = self.secrets.borrow_mut();
        secrets.push(connection_url.to_owned());
        let authority = connection_url.split_once("://").map_or(connection_url, |(_, rest)| rest);
        let user_info = authority.split(['/', '?', '#']).next().unwrap_or("").rsplit_once('@').map(|(u, _)| u);
        if let Some((_, password)) = user_info.and_then(|u| u.split_once(':')) {
            if !password.is_empty() {
                secrets.push(password.to_owned());
            }
        }
    }

    fn scrub(&self, text: &str) -> String {
        let text = redact_credentials_in_text(text);
        self.secrets.borrow().iter().fold(text, |text, secret| text.replace(secret.as_str(), "***"))
    }
}

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
