//! Following a turn's events across dropped connections, as a pure state machine: it is fed what
//! the connection did (opened, a frame, dropped) and says what to do next (deliver, skip,
//! reconnect after `seq`, wait and reconnect, give up). The I/O around it lives in the backends;
//! this is the part every client shares and the tests drive without a network.
//!
//! The fold is core's [`TurnProgress`]: an event is delivered when `apply` takes it as the next
//! one, a replayed event is dropped, and an event after a gap closes the connection so that it is
//! reopened after the last event taken. Every event is delivered once and in order, whatever
//! the connections did.

use std::time::Duration;

use mayfly_core::turn::progress::Applied;
use mayfly_core::{Event, TurnProgress};

use crate::error::ClientError;

/// How long to wait between attempts, and when to ask the API why they fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles with each failure in a row.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// After this many failures in a row, the API is asked about the turn: a WebSocket handshake
    /// that is refused does not say why, the turn's detail does (a key refused, a turn gone).
    pub check_after: u32,
    /// Gives up after this many failures in a row; `None` retries for as long as the API
    /// does not refuse.
    pub max_failures: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            check_after: 4,
            max_failures: None,
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failures in a row.
    pub fn delay(&self, failures: u32) -> Duration {
        let doubled = self.first_delay.saturating_mul(1 << failures.saturating_sub(1).min(16));
        doubled.min(self.max_delay)
    }
}

/// What to do with one frame of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Take {
    /// The next event: hand it on. When it is the last (`turn.finished`), the stream is over.
    Deliver(Event),
    /// Nothing to hand on: a replayed event, or an event of a type this client does not know
    /// (passed over in order, so that it is not mistaken for a gap).
    Skip,
    /// Events are missing before this one: close the connection and reopen it after
    /// [`Resume::after`].
    Reopen,
}

/// What to do after a connection ended or could not be opened.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The turn finished and every event was delivered.
    Done,
    /// Wait `delay`, then open again after [`Resume::after`]. With `check`, first ask the API
    /// about the turn: an answer it refuses ends the stream with that refusal.
    Retry { attempt: u32, delay: Duration, check: bool },
    /// The API refused for good (the key, the turn), or the policy's failures ran out.
    GiveUp(ClientError),
}

/// A turn's stream, followed: what was taken so far and how the connections have been going.
#[derive(Debug, Clone)]
pub struct Resume {
    progress: TurnProgress,
    policy: RetryPolicy,
    /// Connections that failed in a row; an opened connection resets it.
    failures: u32,
}

impl Resume {
    /// A stream to follow from the first event.
    pub fn new(policy: RetryPolicy) -> Resume {
        Resume::after(0, policy)
    }

    /// A stream to follow from the event after `seq`, for a viewer that already has those.
    pub fn after(seq: u64, policy: RetryPolicy) -> Resume {
        let progress = TurnProgress { last_seq: seq, ..TurnProgress::default() };
        Resume { progress, policy, failures: 0 }
    }

    /// The last event taken: the next connection asks for what comes after it.
    pub fn last_seq(&self) -> u64 {
        self.progress.last_seq
    }

    /// The turn as the events taken tell it (from the first event only when following from 0).
    pub fn progress(&self) -> &TurnProgress {
        &self.progress
    }

    /// Whether the last event (`turn.finished`) was taken.
    pub fn is_finished(&self) -> bool {
        self.progress.is_finished()
    }

    /// A connection opened: the failures in a row are over.
    pub fn opened(&mut self) {
        self.failures = 0;
    }

    /// One frame as it came off the connection (one event's JSON).
    pub fn frame(&mut self, text: &str) -> Take {
        match serde_json::from_str::<Event>(text) {
            Ok(event) => self.event(event),
            Err(_) => self.unknown(text),
        }
    }

    /// One event as it came off the connection.
    pub fn event(&mut self, event: Event) -> Take {
        if self.is_finished() {
            return Take::Skip;
        }
        match self.progress.apply(&event) {
            Applied::New => Take::Deliver(event),
            Applied::Duplicate => Take::Skip,
            Applied::Gap => Take::Reopen,
        }
    }

    /// A frame that is not an event this client knows: a newer event type keeps its place in the
    /// sequence; anything without a `seq` is not an event at all.
    fn unknown(&mut self, text: &str) -> Take {
        #[derive(serde::Deserialize)]
        struct Numbered {
            seq: u64,
        }
        let Ok(Numbered { seq }) = serde_json::from_str::<Numbered>(text) else { return Take::Skip };
        if seq == self.progress.last_seq + 1 {
            self.progress.last_seq = seq;
            Take::Skip
        } else if seq <= self.progress.last_seq {
            self.progress.duplicates_dropped += 1;
            Take::Skip
        } else {
            Take::Reopen
        }
    }

    /// The connection ended (`None`: it closed or a gap closed it) or could not be opened.
    pub fn dropped(&mut self, why: Option<ClientError>) -> Next {
        if self.is_finished() {
            return Next::Done;
        }
        let why = match why {
            Some(err) if !err.is_transient() => return Next::GiveUp(err),
            other => other,
        };
        self.failures += 1;
        if self.policy.max_failures.is_some_and(|max| self.failures >= max) {
            let err = why.unwrap_or_else(|| ClientError::Transport("the event stream kept closing".to_owned()));
            return Next::GiveUp(err);
        }
        Next::Retry {
            attempt: self.failures,
            delay: self.policy.delay(self.failures),
            check: self.failures >= self.policy.check_after,
        }
    }

    /// What the API said about the turn when a [`Next::Retry`] asked: a refusal for good (a key
    /// no longer known, a turn gone) ends the stream with it; anything else retries.
    pub fn checked(&self, answer: Result<(), ClientError>) -> Option<ClientError> {
        match answer {
            Err(err) if err.status().is_some() && !err.is_transient() => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
