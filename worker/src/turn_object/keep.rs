//! `POST /keep`: keeping a running turn's database past the turn, and telling how to claim it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use mayfly_core::providers::{
    Clock, Database, DatabaseInfo, DatabaseProvider, DatabaseRequest, DatabaseStatus, ProviderError,
};
use mayfly_core::{ApiError, ErrorCode, KeepResponse};
use worker::{Request, Response};

use super::storage::KEPT_KEY;
use super::{internal, Turn};
use crate::clock::WorkerClock;

/// Wait for the database to exist this long at most when keeping is asked for early.
const KEEP_WAIT: Duration = Duration::from_secs(60);
/// How often a keep asked for early looks whether the database exists yet.
const KEEP_POLL: Duration = Duration::from_millis(100);

/// The database provider as a turn of this object uses it: it also remembers the database it
/// created (in memory), which `/keep` answers with.
pub(super) struct RememberingDatabases<D> {
    inner: D,
    created: Rc<RefCell<Option<KeepResponse>>>,
}

impl<D> RememberingDatabases<D> {
    pub(super) fn new(inner: D, created: Rc<RefCell<Option<KeepResponse>>>) -> Self {
        RememberingDatabases { inner, created }
    }
}

impl<D> RememberingDatabases<D> {
    fn remember(&self, database: Result<Database, ProviderError>) -> Result<Database, ProviderError> {
        let database = database?;
        *self.created.borrow_mut() =
            Some(KeepResponse { claim: database.claim.clone(), connection_url: database.connection_url.clone() });
        Ok(database)
    }
}

// Every method is passed on: one left to the trait's default would silently do nothing here.
impl<D: DatabaseProvider> DatabaseProvider for RememberingDatabases<D> {
    fn create(&self, request: DatabaseRequest) -> LocalBoxFuture<'_, Result<Database, ProviderError>> {
        async move { self.remember(self.inner.create(request).await) }.boxed_local()
    }

    fn fork<'a>(
        &'a self,
        source_token: &'a str,
        request: DatabaseRequest,
    ) -> LocalBoxFuture<'a, Result<Database, ProviderError>> {
        async move { self.remember(self.inner.fork(source_token, request).await) }.boxed_local()
    }

    fn freeze<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<(), ProviderError>> {
        self.inner.freeze(token)
    }

    fn status<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<Option<DatabaseStatus>, ProviderError>> {
        self.inner.status(token)
    }

    /// Not remembered: it is a checkpoint's URL, for the fork's copy, never to be handed out.
    fn connection_url<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<String, ProviderError>> {
        self.inner.connection_url(token)
    }

    fn delete<'a>(&'a self, token: &'a str) -> LocalBoxFuture<'a, Result<bool, ProviderError>> {
        self.inner.delete(token)
    }

    fn list(&self) -> LocalBoxFuture<'_, Result<Vec<DatabaseInfo>, ProviderError>> {
        self.inner.list()
    }
}

impl Turn {
    /// Asks the running turn to keep its database and, once the database exists, answers how to
    /// claim it. After the turn, a kept database's answer is given again; a reaped one is a
    /// conflict.
    pub(super) async fn keep(&self, req: &Request) -> Result<Response, ApiError> {
        let record = self.owned(req).await?;
        if !record.spec.database {
            return Err(ApiError::new(ErrorCode::Conflict, "the turn has no database"));
        }
        if record.spec.checkpoint_keep_s.is_some() {
            // A checkpoint is frozen: nobody holds a credential of it, or forks could be changed
            // under their feet (`docs/checkpoints.md`).
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the turn's database becomes a checkpoint, of which no credential is handed out: fork it instead",
            ));
        }
        let give = |kept: &KeepResponse| Response::from_json(kept).map_err(|err| internal(&err));
        if let Some(kept) = self.get::<KeepResponse>(KEPT_KEY).await.map_err(|err| internal(&err))? {
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
                let now_ms = WorkerClock.now_ms().saturating_sub(record.created_unix_ms);
                if live.control.is_cancelled() || live.progress.reaping_started(now_ms) {
                    return Err(too_late());
                }
                live.control.keep_database();
                let database = live.database.borrow().clone();
                database
            };
            if let Some(kept) = found {
                self.put(KEPT_KEY, &kept).map_err(|err| internal(&err))?;
                return give(&kept);
            }
            if WorkerClock.now_ms().saturating_sub(waited_from) > KEEP_WAIT.as_millis() as u64 {
                return Err(ApiError::new(ErrorCode::Conflict, "the turn's database was not created in time"));
            }
            worker::Delay::from(KEEP_POLL).await;
        }
    }
}
