//! The provisioner: creates, hands out, rotates, claims and tears down resources, keeps the warm pool
//! full and sweeps expired resources, all against the registry so that any instance can pick up where a
//! crashed one left off.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::admin::{self, AdminError, AdminPool};
use crate::config::{Config, ANON_CONNECTIONS, ANON_STORAGE_MB, OWNED_TIER};
use crate::limits;
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
    fn idempotency_scope(&self) -> Option<String> {
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

    /// Tears down half-made pairs from a previous run and trims the pool to its configured size.
    async fn recover(&self) -> Result<(), ServiceError> {
        let s = self.s().to_string();
        let c = self.inner.admin.get().await?;
        let filling = c.query(&format!("SELECT token FROM {s}.pool WHERE state = 'filling'"), &[]).await?;
        let extra = c
            .query(
                &format!("SELECT token FROM {s}.pool WHERE state = 'ready' ORDER BY created_at OFFSET $1"),
                &[&(self.inner.config.pool_size as i64)],
            )
            .await?;
        drop(c);
        // A pair that cannot be torn down now is left for the next start, with a warning: one bad
        // pair must not keep the provisioner from starting at all.
        for r in filling.iter().chain(extra.iter()) {
            let token: String = r.get(0);
            if let Err(e) = admin::teardown(&self.inner.admin, &token).await {
                tracing::warn!(error = %e, "a pool slot left by a crash could not be torn down; trying at the next start");
                continue;
            }
            let c = self.inner.admin.get().await?;
            c.execute(&format!("DELETE FROM {s}.pool WHERE token = $1"), &[&token]).await?;
        }
        let c = self.inner.admin.get().await?;
        let stuck = c.query(&format!("SELECT token FROM {s}.resources WHERE status = 'provisioning'"), &[]).await?;
        drop(c);
        for r in stuck {
            let token: String = r.get(0);
            if let Err(e) = admin::teardown(&self.inner.admin, &token).await {
                tracing::warn!(error = %e, "a resource left mid-create by a crash could not be torn down; trying at the next start");
                continue;
            }
            let c = self.inner.admin.get().await?;
            c.execute(&format!("UPDATE {s}.resources SET status = 'error' WHERE token = $1"), &[&token]).await?;
            // The create never finished, so its idempotency key is given back, as a failed create
            // gives it back: the caller's retry makes a new database instead of replaying this one.
            c.execute(&format!("DELETE FROM {s}.idempotency WHERE token = $1"), &[&token]).await?;
        }
        Ok(())
    }

    /// Creates a resource, from the pool when it has a ready pair.
    pub(crate) async fn create(&self, caller: &Caller, req: NewResource) -> Result<Created, ServiceError> {
        let s = self.s().to_string();
        let (owner, tier, connections, storage_mb, ttl) = match caller {
            Caller::Anonymous(_) => (
                None,
                "anonymous",
                ANON_CONNECTIONS,
                ANON_STORAGE_MB,
                Some(self.inner.config.anonymous_ttl.as_secs_f64()),
            ),
            Caller::Owner(o) => {
                let config = &self.inner.config;
                (Some(o.clone()), OWNED_TIER, config.authenticated_connections, config.authenticated_storage_mb, None)
            }
        };
        let scope = caller.idempotency_scope();
        let idempotency = match (&scope, req.idempotency) {
            (Some(scope), Some((key, hash))) => Some((scope.clone(), key, hash)),
            (None, Some(_)) => {
                tracing::warn!(
                    "an anonymous Idempotency-Key was not honoured: the server was not given peer addresses"
                );
                None
            }
            (_, None) => None,
        };
        let password = admin::new_password();
        let id = uuid::Uuid::new_v4().to_string();
        let claim_token = owner.is_none().then(|| format!("clm_{}", admin::new_password()));
        let mut c = self.inner.admin.get().await?;
        let tx = c.transaction().await?;
        let pooled: Option<String> = if self.inner.config.pool_size > 0 {
            tx.query_opt(
                &format!(
                    "DELETE FROM {s}.pool WHERE token = (SELECT token FROM {s}.pool WHERE state = 'ready' \
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING token"
                ),
                &[],
            )
            .await?
            .map(|r| r.get(0))
        } else {
            None
        };
        let token = pooled.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Some((owner_key, key, hash)) = &idempotency {
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO {s}.idempotency (owner, key, body_hash, token) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&owner_key, key, hash, &token],
                )
                .await?;
            if inserted == 0 {
                tx.rollback().await?;
                drop(c);
                return self.replay(owner_key, key, hash).await;
            }
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO {s}.resources (id, token, name, env, owner, tier, status, password, connections, \
                     storage_mb, expires_at, claim_token, claim_expires_at, caller) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'provisioning', $7, $8, $9, \
                     now() + $10::float8 * interval '1 second', $11, now() + interval '7 days', $12) RETURNING {}",
                    registry::columns()
                ),
                &[
                    &id,
                    &token,
                    &req.name,
                    &req.env,
                    &owner,
                    &tier,
                    &password,
                    &connections,
                    &storage_mb,
                    &ttl,
                    &claim_token,
                    &caller.anonymous_address(),
                ],
            )
            .await?;
        tx.commit().await?;
        drop(c);
        let mut row = Row::from_pg(&row);
        if pooled.is_some() {
            self.inner.refill.notify_one();
        }
        let login = admin::Login { password: &password, connections, temp_file_mb: limits::temp_file_mb(storage_mb) };
        let made = match pooled {
            Some(_) => admin::set_login(&self.inner.admin, &token, login).await,
            None => admin::create_pair(&self.inner.admin, &token, Some(login), self.inner.strategy).await,
        };
        let c = self.inner.admin.get().await?;
        if let Err(e) = made {
            drop(c);
            let _ = admin::teardown(&self.inner.admin, &token).await;
            let c = self.inner.admin.get().await?;
            c.execute(&format!("UPDATE {s}.resources SET status = 'error' WHERE token = $1"), &[&token]).await?;
            c.execute(&format!("DELETE FROM {s}.idempotency WHERE token = $1"), &[&token]).await?;
            return Err(e.into());
        }
        c.execute(
            &format!("UPDATE {s}.resources SET status = 'active' WHERE token = $1 AND status = 'provisioning'"),
            &[&token],
        )
        .await?;
        row.status = "active".into();
        Ok(Created { row, replay: false, idempotent: idempotency.is_some() })
    }

    /// Answers a repeated key: the same resource once it is ready, or a conflict for another body.
    async fn replay(&self, owner_key: &str, key: &str, hash: &str) -> Result<Created, ServiceError> {
        let s = self.s().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.inner.admin.get().await?;
            let Some(prior) = c
                .query_opt(
                    &format!("SELECT body_hash, token FROM {s}.idempotency WHERE owner = $1 AND key = $2"),
                    &[&owner_key, &key],
                )
                .await?
            else {
                // The first create failed and gave its key back; this one is not a replay of anything.
                return Err(ServiceError::NotFound);
            };
            let (prior_hash, token): (String, String) = (prior.get(0), prior.get(1));
            if prior_hash != hash {
                return Err(ServiceError::IdempotencyConflict);
            }
            let row = c
                .query_opt(&format!("SELECT {} FROM {s}.resources WHERE token = $1", registry::columns()), &[&token])
                .await?
                .map(|r| Row::from_pg(&r))
                .ok_or(ServiceError::NotFound)?;
            // The first request may still be creating the database; a replay must not answer before it.
            if row.status != "provisioning" || tokio::time::Instant::now() > deadline {
                return Ok(Created { row, replay: true, idempotent: true });
            }
            drop(c);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The caller's live resource, or `NotFound` (also for other owners' and anonymous ones).
    pub(crate) async fn get(&self, owner: &str, token: &str) -> Result<Row, ServiceError> {
        let c = self.inner.admin.get().await?;
        c.query_opt(
            &format!(
                "SELECT {} FROM {}.resources WHERE token = $1 AND owner = $2 \
                 AND status IN ('active', 'provisioning', 'suspended')",
                registry::columns(),
                self.s()
            ),
            &[&token, &owner],
        )
        .await?
        .map(|r| Row::from_pg(&r))
        .ok_or(ServiceError::NotFound)
    }

    pub(crate) async fn list(&self, owner: &str, env: Option<&str>) -> Result<Vec<Row>, ServiceError> {
        let c = self.inner.admin.get().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM {}.resources WHERE owner = $1 \
                     AND status IN ('active', 'provisioning', 'suspended') AND ($2::text IS NULL OR env = $2) \
                     ORDER BY created_at",
                    registry::columns(),
                    self.s()
                ),
                &[&owner, &env],
            )
            .await?;
        Ok(rows.iter().map(Row::from_pg).collect())
    }

    /// The database's size on disk; 0 if it is going away under us.
    pub(crate) async fn storage_bytes(&self, token: &str) -> i64 {
        let (db, _) = admin::names(token);
        let Ok(c) = self.inner.admin.get().await else { return 0 };
        c.query_opt("SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1", &[&db])
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0))
            .unwrap_or(0)
    }

    /// Deletes an owned resource. `Ok(false)` means it was already gone (an idempotent repeat).
    pub(crate) async fn delete(&self, owner: &str, token: &str) -> Result<bool, ServiceError> {
        let s = self.s().to_string();
        let c = self.inner.admin.get().await?;
        let status: String = c
            .query_opt(&format!("SELECT status FROM {s}.resources WHERE token = $1 AND owner = $2"), &[&token, &owner])
            .await?
            .map(|r| r.get(0))
            .ok_or(ServiceError::NotFound)?;
        if matches!(status.as_str(), "deleted" | "expired" | "error") {
            return Ok(false);
        }
        c.execute(&format!("UPDATE {s}.resources SET status = 'deleting' WHERE token = $1"), &[&token]).await?;
        drop(c);
        // Fail-open like instanode: if the drop fails the row stays `deleting` and the sweep retries it.
        if let Err(e) = admin::teardown(&self.inner.admin, token).await {
            tracing::warn!(error = %e, "teardown failed; the sweep will retry");
            return Ok(true);
        }
        let c = self.inner.admin.get().await?;
        c.execute(
            &format!("UPDATE {s}.resources SET status = 'deleted', deleted_at = now() WHERE token = $1"),
            &[&token],
        )
        .await?;
        Ok(true)
    }

    /// New password for an owned resource; the old one stops working at once.
    pub(crate) async fn rotate(&self, owner: &str, token: &str) -> Result<Row, ServiceError> {
        let mut row = self.get(owner, token).await?;
        let password = admin::new_password();
        admin::rotate(&self.inner.admin, token, &password).await?;
        let c = self.inner.admin.get().await?;
        c.execute(&format!("UPDATE {}.resources SET password = $2 WHERE token = $1", self.s()), &[&token, &password])
            .await?;
        row.password = password;
        Ok(row)
    }

    /// The live anonymous resource a claim token names, with the token's own expiry.
    pub(crate) async fn claim_preview(&self, claim: &str) -> Result<Option<(Row, String)>, ServiceError> {
        let c = self.inner.admin.get().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {}, {} FROM {}.resources WHERE claim_token = $1 AND claim_expires_at > now() \
                     AND claimed_at IS NULL AND status IN ('active', 'suspended')",
                    registry::columns(),
                    "to_char(claim_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                    self.s()
                ),
                &[&claim],
            )
            .await?;
        Ok(row.map(|r| (Row::from_pg(&r), r.get(13))))
    }

    /// Moves an anonymous resource to a new owner (a freshly minted session token) and clears its expiry.
    pub(crate) async fn claim(&self, claim: &str, email: &str) -> Result<Claimed, ServiceError> {
        let s = self.s().to_string();
        let session_token = format!("ink_{}", admin::new_password());
        let owner = sha256_hex(&session_token);
        let team_id = uuid::Uuid::new_v4().to_string();
        let mut c = self.inner.admin.get().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE {s}.resources SET owner = $2, tier = $3, expires_at = NULL, claimed_at = now() \
                     WHERE claim_token = $1 AND claim_expires_at > now() AND claimed_at IS NULL \
                     AND status IN ('active', 'suspended')"
                ),
                &[&claim, &owner, &OWNED_TIER],
            )
            .await?;
        if n == 0 {
            let claimed = tx
                .query_opt(
                    &format!("SELECT 1 FROM {s}.resources WHERE claim_token = $1 AND claimed_at IS NOT NULL"),
                    &[&claim],
                )
                .await?;
            return Err(if claimed.is_some() { ServiceError::AlreadyClaimed } else { ServiceError::InvalidClaim });
        }
        tx.execute(
            &format!("INSERT INTO {s}.sessions (owner, team_id, email) VALUES ($1, $2, $3)"),
            &[&owner, &team_id, &email],
        )
        .await?;
        tx.commit().await?;
        Ok(Claimed { session_token, user_id: uuid::Uuid::new_v4().to_string(), team_id })
    }

    /// Ready pairs in the pool right now.
    pub async fn pool_ready(&self) -> Result<usize, ServiceError> {
        let c = self.inner.admin.get().await?;
        let n: i64 =
            c.query_one(&format!("SELECT count(*) FROM {}.pool WHERE state = 'ready'", self.s()), &[]).await?.get(0);
        Ok(n as usize)
    }

    async fn fill_one(&self) -> Result<bool, ServiceError> {
        let s = self.s().to_string();
        let c = self.inner.admin.get().await?;
        let n: i64 = c.query_one(&format!("SELECT count(*) FROM {s}.pool"), &[]).await?.get(0);
        if n as usize >= self.inner.config.pool_size {
            return Ok(false);
        }
        let token = uuid::Uuid::new_v4().to_string();
        c.execute(&format!("INSERT INTO {s}.pool (token, state) VALUES ($1, 'filling')"), &[&token]).await?;
        drop(c);
        if let Err(e) = admin::create_pair(&self.inner.admin, &token, None, self.inner.strategy).await {
            let _ = admin::teardown(&self.inner.admin, &token).await;
            let c = self.inner.admin.get().await?;
            c.execute(&format!("DELETE FROM {s}.pool WHERE token = $1"), &[&token]).await?;
            return Err(e.into());
        }
        let c = self.inner.admin.get().await?;
        c.execute(&format!("UPDATE {s}.pool SET state = 'ready', created_at = now() WHERE token = $1"), &[&token])
            .await?;
        Ok(true)
    }

    async fn fill_loop(self) {
        if self.inner.config.pool_size == 0 {
            return;
        }
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            let wait = match self.fill_one().await {
                Ok(true) => Duration::ZERO,
                Ok(false) => Duration::from_secs(5),
                Err(e) => {
                    tracing::warn!(error = %e, "pool refill failed");
                    Duration::from_secs(1)
                }
            };
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = self.inner.refill.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Drops every expired resource and retries failed teardowns; returns how many it finished.
    pub async fn sweep_once(&self) -> Result<usize, ServiceError> {
        let s = self.s().to_string();
        let c = self.inner.admin.get().await?;
        let due = c
            .query(
                &format!(
                    "SELECT token, status FROM {s}.resources \
                     WHERE (status IN ('active', 'suspended') AND expires_at < now()) \
                     OR status = 'deleting' \
                     OR (status = 'provisioning' AND created_at < now() - interval '10 minutes')"
                ),
                &[],
            )
            .await?;
        c.execute(&format!("DELETE FROM {s}.idempotency WHERE created_at < now() - interval '24 hours'"), &[]).await?;
        drop(c);
        let mut done = 0;
        for r in due {
            let (token, status): (String, String) = (r.get(0), r.get(1));
            match admin::teardown(&self.inner.admin, &token).await {
                Ok(()) => {
                    let next = if status == "deleting" || status == "provisioning" { "deleted" } else { "expired" };
                    let c = self.inner.admin.get().await?;
                    c.execute(
                        &format!("UPDATE {s}.resources SET status = $2, deleted_at = now() WHERE token = $1"),
                        &[&token, &next],
                    )
                    .await?;
                    done += 1;
                }
                Err(e) => tracing::warn!(error = %e, "sweep teardown failed; retrying next round"),
            }
        }
        Ok(done)
    }

    async fn sweep_loop(self) {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            match self.sweep_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reaped = n, "expiry sweep"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = tokio::time::sleep(self.inner.config.sweep_interval) => {}
            }
        }
    }
}
