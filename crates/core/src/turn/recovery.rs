//! After the turn: what a durable caller does with the leases [`run_turn`](super::run_turn)
//! handed it once the turn no longer runs — its reap failed and is due again, or the process that
//! ran it died and the turn was lost. The same reap the orchestrator does, idempotent, so a
//! caller may run it on every wake-up until it reports nothing left.

use serde::{Deserialize, Serialize};

use super::{Lease, LeasedResource};
use crate::providers::{Clock, DatabaseProvider, ProviderError, Providers, SandboxProvider};
use crate::url::redact_credentials_in_text;
use crate::wire::api::ResourceView;
use crate::wire::event::{EventBody, Outcome, ReapState, Resource, Timings};

/// What a lost turn's log ends with.
pub const LOST_TURN_ERROR: &str = "the turn was lost when the worker restarted; its resources were reaped";

/// One lease as its holder keeps it: the lease, and how far the resource's teardown got. Holds the
/// database's token: never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub lease: Lease,
    pub reap: ReapState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LeaseRecord {
    /// A lease just handed over: its resource is live.
    pub fn live(lease: Lease) -> LeaseRecord {
        LeaseRecord { lease, reap: ReapState::Live, error: None }
    }

    pub fn resource(&self) -> Resource {
        match self.lease.resource {
            LeasedResource::Sandbox { .. } => Resource::Sandbox,
            LeasedResource::Database { .. } | LeasedResource::DatabaseIntent { .. } => Resource::Database,
        }
    }

    /// The sandbox id, or the database's name; never a credential.
    pub fn id(&self) -> &str {
        match &self.lease.resource {
            LeasedResource::Sandbox { sandbox_id } => sandbox_id,
            LeasedResource::Database { name, .. } | LeasedResource::DatabaseIntent { name } => name,
        }
    }

    /// Whether the resource may still exist and is ours to reap.
    pub fn needs_reap(&self, now_unix_ms: u64) -> bool {
        match self.reap {
            ReapState::Live | ReapState::Reaping | ReapState::Failed => true,
            // A checkpoint is reaped once its lease runs out (`docs/checkpoints.md`).
            ReapState::Checkpointed => now_unix_ms >= self.lease.reap_by_unix_ms,
            ReapState::Reaped | ReapState::Kept => false,
        }
    }

    /// When a checkpoint still kept is to be reaped (Unix ms), if this is one.
    pub fn checkpoint_due_unix_ms(&self) -> Option<u64> {
        (self.reap == ReapState::Checkpointed).then_some(self.lease.reap_by_unix_ms)
    }

    pub fn view(&self) -> ResourceView {
        ResourceView {
            resource: self.resource(),
            id: Some(self.id().to_owned()),
            reap: self.reap,
            deadline_unix_ms: self.lease.reap_by_unix_ms,
            error: self.error.clone(),
        }
    }
}

/// What [`reap_leftovers`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Leftovers {
    /// Events to append to a lost turn's log, in order (none for a turn that finished).
    pub events: Vec<EventBody>,
    /// Whether a reap failed: the caller tries again later.
    pub failing: bool,
}

/// Reaps every resource of `records` that may still exist, updating each record. When the turn
/// was `lost` (it started but its log has no `turn.finished`), the reaps are logged as the
/// orchestrator would have, and the log is closed once nothing is left. `at_ms` is when the turn
/// was accepted, by `clock`.
pub async fn reap_leftovers<S, D, C>(
    providers: &Providers<S, D>,
    clock: &C,
    records: &mut [LeaseRecord],
    lost: bool,
    accepted_at_ms: u64,
) -> Leftovers
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
{
    let mut done = Leftovers::default();
    let now_unix_ms = clock.now_ms();
    for record in records.iter_mut().filter(|record| record.needs_reap(now_unix_ms)) {
        let started = clock.now_ms();
        let result = match &record.lease.resource {
            LeasedResource::Sandbox { sandbox_id } => providers.sandboxes.kill(sandbox_id).await,
            LeasedResource::Database { token, .. } => providers.databases.delete(token).await,
            LeasedResource::DatabaseIntent { name } => delete_by_name(&providers.databases, name).await,
        };
        match result {
            // `false` is "already gone": as good as reaped.
            Ok(_) => {
                record.reap = ReapState::Reaped;
                record.error = None;
                if lost {
                    let ms = clock.now_ms().saturating_sub(started);
                    done.events.push(match record.resource() {
                        Resource::Sandbox => EventBody::SandboxReaped { ms },
                        Resource::Database => EventBody::DatabaseReaped { ms },
                    });
                }
            }
            Err(err) => {
                done.failing = true;
                record.reap = ReapState::Failed;
                record.error = Some(redact_credentials_in_text(&err.to_string()));
            }
        }
    }
    if lost && !done.failing {
        let timings = Timings { total_ms: clock.now_ms().saturating_sub(accepted_at_ms), ..Timings::default() };
        done.events.push(EventBody::TurnFinished {
            outcome: Outcome::Failed,
            timings,
            error: Some(LOST_TURN_ERROR.to_owned()),
        });
    }
    done
}

/// Deletes the database called `name`, if the provider lists one: `Ok(false)` when it made none.
async fn delete_by_name<D: DatabaseProvider>(databases: &D, name: &str) -> Result<bool, ProviderError> {
    let listed = databases.list().await?;
    match listed.into_iter().find(|database| database.name == name) {
        Some(database) => databases.delete(&database.token).await,
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests;
