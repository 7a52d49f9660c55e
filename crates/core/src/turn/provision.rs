//! Provisioning: the sandbox and the database requested at once, each lease recorded as soon as
//! its resource exists, and the code uploaded as soon as the sandbox is ready (`upload.rs`) — a
//! fork's only after provisioning, once its copy is made (`session.rs`).

use futures::future;

use super::{Ending, Lease, LeasedResource, Turn, TurnSink};
use crate::providers::{
    database_name, sandbox_metadata, Clock, Database, DatabaseProvider, DatabaseRequest, ProviderError, SandboxHandle,
    SandboxProvider, SandboxRequest,
};
use crate::wire::event::EventBody;

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Requests the sandbox and the database at the same time, records each lease as soon as its
    /// resource exists and uploads the code as soon as the sandbox is ready. Returns what exists,
    /// why the turn cannot go on if it cannot, and how the upload ended if it did not finish.
    pub(super) async fn provision(&self) -> Provisioned {
        let started = self.clock.now_ms();
        // When the last resource was there (or failed): provisioning's end, the upload aside.
        let provisioned = std::cell::Cell::new(started);
        let done = || provisioned.set(provisioned.get().max(self.clock.now_ms()));
        let fork_by_copy = std::cell::Cell::new(false);
        let deadline_unix_s = self.deadline_unix_ms.div_ceil(1000);
        let reap_by_unix_ms = self.deadline_unix_ms + u64::from(self.options.grace_s) * 1000;
        let lease = |resource| Lease {
            turn_id: self.turn_id.clone(),
            deadline_unix_ms: self.deadline_unix_ms,
            reap_by_unix_ms,
            resource,
        };

        self.emitter.emit(EventBody::SandboxCreating { template: self.spec.template.clone() });
        if self.spec.database {
            self.emitter.emit(EventBody::DatabaseCreating { from: self.spec.from.as_ref().map(ToString::to_string) });
        }

        let sandbox_side = async {
            let request = SandboxRequest {
                template: self.spec.template.clone(),
                timeout_s: self.spec.timeout_s + self.options.grace_s,
                // The caller's env is its code's process's alone (`execute.rs`), not the whole
                // sandbox's: mayfly's own helpers run there too, and variables a shell or an
                // interpreter acts on (`BASH_ENV`, `PS4`…) would run the caller's choice in them.
                env: Vec::new(),
                metadata: sandbox_metadata(self.turn_id.as_str(), deadline_unix_s),
            };
            let handle = match self.sandboxes.create(request).await {
                Ok(handle) => handle,
                Err(error) => {
                    done();
                    return (None, Some(format!("the sandbox could not be created: {error}")), None);
                }
            };
            let ms = self.clock.now_ms() - started;
            self.timings.borrow_mut().sandbox_ms = Some(ms);
            self.emitter.emit(EventBody::SandboxReady { sandbox_id: handle.sandbox_id.clone(), ms });
            let recorded = self
                .emitter
                .sink
                .record_lease(lease(LeasedResource::Sandbox { sandbox_id: handle.sandbox_id.clone() }))
                .await;
            done();
            if let Err(error) = recorded {
                return (Some(handle), Some(format!("the sandbox's lease could not be recorded: {error}")), None);
            }
            if self.uploads_after_provisioning() {
                return (Some(handle), None, None);
            }
            let upload = self.upload_until_interrupted(&handle).await;
            (Some(handle), None, upload)
        };

        let make_database = async {
            if !self.spec.database {
                return (None, None);
            }
            // A checkpoint outlives the turn: its name, which the providers' sweep reads, carries
            // the latest it may be kept to.
            let name_deadline_unix_s = match self.spec.checkpoint_keep_s {
                Some(_) => self.checkpoint_limit_unix_ms().div_ceil(1000),
                None => deadline_unix_s,
            };
            let name = database_name(self.turn_id.as_str(), name_deadline_unix_s);
            let intent = LeasedResource::DatabaseIntent { name: name.clone() };
            if let Err(error) = self.emitter.sink.record_lease(lease(intent)).await {
                return (None, Some(format!("the database's lease could not be recorded: {error}")));
            }
            let request = DatabaseRequest { name: name.clone(), idempotency_key: format!("mayfly-{}", self.turn_id) };
            let made = match (&self.spec.from, &self.options.fork) {
                (None, _) => self.databases.create(request).await.map_err(|e| format!("could not be created: {e}")),
                (Some(parent), Some(source)) => match self.databases.fork(&source.token, request.clone()).await {
                    // A provider without forks (hosted instanode): a fresh database, into which the
                    // turn copies the checkpoint before its code runs (`session.rs`).
                    Err(ProviderError::Unsupported { .. }) => {
                        fork_by_copy.set(true);
                        self.databases.create(request).await.map_err(|e| format!("could not be created: {e}"))
                    }
                    made => made.map_err(|e| format!("could not be forked from turn {parent}'s checkpoint: {e}")),
                },
                (Some(parent), None) => Err(format!("could not be forked: turn {parent} has no live checkpoint")),
            };
            let database = match made {
                Ok(database) => database,
                Err(error) => return (None, Some(format!("the database {error}"))),
            };
            self.emitter.add_secret(&database.connection_url);
            let ms = self.clock.now_ms() - started;
            self.timings.borrow_mut().database_ms = Some(ms);
            self.emitter.emit(EventBody::DatabaseReady {
                ms,
                host: database.host.clone(),
                database: database.database.clone(),
            });
            let recorded = self
                .emitter
                .sink
                .record_lease(lease(LeasedResource::Database {
                    token: database.token.clone(),
                    name: database.name.clone(),
                    mode: database.mode,
                }))
                .await;
            let failure = recorded.err().map(|error| format!("the database's lease could not be recorded: {error}"));
            (Some(database), failure)
        };
        let database_side = async {
            let made = make_database.await;
            done();
            made
        };

        let ((sandbox, sandbox_failure, upload), (database, database_failure)) =
            future::join(sandbox_side, database_side).await;
        self.timings.borrow_mut().provision_ms = Some(provisioned.get() - started);
        let failure = match (sandbox_failure, database_failure) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Provisioned { sandbox, database, failure, upload, fork_by_copy: fork_by_copy.get() }
    }
}

/// What provisioning left: the resources that exist, why the turn cannot go on (if it cannot),
/// and how the upload ended if it did not finish (a failure, the deadline, a cancellation).
pub(super) struct Provisioned {
    pub(super) sandbox: Option<SandboxHandle>,
    pub(super) database: Option<Database>,
    pub(super) failure: Option<String>,
    pub(super) upload: Option<Ending>,
    /// The database is a fresh one that the fork's checkpoint must be copied into.
    pub(super) fork_by_copy: bool,
}
