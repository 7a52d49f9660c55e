//! What the caller gives a turn and keeps hold of: its options (the reap policy among them,
//! defined with the reap in `reap.rs`) and the [`TurnControl`] that cancels it or keeps its
//! database. Its id is `id.rs`'s.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures::future;

use crate::turn::reap::ReapPolicy;
use crate::turn::session::ForkSource;

/// How a turn runs, beyond what the request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOptions {
    /// Keep the database after the turn instead of deleting it (`--keep-db`).
    pub keep_database: bool,
    /// How long past the deadline the sandbox may live: its provider timeout is deadline + grace.
    pub grace_s: u32,
    pub reap: ReapPolicy,
    /// The output the turn keeps ([`crate::turn::spec::Limits::max_output_bytes`]).
    pub max_output_bytes: usize,
    /// The longest a checkpoint is kept ([`crate::turn::spec::Limits::max_checkpoint_keep_s`]).
    pub max_checkpoint_keep_s: u32,
    /// The checkpoint a forked turn's database is copied from, resolved from `spec.from`.
    pub fork: Option<ForkSource>,
}

impl Default for TurnOptions {
    fn default() -> TurnOptions {
        TurnOptions {
            keep_database: false,
            grace_s: 60,
            reap: ReapPolicy::default(),
            max_output_bytes: crate::turn::spec::Limits::default().max_output_bytes,
            max_checkpoint_keep_s: crate::turn::spec::Limits::default().max_checkpoint_keep_s,
            fork: None,
        }
    }
}

/// The caller's hold on a running turn: cancel it, or ask to keep its database. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct TurnControl {
    state: Rc<RefCell<ControlState>>,
}

#[derive(Debug, Default)]
struct ControlState {
    cancelled: bool,
    keep_database: bool,
    wakers: Vec<Waker>,
}

impl TurnControl {
    /// Stops the turn: the process is killed (with its sandbox) and everything is reaped.
    pub fn cancel(&self) {
        let wakers = {
            let mut state = self.state.borrow_mut();
            state.cancelled = true;
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn is_cancelled(&self) -> bool {
        self.state.borrow().cancelled
    }

    /// Keeps the database past the turn; takes effect if asked before the turn reaps it.
    pub fn keep_database(&self) {
        self.state.borrow_mut().keep_database = true;
    }

    pub fn is_database_kept(&self) -> bool {
        self.state.borrow().keep_database
    }

    /// Resolves once [`TurnControl::cancel`] has been called.
    pub fn cancelled(&self) -> impl Future<Output = ()> + '_ {
        future::poll_fn(move |cx| {
            let mut state = self.state.borrow_mut();
            if state.cancelled {
                return Poll::Ready(());
            }
            if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
