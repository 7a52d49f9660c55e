//! Time as the page needs it: the wall clock, a sleep for async tasks, and durations for people.

use std::time::Duration;

/// Milliseconds since the Unix epoch, from the browser's clock.
pub(crate) fn now_unix_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Resolves after `duration`, on the browser's timer.
pub(crate) async fn sleep(duration: Duration) {
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    leptos::prelude::set_timeout(
        move || {
            let _ = done.send(());
        },
        duration,
    );
    let _ = wait.await;
}

/// `850 ms`, `12.3 s`, `4 min 05 s`.
pub(crate) fn format_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_ms(0), "0 ms");
        assert_eq!(format_ms(999), "999 ms");
        assert_eq!(format_ms(12_345), "12.3 s");
        assert_eq!(format_ms(245_000), "4 min 05 s");
    }
}
