//! A clock that moves only when every task waits: [`run_virtual`] then jumps the [`VirtualClock`]
//! to the next timer, as quinn's test harness does. So a fake "takes 300 ms" by sleeping on the
//! virtual clock, tests never sleep for real, and the timings they assert are exact.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::future::LocalBoxFuture;

use crate::providers::Clock;

/// The start of virtual time: some Unix time, so deadlines in metadata look real.
pub(crate) const EPOCH_MS: u64 = 1_700_000_000_000;

/// A clock that moves only when [`run_virtual`] finds nothing else to do.
#[derive(Debug, Clone)]
pub(crate) struct VirtualClock(Rc<RefCell<ClockState>>);

#[derive(Debug)]
struct ClockState {
    now_ms: u64,
    next_timer_id: u64,
    /// Pending sleeps: id → (wake at, the waker of the task that waits).
    timers: BTreeMap<u64, (u64, Option<Waker>)>,
}

impl VirtualClock {
    pub(crate) fn new() -> VirtualClock {
        VirtualClock(Rc::new(RefCell::new(ClockState { now_ms: EPOCH_MS, next_timer_id: 0, timers: BTreeMap::new() })))
    }

    /// Milliseconds since [`EPOCH_MS`].
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.now_ms() - EPOCH_MS
    }

    /// Wakes the sleeps that are due, or else moves time to the next sleep and wakes it. Returns
    /// false when no sleep is pending: nothing can ever wake the waiting task.
    fn advance(&self) -> bool {
        let mut state = self.0.borrow_mut();
        let now = state.now_ms;
        let due_with_waker = |state: &ClockState, at: u64| {
            state.timers.values().any(|(wake_at, waker)| *wake_at <= at && waker.is_some())
        };
        if !due_with_waker(&state, now) {
            let Some(next) = state.timers.values().map(|(wake_at, _)| *wake_at).filter(|&at| at > now).min() else {
                return false;
            };
            state.now_ms = next;
        }
        let now = state.now_ms;
        let wakers: Vec<Waker> =
            state.timers.values_mut().filter(|(wake_at, _)| *wake_at <= now).filter_map(|(_, w)| w.take()).collect();
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
        true
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.borrow().now_ms
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'_, ()> {
        let mut state = self.0.borrow_mut();
        let id = state.next_timer_id;
        state.next_timer_id += 1;
        Box::pin(Sleep { clock: self.clone(), id, wake_at: state.now_ms + ms })
    }
}

struct Sleep {
    clock: VirtualClock,
    id: u64,
    wake_at: u64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.0.borrow_mut();
        if state.now_ms >= self.wake_at {
            state.timers.remove(&self.id);
            return Poll::Ready(());
        }
        state.timers.insert(self.id, (self.wake_at, Some(cx.waker().clone())));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        // A dropped sleep (the losing side of a select) must not hold time back or move it on.
        self.clock.0.borrow_mut().timers.remove(&self.id);
    }
}

/// Runs `future` to completion on this thread, moving `clock` whenever the future waits.
pub(crate) fn run_virtual<F: Future>(clock: &VirtualClock, future: F) -> F::Output {
    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    for _ in 0..100_000 {
        if flag.0.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            continue;
        }
        assert!(clock.advance(), "stuck: the future waits for something no timer will bring");
    }
    panic!("the future did not finish in 100000 steps")
}
