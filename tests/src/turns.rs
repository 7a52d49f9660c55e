//! What a turn's events say: what it printed and how it ended (the latter by core's
//! `TurnProgress`, the fold the worker and the web app read turns with).

use mayfly_core::{Event, EventBody, Outcome, TurnProgress};

/// Everything the turn printed to stdout, in order.
pub fn stdout_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Stdout { data } => Some(data.as_str()),
            _ => None,
        })
        .collect()
}

/// How the turn ended, if `events` is its whole log, in order and without gaps.
pub fn outcome_of(events: &[Event]) -> Option<Outcome> {
    TurnProgress::of(events).outcome
}
