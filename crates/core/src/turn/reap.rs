//! Reaping: each resource torn down (or kept) with retries and a doubling backoff, `reap.failed`
//! for every failure, and what the provider says of a database that a failed run may have
//! outgrown.

use std::num::NonZeroU32;

use futures::future::LocalBoxFuture;

use super::{ResourceReap, Turn, TurnSink};
use crate::providers::{
    Clock, Database, DatabaseMode, DatabaseProvider, ProviderError, SandboxHandle, SandboxProvider,
};
use crate::wire::event::{EventBody, ReapState, Resource};

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

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Why the provider stopped the turn's database, when it did (and can say so).
    pub(super) async fn database_stopped(&self, database: &Database) -> Option<String> {
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

    pub(super) async fn reap_sandbox(&self, sandbox: Option<&SandboxHandle>) -> Option<ResourceReap> {
        let sandbox_id = sandbox?.sandbox_id.as_str();
        let started = self.clock.now_ms();
        let failure = self.retry_reap(Resource::Sandbox, || self.sandboxes.kill(sandbox_id)).await;
        Some(self.reap_result(Resource::Sandbox, sandbox_id, started, failure))
    }

    /// Reaps the database, or keeps it: as a checkpoint when one was asked for and the process
    /// `exited`, else when keeping was asked for or the database cannot be deleted. The second
    /// value says why a checkpoint that was asked for could not be made.
    pub(super) async fn reap_database(
        &self,
        database: Option<&Database>,
        exited: bool,
    ) -> (Option<ResourceReap>, Option<String>) {
        let Some(database) = database else { return (None, None) };
        let (Some(keep_s), true) = (self.spec.checkpoint_keep_s, exited) else {
            return (self.reap_or_keep_database(database).await, None);
        };
        if database.mode == DatabaseMode::Anonymous {
            // Nothing to freeze it with: it is kept until the provider's expiry, as always.
            let why = "an anonymous database cannot be frozen: checkpoints need INSTANODE_TOKEN";
            return (
                self.reap_or_keep_database(database).await,
                Some(format!("the checkpoint could not be made: {why}")),
            );
        }
        match self.checkpoint(database, keep_s).await {
            Ok(reap) => (Some(reap), None),
            Err(error) => {
                // A freeze that failed may still have happened. The reap is left to whoever holds
                // the lease (the worker's alarm, the CLI's sweep) rather than tried here: the
                // freeze's own time already came out of what is left after the deadline
                // (`wall_time.rs`), and a delete with all its tries would not fit.
                let retry_at = self.emitter.at_ms();
                self.emitter.emit(EventBody::ReapFailed {
                    resource: Resource::Database,
                    error: error.clone(),
                    retry_at,
                });
                let reap = ResourceReap {
                    id: database.name.clone(),
                    state: ReapState::Failed,
                    error: Some(error.clone()),
                    retry_at_ms: Some(retry_at),
                    keep_until_unix_ms: None,
                };
                (Some(reap), Some(format!("the checkpoint could not be made: {error}")))
            }
        }
    }

    async fn reap_or_keep_database(&self, database: &Database) -> Option<ResourceReap> {
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
                keep_until_unix_ms: None,
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
                ResourceReap {
                    id: id.to_owned(),
                    state: ReapState::Reaped,
                    error: None,
                    retry_at_ms: None,
                    keep_until_unix_ms: None,
                }
            }
            Some((error, retry_at_ms)) => ResourceReap {
                id: id.to_owned(),
                state: ReapState::Failed,
                error: Some(error),
                retry_at_ms: Some(retry_at_ms),
                keep_until_unix_ms: None,
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
