//! How long a turn can take at most, phase by phase, and so the longest timeout a turn may ask for.
//!
//! The worker runs a whole turn — provisioning, the run, the reap — inside one Durable Object
//! alarm, and an alarm has [`ALARM_WALL_TIME_S`] of wall time. A turn still going when that runs
//! out is cut off before its `turn.finished` and ends `lost` instead of `timed_out` (or `failed`),
//! so the timeout is capped at what still fits with every provider call at its slowest.
//!
//! The phases, as the orchestrator runs them (`mod.rs`):
//!
//! - provisioning: the sandbox and the database concurrently. The deadline counts from the turn's
//!   acceptance, so provisioning is spent out of the timeout, not added to it; a create still in
//!   flight at the deadline is let finish, so the run phase ends at the later of the deadline and
//!   the end of provisioning. Provisioning at its slowest is kept shorter than the longest timeout
//!   (the sandbox create's patience is capped at [`MAX_SANDBOX_CREATE_TIMEOUT_S`]), so for the
//!   longest turn it is the deadline that counts.
//! - after the deadline: the question whether the provider stopped the database (asked only when
//!   the code failed, which can happen just before the deadline), then both reaps concurrently,
//!   each tried as often as the [`ReapPolicy`] allows, each try a provider call with its retries.
//!   A checkpoint's freeze takes the place of its database's reap: one call, whose failure leaves
//!   the reap to the alarm's next invocation (`reap.rs`). The seed and the summary run before the
//!   deadline (`session.rs`).
//! - [`ALARM_MARGIN_S`] for what no policy bounds: the object's own storage reads and writes
//!   around the turn, and the moment between the alarm firing and the turn's acceptance.
//!
//! Every provider call is bounded by its [`RetryPolicy`]: each attempt waits at most
//! `attempt_timeout_ms` for its answer to begin, and the delay between attempts is at most
//! `max_delay_ms`, whatever `Retry-After` asks.

use crate::providers::retry::RetryPolicy;
use crate::turn::reap::ReapPolicy;

/// The wall time the Workers platform gives one Durable Object alarm invocation.
pub const ALARM_WALL_TIME_S: u64 = 900;

/// Left unspent in every alarm for what the policies do not bound (above).
pub const ALARM_MARGIN_S: u64 = 30;

/// The longest a sandbox create may wait for its answer (`E2B_CREATE_TIMEOUT_S` is capped at it),
/// so that provisioning at its slowest still ends before the longest timeout.
pub const MAX_SANDBOX_CREATE_TIMEOUT_S: u64 = 120;

/// The longest one provider call takes under `retry`: every attempt waits its full timeout for an
/// answer that is then retryable, and every wait between attempts is as long as allowed.
pub fn provider_call_at_most_ms(retry: &RetryPolicy) -> u64 {
    let attempts = retry.max_attempts.max(1);
    let waits: u64 = (1..attempts).map(|retry_number| retry.delay_ms(retry_number, Some(u64::MAX))).sum();
    u64::from(attempts) * retry.attempt_timeout_ms + waits
}

/// The longest provisioning takes: the sandbox's create (with its own patience per attempt) and
/// the database's, which run at the same time.
pub fn provisioning_at_most_ms(retry: &RetryPolicy, sandbox_create_timeout_ms: u64) -> u64 {
    let sandbox = provider_call_at_most_ms(&RetryPolicy { attempt_timeout_ms: sandbox_create_timeout_ms, ..*retry });
    sandbox.max(provider_call_at_most_ms(retry))
}

/// The longest one resource's reap takes: every try as slow as a call can be, with the reap's
/// backoff between them. The two resources are reaped at the same time.
pub fn reap_at_most_ms(retry: &RetryPolicy, reap: &ReapPolicy) -> u64 {
    let tries = reap.attempts.get();
    let backoffs: u64 = (1..tries).map(|failures| reap.backoff_ms(failures)).sum();
    u64::from(tries) * provider_call_at_most_ms(retry) + backoffs
}

/// The longest a turn goes on after its run ended at the deadline: the stopped-database question,
/// then the reap.
pub fn after_deadline_at_most_ms(retry: &RetryPolicy, reap: &ReapPolicy) -> u64 {
    provider_call_at_most_ms(retry) + reap_at_most_ms(retry, reap)
}

/// The longest a turn with `timeout_s` takes from acceptance to `turn.finished`.
pub fn turn_at_most_ms(timeout_s: u32, retry: &RetryPolicy, reap: &ReapPolicy, sandbox_create_timeout_ms: u64) -> u64 {
    let run_ends = (u64::from(timeout_s) * 1000).max(provisioning_at_most_ms(retry, sandbox_create_timeout_ms));
    run_ends + after_deadline_at_most_ms(retry, reap)
}

/// The longest timeout whose turn fits one alarm with its margin, in whole minutes.
pub fn longest_timeout_s(retry: &RetryPolicy, reap: &ReapPolicy) -> u32 {
    let budget_ms = (ALARM_WALL_TIME_S - ALARM_MARGIN_S) * 1000;
    let minutes = budget_ms.saturating_sub(after_deadline_at_most_ms(retry, reap)) / 60_000;
    u32::try_from(minutes * 60).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use futures::future::LocalBoxFuture;

    use super::*;
    use crate::providers::e2b::DEFAULT_CREATE_TIMEOUT_MS;
    use crate::providers::fakes::{run_virtual, VirtualClock};
    use crate::providers::http::{HeaderName, HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse};
    use crate::providers::http::{Method, StatusCode};
    use crate::providers::retry::send_with_retry;
    use crate::providers::Clock;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_longest_turn_fits_one_alarm_with_the_default_policies() {
        let (retry, reap) = (RetryPolicy::default(), ReapPolicy::default());
        // 4 attempts of 10 s, 3 waits of 8 s.
        assert_eq!(provider_call_at_most_ms(&retry), 64_000);
        // 4 tries of a call, backoffs of 0.25 + 0.5 + 1 s.
        assert_eq!(reap_at_most_ms(&retry, &reap), 257_750);
        assert_eq!(after_deadline_at_most_ms(&retry, &reap), 321_750);
        // 900 s - 30 s - 321.75 s = 548.25 s, down to whole minutes.
        // `Limits::default().max_timeout_s` (`spec.rs`, whose tests pin it too).
        let longest = longest_timeout_s(&retry, &reap);
        assert_eq!(longest, 540);

        let alarm_ms = ALARM_WALL_TIME_S * 1000;
        let margin_ms = ALARM_MARGIN_S * 1000;
        for create_timeout_ms in [DEFAULT_CREATE_TIMEOUT_MS, MAX_SANDBOX_CREATE_TIMEOUT_S * 1000] {
            let provisioning = provisioning_at_most_ms(&retry, create_timeout_ms);
            assert!(provisioning <= u64::from(longest) * 1000, "provisioning {provisioning} ms outlasts the timeout");
            for timeout_s in [1, 30, longest] {
                let turn = turn_at_most_ms(timeout_s, &retry, &reap, create_timeout_ms);
                assert!(turn + margin_ms <= alarm_ms, "{timeout_s} s: {turn} ms + margin > {alarm_ms} ms");
            }
        }
        // One minute more would not fit.
        let too_long = turn_at_most_ms(longest + 60, &retry, &reap, DEFAULT_CREATE_TIMEOUT_MS);
        assert!(too_long + margin_ms > alarm_ms, "{too_long}");
    }

    #[test]
    fn provisioning_is_the_slower_create_with_its_own_patience() {
        let retry = RetryPolicy::default();
        // The sandbox's create: 4 attempts of 60 s and 3 waits of 8 s; the database's is 64 s.
        assert_eq!(provisioning_at_most_ms(&retry, DEFAULT_CREATE_TIMEOUT_MS), 264_000);
        assert_eq!(provisioning_at_most_ms(&retry, 1_000), 64_000);
    }

    #[test]
    fn slower_policies_leave_less_time_to_run() {
        let (retry, reap) = (RetryPolicy::default(), ReapPolicy::default());
        let patient = RetryPolicy { attempt_timeout_ms: 30_000, ..retry };
        assert!(longest_timeout_s(&patient, &reap) < longest_timeout_s(&retry, &reap));
        let hopeless = RetryPolicy { max_attempts: 100, ..retry };
        assert_eq!(longest_timeout_s(&hopeless, &reap), 0);
    }

    /// A provider that answers every request `503` with `Retry-After: 3600`, each answer a moment
    /// before the attempt would have timed out.
    struct LateRefusals<'c> {
        clock: &'c VirtualClock,
        after_ms: u64,
    }

    impl HttpClient for LateRefusals<'_> {
        fn send(&self, _request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
            Box::pin(async move {
                self.clock.sleep(self.after_ms).await;
                Ok(HttpResponse::from_bytes(StatusCode::SERVICE_UNAVAILABLE, "busy")
                    .with_header(HeaderName::from_static("retry-after"), HeaderValue::from_static("3600")))
            })
        }
    }

    #[test]
    fn a_call_at_its_slowest_takes_what_the_budget_counts() {
        let clock = VirtualClock::new();
        let retry = RetryPolicy::default();
        let provider = LateRefusals { clock: &clock, after_ms: retry.attempt_timeout_ms - 1 };
        let request = HttpRequest::new(Method::DELETE, "http://e2b.test/sandboxes/sbx-1");
        let started = clock.now_ms();
        let answer = run_virtual(&clock, send_with_retry(&provider, &clock, &retry, &request, true, "e2b")).unwrap();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        // One millisecond short of the budget per attempt.
        let attempts = u64::from(retry.max_attempts);
        assert_eq!(clock.now_ms() - started, provider_call_at_most_ms(&retry) - attempts);
    }
}
