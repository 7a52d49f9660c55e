//! What a viewer knows of a turn from its event stream: the last `seq` seen (to resume with
//! `after=`), the phases for the timeline, the exit code and the outcome. Pure, so the rules a
//! reconnecting view lives by — every event once, in order — are tested without a browser.

use mayfly_core::{ClaimInfo, Event, EventBody, Outcome};

/// What [`TurnLog::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The next event: taken.
    New,
    /// Already seen (a replay overlapping what arrived before): dropped.
    Duplicate,
    /// Events are missing before this one: dropped; the view should resume from `last_seq`.
    Gap,
}

/// A phase of the turn on the timeline: from `start` to `end`, in ms since acceptance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: Option<u64>,
    pub(crate) end: Option<u64>,
}

impl Span {
    fn begin(&mut self, at: u64) {
        self.start.get_or_insert(at);
    }

    /// The upload waits for both resources (the database URL goes into the sandbox's
    /// environment), so it starts at the later of their ready events.
    fn begin_after(&mut self, at: u64) {
        self.start = Some(self.start.map_or(at, |start| start.max(at)));
    }

    fn finish(&mut self, at: u64) {
        self.end = Some(self.end.map_or(at, |end| end.max(at)));
    }

    /// How long the phase took, once it ended.
    pub(crate) fn ms(&self) -> Option<u64> {
        Some(self.end?.saturating_sub(self.start?))
    }
}

/// The timeline's rows, in the order they are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Sandbox,
    Database,
    Upload,
    Run,
    Reap,
}

impl Phase {
    pub(crate) const ALL: [Phase; 5] = [Phase::Sandbox, Phase::Database, Phase::Upload, Phase::Run, Phase::Reap];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Phase::Sandbox => "sandbox",
            Phase::Database => "database",
            Phase::Upload => "upload",
            Phase::Run => "run",
            Phase::Reap => "reap",
        }
    }
}

/// Everything the turn view draws that comes from events (output aside, which goes straight to
/// the page).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TurnLog {
    pub(crate) last_seq: u64,
    /// The latest `at_ms` seen: the right edge of the timeline while the turn runs.
    pub(crate) now_ms: u64,
    pub(crate) sandbox: Span,
    pub(crate) database: Span,
    pub(crate) upload: Span,
    pub(crate) run: Span,
    pub(crate) reap: Span,
    pub(crate) database_name: Option<String>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) outcome: Option<Outcome>,
    pub(crate) error: Option<String>,
    pub(crate) claim: Option<ClaimInfo>,
    /// `reap.failed` messages, for the user to read.
    pub(crate) reap_errors: Vec<String>,
    /// The output the turn kept, when it reached its limit (`output.truncated`).
    pub(crate) output_kept_bytes: Option<u64>,
    pub(crate) duplicates_dropped: u64,
}

impl TurnLog {
    /// Takes `event` if it is the next one.
    pub(crate) fn apply(&mut self, event: &Event) -> Applied {
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
            EventBody::SandboxCreating { .. } => self.sandbox.begin(at),
            EventBody::SandboxReady { .. } => {
                self.sandbox.finish(at);
                self.upload.begin_after(at);
            }
            EventBody::DatabaseCreating {} => self.database.begin(at),
            EventBody::DatabaseReady { database, .. } => {
                self.database.finish(at);
                self.database_name = Some(database.clone());
                self.upload.begin_after(at);
            }
            EventBody::CodeUploaded { .. } => self.upload.finish(at),
            EventBody::ProcessStarted { .. } => self.run.begin(at),
            EventBody::ProcessExited { exit_code, .. } => {
                self.run.finish(at);
                self.exit_code = Some(*exit_code);
                self.reap.begin(at);
            }
            EventBody::SandboxReaped { .. } | EventBody::DatabaseReaped { .. } => {
                self.reap.begin(at);
                self.reap.finish(at);
            }
            EventBody::DatabaseKept { claim } => {
                self.claim = Some(claim.clone());
                self.reap.begin(at);
                self.reap.finish(at);
            }
            EventBody::ReapFailed { resource, error, .. } => {
                self.reap_errors.push(format!("{} reap failed: {error}", resource.as_str()));
            }
            EventBody::TurnFinished { outcome, error, .. } => {
                self.outcome = Some(*outcome);
                self.error = error.clone();
            }
            EventBody::OutputTruncated { kept_bytes } => self.output_kept_bytes = Some(*kept_bytes),
            EventBody::TurnAccepted { .. } | EventBody::Stdout { .. } | EventBody::Stderr { .. } => {}
        }
        Applied::New
    }

    pub(crate) fn finished(&self) -> bool {
        self.outcome.is_some()
    }

    pub(crate) fn span(&self, phase: Phase) -> Span {
        match phase {
            Phase::Sandbox => self.sandbox,
            Phase::Database => self.database,
            Phase::Upload => self.upload,
            Phase::Run => self.run,
            Phase::Reap => self.reap,
        }
    }

    /// Where a phase's bar sits on a timeline `0..=now_ms`, as (left %, width %); a phase still
    /// going reaches the right edge. `None` for a phase that has not started.
    pub(crate) fn bar(&self, phase: Phase) -> Option<(f64, f64)> {
        let span = self.span(phase);
        let start = span.start?;
        let total = self.now_ms.max(1) as f64;
        let end = span.end.unwrap_or(self.now_ms).max(start);
        let left = start as f64 / total * 100.0;
        // A phase of 0 ms still shows as a sliver.
        let width = ((end - start) as f64 / total * 100.0).max(0.5);
        Some((left.min(99.5), width.min(100.0 - left.min(99.5))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mayfly_core::Timings;

    fn event(seq: u64, at_ms: u64, body: EventBody) -> Event {
        Event { seq, at_ms, body }
    }

    fn seed_events() -> Vec<Event> {
        vec![
            event(1, 0, EventBody::TurnAccepted { turn_id: "t".into(), deadline_ms: 60_000 }),
            event(2, 1, EventBody::SandboxCreating { template: "mayfly".into() }),
            event(3, 1, EventBody::DatabaseCreating {}),
            event(4, 20, EventBody::DatabaseReady { ms: 19, host: "h".into(), database: "db_t".into() }),
            event(5, 40, EventBody::SandboxReady { sandbox_id: "s".into(), ms: 39 }),
            event(6, 45, EventBody::CodeUploaded { path: "/home/user/main.py".into(), bytes: 10 }),
            event(7, 50, EventBody::ProcessStarted { pid: 2 }),
            event(8, 60, EventBody::Stdout { data: "1\n".into() }),
            event(9, 150, EventBody::ProcessExited { exit_code: 3, ms: 100 }),
            event(10, 160, EventBody::DatabaseReaped { ms: 10 }),
            event(11, 170, EventBody::SandboxReaped { ms: 20 }),
            event(
                12,
                171,
                EventBody::TurnFinished {
                    outcome: Outcome::Failed,
                    timings: Timings::default(),
                    error: Some("the code exited with 3".into()),
                },
            ),
        ]
    }

    #[test]
    fn phases_come_from_the_events() {
        let mut log = TurnLog::default();
        for e in seed_events() {
            assert_eq!(log.apply(&e), Applied::New);
        }
        assert_eq!(log.sandbox, Span { start: Some(1), end: Some(40) });
        assert_eq!(log.database.ms(), Some(19));
        assert_eq!(log.upload, Span { start: Some(40), end: Some(45) }, "the upload waits for the later of the two");
        assert_eq!(log.run.ms(), Some(100));
        assert_eq!(log.reap, Span { start: Some(150), end: Some(170) });
        assert_eq!((log.exit_code, log.outcome), (Some(3), Some(Outcome::Failed)));
        assert_eq!(log.error.as_deref(), Some("the code exited with 3"));
        assert_eq!(log.database_name.as_deref(), Some("db_t"));
        assert!(log.finished());
        let (left, width) = log.bar(Phase::Run).unwrap();
        assert!((left - 50.0 / 171.0 * 100.0).abs() < 1e-9 && (width - 100.0 / 171.0 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_replay_after_a_reconnect_is_taken_once() {
        let events = seed_events();
        let mut log = TurnLog::default();
        for e in &events[..8] {
            log.apply(e);
        }
        // The socket dropped; the view resumes with `after=last_seq`, but a server replaying a
        // little too much must not double anything.
        let mut taken = Vec::new();
        for e in &events[6..] {
            if log.apply(e) == Applied::New {
                taken.push(e.seq);
            }
        }
        assert_eq!(taken, (9..=12).collect::<Vec<_>>());
        assert_eq!(log.duplicates_dropped, 2);
    }

    #[test]
    fn a_gap_is_refused_so_the_view_resumes_from_the_last_seq() {
        let events = seed_events();
        let mut log = TurnLog::default();
        log.apply(&events[0]);
        assert_eq!(log.apply(&events[2]), Applied::Gap);
        assert_eq!(log.last_seq, 1);
        assert_eq!(log.apply(&events[1]), Applied::New);
    }

    #[test]
    fn a_running_phase_reaches_the_right_edge() {
        let mut log = TurnLog::default();
        for e in &seed_events()[..8] {
            log.apply(e);
        }
        let (left, width) = log.bar(Phase::Run).unwrap();
        assert!((left - 50.0 / 60.0 * 100.0).abs() < 1e-9 && (width - 10.0 / 60.0 * 100.0).abs() < 1e-9);
        assert_eq!(log.bar(Phase::Reap), None);
    }
}
