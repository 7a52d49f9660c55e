//! The turns the soak's load is made of: each kind's code, what that code must make of the turn,
//! and one turn run and judged.

use std::time::Instant;

use mayfly_core::{Event, EventBody, Outcome, ReapState, Resource, TurnProgress};
use mayfly_e2e::ApiClient;
use serde_json::json;

/// The kinds of turn the load mixes, each with what its code must make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A query in the scratch database; prints 42.
    Query,
    /// Bash, no database.
    Bash,
    /// A thousand lines of output.
    Chatty,
    /// Exits 3: a failure that is the code's own.
    ExitsThree,
    /// Sleeps past its 2 s timeout.
    Overstays,
    /// Cancelled by the caller while it runs.
    Cancelled,
}

impl Kind {
    pub(crate) const MIX: [Kind; 10] = [
        Kind::Query,
        Kind::Query,
        Kind::Query,
        Kind::Bash,
        Kind::Bash,
        Kind::Chatty,
        Kind::ExitsThree,
        Kind::Overstays,
        Kind::Cancelled,
        Kind::Query,
    ];

    fn body(self) -> String {
        let query = "import os, psycopg\nwith psycopg.connect(os.environ['DATABASE_URL']) as c:\n    print(c.execute('select 40 + 2').fetchone()[0])\n";
        let body = match self {
            Kind::Query => json!({ "code": query, "language": "python", "timeout_s": 30 }),
            Kind::Bash => json!({ "code": "echo soak", "language": "bash", "database": false, "timeout_s": 30 }),
            Kind::Chatty => {
                json!({ "code": "for i in range(1000): print(i)", "language": "python", "database": false })
            }
            Kind::ExitsThree => json!({ "code": "import sys; sys.exit(3)", "language": "python", "database": false }),
            Kind::Overstays => json!({ "code": "import time; time.sleep(30)", "language": "python", "timeout_s": 2 }),
            Kind::Cancelled => {
                json!({ "code": "import time\nprint('up', flush=True)\ntime.sleep(30)", "language": "python" })
            }
        };
        body.to_string()
    }

    /// What the turn must end with, and what it must print.
    pub(crate) fn expected(self) -> (Outcome, Option<String>) {
        match self {
            Kind::Query => (Outcome::Succeeded, Some("42\n".into())),
            Kind::Bash => (Outcome::Succeeded, Some("soak\n".into())),
            Kind::Chatty => (Outcome::Succeeded, Some((0..1000).map(|i| format!("{i}\n")).collect())),
            Kind::ExitsThree => (Outcome::Failed, None),
            Kind::Overstays => (Outcome::TimedOut, None),
            Kind::Cancelled => (Outcome::Cancelled, None),
        }
    }
}

/// How one turn went.
#[derive(Debug, Clone)]
pub(crate) struct TurnResult {
    pub(crate) kind: Kind,
    pub(crate) turn_id: String,
    pub(crate) ms: u64,
    /// Why it is a failure that is not its code's own, if it is one.
    pub(crate) failure: Option<String>,
}

pub(crate) fn run_turn(api: &ApiClient, kind: Kind) -> TurnResult {
    let started = Instant::now();
    let mut result = TurnResult { kind, turn_id: String::new(), ms: 0, failure: None };
    let turn = match api.try_create_turn(&kind.body()) {
        Ok(turn) => turn,
        Err(err) => {
            result.failure = Some(format!("create: {err:#}"));
            return result;
        }
    };
    result.turn_id = turn.turn_id.clone();
    let mut cancelled = false;
    // A stream that broke is judged by what it carried: it lacks `turn.finished`.
    let (events, _) = api.read_events(&turn.turn_id, 0, |event| {
        let up = matches!(&event.body, EventBody::Stdout { data } if data.contains("up"));
        if kind == Kind::Cancelled && up && !cancelled {
            cancelled = true;
            let _ = api.try_call("DELETE", &turn.status_url, None);
        }
    });
    result.ms = started.elapsed().as_millis() as u64;
    result.failure = judge(kind, &events).err();
    result
}

/// Whether the turn ended as its code says it must.
fn judge(kind: Kind, events: &[Event]) -> Result<(), String> {
    let progress = TurnProgress::of(events);
    let Some(outcome) = progress.outcome else {
        return Err(format!("the event stream ended without turn.finished after {} events", events.len()));
    };
    if progress.last_seq != events.len() as u64 {
        return Err(format!("the log has a gap after seq {} of {} events", progress.last_seq, events.len()));
    }
    let (want, stdout) = kind.expected();
    if outcome != want {
        return Err(format!("{kind:?} ended {outcome:?} ({:?}), not {want:?}", progress.error));
    }
    if let Some(stdout) = stdout {
        let printed: String = mayfly_e2e::turns::stdout_of(events);
        if printed != stdout {
            return Err(format!("{kind:?} printed {} bytes, not the {} it should", printed.len(), stdout.len()));
        }
    }
    let sandbox = progress.resource(Resource::Sandbox).map(|sandbox| sandbox.reap);
    if sandbox != Some(ReapState::Reaped) {
        return Err(format!("{kind:?}: the log leaves its sandbox {sandbox:?}, not reaped"));
    }
    Ok(())
}
