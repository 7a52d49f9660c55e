//! The instanode client: [`DatabaseProvider`] over core's [`HttpClient`], following
//! `docs/protocols/instanode.md`.
//!
//! With an account token (token mode) every call carries `Authorization: Bearer`, databases belong
//! to the account and are deleted with `DELETE /api/v1/resources/{token}`. Without one (anonymous
//! mode) `/db/new` still works, but instanode offers no way to delete or list what it made: the
//! database expires at the provider and the turn reports how to claim it instead. Every error answer
//! becomes a typed [`InstanodeError`] in one function, [`error_from_response`] (`error.rs`). The
//! bodies are instanode's wire types, which scratchdb serves too; requests go through the
//! `ProviderHttp` both clients share.

use std::fmt;

use futures::future::LocalBoxFuture;

use crate::providers::http::{HeaderValue, HttpClient, Method, StatusCode};
use crate::providers::provider_http::{error_body, header_name, Credential, ProviderHttp};
use crate::providers::retry::RetryPolicy;
use crate::providers::{
    Clock, Database, DatabaseInfo, DatabaseMode, DatabaseProvider, DatabaseRequest, DatabaseStatus, ProviderError,
};
use crate::url::{join_url, percent_encode};
use crate::wire::event::ClaimInfo;
use crate::wire::instanode::{
    Credentials, DeleteAnswer, NewDatabase, NewDatabaseAnswer, ResourceAnswer, ResourceList, RotateAnswer,
};

mod error;
#[cfg(test)]
mod extension_tests;
mod probe;
#[cfg(test)]
mod tests;

pub use error::{error_from_response, InstanodeError};

const PROVIDER: &str = "instanode";
/// Set on every answer of scratchdb's extensions, so that "no such database" is told apart from
/// hosted instanode's "no such route".
const EXTENSION_HEADER: &str = "x-scratchdb-extension";
/// A listing that keeps handing out cursors is a broken server, not a big account.
const MAX_LIST_PAGES: usize = 100;

/// Where instanode is and whose account it works in.
#[derive(Clone, PartialEq, Eq)]
pub struct InstanodeConfig {
    /// e.g. `https://api.instanode.dev`.
    pub base_url: String,
    /// A session JWT or personal access token: token mode when set, anonymous otherwise.
    pub token: Option<String>,
}

impl fmt::Debug for InstanodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: Debug output ends up in logs.
        f.debug_struct("InstanodeConfig")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

fn protocol(message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol { provider: PROVIDER, message: message.into() }
}

/// The parts of a connection URL events may show: `host:port` and the database name. Never the
/// user-info, which holds the password.
pub fn connection_parts(connection_url: &str) -> Option<(String, String)> {
    let rest = connection_url.split_once("://")?.1;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return None;
    }
    // Postgres's default port, so events always show `host:port`; a bracketed IPv6 host has colons
    // of its own, so only a colon after the closing bracket is a port.
    let has_port = host.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']'));
    let host = if has_port { host.to_owned() } else { format!("{host}:5432") };
    let database = tail.strip_prefix('/').unwrap_or("");
    let database = &database[..database.find(['?', '#']).unwrap_or(database.len())];
    if database.is_empty() {
        return None;
    }
    Some((host, database.to_owned()))
}

/// The instanode client, generic over the HTTP client and the clock its retries wait on.
pub struct InstanodeClient<H, C> {
    /// With the token, when there is one.
    http: ProviderHttp<H, C>,
    config: InstanodeConfig,
}

impl<H, C> fmt::Debug for InstanodeClient<H, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanodeClient").field("config", &self.config).field("retry", self.http.retry()).finish()
    }
}

impl<H: HttpClient, C: Clock> InstanodeClient<H, C> {
    pub fn new(http: H, clock: C, config: InstanodeConfig) -> InstanodeClient<H, C> {
        let bearer = config.token.as_ref().map(|token| Credential {
            header: header_name("authorization"),
            label: "Authorization",
            value: format!("Bearer {token}"),
        });
        let http = ProviderHttp::new(PROVIDER, config.base_url.clone(), bearer, http, clock, error::status_error);
        InstanodeClient { http, config }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> InstanodeClient<H, C> {
        self.http.set_retry(retry);
        self
    }

    pub fn config(&self) -> &InstanodeConfig {
        &self.config
    }

    /// Token mode when a token is configured.
    pub fn mode(&self) -> DatabaseMode {
        if self.config.token.is_some() {
            DatabaseMode::Token
        } else {
            DatabaseMode::Anonymous
        }
    }

    /// Replaces the database's password; the old URL stops working. Returns the new connection URL
    /// (which holds the password: it goes where the old one went and nowhere else). Token mode only.
    pub async fn rotate_credentials(&self, token: &str) -> Result<String, ProviderError> {
        self.require_token("rotate credentials")?;
        let path = format!("api/v1/resources/{}/rotate-credentials", percent_encode(token));
        let request = self.http.request(Method::POST, &path)?;
        // Not idempotent: a lost answer means a password we never saw; a retry makes another one.
        let response = self.http.send(&request, false).await?;
        let body = self.http.expect_success(response).await?;
        let answer: RotateAnswer =
            serde_json::from_slice(&body).map_err(|_| protocol("rotate answer without connection_url"))?;
        Ok(answer.connection_url)
    }

    /// Freezes a database for a checkpoint with scratchdb's freeze extension (`docs/protocols/
    /// instanode.md` §12): its role may no longer log in, and no session of it is left. Hosted
    /// instanode has no such route; there the credentials are rotated instead, the one lock-out it
    /// offers — which a session that is already open, or that changes its own password first, can
    /// outlive (`docs/checkpoints.md`). The rotated URL is dropped: a fork that must copy the
    /// checkpoint reads it again ([`Self::database_url`]).
    async fn freeze_database(&self, token: &str) -> Result<(), ProviderError> {
        self.require_token("freeze a database")?;
        let path = format!("api/v1/resources/{}/freeze", percent_encode(token));
        let request = self.http.request(Method::POST, &path)?;
        // Freezing twice is freezing once: a freeze whose answer was lost may be sent again.
        let response = self.http.send(&request, true).await?;
        let extension = response.headers.contains_key(header_name(EXTENSION_HEADER));
        if response.status == StatusCode::NOT_FOUND && !extension {
            return self.rotate_credentials(token).await.map(drop);
        }
        self.http.expect_success(response).await.map(drop)
    }

    fn require_token(&self, operation: &'static str) -> Result<(), ProviderError> {
        match self.config.token {
            Some(_) => Ok(()),
            // instanode has no anonymous delete/list/rotate (`docs/protocols/instanode.md` §0): an
            // unclaimed database belongs to no account, and its token is not a credential for
            // managing it.
            None => Err(ProviderError::Unsupported { provider: PROVIDER, operation }),
        }
    }

    async fn create_database(&self, request: DatabaseRequest) -> Result<Database, ProviderError> {
        self.new_database("db/new", request, false).await
    }

    /// A fork of the database behind `source_token`: scratchdb's extension. Hosted instanode does
    /// not have it (`docs/protocols/instanode.md` §12): its `404` without the extension's header is
    /// `Unsupported`, and the turn copies the checkpoint itself (`docs/checkpoints.md`).
    async fn fork_database(&self, source_token: &str, request: DatabaseRequest) -> Result<Database, ProviderError> {
        self.require_token("fork a database")?;
        let path = format!("api/v1/resources/{}/fork", percent_encode(source_token));
        self.new_database(&path, request, true).await
    }

    /// The connection URL of a database of the token's account, as it is now: after a rotate, the
    /// rotated one. For a fork's copy of a checkpoint that hosted instanode froze by rotating.
    async fn database_url(&self, token: &str) -> Result<String, ProviderError> {
        self.require_token("read a database's credentials")?;
        let path = format!("api/v1/resources/{}/credentials", percent_encode(token));
        let request = self.http.request(Method::GET, &path)?;
        let response = self.http.send(&request, true).await?;
        let body = self.http.expect_success(response).await?;
        // The answer holds the password: a parse error must not quote it.
        let answer: Credentials = serde_json::from_slice(&body)
            .map_err(|_| protocol("the credentials answer lacks token or connection_url"))?;
        if answer.token != token {
            return Err(protocol(format!(
                "asked for the credentials of database {token:?}, instanode answered with those of {:?}",
                answer.token
            )));
        }
        if connection_parts(&answer.connection_url).is_none() {
            return Err(protocol("the credentials' connection_url has no host or database name"));
        }
        Ok(answer.connection_url)
    }

    /// `POST /db/new`, or the fork route (`extension`), which takes the same body and gives the
    /// same answer.
    async fn new_database(
        &self,
        path: &str,
        request: DatabaseRequest,
        extension: bool,
    ) -> Result<Database, ProviderError> {
        let body = NewDatabase { name: request.name.clone(), ..NewDatabase::default() };
        let http_request = self
            .http
            .request(Method::POST, path)?
            .with_header(header_name("content-type"), HeaderValue::from_static("application/json"))
            .with_header(header_name("idempotency-key"), self.http.header("Idempotency-Key", &request.idempotency_key)?)
            .with_body(serde_json::to_vec(&body).unwrap_or_default());
        // The Idempotency-Key makes a repeated create return the same database, so even a create
        // whose answer was lost is safe to send again.
        let response = self.http.send(&http_request, true).await?;
        let answered_by_extension = response.headers.contains_key(header_name(EXTENSION_HEADER));
        if extension && response.status == StatusCode::NOT_FOUND && !answered_by_extension {
            return Err(ProviderError::Unsupported { provider: PROVIDER, operation: "fork" });
        }
        if response.status == StatusCode::PAYMENT_REQUIRED {
            return Err(error::payment_required(&error_body(response).await));
        }
        let body = self.http.expect_success(response).await?;
        // The answer holds the password: a parse error must not quote it.
        let answer: NewDatabaseAnswer =
            serde_json::from_slice(&body).map_err(|_| protocol("the /db/new answer lacks token or connection_url"))?;
        self.check_answer(&request, &answer)?;
        let (host, database) = connection_parts(&answer.connection_url)
            .ok_or_else(|| protocol("the /db/new connection_url has no host or database name"))?;
        let mode = self.mode();
        let claim = match mode {
            DatabaseMode::Anonymous => ClaimInfo {
                claim_url: answer
                    .claim_url
                    .or(answer.upgrade)
                    .unwrap_or_else(|| "https://instanode.dev/claim".to_owned()),
                upgrade_jwt: answer.upgrade_jwt,
                expires_at: answer.expires_at,
                instructions: "open the claim URL to attach the database to an instanode account; \
                               unclaimed, it expires at the time shown"
                    .to_owned(),
            },
            DatabaseMode::Token => ClaimInfo {
                claim_url: join_url(
                    &self.config.base_url,
                    &format!("api/v1/resources/{}", percent_encode(&answer.token)),
                ),
                upgrade_jwt: None,
                expires_at: answer.expires_at,
                instructions: format!(
                    "the database already belongs to the account of the instanode token ({} tier); \
                     it lives until deleted there",
                    answer.tier.as_deref().unwrap_or("unknown")
                ),
            },
        };
        Ok(Database {
            token: answer.token,
            name: answer.name.unwrap_or(request.name),
            connection_url: answer.connection_url,
            host,
            database,
            mode,
            claim,
        })
    }

    /// Whether the answer is the database this turn asked for. Hosted instanode may answer a
    /// create with something else: past the anonymous tier's daily cap, an *earlier* database
    /// (`200`, another turn's data); for a token it did not accept, an anonymous database the token
    /// can never delete. Either is refused before any code runs against it.
    fn check_answer(&self, request: &DatabaseRequest, answer: &NewDatabaseAnswer) -> Result<(), ProviderError> {
        if let Some(name) = answer.name.as_deref().filter(|name| *name != request.name) {
            return Err(protocol(format!(
                "asked for database {:?}, instanode answered with {name:?}: anonymous instanode hands \
                 out an earlier database once a caller has made its daily share; set INSTANODE_TOKEN \
                 for a database of its own per turn",
                request.name
            )));
        }
        let anonymous = answer.tier.as_deref() == Some("anonymous");
        if self.config.token.is_some() && anonymous {
            let claim = answer.claim_url.as_deref().or(answer.upgrade.as_deref()).unwrap_or("instanode's claim page");
            return Err(protocol(format!(
                "instanode did not accept INSTANODE_TOKEN and made an anonymous database instead, \
                 which the token cannot delete (it expires on its own, or can be claimed at {claim}): \
                 check INSTANODE_TOKEN"
            )));
        }
        Ok(())
    }

    async fn delete_database(&self, token: &str) -> Result<bool, ProviderError> {
        self.require_token("delete an anonymous database")?;
        let request = self.http.request(Method::DELETE, &format!("api/v1/resources/{}", percent_encode(token)))?;
        let response = self.http.send(&request, true).await?;
        if response.status == StatusCode::NOT_FOUND {
            // Deleted before (or never ours): gone either way, which is what the caller wants.
            return Ok(false);
        }
        let body = self.http.expect_success(response).await?;
        // Newer instanode answers a repeated delete with 200 "already_deleted".
        let answer = serde_json::from_slice::<DeleteAnswer>(&body).ok();
        let already = answer.is_some_and(|answer| {
            [answer.message, answer.status].iter().flatten().any(|text| text.to_ascii_lowercase().contains("already"))
        });
        Ok(!already)
    }

    /// In token mode, what `GET /api/v1/resources/{token}` says of the database's storage;
    /// anonymous databases cannot be read, so then nothing is known.
    async fn database_status(&self, token: &str) -> Result<Option<DatabaseStatus>, ProviderError> {
        if self.config.token.is_none() {
            return Ok(None);
        }
        let request = self.http.request(Method::GET, &format!("api/v1/resources/{}", percent_encode(token)))?;
        let answer: ResourceAnswer = self.http.send_json(&request, true, "resource").await?;
        Ok(Some(DatabaseStatus {
            storage_exceeded: answer.item.storage_exceeded,
            storage_limit_bytes: answer.item.storage_limit_bytes,
        }))
    }

    async fn list_databases(&self) -> Result<Vec<DatabaseInfo>, ProviderError> {
        if self.config.token.is_none() {
            // The trait's contract: anonymous databases cannot be listed, so there is nothing to sweep.
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let path = match &cursor {
                Some(cursor) => format!("api/v1/resources?cursor={}", percent_encode(cursor)),
                None => "api/v1/resources".to_owned(),
            };
            let list: ResourceList =
                self.http.send_json(&self.http.request(Method::GET, &path)?, true, "resource list").await?;
            for item in list.items {
                let postgres = item.resource_type.as_deref().is_none_or(|kind| kind == "postgres");
                let gone = matches!(item.status.as_deref(), Some("deleted" | "expired"));
                if postgres && !gone {
                    found.push(DatabaseInfo { token: item.token, name: item.name.unwrap_or_default() });
                }
            }
            cursor = list.next_cursor.filter(|cursor| !cursor.is_empty());
            if cursor.is_none() {
                return Ok(found);
            }
        }
        Err(protocol(format!("the resource listing did not end after {MAX_LIST_PAGES} pages")))
    }
}

impl<H: HttpClient, C: Clock> DatabaseProvider for InstanodeClient<H, C> {
    fn create(&self, request: DatabaseRequest) -> LocalBoxFuture<'_, Result<Database, ProviderError>> {
        Box::pin(self.create_database(request))
    }

    fn delete<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(self.delete_database(token))
    }

    fn list(&self) -> LocalBoxFuture<'_, Result<Vec<DatabaseInfo>, ProviderError>> {
        Box::pin(self.list_databases())
    }

    fn status<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<Option<DatabaseStatus>, ProviderError>> {
        Box::pin(self.database_status(token))
    }

    fn fork<'a>(
        &'a self,
        source_token: &'a str,
        request: DatabaseRequest,
    ) -> LocalBoxFuture<'a, Result<Database, ProviderError>> {
        Box::pin(self.fork_database(source_token, request))
    }

    fn freeze<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.freeze_database(token))
    }

    fn connection_url<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(self.database_url(token))
    }
}
