//! In-memory providers on a virtual clock (`clock.rs`), for the tests of the provider clients, the
//! sweep and the orchestrator.
//!
//! Every fake call (and, through the orchestrator's test sink, every lease) is written to one shared
//! [`Trace`] with its virtual time, so a test can check the order in which things happened across
//! providers.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::StreamExt;

use crate::providers::{
    Clock, Database, DatabaseInfo, DatabaseMode, DatabaseProvider, DatabaseRequest, DatabaseStatus, ProcessEvent,
    ProcessEvents, ProcessRequest, ProviderError, ProviderErrorKind, SandboxHandle, SandboxInfo, SandboxProvider,
    SandboxRequest,
};
use crate::wire::event::ClaimInfo;

mod clock;

pub(crate) use clock::{run_virtual, VirtualClock, EPOCH_MS};

/// An error status from a fake provider, of the kind the status means anywhere.
fn answered(provider: &'static str, status: u16, message: impl Into<String>) -> ProviderError {
    ProviderError::Status { provider, status, kind: ProviderErrorKind::from_status(status), message: message.into() }
}

/// What the fakes did, in order, each line with its virtual time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trace(Rc<RefCell<Vec<String>>>);

impl Trace {
    pub(crate) fn note(&self, clock: &VirtualClock, what: String) {
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
    /// How long a kill takes, failed or not.
    pub(crate) kill_ms: Cell<u64>,
    pub(crate) process: RefCell<Vec<Step>>,
    /// What `db_helper.py <subcommand>` does, by subcommand (`seed`, `summary`, `copy`); a process whose
    /// command names none of them runs `process`.
    pub(crate) helper: RefCell<BTreeMap<&'static str, Vec<Step>>>,
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
            kill_ms: Cell::new(20),
            process: RefCell::new(vec![
                Step::Wait(5),
                Step::Emit(ProcessEvent::Started { pid: 42 }),
                Step::Wait(100),
                Step::Emit(ProcessEvent::Stdout(Bytes::from_static(b"(1000000,)\n"))),
                Step::Wait(10),
                Step::Emit(ProcessEvent::Exited { exit_code: 0 }),
            ]),
            helper: RefCell::new(BTreeMap::from([
                ("seed", vec![Step::Wait(30), Step::Emit(ProcessEvent::Exited { exit_code: 0 })]),
                (
                    "copy",
                    vec![
                        Step::Wait(40),
                        Step::Emit(ProcessEvent::Stdout(Bytes::from_static(br#"{"bytes":4096}"#))),
                        Step::Emit(ProcessEvent::Exited { exit_code: 0 }),
                    ],
                ),
                (
                    "summary",
                    vec![
                        Step::Wait(20),
                        Step::Emit(ProcessEvent::Stdout(Bytes::from_static(
                            br#"{"tables":[{"name":"public.items","rows":2,"columns":["id integer"]}],"bytes":8000}"#,
                        ))),
                        Step::Emit(ProcessEvent::Exited { exit_code: 0 }),
                    ],
                ),
            ])),
            live: RefCell::default(),
            created: RefCell::default(),
        }
    }

    pub(crate) fn fail_on(&self, operation: &str) {
        self.fail.borrow_mut().insert(operation.to_owned());
    }

    fn fails(&self, operation: &str) -> Result<(), ProviderError> {
        if self.fail.borrow().contains(operation) {
            return Err(answered("e2b", 500, format!("{operation} broke")));
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
            let sandbox = live.get_mut(&sandbox.sandbox_id).ok_or(answered("e2b", 404, "no such sandbox"))?;
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
            let helper = self.helper.borrow();
            let helper = helper.iter().find(|(name, _)| process.command.contains(&format!("db_helper.py {name}")));
            let steps = helper.map_or_else(|| self.process.borrow().clone(), |(_, steps)| steps.clone()).into_iter();
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
            self.clock.sleep(self.kill_ms.get()).await;
            if self.kill_failures.get() > 0 {
                self.kill_failures.set(self.kill_failures.get() - 1);
                self.trace.note(&self.clock, format!("sandbox kill {sandbox_id} failed"));
                return Err(answered("e2b", 503, "busy"));
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
    /// How long a delete and a status question take, failed or not.
    pub(crate) delete_ms: Cell<u64>,
    pub(crate) status_ms: Cell<u64>,
    /// Live databases: token → name.
    pub(crate) live: RefCell<BTreeMap<String, String>>,
    pub(crate) created: Cell<u32>,
    /// When set, `status` says the database was stopped for passing this many bytes.
    pub(crate) stopped_for_storage: Cell<Option<u64>>,
    /// Whether `fork` works; without it the provider is like hosted instanode, which cannot fork.
    pub(crate) forks: Cell<bool>,
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
            delete_ms: Cell::new(10),
            status_ms: Cell::new(10),
            live: RefCell::default(),
            created: Cell::new(0),
            stopped_for_storage: Cell::new(None),
            forks: Cell::new(true),
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

impl FakeDatabases {
    /// A create, or with `source` a fork of that database.
    async fn make(&self, request: DatabaseRequest, source: Option<&str>) -> Result<Database, ProviderError> {
        self.clock.sleep(self.create_ms.get()).await;
        let operation = if source.is_some() { "fork" } else { "create" };
        if self.fail.borrow().contains(operation) {
            return Err(answered("instanode", 503, "no capacity"));
        }
        if let Some(source) = source.filter(|source| !self.live.borrow().contains_key(*source)) {
            return Err(answered("instanode", 404, format!("no database {source}")));
        }
        self.created.set(self.created.get() + 1);
        let token = format!("tok{}", self.created.get());
        let from = source.map(|source| format!(" from={source}")).unwrap_or_default();
        self.trace.note(
            &self.clock,
            format!("database {operation} {token} name={} key={}{from}", request.name, request.idempotency_key),
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
    }
}

impl DatabaseProvider for FakeDatabases {
    fn create(&self, request: DatabaseRequest) -> LocalBoxFuture<'_, Result<Database, ProviderError>> {
        Box::pin(self.make(request, None))
    }

    fn fork<'a>(
        &'a self,
        source_token: &'a str,
        request: DatabaseRequest,
    ) -> LocalBoxFuture<'a, Result<Database, ProviderError>> {
        Box::pin(async move {
            if !self.forks.get() {
                return Err(ProviderError::Unsupported { provider: "instanode", operation: "fork" });
            }
            self.make(request, Some(source_token)).await
        })
    }

    fn connection_url<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(10).await;
            if !self.live.borrow().contains_key(token) {
                return Err(answered("instanode", 404, format!("no database {token}")));
            }
            self.trace.note(&self.clock, format!("database credentials {token}"));
            Ok(FakeDatabases::url(token))
        })
    }

    fn freeze<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(10).await;
            if self.fail.borrow().contains("freeze") {
                return Err(answered("instanode", 503, format!("could not rotate {}", FakeDatabases::url(token))));
            }
            self.trace.note(&self.clock, format!("database freeze {token}"));
            Ok(())
        })
    }

    fn delete<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(self.delete_ms.get()).await;
            if self.delete_failures.get() > 0 {
                self.delete_failures.set(self.delete_failures.get() - 1);
                self.trace.note(&self.clock, format!("database delete {token} failed"));
                // Echoes the URL, as a careless provider error might: the turn must scrub it.
                let message = format!("could not drop {}", FakeDatabases::url(token));
                return Err(answered("instanode", 503, message));
            }
            let existed = self.live.borrow_mut().remove(token).is_some();
            self.trace.note(&self.clock, format!("database delete {token} existed={existed}"));
            Ok(existed)
        })
    }

    fn list(&self) -> LocalBoxFuture<'_, Result<Vec<DatabaseInfo>, ProviderError>> {
        Box::pin(async move {
            if self.fail.borrow().contains("list") {
                return Err(answered("instanode", 502, "bad gateway"));
            }
            let live = self.live.borrow();
            Ok(live.iter().map(|(token, name)| DatabaseInfo { token: token.clone(), name: name.clone() }).collect())
        })
    }

    fn status<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<Option<DatabaseStatus>, ProviderError>> {
        Box::pin(async move {
            self.clock.sleep(self.status_ms.get()).await;
            self.trace.note(&self.clock, format!("database status {token}"));
            let limit = self.stopped_for_storage.get();
            Ok(limit.map(|bytes| DatabaseStatus { storage_exceeded: true, storage_limit_bytes: Some(bytes) }))
        })
    }
}
