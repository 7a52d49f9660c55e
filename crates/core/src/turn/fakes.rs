//! A sink that records what the orchestrator hands it, for the orchestrator's tests; the fake
//! providers and the virtual clock it runs with are `providers/fakes`.

use std::cell::{Cell, RefCell};

use futures::future::LocalBoxFuture;

use crate::providers::fakes::{Trace, VirtualClock};
use crate::turn::{Lease, LeasedResource, SinkError, TurnSink};
use crate::wire::event::{Event, Resource};

/// A sink that keeps every event and lease. `close_after` events it reports itself closed;
/// `fail_lease` refuses that resource's lease.
#[derive(Debug)]
pub(crate) struct RecordingSink {
    clock: VirtualClock,
    trace: Trace,
    pub(crate) events: RefCell<Vec<Event>>,
    pub(crate) leases: RefCell<Vec<Lease>>,
    pub(crate) close_after: Cell<Option<usize>>,
    pub(crate) fail_lease: Cell<Option<Resource>>,
}

impl RecordingSink {
    pub(crate) fn new(clock: &VirtualClock, trace: &Trace) -> RecordingSink {
        RecordingSink {
            clock: clock.clone(),
            trace: trace.clone(),
            events: RefCell::default(),
            leases: RefCell::default(),
            close_after: Cell::new(None),
            fail_lease: Cell::new(None),
        }
    }
}

impl TurnSink for RecordingSink {
    fn emit(&self, event: Event) -> Result<(), SinkError> {
        if self.close_after.get().is_some_and(|n| self.events.borrow().len() >= n) {
            return Err(SinkError::Closed);
        }
        self.events.borrow_mut().push(event);
        Ok(())
    }

    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let resource = match &lease.resource {
                LeasedResource::Sandbox { .. } => Resource::Sandbox,
                LeasedResource::Database { .. } | LeasedResource::DatabaseIntent { .. } => Resource::Database,
            };
            if self.fail_lease.get() == Some(resource) {
                self.trace.note(&self.clock, format!("lease {resource:?} refused"));
                return Err(SinkError::LeaseNotRecorded("storage is down".into()));
            }
            self.trace.note(&self.clock, format!("lease {}", serde_json::to_string(&lease).unwrap()));
            self.leases.borrow_mut().push(lease);
            Ok(())
        })
    }
}
