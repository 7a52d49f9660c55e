//! A turn's sink for the tests that run `run_turn` themselves: it keeps every event, as a viewer
//! would, and takes every lease without keeping it (the tests reap what they make).
#![allow(dead_code, reason = "each test binary reads the events its own way")]

use mayfly_core::turn::{Lease, SinkError, TurnSink};
use mayfly_core::{Event, EventBody};

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) events: std::cell::RefCell<Vec<Event>>,
}

impl TurnSink for Recorder {
    fn emit(&self, event: Event) -> Result<(), SinkError> {
        self.events.borrow_mut().push(event);
        Ok(())
    }

    fn record_lease(&self, _lease: Lease) -> futures::future::LocalBoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

impl Recorder {
    pub(crate) fn stdout(&self) -> String {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Stdout { data } => Some(data.as_str()),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn json(&self) -> String {
        serde_json::to_string(&*self.events.borrow()).unwrap()
    }

    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        self.events.borrow().iter().map(|e| e.body.kind()).collect()
    }

    pub(crate) fn ran_code(&self) -> bool {
        self.kinds().contains(&"process.started")
    }
}
