//! Forks, scratchdb's own extension (docs/protocols/instanode.md §12): a new resource of the same
//! owner whose database is a copy of one of theirs (`crate::admin::copy`). It is checked,
//! registered, limited, made idempotent and undone on failure by the code every create goes through
//! (`crate::provision`), so a fork is an ordinary resource from the moment it exists.
//!
//! Forks of one source wait for each other. Postgres copies one template into several databases at
//! once (120 such copies, three at a time, all succeeded), but each copy's hand-over rewrites the
//! source's `pg_database` row, and two transactions doing so at once fail with "tuple concurrently
//! updated" (7 of the same 120 hand-overs did).
//! A source's delete waits for them too, so that no fork starts from a source being dropped. The
//! lock is this process's: two scratchdb instances on one registry can still collide, and the loser
//! answers `503`, which a client retries.
//!
//! Forks are what cost the shared Postgres most: a copy reads and writes its whole source, holding
//! an admin connection meanwhile. So at most [`FORK_SLOTS`] copy at once, of any sources, whatever
//! else waits for an admin connection, and a source bigger than `Config::fork_source_max_bytes` is
//! refused outright.

use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

use crate::admin;
use crate::limits::SUSPENDED;
use crate::service::{Caller, Created, NewResource, Service, ServiceError};

impl Service {
    /// Copies the owner's database `source` into a new resource of theirs.
    pub(crate) async fn fork(
        &self,
        owner: &str,
        source: &str,
        name: String,
        env: String,
        idempotency: Option<(String, String)>,
    ) -> Result<Created, ServiceError> {
        let req = NewResource { name, env, idempotency, fork_of: Some(source.to_string()) };
        // Held from before the source is checked until its copy is handed over.
        let _source = self.source_lock(source).await;
        // Taken after the source's lock, so that a fork waiting for another of the same source
        // holds no slot meanwhile.
        let _slot = self.fork_slots().acquire().await.unwrap_or_else(|_| unreachable!("never closed"));
        self.create(&Caller::Owner(owner.to_string()), req).await
    }

    /// Held while `token`'s database is copied or deleted: one of them at a time per source within
    /// this process.
    pub(crate) async fn source_lock(&self, token: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.source_locks().lock().unwrap_or_else(|e| e.into_inner());
            // A lock only the map holds has no holder and no waiter; dropping it keeps the map as
            // small as the forks in flight.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(token.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// Whether `owner` may fork `source` now, read in the create's registry transaction. Another
/// owner's database, an anonymous one and one that is gone are all `NotFound`, as on every route.
/// A frozen one may be forked: its copy is a database of its own, with a role that logs in.
pub(crate) async fn check_source(
    tx: &tokio_postgres::Transaction<'_>,
    s: &str,
    owner: Option<&str>,
    source: &str,
    max_bytes: u64,
) -> Result<(), ServiceError> {
    let Some(owner) = owner else { return Err(ServiceError::NotFound) };
    let status: Option<String> = tx
        .query_opt(&format!("SELECT status FROM {s}.resources WHERE token = $1 AND owner = $2"), &[&source, &owner])
        .await?
        .map(|r| r.get(0));
    match status.as_deref() {
        Some("active") => {}
        // A copy of a database stopped for its size would start over the same limit.
        Some(SUSPENDED) => return Err(ServiceError::SourceSuspended),
        // Its own create still holds it open, as a session would.
        Some("provisioning") => return Err(ServiceError::SourceInUse),
        _ => return Err(ServiceError::NotFound),
    }
    let (db, _) = admin::names(source);
    let bytes: Option<i64> = tx
        .query_opt("SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1", &[&db])
        .await?
        .map(|r| r.get(0));
    let bytes = u64::try_from(bytes.ok_or(ServiceError::NotFound)?).unwrap_or(0);
    if bytes > max_bytes {
        return Err(ServiceError::SourceTooLarge { bytes, limit: max_bytes });
    }
    Ok(())
}
