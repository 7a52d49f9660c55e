//! A turn's life in its object: `POST /start` stores it and arms the alarm; the alarm runs it with
//! core's orchestrator, then reaps what is left with core's recovery — at once for a turn that
//! just ran, and on every later wake-up while a reap fails or after the process running the turn
//! died.

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use mayfly_core::providers::{Clock, Providers};
use mayfly_core::turn::{reap_leftovers, run_turn, Lease, LeaseRecord, SinkError, TurnOptions, TurnSink};
use mayfly_core::{ApiError, ErrorCode, Event, EventBody, Resource};
use worker::{Request, Response, Result};

use super::keep::RememberingDatabases;
use super::{internal, Live, Turn, TurnRecord};
use crate::clock::WorkerClock;
use crate::config::{Config, DEADLINE_SLACK_MS};

/// The object's answer to a start past the turn's window ([`TurnRecord::may_start_at`]).
pub(crate) const START_TOO_LATE: u16 = 410;

/// How soon a failed reap is tried again.
const REAP_RETRY_MS: u64 = 5_000;

impl Turn {
    pub(super) async fn start(&self, mut req: Request) -> std::result::Result<Response, ApiError> {
        let record: TurnRecord = req.json().await.map_err(|err| internal(&err))?;
        if self.record().await.map_err(|err| internal(&err))?.is_some() {
            return Err(ApiError::new(ErrorCode::Conflict, "the turn exists already"));
        }
        // Only a retry of a request cut off before it started its turn gets here with an old record;
        // past the window the ledger no longer counts the turn, so it must not run (`turns.rs`).
        if !record.may_start_at(WorkerClock.now_ms()) {
            return Ok(Response::empty().map_err(|err| internal(&err))?.with_status(START_TOO_LATE));
        }
        self.put_record(&record).map_err(|err| internal(&err))?;
        // The log starts here, in this instance, so a viewer that connects before the alarm fires
        // is already in the fan-out.
        *self.live.borrow_mut() = Some(Live::default());
        crate::gated::set_alarm(&self.state.storage(), WorkerClock.now_ms());
        Response::empty().map(|r| r.with_status(201)).map_err(|err| internal(&err))
    }

    /// The alarm: runs the turn the first time, then reaps what is left until nothing is.
    pub(super) async fn wake(&self) -> Result<Response> {
        let Some(record) = self.record().await? else {
            return Response::ok("no turn");
        };
        if self.begin().await? {
            self.run(&record).await?;
        }
        if self.reap(&record).await? {
            // Everything is reaped or kept: the turn stops counting against its tenant's cap
            // only now, so that a turn whose reap keeps failing still holds its place. A
            // checkpoint still kept holds its place among the tenant's checkpoints until reaped.
            let keeps_checkpoint = self.checkpoint_due().await?.is_some();
            self.finished(&record, keeps_checkpoint).await;
            // Read again after the ledger's answer: an extension or a release that came in while
            // it was awaited moved the checkpoint, and the alarm must follow it, not undo it.
            match self.checkpoint_due().await? {
                // The alarm's one task left: reaping the checkpoint when its lease runs out.
                Some(due) => crate::gated::set_alarm(&self.state.storage(), due),
                None => {
                    // The safety alarm has nothing left to do, and nothing of the turn needs to
                    // stay in memory (the log is in storage), so the runtime may evict the object.
                    self.state.storage().delete_alarm().await?;
                    self.live.borrow_mut().take();
                }
            }
        }
        Response::ok("ok")
    }

    /// Runs the turn to its end in this invocation and records how each resource ended.
    async fn run(&self, record: &TurnRecord) -> Result<()> {
        let config = Config::from_env(&self.env);
        let clock = WorkerClock;
        // Should this process die mid-turn, this alarm reaps what the turn leaves behind.
        let deadline = clock.now_ms() + u64::from(record.spec.timeout_s) * 1000;
        // Issued, not waited for: no provider hears of the turn before it is durable (`gated`).
        crate::gated::set_alarm(&self.state.storage(), deadline + DEADLINE_SLACK_MS);

        let (control, created) = {
            let mut live = self.live.borrow_mut();
            let live = live.get_or_insert_with(Live::default);
            live.running = true;
            (live.control.clone(), live.database.clone())
        };
        let providers = config.providers();
        let providers = Providers {
            sandboxes: providers.sandboxes,
            databases: RememberingDatabases::new(providers.databases, created),
        };
        let sink = ObjectSink { turn: self };
        let spec = record.spec.clone();
        let turn_id = record.turn_id.clone();
        let options = TurnOptions { fork: record.fork.clone(), ..TurnOptions::default() };
        let turn = std::pin::pin!(run_turn(turn_id, spec, options, &providers, &clock, &sink, &control));
        let report = match futures::future::select(turn, std::pin::pin!(self.keep_streams_alive())).await {
            futures::future::Either::Left((report, _)) => report,
            futures::future::Either::Right(((), turn)) => turn.await,
        };
        if let Some(live) = self.live.borrow_mut().as_mut() {
            live.running = false;
        }

        for (resource, reap) in [(Resource::Sandbox, &report.sandbox), (Resource::Database, &report.database)] {
            let Some(reap) = reap else { continue };
            if let Some(mut lease) = self.lease(resource).await? {
                lease.reap = reap.state;
                lease.error = reap.error.clone();
                // A checkpoint's lease runs until it is to be reaped.
                if let Some(until) = reap.keep_until_unix_ms {
                    lease.lease.reap_by_unix_ms = until;
                }
                self.put_lease(&lease)?;
            }
        }
        Ok(())
    }

    /// Reaps every resource whose turn is not running here any more and that is not gone yet. A
    /// turn that started but neither runs nor finished was lost with its process: its log is closed
    /// with a `turn.finished` that says so. Idempotent; re-arms the alarm while a reap fails.
    /// `true` once nothing is left to watch: the turn is over and every resource reaped or kept.
    async fn reap(&self, record: &TurnRecord) -> Result<bool> {
        if self.live.borrow().as_ref().is_some_and(|live| live.running) {
            return Ok(false);
        }
        let progress = self.progress().await?;
        let lost = !progress.is_finished();
        if lost && self.live.borrow().is_none() {
            // Taken up by an instance that did not run it: its log goes on from the summary.
            *self.live.borrow_mut() = Some(Live::resumed(progress));
        }
        let before = self.leases().await?;
        let mut leases = before.clone();
        let clock = WorkerClock;
        let accepted_at_ms = record.created_unix_ms;
        let providers = Config::from_env(&self.env).providers();
        let leftovers = reap_leftovers(&providers, &clock, &mut leases, lost, accepted_at_ms).await;
        // Only what the reap changed is written back: a checkpoint extended or released while a
        // provider was awaited keeps its new lease.
        for (lease, was) in leases.iter().zip(&before) {
            if lease != was {
                self.put_lease(lease)?;
            }
        }
        for body in leftovers.events {
            self.append(record, body);
        }
        if leftovers.failing {
            crate::gated::set_alarm(&self.state.storage(), clock.now_ms() + REAP_RETRY_MS);
        }
        Ok(!leftovers.failing)
    }

    /// When the turn's checkpoint, if it keeps one, is to be reaped.
    async fn checkpoint_due(&self) -> Result<Option<u64>> {
        Ok(self.leases().await?.iter().filter_map(LeaseRecord::checkpoint_due_unix_ms).min())
    }

    /// Tells the tenant's ledger the turn no longer runs, and whether it still keeps a checkpoint.
    /// A failure is only logged: the ledger stops counting the turn at its deadline, and the
    /// checkpoint at its limit, anyway.
    async fn finished(&self, record: &TurnRecord, keeps_checkpoint: bool) {
        let turn_id = record.turn_id.as_str();
        if let Err(err) = crate::ledger::finished(&self.env, &record.tenant, turn_id, keeps_checkpoint).await {
            worker::console_error!("turn object: ledger: {err}");
        }
    }

    /// Appends an event the orchestrator did not emit (a lost turn's reaps and ending).
    fn append(&self, record: &TurnRecord, body: EventBody) {
        let seq = self.live.borrow().as_ref().map_or(1, |live| live.progress.last_seq + 1);
        let at_ms = WorkerClock.now_ms().saturating_sub(record.created_unix_ms);
        self.log(Event { seq, at_ms, body });
    }
}

/// The sink the orchestrator reports to: the object's log, its viewers and its lease records.
struct ObjectSink<'a> {
    turn: &'a Turn,
}

impl TurnSink for ObjectSink<'_> {
    fn emit(&self, event: Event) -> std::result::Result<(), SinkError> {
        self.turn.log(event);
        Ok(())
    }

    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, std::result::Result<(), SinkError>> {
        // Durable before the provider hears anything more of the turn: the output gate (`gated`).
        let recorded = self
            .turn
            .put_lease(&LeaseRecord::live(lease))
            .map_err(|_| SinkError::LeaseNotRecorded("the lease could not be written".into()));
        futures::future::ready(recorded).boxed_local()
    }
}
