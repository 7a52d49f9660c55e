//! How many requests to the providers one turn makes at most: the Workers platform caps the
//! subrequests of one invocation (a turn runs in one Durable Object alarm), so the largest turn
//! the limits allow must fit, retries and reap attempts included. `cargo xtask deploy` checks it.

use crate::providers::retry::RetryPolicy;
use crate::turn::spec::Limits;
use crate::turn::ReapPolicy;

/// The most provider requests one turn makes: every call sent as often as its retries allow, every
/// file uploaded, both reaps tried as often as the reap policy allows (each try retried too), and
/// once more by the object's alarm should the turn's own reap not have finished.
pub fn provider_requests_at_most(limits: &Limits, retry: &RetryPolicy, reap: &ReapPolicy) -> u32 {
    let sent = retry.max_attempts.max(1);
    let reaped = reap.attempts.get() * sent;
    let uploads = (1 + limits.max_files as u32) * sent;
    // The sandbox and the database; for a fork where the provider cannot fork, the fork refused
    // and then the create.
    let creates = 3 * sent;
    // Sent once: a second Start could run the code twice; a cut stream asks envd's health once.
    let process = 2;
    // Asked only of a database whose turn failed: why the provider stopped it.
    let status = sent;
    // A turn in a session of turns (`docs/checkpoints.md`): the seed's two uploads and its start,
    // the summary's upload and start, and the freeze of its checkpoint.
    let session = 3 * sent + 2 + sent;
    // That fork's copy of its checkpoint: the checkpoint's credentials read, the helper's upload
    // and its start.
    let copy = 2 * sent + 1;
    // The alarm's reap: the sandbox, and the database, which a lease recorded before its create
    // answered names only, so the provider's list is asked first.
    let alarm_reap = 3 * sent;
    creates + uploads + process + status + session + copy + 2 * reaped + alarm_reap
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_largest_turn_with_the_default_policies() {
        let requests = provider_requests_at_most(&Limits::default(), &RetryPolicy::default(), &ReapPolicy::default());
        // 12 creates (a refused fork among them), 132 uploads (33 files, 4 tries each), 2 for the
        // process, 4 for the status, 18 for a seed, a summary and a freeze, 9 for a fork's copy,
        // 16 for each reap (4 tries of 4 sends), 12 for the alarm's reap.
        assert_eq!(requests, 12 + 132 + 2 + 4 + 18 + 9 + 2 * 16 + 12);
    }

    #[test]
    fn more_files_or_retries_cost_more() {
        let limits = Limits { max_files: 64, ..Limits::default() };
        let more = provider_requests_at_most(&limits, &RetryPolicy::default(), &ReapPolicy::default());
        let fewer = provider_requests_at_most(&Limits::default(), &RetryPolicy::default(), &ReapPolicy::default());
        assert!(more > fewer);
        let once = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
        assert!(provider_requests_at_most(&Limits::default(), &once, &ReapPolicy::default()) < fewer);
    }
}
