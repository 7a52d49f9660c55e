//! The I/O a client needs, as one small trait: send a [`Call`], open a turn's event stream, wait.
//! The native backend puts it on reqwest and tokio, the wasm one on the browser's (or a JS
//! runtime's) `fetch`, `WebSocket` and timers; everything else — routes, answers, resuming — is
//! written once above it.

use std::future::Future;
use std::time::Duration;

use futures::Stream;

use crate::error::Result;
use crate::routes::{Answer, Call, Endpoint};

/// Sends requests and opens event streams for a [`crate::Client`].
pub trait Backend: Clone + 'static {
    /// One connection's frames, each one event's JSON, until the connection ends.
    type Frames: Stream<Item = Result<String>> + Unpin + 'static;

    /// Sends `call` and reads its whole answer, whatever its status: only a failure to get an
    /// answer is an error here.
    fn send(&self, call: Call) -> impl Future<Output = Result<Answer>>;

    /// Opens the event stream of `turn_id` after `after`. Resolves once the connection is open
    /// (or refused: a refusal with a status is the API's error).
    fn open_events(
        &self,
        endpoint: &Endpoint,
        key: &str,
        turn_id: &str,
        after: u64,
    ) -> impl Future<Output = Result<Self::Frames>>;

    /// Resolves after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;
}
