//! Bounded retry with backoff on core's [`Clock`], for both provider clients.
//!
//! Retrying lives here once so both clients back off the same way: 429 and retryable 5xx answers
//! are sent again after an exponential delay (or the server's `Retry-After`, capped), a bounded
//! number of times, and the last answer is handed back for the caller to map to its typed error.
//! Every attempt waits for an answer a bounded time ([`RetryPolicy::attempt_timeout_ms`]): a
//! provider that holds a request forever must not hold the turn, or its reap, forever.

use futures::future::{self, Either};

use crate::providers::http::{HttpClient, HttpError, HttpRequest, HttpResponse, StatusCode};
use crate::providers::{Clock, ProviderError};

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least one is always made.
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles for each further one.
    pub base_delay_ms: u64,
    /// No single delay is longer, whatever the backoff or `Retry-After` says, so a turn's deadline
    /// is not spent waiting on one provider.
    pub max_delay_ms: u64,
    /// How long one attempt waits for the answer to begin (its status and headers). The body is
    /// not covered: a process's output streams as long as the process runs, bounded by the turn's
    /// deadline instead.
    pub attempt_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay_ms: 250, max_delay_ms: 8_000, attempt_timeout_ms: 10_000 }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first retry). A server's `Retry-After` is
    /// honoured when it asks for longer than the backoff, up to the cap.
    pub fn delay_ms(&self, retry: u32, retry_after_ms: Option<u64>) -> u64 {
        let backoff = self.base_delay_ms.saturating_mul(1u64 << retry.saturating_sub(1).min(20));
        backoff.max(retry_after_ms.unwrap_or(0)).min(self.max_delay_ms)
    }
}

/// Whether an answer is worth sending again: rate limits and server trouble, but not the 5xx codes
/// that say the server will never do it (501 not implemented, 505 version, 507 out of storage).
pub fn is_retryable_status(status: StatusCode) -> bool {
    let code = status.as_u16();
    code == 429 || (status.is_server_error() && !matches!(code, 501 | 505 | 507))
}

/// `Retry-After` in seconds (the HTTP-date form needs a wall clock, which core does not read).
pub fn retry_after_ms(response: &HttpResponse) -> Option<u64> {
    let value = response.headers.get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

/// Sends `request` once, giving up with [`HttpError::Timeout`] when no answer has begun after
/// `timeout_ms`. Dropping the unanswered request closes its connection.
pub async fn send_within<H: HttpClient, C: Clock>(
    http: &H,
    clock: &C,
    timeout_ms: u64,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    match future::select(http.send(request), clock.sleep(timeout_ms)).await {
        Either::Left((answer, _)) => answer,
        Either::Right(((), _)) => Err(HttpError::Timeout),
    }
}

/// Sends `request` until it gets an answer that is not retryable or attempts run out, and returns
/// that last answer. Transport errors are retried only when `idempotent`: a request that may have
/// reached the server (a timeout, a broken body) must not be repeated when repeating it creates a
/// second resource. A refused connection never reached it, so it is always retried.
pub async fn send_with_retry<H: HttpClient, C: Clock>(
    http: &H,
    clock: &C,
    policy: &RetryPolicy,
    request: &HttpRequest,
    idempotent: bool,
    provider: &'static str,
) -> Result<HttpResponse, ProviderError> {
    let mut attempt = 1;
    loop {
        let last = attempt >= policy.max_attempts.max(1);
        match send_within(http, clock, policy.attempt_timeout_ms, request.clone()).await {
            Ok(response) if last || !is_retryable_status(response.status) => return Ok(response),
            Ok(response) => {
                let delay = policy.delay_ms(attempt, retry_after_ms(&response));
                // Drop the body unread: its connection is released and its text is not needed.
                drop(response);
                clock.sleep(delay).await;
            }
            Err(source) => {
                let retryable = idempotent || matches!(source, HttpError::Connect(_));
                if last || !retryable {
                    return Err(ProviderError::Http { provider, source });
                }
                clock.sleep(policy.delay_ms(attempt, None)).await;
            }
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fakes::{run_virtual, VirtualClock};
    use crate::providers::http::Method;
    use crate::providers::memory::MemoryHttpClient;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn backoff_doubles_honours_retry_after_and_is_capped() {
        let policy = RetryPolicy { max_attempts: 5, base_delay_ms: 100, max_delay_ms: 1_000, ..RetryPolicy::default() };
        let delays: Vec<u64> = (1..=6).map(|retry| policy.delay_ms(retry, None)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(policy.delay_ms(1, Some(700)), 700);
        assert_eq!(policy.delay_ms(1, Some(60_000)), 1_000);
        assert_eq!(policy.delay_ms(u32::MAX, None), 1_000);
    }

    #[test]
    fn retryable_statuses() {
        let retryable: Vec<u16> = [200, 400, 404, 409, 429, 500, 501, 502, 503, 504, 505, 507]
            .into_iter()
            .filter(|&code| is_retryable_status(StatusCode::from_u16(code).unwrap()))
            .collect();
        assert_eq!(retryable, vec![429, 500, 502, 503, 504]);
    }

    #[test]
    fn transport_errors_are_retried_only_when_safe() {
        let clock = VirtualClock::new();
        let policy = RetryPolicy { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 100, ..RetryPolicy::default() };
        let request = HttpRequest::new(Method::POST, "http://x/");
        let timeout = MemoryHttpClient::new(|_| Err(HttpError::Timeout));
        let error = run_virtual(&clock, send_with_retry(&timeout, &clock, &policy, &request, false, "p")).unwrap_err();
        assert_eq!(error.to_string(), "p could not be reached: the request timed out");
        assert_eq!(timeout.requests().len(), 1);
        run_virtual(&clock, send_with_retry(&timeout, &clock, &policy, &request, true, "p")).unwrap_err();
        assert_eq!(timeout.requests().len(), 4);
        let refused = MemoryHttpClient::new(|_| Err(HttpError::Connect("refused".into())));
        run_virtual(&clock, send_with_retry(&refused, &clock, &policy, &request, false, "p")).unwrap_err();
        assert_eq!(refused.requests().len(), 3);
        // Two backoffs of 10 and 20 ms for each of the two retried sends.
        assert_eq!(clock.elapsed_ms(), 60);
    }

    /// A client whose requests are never answered, like a provider that holds them.
    struct Silent(std::cell::Cell<usize>);

    impl HttpClient for Silent {
        fn send(&self, _: HttpRequest) -> futures::future::LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
            self.0.set(self.0.get() + 1);
            Box::pin(future::pending())
        }
    }

    #[test]
    fn an_unanswered_attempt_times_out_and_is_retried_only_when_safe() {
        let clock = VirtualClock::new();
        let policy = RetryPolicy { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 100, attempt_timeout_ms: 1_000 };
        let request = HttpRequest::new(Method::POST, "http://x/");
        let silent = Silent(std::cell::Cell::new(0));
        let error = run_virtual(&clock, send_with_retry(&silent, &clock, &policy, &request, false, "p")).unwrap_err();
        assert_eq!(error.to_string(), "p could not be reached: the request timed out");
        assert_eq!((silent.0.get(), clock.elapsed_ms()), (1, 1_000));
        run_virtual(&clock, send_with_retry(&silent, &clock, &policy, &request, true, "p")).unwrap_err();
        // Three attempts of 1 s each, with backoffs of 10 and 20 ms between them.
        assert_eq!((silent.0.get(), clock.elapsed_ms()), (4, 1_000 + 3_030));
    }
}
