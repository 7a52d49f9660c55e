//! The turn orchestrator: provision a sandbox and a database in parallel (the code uploaded as
//! soon as the sandbox is ready), run the code with the database URL in its environment, stream
//! its output, and reap both — always.
//!
//! [`run_turn`] is sans-IO: providers, the clock and the event sink come in as arguments, so the very
//! same code runs in the worker's Durable Object, in the CLI and under a virtual clock in tests.
//!
//! Reaping is the point of the design, so the control flow is arranged around it: every phase
//! returns an `Ending` instead of returning early with `?`, and the reap phase runs after all of
//! them with whatever resources exist. A provider call that is in flight when the turn is cancelled
//! or times out during provisioning is allowed to finish, so that the resource it creates is known
//! and reaped here rather than left for the sweep.

mod budget;
mod control;
mod execute;
#[cfg(test)]
mod fakes;
mod id;
pub mod progress;
mod provision;
mod reap;
mod recovery;
mod session;
mod sink;
pub mod spec;
#[cfg(test)]
mod tests;
mod upload;
pub mod utf8;
pub mod wall_time;

pub use budget::provider_requests_at_most;
pub use control::{TurnControl, TurnOptions};
pub use execute::OUTPUT_BATCH_BYTES;
pub use id::{TurnId, TurnIdError};
pub use reap::ReapPolicy;
pub use recovery::{reap_leftovers, LeaseRecord, Leftovers, LOST_TURN_ERROR};
pub use session::{checkpoint_limit_unix_ms, ForkSource};
pub use sink::{Lease, LeasedResource, SinkError, TurnSink};

use std::cell::{Cell, RefCell};

use futures::future;

use crate::providers::{Clock, DatabaseProvider, Providers, SandboxProvider};
use crate::turn::spec::TurnSpec;
use crate::wire::database::DatabaseSummary;
use crate::wire::event::{EventBody, Outcome, ReapState, Timings};
use sink::Emitter;

/// Runs one turn to the end and reports how it went. It never fails: every failure becomes an
/// outcome, and every resource that was created is reaped (or kept, when asked) before it returns.
///
/// Events go to `sink` as they happen, `seq` from 1 without gaps, `at_ms` since this call. Each
/// resource's [`Lease`] is handed to `sink` as soon as the resource exists, and the turn waits for
/// it to be recorded before it goes on.
pub async fn run_turn<S, D, C, K>(
    turn_id: TurnId,
    spec: TurnSpec,
    options: TurnOptions,
    providers: &Providers<S, D>,
    clock: &C,
    sink: &K,
    control: &TurnControl,
) -> TurnReport
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    let accepted_unix_ms = clock.now_ms();
    let turn = Turn {
        turn_id: &turn_id,
        spec: &spec,
        options: &options,
        sandboxes: &providers.sandboxes,
        databases: &providers.databases,
        clock,
        control,
        emitter: Emitter {
            sink,
            clock,
            accepted_unix_ms,
            next_seq: Cell::new(1),
            closed: Cell::new(false),
            secrets: RefCell::new(Vec::new()),
        },
        accepted_unix_ms,
        deadline_unix_ms: accepted_unix_ms + u64::from(spec.timeout_s) * 1000,
        timings: RefCell::new(Timings::default()),
        run_started_at: Cell::new(None),
        output_bytes: Cell::new(0),
        output_truncated: Cell::new(false),
    };
    turn.run().await
}

/// How a turn went, for the caller (the events say the same to viewers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnReport {
    pub turn_id: TurnId,
    pub outcome: Outcome,
    /// Absent when the process never exited on its own (not started, killed at the deadline, ...).
    pub exit_code: Option<i32>,
    /// Why the turn did not succeed, in words meant for the user.
    pub error: Option<String>,
    pub timings: Timings,
    /// Absent when no sandbox was created.
    pub sandbox: Option<ResourceReap>,
    /// Absent when the turn had no database, or its creation failed.
    pub database: Option<ResourceReap>,
    /// What the database held after the process exited, when the turn summarized it.
    pub summary: Option<DatabaseSummary>,
    /// How many events the sink accepted.
    pub events: u64,
}

/// What became of one resource at the end of a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceReap {
    /// The sandbox id, or the database's name; never a credential.
    pub id: String,
    /// `Reaped`, `Kept`, or `Failed` when every attempt failed.
    pub state: ReapState,
    pub error: Option<String>,
    /// When it is to be tried again (ms since acceptance), if it failed.
    pub retry_at_ms: Option<u64>,
    /// Until when a checkpointed database is kept (Unix ms).
    pub keep_until_unix_ms: Option<u64>,
}

/// How the provisioning-and-running part of a turn ended; the reap phase follows any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Exited(i32),
    Failed(String),
    Cancelled,
    TimedOut,
    SinkClosed,
}

/// One running turn: borrowed inputs and the little state the phases share.
struct Turn<'a, S, D, C, K> {
    turn_id: &'a TurnId,
    spec: &'a TurnSpec,
    options: &'a TurnOptions,
    sandboxes: &'a S,
    databases: &'a D,
    clock: &'a C,
    control: &'a TurnControl,
    emitter: Emitter<'a, K, C>,
    accepted_unix_ms: u64,
    deadline_unix_ms: u64,
    timings: RefCell<Timings>,
    /// When the process was started (Unix ms), once it was.
    run_started_at: Cell<Option<u64>>,
    /// Output kept so far; once it reaches the limit, everything after is dropped.
    output_bytes: Cell<usize>,
    output_truncated: Cell<bool>,
}

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    async fn run(&self) -> TurnReport {
        self.emitter.emit(EventBody::TurnAccepted {
            turn_id: self.turn_id.to_string(),
            deadline_ms: u64::from(self.spec.timeout_s) * 1000,
        });

        let provision::Provisioned { sandbox, database, failure, upload, fork_by_copy } = self.provision().await;

        let ending = if let Some(failure) = failure {
            Ending::Failed(failure)
        } else if let Some(ending) = upload {
            ending
        } else if self.control.is_cancelled() {
            Ending::Cancelled
        } else if self.emitter.is_closed() {
            Ending::SinkClosed
        } else if self.clock.now_ms() >= self.deadline_unix_ms {
            Ending::TimedOut
        } else {
            // Unreachable `expect`: no provisioning failure means the sandbox exists.
            let sandbox = sandbox.as_ref().expect("a sandbox when provisioning did not fail");
            match self.prepare_until_interrupted(sandbox, database.as_ref(), fork_by_copy).await {
                Some(ending) => ending,
                None => self.execute_until_interrupted(sandbox, database.as_ref()).await,
            }
        };
        let exited = matches!(ending, Ending::Exited(_));
        let summary = match (&sandbox, &database) {
            (Some(sandbox), Some(database)) if exited && self.spec.summarizes_database() => {
                self.summarize(sandbox, database).await
            }
            _ => None,
        };

        // A process that failed may have failed because the provider stopped its database; asked
        // before the reap deletes it.
        let failed_run = matches!(ending, Ending::Exited(code) if code != 0)
            || (matches!(ending, Ending::Failed(_)) && self.run_started_at.get().is_some());
        let database_stopped = match &database {
            Some(database) if failed_run => self.database_stopped(database).await,
            _ => None,
        };

        let reap_started = self.clock.now_ms();
        let (sandbox_reap, (database_reap, checkpoint_failure)) =
            future::join(self.reap_sandbox(sandbox.as_ref()), self.reap_database(database.as_ref(), exited)).await;
        let reap_ms = self.clock.now_ms() - reap_started;

        let (outcome, exit_code, error) = match ending {
            Ending::Exited(0) => (Outcome::Succeeded, Some(0), None),
            Ending::Exited(code) => (Outcome::Failed, Some(code), Some(format!("the code exited with status {code}"))),
            Ending::Failed(error) => (Outcome::Failed, None, Some(error)),
            Ending::Cancelled => (Outcome::Cancelled, None, Some("the turn was cancelled".to_owned())),
            Ending::TimedOut if self.run_started_at.get().is_none() => (
                Outcome::TimedOut,
                None,
                Some(format!("the turn ran past its {} s timeout before its code started", self.spec.timeout_s)),
            ),
            Ending::TimedOut => {
                (Outcome::TimedOut, None, Some(format!("the code ran past its {} s timeout", self.spec.timeout_s)))
            }
            Ending::SinkClosed => {
                (Outcome::Cancelled, None, Some("nobody is watching the turn any more: its event sink closed".into()))
            }
        };
        let error = match (error, database_stopped) {
            (Some(error), Some(why)) => Some(format!("{error}; {why}")),
            (error, _) => error,
        };
        // A checkpoint that was asked for and not made fails the turn: a fork of it would find none.
        let (outcome, error) = match (checkpoint_failure, error) {
            (Some(failure), Some(error)) => (Outcome::Failed, Some(format!("{error}; {failure}"))),
            (Some(failure), None) => (Outcome::Failed, Some(failure)),
            (None, error) => (outcome, error),
        };
        let error = error.map(|e| self.emitter.scrub(&e));
        let timings = {
            let mut timings = self.timings.borrow_mut();
            if sandbox.is_some() || database.is_some() {
                timings.reap_ms = Some(reap_ms);
            }
            timings.total_ms = self.clock.now_ms() - self.accepted_unix_ms;
            timings.clone()
        };
        self.emitter.emit(EventBody::TurnFinished { outcome, timings: timings.clone(), error: error.clone() });

        TurnReport {
            turn_id: self.turn_id.clone(),
            outcome,
            exit_code,
            error,
            timings,
            sandbox: sandbox_reap,
            database: database_reap,
            summary,
            events: self.emitter.next_seq.get() - 1,
        }
    }
}
