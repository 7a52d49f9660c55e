//! What a turn's events say: what it printed and how it ended.

use mayfly_core::{Event, EventBody, Outcome};

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

pub fn outcome_of(events: &[Event]) -> Option<Outcome> {
    events.iter().find_map(|e| match &e.body {
        EventBody::TurnFinished { outcome, .. } => Some(*outcome),
        _ => None,
    })
}
