//! Provisioning: the sandbox and the database requested at once, each lease recorded as soon as
//! its resource exists.

use futures::future;

use super::{Lease, LeasedResource, Turn, TurnSink};
use crate::providers::{
    database_name, sandbox_metadata, Clock, Database, DatabaseProvider, DatabaseRequest, SandboxHandle,
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
    /// Requests the sandbox and the database at the same time and records each lease as soon as
    /// its resource exists. Returns what exists, and why the turn cannot go on, if it cannot.
    pub(super) async fn provision(&self) -> (Option<SandboxHandle>, Option<Database>, Option<String>) {
        let started = self.clock.now_ms();
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
            self.emitter.emit(EventBody::DatabaseCreating {});
        }

        let sandbox_side = async {
            let request = SandboxRequest {
                template: self.spec.template.clone(),
                timeout_s: self.spec.timeout_s + self.options.grace_s,
                env: self.spec.env.clone(),
                metadata: sandbox_metadata(self.turn_id.as_str(), deadline_unix_s),
            };
            let handle = match self.sandboxes.create(request).await {
                Ok(handle) => handle,
                Err(error) => return (None, Some(format!("the sandbox could not be created: {error}"))),
            };
            let ms = self.clock.now_ms() - started;
            self.timings.borrow_mut().sandbox_ms = Some(ms);
            self.emitter.emit(EventBody::SandboxReady { sandbox_id: handle.sandbox_id.clone(), ms });
            let recorded = self
                .emitter
                .sink
                .record_lease(lease(LeasedResource::Sandbox { sandbox_id: handle.sandbox_id.clone() }))
                .await;
            let failure = recorded.err().map(|error| format!("the sandbox's lease could not be recorded: {error}"));
            (Some(handle), failure)
        };

        let database_side = async {
            if !self.spec.database {
                return (None, None);
            }
            let name = database_name(self.turn_id.as_str(), deadline_unix_s);
            let request = DatabaseRequest { name: name.clone(), idempotency_key: format!("mayfly-{}", self.turn_id) };
            let database = match self.databases.create(request).await {
                Ok(database) => database,
                Err(error) => return (None, Some(format!("the database could not be created: {error}"))),
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

        let ((sandbox, sandbox_failure), (database, database_failure)) =
            future::join(sandbox_side, database_side).await;
        self.timings.borrow_mut().provision_ms = Some(self.clock.now_ms() - started);
        let failure = match (sandbox_failure, database_failure) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        (sandbox, database, failure)
    }
}
