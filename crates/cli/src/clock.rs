//! core's `Clock` on the system clock and tokio's timer.

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use mayfly_core::providers::Clock;

/// Wall-clock time for native callers; core itself never reads a clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'_, ()> {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).boxed_local()
    }
}
