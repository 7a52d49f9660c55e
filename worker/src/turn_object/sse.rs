//! The Server-Sent-Events viewers of a turn its object runs: each a response stream fed from a
//! queue of the object's, bounded so that a viewer that stops reading cannot make the object hold
//! the turn's whole output once per viewer.
//!
//! A viewer more than [`MAX_QUEUED_BYTES`] behind is let go: its stream ends after what it has,
//! and an `EventSource` reconnects with `Last-Event-ID`, replayed from storage from there on.

use std::cell::Cell;
use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::{Stream, StreamExt};

/// How far behind a viewer may fall before it is let go.
pub(crate) const MAX_QUEUED_BYTES: usize = 1 << 20;

/// The object's end of one viewer's stream.
#[derive(Debug)]
pub(crate) struct SseViewer {
    sender: UnboundedSender<Vec<u8>>,
    /// Bytes sent and not yet taken by the response.
    queued: Rc<Cell<usize>>,
}

impl SseViewer {
    /// A viewer and the body of its response.
    pub(crate) fn new() -> (SseViewer, impl Stream<Item = worker::Result<Vec<u8>>>) {
        let (sender, receiver) = unbounded::<Vec<u8>>();
        let queued = Rc::new(Cell::new(0usize));
        let taken = queued.clone();
        let body = receiver.map(move |frame| {
            taken.set(taken.get().saturating_sub(frame.len()));
            Ok(frame)
        });
        (SseViewer { sender, queued }, body)
    }

    /// Queues the replay: all of it, however long (it is the log, which the turn's output limit
    /// bounds).
    pub(crate) fn replay(&self, frame: Vec<u8>) {
        self.queued.set(self.queued.get() + frame.len());
        let _ = self.sender.unbounded_send(frame);
    }

    /// Queues a live frame; `false` when the viewer is gone, or so far behind that it is let go.
    pub(crate) fn send(&self, frame: Vec<u8>) -> bool {
        if self.queued.get() + frame.len() > MAX_QUEUED_BYTES {
            return false;
        }
        self.queued.set(self.queued.get() + frame.len());
        self.sender.unbounded_send(frame).is_ok()
    }

    /// Whether the response still reads (its body was not dropped).
    pub(crate) fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn a_viewer_that_falls_behind_is_let_go_and_one_that_reads_is_not() {
        let (viewer, body) = SseViewer::new();
        let mut body = Box::pin(body);
        let frame = vec![b'x'; 64 * 1024];
        viewer.replay(frame.clone());
        for _ in 0..MAX_QUEUED_BYTES / frame.len() - 1 {
            assert!(viewer.send(frame.clone()), "within the bound");
        }
        assert!(!viewer.send(frame.clone()), "a full queue lets the viewer go");
        // Reading makes room again.
        let read = body.next().now_or_never().flatten().expect("a frame is ready").expect("no error");
        assert_eq!(read.len(), frame.len());
        assert!(viewer.send(frame));
        drop(body);
        assert!(!viewer.is_open());
        assert!(!viewer.send(vec![b'y']), "a viewer whose response is gone is let go");
    }
}
