//! The provisioner: the `Service` handle that every route and background task shares, its errors,
//! and who a request comes from. Its work lives by concern in modules of its own, each an
//! `impl Service` that imports this one and is imported by nothing, so no circle forms:
//! `provision` (creates and the warm pool), `fork` (creates that copy an owner's database, the
//! lock that keeps one source's copies apart and the slots that bound all copies), `freeze` (a
//! database closed for good but kept), `reaping` (deletes, expiry, and what a crashed run
//! left half-done), `resources` (look-ups, rotation, claims) and `storage_check`. `Inner` stays
//! private here, and they reach it through the accessors below. All of it goes through the registry
//! so that any instance can pick up where a crashed one left off.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::{watch, Mutex, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::admin::{self, AdminError, AdminPool};
use crate::config::Config;
use crate::registry::{self, Row};

/// Why a service operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid schema name (want [a-z_][a-z0-9_]*)")]
    BadSchema,
    #[error("postgres unavailable: {0}")]
    Admin(#[from] AdminError),
    #[error("idempotency key reused with a different body")]
    IdempotencyConflict,
    #[error("resource not found")]
    NotFound,
    #[error("invalid claim token")]
    InvalidClaim,
    #[error("already claimed")]
    AlreadyClaimed,
    /// Postgres copies a database only while nobody is connected to it.
    #[error("the source database has open sessions")]
    SourceInUse,
    /// A stopped database's copy would start over the same storage limit.
    #[error("the source database is stopped")]
    SourceSuspended,
    /// Bigger than `Config::fork_source_max_bytes`.
    #[error("the source database is {bytes} bytes, over the limit of {limit}")]
    SourceTooLarge { bytes: u64, limit: u64 },
    /// Frozen (`crate::freeze`): it hands out no credential.
    #[error("the database is frozen")]
    Frozen,
    /// Its create has not finished, and would undo what was asked of it.
    #[error("the database is still being created")]
    Provisioning,
    /// A request with this Idempotency-Key failed and gave the key back: nothing to replay yet.
    #[error("an earlier request with this idempotency key failed")]
    Unfinished,
}

impl ServiceError {
    /// What a failed copy (`admin::copy_pair`) means for the fork's caller.
    pub(crate) fn from_copy(e: AdminError) -> Self {
        use tokio_postgres::error::SqlState;
        let state = e.sql_state();
        if state == Some(&SqlState::OBJECT_IN_USE) {
            ServiceError::SourceInUse
        } else if state == Some(&SqlState::INVALID_CATALOG_NAME) || state == Some(&SqlState::UNDEFINED_OBJECT) {
            // The source was deleted between its check and its copy.
            ServiceError::NotFound
        } else {
            ServiceError::Admin(e)
        }
    }
}

impl From<tokio_postgres::Error> for ServiceError {
    fn from(e: tokio_postgres::Error) -> Self {
        ServiceError::Admin(AdminError::Postgres(e))
    }
}

/// Who is asking: an owner id (hash of their Bearer token), or nobody from an address (when the
/// server was given it: see `crate::serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    Anonymous(Option<IpAddr>),
    Owner(String),
}

impl Caller {
    /// An anonymous caller's address, as the registry records it (hosted-like gates count by it).
    pub(crate) fn anonymous_address(&self) -> Option<String> {
        match self {
            Caller::Anonymous(address) => address.map(|ip| ip.to_string()),
            Caller::Owner(_) => None,
        }
    }

    /// Whose idempotency keys these are. Owner ids are hex hashes, so an `anonymous:` scope never
    /// collides with one. Without an address an anonymous caller has no scope: sharing one would
    /// hand one caller another's database.
    pub(crate) fn idempotency_scope(&self) -> Option<String> {
        match self {
            Caller::Owner(o) => Some(o.clone()),
            Caller::Anonymous(Some(ip)) => Some(format!("anonymous:{}", ip.to_canonical())),
            Caller::Anonymous(None) => None,
        }
    }
}

/// A create request after validation.
#[derive(Debug, Clone)]
pub(crate) struct NewResource {
    pub(crate) name: String,
    pub(crate) env: String,
    pub(crate) idempotency: Option<(String, String)>,
    /// The token of the caller's database this one is to be a copy of (`fork`); a fresh one when `None`.
    pub(crate) fork_of: Option<String>,
}

/// The result of a create: the row, whether it is a replay of an earlier create, and whether its
/// Idempotency-Key was honoured.
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) row: Row,
    pub(crate) replay: bool,
    pub(crate) idempotent: bool,
}

/// A claim's result: the new owner's session token and ids.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) session_token: String,
    pub(crate) team_id: String,
    pub(crate) user_id: String,
}

struct Inner {
    config: Config,
    admin: AdminPool,
    schema: String,
    host: String,
    port: u16,
    strategy: Option<&'static str>,
    token_hashes: HashSet<String>,
    refill: Notify,
    source_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    fork_slots: Semaphore,
    shutdown: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// A running provisioner. Cheap to clone; background tasks stop on `shutdown`.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl Service {
    /// Connects, migrates the registry, finishes what a crashed run left half-done, and starts the
    /// pool filler and the expiry sweep.
    pub async fn start(config: Config) -> Result<Self, ServiceError> {
        let ok_schema = config.schema.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && config.schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok_schema {
            return Err(ServiceError::BadSchema);
        }
        let admin = AdminPool::new(&config.admin_url, config.admin_connections)?;
        registry::migrate(&admin, &config.schema).await?;
        registry::adopt_legacy_roles(&admin, &config.schema).await?;
        let version: i32 = {
            let c = admin.get().await?;
            let v: String = c.query_one("SHOW server_version_num", &[]).await?.get(0);
            v.parse().unwrap_or(0)
        };
        // FILE_COPY keeps the WAL small (15's default WAL_LOG logs every page of the template); the
        // benchmark measures both at about the same latency for the tiny template.
        let strategy = (version >= 150000).then_some("FILE_COPY");
        let (host, port) = admin.host_port();
        let (shutdown, _) = watch::channel(false);
        let svc = Service {
            inner: Arc::new(Inner {
                schema: admin::ident(&config.schema),
                token_hashes: config.tokens.iter().map(|t| sha256_hex(t)).collect(),
                admin,
                host,
                port,
                strategy,
                refill: Notify::new(),
                source_locks: std::sync::Mutex::default(),
                fork_slots: Semaphore::new(config.fork_slots()),
                shutdown,
                tasks: std::sync::Mutex::new(Vec::new()),
                config,
            }),
        };
        svc.recover().await?;
        let filler = tokio::spawn(svc.clone().fill_loop());
        let sweeper = tokio::spawn(svc.clone().sweep_loop());
        let checker = tokio::spawn(svc.clone().storage_check_loop());
        svc.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()).extend([filler, sweeper, checker]);
        Ok(svc)
    }

    /// Stops the background tasks and waits for them; pairs in flight are finished first.
    pub async fn shutdown(&self) {
        // `send_replace`, not `send`: a task that has not subscribed yet (a shutdown right after
        // the start) must still find the flag set, and `send` stores nothing without receivers.
        self.inner.shutdown.send_replace(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The registry's schema, quoted.
    pub(crate) fn s(&self) -> &str {
        &self.inner.schema
    }

    pub(crate) fn admin(&self) -> &AdminPool {
        &self.inner.admin
    }

    /// Turns true when the background tasks are to stop.
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// The owner id for a Bearer token, if the token is one we know.
    pub(crate) async fn authenticate(&self, bearer: &str) -> Result<Option<String>, ServiceError> {
        let h = sha256_hex(bearer);
        if self.inner.token_hashes.contains(&h) {
            return Ok(Some(h));
        }
        let c = self.inner.admin.get().await?;
        let found = c.query_opt(&format!("SELECT 1 FROM {}.sessions WHERE owner = $1", self.s()), &[&h]).await?;
        Ok(found.map(|_| h))
    }

    pub(crate) fn connection_url(&self, row: &Row) -> String {
        let (db, role) = admin::names(&row.token);
        format!("postgres://{role}:{}@{}:{}/{db}?sslmode=disable", row.password, self.inner.host, self.inner.port)
    }

    /// How new databases are copied from the template, when this server lets us choose.
    pub(crate) fn strategy(&self) -> Option<&'static str> {
        self.inner.strategy
    }

    /// Woken when a create takes a pair from the pool, so the filler replaces it at once.
    pub(crate) fn refill(&self) -> &Notify {
        &self.inner.refill
    }

    /// One lock per database being forked (by token); see `crate::fork`.
    pub(crate) fn source_locks(&self) -> &std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>> {
        &self.inner.source_locks
    }

    /// One permit per fork allowed to copy at once; see `crate::fork`.
    pub(crate) fn fork_slots(&self) -> &Semaphore {
        &self.inner.fork_slots
    }
}
