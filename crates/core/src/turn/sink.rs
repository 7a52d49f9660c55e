//! Where a turn's events and leases go: the [`TurnSink`] a caller implements, the [`Lease`] it
//! records per resource, and the emitter that numbers events and keeps secrets out of them.

use std::cell::{Cell, RefCell};

use futures::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::providers::{Clock, DatabaseMode};
use crate::turn::TurnId;
use crate::url::redact_credentials_in_text;
use crate::wire::event::{Event, EventBody};

/// Where a turn's events and leases go: the worker's event log, the CLI's terminal, a test's vector.
pub trait TurnSink {
    /// Takes one event. `Err(SinkError::Closed)` says nobody listens any more; the turn then stops
    /// and reaps, and emits nothing further.
    fn emit(&self, event: Event) -> Result<(), SinkError>;
    /// Records a lease durably. The turn waits for it before it uses the resource, so a crash
    /// right after cannot lose track of the resource; an error stops the turn, which then reaps.
    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, Result<(), SinkError>>;
}

/// Why a sink refused an event or a lease.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SinkError {
    #[error("the event sink is closed")]
    Closed,
    #[error("the lease could not be recorded: {0}")]
    LeaseNotRecorded(String),
}

/// One resource a turn holds, as a durable caller records it to reap it if the turn is lost.
///
/// There is one lease per resource (not one per turn growing over time) because the two resources
/// appear concurrently: two records of one growing value could land in either order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub turn_id: TurnId,
    /// When the turn's code is stopped, in Unix milliseconds.
    pub deadline_unix_ms: u64,
    /// When the resource must be gone at the latest, in Unix milliseconds (deadline + grace).
    pub reap_by_unix_ms: u64,
    pub resource: LeasedResource,
}

/// The resource of a [`Lease`], with what it takes to reap it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resource", rename_all = "snake_case")]
pub enum LeasedResource {
    Sandbox {
        sandbox_id: String,
    },
    Database {
        token: String,
        name: String,
        mode: DatabaseMode,
    },
    /// A database asked for and not known to exist yet: recorded before the request, so that a
    /// turn lost while its answer was on the way (or whose answer was lost) still finds the
    /// database by its name and reaps it, instead of leaving it to the providers' sweep (which
    /// leaves a checkpoint's database alone for a day).
    DatabaseIntent {
        name: String,
    },
}

/// Numbers events and hands them to the sink; once the sink is closed it drops them.
pub(super) struct Emitter<'a, K, C> {
    pub(super) sink: &'a K,
    pub(super) clock: &'a C,
    pub(super) accepted_unix_ms: u64,
    pub(super) next_seq: Cell<u64>,
    pub(super) closed: Cell<bool>,
    /// Strings that must never appear in an event (the database URL and its password).
    pub(super) secrets: RefCell<Vec<String>>,
}

impl<K: TurnSink, C: Clock> Emitter<'_, K, C> {
    pub(super) fn at_ms(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.accepted_unix_ms)
    }

    pub(super) fn emit(&self, body: EventBody) {
        if self.closed.get() {
            return;
        }
        let event = Event { seq: self.next_seq.get(), at_ms: self.at_ms(), body };
        match self.sink.emit(event) {
            Ok(()) => self.next_seq.set(self.next_seq.get() + 1),
            Err(_) => self.closed.set(true),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Remembers the URL and its password so that [`Emitter::scrub`] removes them from provider
    /// error messages, which sometimes echo what they were given.
    pub(super) fn add_secret(&self, connection_url: &str) {
        let mut secrets = self.secrets.borrow_mut();
        secrets.push(connection_url.to_owned());
        let authority = connection_url.split_once("://").map_or(connection_url, |(_, rest)| rest);
        let user_info = authority.split(['/', '?', '#']).next().unwrap_or("").rsplit_once('@').map(|(u, _)| u);
        if let Some((_, password)) = user_info.and_then(|u| u.split_once(':')) {
            if !password.is_empty() {
                secrets.push(password.to_owned());
            }
        }
    }

    pub(super) fn scrub(&self, text: &str) -> String {
        let text = redact_credentials_in_text(text);
        self.secrets.borrow().iter().fold(text, |text, secret| text.replace(secret.as_str(), "***"))
    }
}
