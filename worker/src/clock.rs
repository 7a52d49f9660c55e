//! core's `Clock` on the runtime's `Date.now()` and `setTimeout`.

use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use mayfly_core::providers::Clock;
use worker::{Date, Delay};

/// Wall-clock time in the Workers runtime. (`Date.now()` only advances across I/O there, which is
/// exactly when a turn looks at it.)
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        Date::now().as_millis()
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'_, ()> {
        // setTimeout takes an i32; a longer sleep than ~24 days never happens in a turn.
        Delay::from(Duration::from_millis(ms.min(i32::MAX as u64))).boxed_local()
    }
}
