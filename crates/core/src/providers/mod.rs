//! What core asks of the world — a sandbox provider (E2B protocol), a database provider (instanode
//! protocol) and a clock — and the clients that provide it over core's [`http::HttpClient`].
//!
//! The traits are shaped after what the E2B and instanode clients offer, so those clients
//! ([`e2b`], [`instanode`]) implement them directly, and tests implement them in memory. Futures are
//! not `Send` (`LocalBoxFuture`) because the worker's `fetch` futures are not. Both clients send
//! through one `ProviderHttp` (`provider_http.rs`), which retries with the backoff of
//! [`retry`]. Besides the turn, two callers use the providers: [`sweep`] reaps what turns lost,
//! [`doctor`] checks a deployment before its first turn.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;
use serde::{Deserialize, Serialize};

use crate::url::redact_url;
use crate::wire::event::ClaimInfo;

pub mod doctor;
pub mod e2b;
mod error;
pub mod http;
pub mod instanode;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
mod provider_http;
pub mod retry;
pub mod sweep;
mod tags;

#[cfg(test)]
pub(crate) mod fakes;

pub use error::{ProviderError, ProviderErrorKind};
pub use tags::{
    database_name, database_turn, parse_database_name, parse_sandbox_metadata, sandbox_metadata, sandbox_turn,
    MAYFLY_DATABASE_PREFIX, MAYFLY_METADATA_KEY, MAYFLY_METADATA_VALUE,
};

/// Time, passed in: core reads no clock of its own.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves once `ms` milliseconds have passed.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'_, ()>;
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'_, ()> {
        (**self).sleep(ms)
    }
}

/// Creates, feeds, runs and kills sandboxes (E2B's lifecycle and `commands`/`files` modules).
pub trait SandboxProvider {
    fn create(&self, request: SandboxRequest) -> LocalBoxFuture<'_, Result<SandboxHandle, ProviderError>>;
    /// Writes a file (parents created), replacing what was there.
    fn upload<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        path: &'a str,
        content: Bytes,
    ) -> LocalBoxFuture<'a, Result<(), ProviderError>>;
    /// Starts a process. The stream yields `Started` first and `Exited` last; a stream that ends
    /// without `Exited`, or yields an error, means the output was cut off.
    fn start<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        process: ProcessRequest,
    ) -> LocalBoxFuture<'a, Result<ProcessEvents<'a>, ProviderError>>;
    /// Kills the sandbox: `Ok(true)` if it was alive, `Ok(false)` if it was already gone. Both are
    /// success, so a kill can be repeated safely.
    fn kill<'a>(&'a self, sandbox_id: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>>;
    /// The sandboxes whose metadata has `mayfly = "1"`.
    fn list_tagged(&self) -> LocalBoxFuture<'_, Result<Vec<SandboxInfo>, ProviderError>>;
}

/// Creates and deletes scratch databases (instanode's `/db/new` and resources API).
pub trait DatabaseProvider {
    fn create(&self, request: DatabaseRequest) -> LocalBoxFuture<'_, Result<Database, ProviderError>>;
    /// Deletes the database: `Ok(true)` if it existed, `Ok(false)` if it was already gone. Both are
    /// success, so a delete can be repeated safely.
    fn delete<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>>;
    /// The databases this caller can delete (token mode); empty in anonymous mode.
    fn list(&self) -> LocalBoxFuture<'_, Result<Vec<DatabaseInfo>, ProviderError>>;
    /// What the provider says of the database now, when it can say (token mode): whether it
    /// stopped it for going past its storage limit. `Ok(None)` when it cannot tell.
    fn status<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<Option<DatabaseStatus>, ProviderError>> {
        let _ = token;
        Box::pin(async { Ok(None) })
    }
    /// Makes a database that starts as a copy of the one behind `source_token`, for a fork of a
    /// checkpoint (scratchdb's fork extension, `docs/protocols/instanode.md` §12).
    fn fork<'a>(
        &'a self,
        source_token: &'a str,
        request: DatabaseRequest,
    ) -> LocalBoxFuture<'a, Result<Database, ProviderError>> {
        let _ = (source_token, request);
        Box::pin(async { Err(ProviderError::Unsupported { provider: "database provider", operation: "fork" }) })
    }
    /// The database's connection URL as it is now (instanode's credentials read): for a fork's
    /// copy of a checkpoint where the provider cannot fork. It holds the password.
    fn connection_url<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<String, ProviderError>> {
        let _ = token;
        Box::pin(async {
            Err(ProviderError::Unsupported { provider: "database provider", operation: "read credentials" })
        })
    }
    /// Freezes the database for a checkpoint: every credential handed out so far stops working
    /// and its sessions end (instanode's credential rotation). The new credentials are not kept.
    fn freeze<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<(), ProviderError>> {
        let _ = token;
        Box::pin(async { Err(ProviderError::Unsupported { provider: "database provider", operation: "freeze" }) })
    }
}

/// The sandbox provider and the database provider of one deployment.
#[derive(Debug, Clone)]
pub struct Providers<S, D> {
    pub sandboxes: S,
    pub databases: D,
}

/// What a turn asks of the sandbox provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRequest {
    pub template: String,
    /// After this many seconds the provider kills the sandbox on its own: the last backstop.
    pub timeout_s: u32,
    /// Environment for every process in the sandbox.
    pub env: Vec<(String, String)>,
    /// Tags, values in `[A-Za-z0-9_.-]`; see [`sandbox_metadata`].
    pub metadata: BTreeMap<String, String>,
}

/// A sandbox that exists.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxHandle {
    pub sandbox_id: String,
    /// The token for the sandbox's data plane (envd), when the provider issues one.
    pub envd_access_token: Option<String>,
    /// The domain the data plane is reached under, when it differs from the provider's default.
    pub domain: Option<String>,
}

impl fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The access token is a credential: Debug output ends up in logs.
        f.debug_struct("SandboxHandle")
            .field("sandbox_id", &self.sandbox_id)
            .field("envd_access_token", &self.envd_access_token.as_ref().map(|_| "***"))
            .field("domain", &self.domain)
            .finish()
    }
}

/// A sandbox as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    pub sandbox_id: String,
    pub metadata: BTreeMap<String, String>,
}

/// A process to start in a sandbox.
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessRequest {
    /// A shell command line.
    pub command: String,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// The provider stops the process after this long; the orchestrator enforces it too.
    pub timeout_ms: u64,
}

impl fmt::Debug for ProcessRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Env values hold the database URL with its password.
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProcessRequest")
            .field("command", &self.command)
            .field("env", &env)
            .field("cwd", &self.cwd)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// What a running process reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    Started { pid: u32 },
    Stdout(Bytes),
    Stderr(Bytes),
    Exited { exit_code: i32 },
}

/// A process's events, as they happen.
pub type ProcessEvents<'a> = LocalBoxStream<'a, Result<ProcessEvent, ProviderError>>;

/// What a turn asks of the database provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRequest {
    /// Unique per turn; see [`database_name`].
    pub name: String,
    /// Sent as `Idempotency-Key`, so a retried create returns the same database.
    pub idempotency_key: String,
}

/// Whether the database provider lets mayfly delete what it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseMode {
    /// Created with an account token: deleted at the end of the turn.
    Token,
    /// Created anonymously: it cannot be deleted early and expires at the provider.
    Anonymous,
}

/// A database that exists. `connection_url` holds the password: it goes into the sandbox's
/// environment and nowhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Database {
    /// The provider's handle for deleting it. Not a credential for the database itself.
    pub token: String,
    pub name: String,
    pub connection_url: String,
    /// `host:port`, for events.
    pub host: String,
    /// The database's name inside Postgres, for events.
    pub database: String,
    pub mode: DatabaseMode,
    /// How a user takes the database over when it is kept.
    pub claim: ClaimInfo,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("token", &self.token)
            .field("name", &self.name)
            .field("connection_url", &redact_url(&self.connection_url))
            .field("host", &self.host)
            .field("database", &self.database)
            .field("mode", &self.mode)
            .finish()
    }
}

/// What the provider says of a database after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseStatus {
    /// The database went past its storage limit, and the provider stopped (or may stop) it.
    pub storage_exceeded: bool,
    pub storage_limit_bytes: Option<u64>,
}

/// A database as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub token: String,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn debug_output_hides_credentials() {
        let database = Database {
            token: "tok".into(),
            name: "n".into(),
            connection_url: "postgres://u:hunter2@h:5432/d".into(),
            host: "h:5432".into(),
            database: "d".into(),
            mode: DatabaseMode::Token,
            claim: ClaimInfo { claim_url: "c".into(), upgrade_jwt: None, expires_at: None, instructions: "i".into() },
        };
        let handle = SandboxHandle { sandbox_id: "s".into(), envd_access_token: Some("hunter2".into()), domain: None };
        let process = ProcessRequest {
            command: "true".into(),
            env: vec![("PG_URL".into(), database.connection_url.clone())],
            cwd: "/".into(),
            timeout_ms: 1,
        };
        let all = format!("{database:?} {handle:?} {process:?}");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("PG_URL"), "{all}");
    }
}
