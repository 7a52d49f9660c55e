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

use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

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
