//! In-memory providers, a recording sink and a virtual clock for the orchestrator's and the sweep's
//! tests.
//!
//! Time moves only when every task is waiting on a timer: [`run_virtual`] then jumps the
//! [`VirtualClock`] to the next timer, as quinn's test harness does. So a fake "takes 300 ms" by
//! sleeping on the virtual clock, tests never sleep for real, and the timings they assert are exact.
//! Every fake call and lease is written to one shared [`Trace`] with its virtual time, so a test
//! can check the order in which things happened across providers.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::StreamExt;

use crate::event::ClaimInfo;
use crate::event::{Event, Resource};
use crate::provider::{
    Clock, Database, DatabaseInfo, DatabaseMode, DatabaseProvider, DatabaseRequest, DatabaseStatus, ProcessEvent,
    ProcessEvents, ProcessRequest, ProviderError, SandboxHandle, SandboxInfo, SandboxProvider, SandboxRequest,
};
use crate::turn::{Lease, LeasedResource, SinkError, TurnSink};

/// The start of virtual time: some Unix time, so deadlines in metadata look real.
pub(crate) const EPOCH_MS: u64 = 1_700_000_000_000;

/// A clock that moves only when [`run_virtual`] finds nothing else to do.
#[derive(Debug, Clone)]
pub(crate) struct VirtualClock(Rc<RefCell<ClockState>>);

#[derive(Debug)]
struct ClockState {
    now_ms: u64,
    next_timer_id: u64,
    /// Pending sleeps: id → (wake at, the waker of the task that waits).
    timers: BTreeMap<u64, (u64, Option<Waker>)>,
}

impl VirtualClock {
    pub(crate) fn new() -> VirtualClock {
        VirtualClock(Rc::new(RefCell::new(ClockState { now_ms: EPOCH_MS, next_timer_id: 0, timers: BTreeMap::new() })))
    }

    /// Milliseconds since [`EPOCH_MS`].
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.now_ms() - EPOCH_MS
    }

    /// Wakes the sleeps that are due, or else moves time to the next sleep and wakes it. Returns
    /// false when no sleep is pending: nothing can ever wake the waiting task.
    fn advance(&self) -> bool {
        let mut state = self.0.borrow_mut();
        let now = state.now_ms;
        let due_with_waker = |state: &ClockState, at: u64| {
            state.timers.values().any(|(wake_at, waker)| *wake_at <= at && waker.is_some())
        };
        if !due_with_waker(&state, now) {
            let Some(next) = state.timers.values().map(|(wake_at, _)| *wake_at).filter(|&at| at > now).min() else {
                return false;
            };
            state.now_ms = next;
        }
        let now = state.now_ms;
        let wakers: Vec<Waker> =
            state.timers.values_mut().filter(|(wake_at, _)| *wake_at <= now).filter_map(|(_, w)| w.take()).collect();
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
        true
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.borrow().now_ms
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'_, ()> {
        let mut state = self.0.borrow_mut();
        let id = state.next_timer_id;
        state.next_timer_id += 1;
        Box::pin(Sleep { clock: self.clone(), id, wake_at: state.now_ms + ms })
    }
}

struct Sleep {
    clock: VirtualClock,
    id: u64,
    wake_at: u64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.0.borrow_mut();
        if state.now_ms >= self.wake_at {
            state.timers.remove(&self.id);
            return Poll::Ready(());
        }
        state.timers.insert(self.id, (self.wake_at, Some(cx.waker().clone())));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        // A dropped sleep (the losing side of a select) must not hold time back or move it on.
        self.clock.0.borrow_mut().timers.remove(&self.id);
    }
}

/// Runs `future` to completion on this thread, moving `clock` whenever the future waits.
pub(crate) fn run_virtual<F: Future>(clock: &VirtualClock, future: F) -> F::Output {
    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    for _ in 0..100_000 {
        if flag.0.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            continue;
        }
        assert!(clock.advance(), "stuck: the future waits for something no timer will bring");
    }
    panic!("the future did not finish in 100000 steps")
}

/// What the fakes did, in order, each line with its virtual time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trace(Rc<RefCell<Vec<String>>>);

impl Trace {
    fn note(&self, clock: &VirtualClock, what: String) {
        self.0.borrow_mut().push(format!("@{:<5} {what}", clock.elapsed_ms()));
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    pub(crate) fn render(&self) -> String {
        self.lines().join("\n") + "\n"
    }
}

/// One step of a fake process's life.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Wait(u64),
    Emit(ProcessEvent),
    /// The stream yields an error (the connection dropped).
    Break,
}

/// A sandbox the fake holds, with everything put into it.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeSandbox {
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) timeout_s: u32,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) files: BTreeMap<String, Bytes>,
    pub(crate) process_env: Vec<(String, String)>,
    pub(crate) command: String,
}

/// An in-memory sandbox provider. Operations named in `fail` fail: `create`, `upload <path>`,
/// `start`, `list`; `kill_failures` kills fail before kills work again.
#[derive(Debug)]
pub(crate) struct FakeSandboxes {
    clock: VirtualClock,
    trace: Trace,
    pub(crate) create_ms: Cell<u64>,
    pub(crate) fail: RefCell<BTreeSet<String>>,
    pub(crate) kill_failures: Cell<u32>,
    pub(crate) process: RefCell<Vec<Step>>,
    pub(crate) live: RefCell<BTreeMap<String, FakeSandbox>>,
    /// Every sandbox ever created, alive or not.
    pub(crate) created: RefCell<BTreeMap<String, FakeSandbox>>,
}

impl FakeSandboxes {
    pub(crate) fn new(clock: &VirtualClock, trace: &Trace) -> FakeSandboxes {
        FakeSandboxes {
            clock: clock.clone(),
            trace: trace.clone(),
            create_ms: Cell::new(300),
            fail: RefCell::default(),
            kill_failures: Cell::new(0),
            process: RefCell::new(vec![
                Step::Wait(5),
                Step::Emit(ProcessEvent::Started { pid: 42 }),
                Step::Wait(100),
                Step::Emit(ProcessEvent::Stdout(Bytes::from_static(b"(1000000,)\n"))),
                Step::Wait(10),
                Step::Emit(ProcessEvent::Exited { exit_code: 0 }),
            ]),
            live: RefCell::default(),
            created: RefCell::default(),
        }
    }

    pub(crate) fn fail_on(&self, operation: &str) {
        self.fail.borrow_mut().insert(operation.to_owned());
    }

    fn fails(&self, operation: &str) -> Result<(), ProviderError> {
        if self.fail.borrow().contains(operation) {
            return Err(ProviderError::Status { provider: "e2b", status: 500, message: format!("{operation} broke") });
        }
        Ok(())
    }

    pub(crate) fn live_ids(&self) -> Vec<String> {
        self.live.borrow().keys().cloned().collect()
    }
}

impl SandboxProvider for FakeSandboxes {
    fn create(&self, request: SandboxRequest) -> LocalBoxFuture<'_, Result<SandboxHandle, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(self.create_ms.get()).await;
            self.fails("create")?;
            let id = format!("sbx-{}", self.created.borrow().len() + 1);
            self.trace.note(
                &self.clock,
                format!("sandbox create {id} timeout_s={} {:?}", request.timeout_s, request.metadata),
            );
            let sandbox = FakeSandbox {
                metadata: request.metadata,
                timeout_s: request.timeout_s,
                env: request.env,
                ..FakeSandbox::default()
            };
            self.created.borrow_mut().insert(id.clone(), sandbox.clone());
            self.live.borrow_mut().insert(id.clone(), sandbox);
            Ok(SandboxHandle { sandbox_id: id, envd_access_token: Some("envd-token".into()), domain: None })
        })
    }

    fn upload<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        path: &'a str,
        content: Bytes,
    ) -> LocalBoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(10).await;
            self.fails(&format!("upload {path}"))?;
            self.trace.note(&self.clock, format!("sandbox upload {path} ({} bytes)", content.len()));
            let mut live = self.live.borrow_mut();
            let sandbox = live.get_mut(&sandbox.sandbox_id).ok_or(ProviderError::Status {
                provider: "e2b",
                status: 404,
                message: "no such sandbox".into(),
            })?;
            sandbox.files.insert(path.to_owned(), content);
            Ok(())
        })
    }

    fn start<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        process: ProcessRequest,
    ) -> LocalBoxFuture<'a, Result<ProcessEvents<'a>, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(5).await;
            self.fails("start")?;
            self.trace
                .note(&self.clock, format!("sandbox start {:?} timeout_ms={}", process.command, process.timeout_ms));
            // Copied into `created` too, so tests can look after the reap has removed it from `live`.
            let files = self.live.borrow().get(&sandbox.sandbox_id).map(|l| l.files.clone()).unwrap_or_default();
            for record in [&self.live, &self.created] {
                if let Some(record) = record.borrow_mut().get_mut(&sandbox.sandbox_id) {
                    record.process_env = process.env.clone();
                    record.command = process.command.clone();
                    record.files = files.clone();
                }
            }
            let steps = self.process.borrow().clone().into_iter();
            let clock = self.clock.clone();
            let events = futures::stream::unfold((steps, clock), |(mut steps, clock)| async move {
                loop {
                    match steps.next()? {
                        Step::Wait(ms) => clock.sleep(ms).await,
                        Step::Emit(event) => return Some((Ok(event), (steps, clock))),
                        Step::Break => {
                            let error = ProviderError::Protocol { provider: "e2b", message: "connection reset".into() };
                            return Some((Err(error), (steps, clock)));
                        }
                    }
                }
            });
            Ok(events.boxed_local())
        })
    }

    fn kill<'a>(&'a self, sandbox_id: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(20).await;
            if self.kill_failures.get() > 0 {
                self.kill_failures.set(self.kill_failures.get() - 1);
                self.trace.note(&self.clock, format!("sandbox kill {sandbox_id} failed"));
                return Err(ProviderError::Status { provider: "e2b", status: 503, message: "busy".into() });
            }
            let was_alive = self.live.borrow_mut().remove(sandbox_id).is_some();
            self.trace.note(&self.clock, format!("sandbox kill {sandbox_id} was_alive={was_alive}"));
            Ok(was_alive)
        })
    }

    fn list_tagged(&self) -> LocalBoxFuture<'_, Result<Vec<SandboxInfo>, ProviderError>> {
        Box::pin(async move {
            self.fails("list")?;
            let live = self.live.borrow();
            Ok(live
                .iter()
                .filter(|(_, s)| s.metadata.get("mayfly").map(String::as_str) == Some("1"))
                .map(|(id, s)| SandboxInfo { sandbox_id: id.clone(), metadata: s.metadata.clone() })
                .collect())
        })
    }
}

/// An in-memory database provider. Operations named in `fail` fail: `create`, `list`;
/// `delete_failures` deletes fail before deletes work again.
#[derive(Debug)]
pub(crate) struct FakeDatabases {
    clock: VirtualClock,
    trace: Trace,
    pub(crate) create_ms: Cell<u64>,
    pub(crate) mode: Cell<DatabaseMode>,
    pub(crate) fail: RefCell<BTreeSet<String>>,
    pub(crate) delete_failures: Cell<u32>,
    /// Live databases: token → name.
    pub(crate) live: RefCell<BTreeMap<String, String>>,
    pub(crate) created: Cell<u32>,
    /// When set, `status` says the database was stopped for passing this many bytes.
    pub(crate) stopped_for_storage: Cell<Option<u64>>,
}

/// The password every fake database gets, so tests can look for it.
pub(crate) const PASSWORD: &str = "pw-s3cret-7f3a";

impl FakeDatabases {
    pub(crate) fn new(clock: &VirtualClock, trace: &Trace) -> FakeDatabases {
        FakeDatabases {
            clock: clock.clone(),
            trace: trace.clone(),
            create_ms: Cell::new(200),
            mode: Cell::new(DatabaseMode::Token),
            fail: RefCell::default(),
            delete_failures: Cell::new(0),
            live: RefCell::default(),
            created: Cell::new(0),
            stopped_for_storage: Cell::new(None),
        }
    }

    pub(crate) fn fail_on(&self, operation: &str) {
        self.fail.borrow_mut().insert(operation.to_owned());
    }

    pub(crate) fn live_names(&self) -> Vec<String> {
        self.live.borrow().values().cloned().collect()
    }

    pub(crate) fn url(token: &str) -> String {
        format!("postgres://usr_{token}:{PASSWORD}@db.test:5432/db_{token}")
    }
}

impl DatabaseProvider for FakeDatabases {
    fn create(&self, request: DatabaseRequest) -> LocalBoxFuture<'_, Result<Database, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(self.create_ms.get()).await;
            if self.fail.borrow().contains("create") {
                return Err(ProviderError::Status {
                    provider: "instanode",
                    status: 503,
                    message: "no capacity".into(),
                });
            }
            self.created.set(self.created.get() + 1);
            let token = format!("tok{}", self.created.get());
            self.trace.note(
                &self.clock,
                format!("database create {token} name={} key={}", request.name, request.idempotency_key),
            );
            self.live.borrow_mut().insert(token.clone(), request.name.clone());
            Ok(Database {
                connection_url: FakeDatabases::url(&token),
                host: "db.test:5432".into(),
                database: format!("db_{token}"),
                name: request.name,
                mode: self.mode.get(),
                claim: ClaimInfo {
                    claim_url: format!("https://claim.test/?t=jwt-{token}"),
                    upgrade_jwt: None,
                    expires_at: Some("2023-11-15T22:13:20Z".into()),
                    instructions: "open the claim URL".into(),
                },
                token,
            })
        })
    }

    fn delete<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(10).await;
            if self.delete_failures.get() > 0 {
                self.delete_failures.set(self.delete_failures.get() - 1);
                self.trace.note(&self.clock, format!("database delete {token} failed"));
                // Echoes the URL, as a careless provider error might: the turn must scrub it.
                let message = format!("could not drop {}", FakeDatabases::url(token));
                return Err(ProviderError::Status { provider: "instanode", status: 503, message });
            }
            let existed = self.live.borrow_mut().remove(token).is_some();
            self.trace.note(&self.clock, format!("database delete {token} existed={existed}"));
            Ok(existed)
        })
    }

    fn list(&self) -> LocalBoxFuture<'_, Result<Vec<DatabaseInfo>, ProviderError>> {
        Box::pin(async move {
            if self.fail.borrow().contains("list") {
                return Err(ProviderError::Status {
                    provider: "instanode",
                    status: 502,
                    message: "bad gateway".into(),
                });
            }
            let live = self.live.borrow();
            Ok(live.iter().map(|(token, name)| DatabaseInfo { token: token.clone(), name: name.clone() }).collect())
        })
    }

    fn status<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<Option<DatabaseStatus>, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(10).await;
            self.trace.note(&self.clock, format!("database status {token}"));
            let limit = self.stopped_for_storage.get();
            Ok(limit.map(|bytes| DatabaseStatus { storage_exceeded: true, storage_limit_bytes: Some(bytes) }))
        })
    }
}

/// A sink that keeps every event and lease. `close_after` events it reports itself closed;
/// `fail_lease` refuses that resource's lease.
#[derive(Debug)]
pub(crate) struct RecordingSink {
    clock: VirtualClock,
    trace: Trace,
    pub(crate) events: RefCell<Vec<Event>>,
    pub(crate) leases: RefCell<Vec<Lease>>,
    pub(crate) close_after: Cell<Option<usize>>,
    pub(crate) fail_lease: Cell<Option<Resource>>,
}

impl RecordingSink {
    pub(crate) fn new(clock: &VirtualClock, trace: &Trace) -> RecordingSink {
        RecordingSink {
            clock: clock.clone(),
            trace: trace.clone(),
            events: RefCell::default(),
            leases: RefCell::default(),
            close_after: Cell::new(None),
            fail_lease: Cell::new(None),
        }
    }
}

impl TurnSink for RecordingSink {
    fn emit(&self, event: Event) -> Result<(), SinkError> {
        if self.close_after.get().is_some_and(|n| self.events.borrow().len() >= n) {
            return Err(SinkError::Closed);
        }
        self.events.borrow_mut().push(event);
        Ok(())
    }

    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let resource = match &lease.resource {
                LeasedResource::Sandbox { .. } => Resource::Sandbox,
                LeasedResource::Database { .. } => Resource::Database,
            };
            if self.fail_lease.get() == Some(resource) {
                self.trace.note(&self.clock, format!("lease {resource:?} refused"));
                return Err(SinkError::LeaseNotRecorded("storage is down".into()));
            }
            self.trace.note(&self.clock, format!("lease {}", serde_json::to_string(&lease).unwrap()));
            self.leases.borrow_mut().push(lease);
            Ok(())
        })
    }
}
