//! What a turn is, folded from its events: its state, outcome, phases and each resource's reap
//! state. This is the one place that rule lives: the worker keeps a turn's [`TurnProgress`] as
//! its summary record, the web app draws the turn from one, and the tests and the soak judge
//! turns with it, so no two of them can disagree about what a log means.
//!
//! The fold takes each event once, in `seq` order: a replay overlapping what came before is
//! dropped, and an event after a gap is refused so that the viewer resumes from
//! [`TurnProgress::last_seq`].

use serde::{Deserialize, Serialize};

use crate::wire::database::{DatabaseSummary, SummaryDiff};
use crate::wire::event::{ClaimInfo, Event, EventBody, Outcome, ReapState, Resource, Timings, TurnState};

/// What [`TurnProgress::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The next event: taken.
    New,
    /// Already seen (a replay overlapping what arrived before): dropped.
    Duplicate,
    /// Events are missing before this one: dropped; resume from `last_seq`.
    Gap,
}

/// A phase of the turn: from `start` to `end`, in ms since acceptance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
}

impl Span {
    fn begin(&mut self, at: u64) {
        self.start.get_or_insert(at);
    }

    fn finish(&mut self, at: u64) {
        self.end = Some(self.end.map_or(at, |end| end.max(at)));
    }

    /// How long the phase took, once it ended.
    pub fn ms(&self) -> Option<u64> {
        Some(self.end?.saturating_sub(self.start?))
    }
}

/// The phases of a turn, in the order they begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Sandbox,
    Database,
    Upload,
    /// A fork's copy of its checkpoint, where the provider cannot fork: only such turns have it.
    Copy,
    Seed,
    Run,
    Reap,
}

impl Phase {
    pub const ALL: [Phase; 7] =
        [Phase::Sandbox, Phase::Database, Phase::Upload, Phase::Copy, Phase::Seed, Phase::Run, Phase::Reap];

    pub fn label(self) -> &'static str {
        match self {
            Phase::Sandbox => "sandbox",
            Phase::Database => "database",
            Phase::Upload => "upload",
            Phase::Copy => "copy",
            Phase::Seed => "seed",
            Phase::Run => "run",
            Phase::Reap => "reap",
        }
    }
}

/// One resource of the turn as its events tell it (which one it is, the turn's leases say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceProgress {
    pub reap: ReapState,
    /// Why the last reap attempt failed, until one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything a turn's events say about it (output aside, which is only passed along).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnProgress {
    /// The last event taken: resume with `after=last_seq`. Also how many events there are.
    pub last_seq: u64,
    /// The latest `at_ms` seen: how far the turn's own clock got.
    pub now_ms: u64,
    /// When the turn's code is stopped, in ms since acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    pub state: TurnState,
    pub sandbox_phase: Span,
    pub database_phase: Span,
    pub upload_phase: Span,
    #[serde(default)]
    pub copy_phase: Span,
    #[serde(default)]
    pub seed_phase: Span,
    pub run_phase: Span,
    pub reap_phase: Span,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<ResourceProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<ResourceProgress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Why the turn did not succeed, in words meant for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The phases' milliseconds as the turn reported them when it finished.
    pub timings: Timings,
    /// How to claim the database, once it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimInfo>,
    /// The output the turn kept, when it reached its limit (`output.truncated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kept_bytes: Option<u64>,
    /// Replayed events dropped because they had been taken before.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// The turn whose checkpoint the database was forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_turn_id: Option<String>,
    /// What the database held after the process exited (`database.summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DatabaseSummary>,
    /// For a fork, how that differs from its checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<SummaryDiff>,
    /// Why the summary could not be made, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_error: Option<String>,
    /// Until when the checkpoint was to be kept when it was made (Unix ms); the turn's lease has
    /// the current time, which an extension moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointed_until_unix_ms: Option<u64>,
}

impl Default for TurnProgress {
    fn default() -> Self {
        TurnProgress {
            last_seq: 0,
            now_ms: 0,
            deadline_ms: None,
            state: TurnState::Accepted,
            sandbox_phase: Span::default(),
            database_phase: Span::default(),
            upload_phase: Span::default(),
            copy_phase: Span::default(),
            seed_phase: Span::default(),
            run_phase: Span::default(),
            reap_phase: Span::default(),
            sandbox: None,
            database: None,
            exit_code: None,
            outcome: None,
            error: None,
            timings: Timings::default(),
            claim: None,
            output_kept_bytes: None,
            duplicates_dropped: 0,
            parent_turn_id: None,
            summary: None,
            diff: None,
            summary_error: None,
            checkpointed_until_unix_ms: None,
        }
    }
}

impl TurnProgress {
    /// The progress of a whole log, taken in order.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> TurnProgress {
        let mut progress = TurnProgress::default();
        for event in events {
            progress.apply(event);
        }
        progress
    }

    /// Takes `event` if it is the next one.
    pub fn apply(&mut self, event: &Event) -> Applied {
        if event.seq <= self.last_seq {
            self.duplicates_dropped += 1;
            return Applied::Duplicate;
        }
        if event.seq != self.last_seq + 1 {
            return Applied::Gap;
        }
        self.last_seq = event.seq;
        let at = event.at_ms;
        self.now_ms = self.now_ms.max(at);
        match &event.body {
            EventBody::TurnAccepted { deadline_ms, .. } => self.deadline_ms = Some(*deadline_ms),
            EventBody::SandboxCreating { .. } => {
                self.advance(TurnState::Provisioning);
                self.sandbox_phase.begin(at);
            }
            EventBody::DatabaseCreating { from } => {
                self.advance(TurnState::Provisioning);
                self.database_phase.begin(at);
                self.parent_turn_id.clone_from(from);
            }
            EventBody::DatabaseCopying { .. } => self.copy_phase.begin(at),
            EventBody::DatabaseCopied { .. } => self.copy_phase.finish(at),
            EventBody::DatabaseSeeding { .. } => self.seed_phase.begin(at),
            EventBody::DatabaseSeeded { .. } => self.seed_phase.finish(at),
            EventBody::DatabaseSummarized { summary, diff, error } => {
                self.summary = summary.as_deref().cloned();
                self.diff = diff.as_deref().cloned();
                self.summary_error.clone_from(error);
            }
            EventBody::DatabaseCheckpointed { keep_until_unix_ms } => {
                self.checkpointed_until_unix_ms = Some(*keep_until_unix_ms);
                self.settle(Resource::Database, at, ReapState::Checkpointed);
            }
            EventBody::SandboxReady { .. } => {
                self.sandbox_phase.finish(at);
                // The upload starts as soon as the sandbox is ready, the database or not.
                self.upload_phase.begin(at);
                self.sandbox = Some(ResourceProgress { reap: ReapState::Live, error: None });
            }
            EventBody::DatabaseReady { .. } => {
                self.database_phase.finish(at);
                self.database = Some(ResourceProgress { reap: ReapState::Live, error: None });
            }
            EventBody::CodeUploaded { .. } => self.upload_phase.finish(at),
            EventBody::ProcessStarted { .. } => {
                self.advance(TurnState::Running);
                self.run_phase.begin(at);
            }
            EventBody::ProcessExited { exit_code, .. } => {
                self.run_phase.finish(at);
                self.exit_code = Some(*exit_code);
                self.start_reaping(at);
            }
            EventBody::SandboxReaped { .. } => self.settle(Resource::Sandbox, at, ReapState::Reaped),
            EventBody::DatabaseReaped { .. } => self.settle(Resource::Database, at, ReapState::Reaped),
            EventBody::DatabaseKept { claim } => {
                self.claim = Some(claim.clone());
                self.settle(Resource::Database, at, ReapState::Kept);
            }
            EventBody::ReapFailed { resource, error, .. } => {
                self.start_reaping(at);
                if let Some(held) = self.resource_mut(*resource) {
                    held.reap = ReapState::Failed;
                    held.error = Some(error.clone());
                }
            }
            EventBody::TurnFinished { outcome, timings, error } => {
                self.state = TurnState::Finished;
                self.outcome = Some(*outcome);
                self.timings = timings.clone();
                self.error = error.clone();
            }
            EventBody::OutputTruncated { kept_bytes } => self.output_kept_bytes = Some(*kept_bytes),
            EventBody::Stdout { .. } | EventBody::Stderr { .. } => {}
        }
        Applied::New
    }

    /// Whether the turn's last event is in.
    pub fn is_finished(&self) -> bool {
        self.state == TurnState::Finished
    }

    /// Whether the turn is past its run — its process exited, a reap began, or its deadline
    /// (`now_ms`, in ms since acceptance) passed: from then on its database may be reaped at any
    /// moment, so keeping it can no longer be promised.
    pub fn reaping_started(&self, now_ms: u64) -> bool {
        matches!(self.state, TurnState::Reaping | TurnState::Finished)
            || self.deadline_ms.is_some_and(|deadline| deadline <= now_ms)
    }

    /// One resource as the events tell it, once it was ready.
    pub fn resource(&self, resource: Resource) -> Option<&ResourceProgress> {
        match resource {
            Resource::Sandbox => self.sandbox.as_ref(),
            Resource::Database => self.database.as_ref(),
        }
    }

    pub fn span(&self, phase: Phase) -> Span {
        match phase {
            Phase::Sandbox => self.sandbox_phase,
            Phase::Database => self.database_phase,
            Phase::Upload => self.upload_phase,
            Phase::Copy => self.copy_phase,
            Phase::Seed => self.seed_phase,
            Phase::Run => self.run_phase,
            Phase::Reap => self.reap_phase,
        }
    }

    fn resource_mut(&mut self, resource: Resource) -> Option<&mut ResourceProgress> {
        match resource {
            Resource::Sandbox => self.sandbox.as_mut(),
            Resource::Database => self.database.as_mut(),
        }
    }

    /// States only move forward: a late event of an earlier phase never takes a turn back.
    fn advance(&mut self, to: TurnState) {
        if rank(to) > rank(self.state) {
            self.state = to;
        }
    }

    /// The reap began: what is still live is now on its way out.
    fn start_reaping(&mut self, at: u64) {
        self.advance(TurnState::Reaping);
        self.reap_phase.begin(at);
        for held in [self.sandbox.as_mut(), self.database.as_mut()].into_iter().flatten() {
            if held.reap == ReapState::Live {
                held.reap = ReapState::Reaping;
            }
        }
    }

    fn settle(&mut self, resource: Resource, at: u64, state: ReapState) {
        self.start_reaping(at);
        self.reap_phase.finish(at);
        if let Some(held) = self.resource_mut(resource) {
            held.reap = state;
            held.error = None;
        }
    }
}

fn rank(state: TurnState) -> u8 {
    match state {
        TurnState::Accepted => 0,
        TurnState::Provisioning => 1,
        TurnState::Running => 2,
        TurnState::Reaping => 3,
        TurnState::Finished => 4,
    }
}

#[cfg(test)]
mod tests;
