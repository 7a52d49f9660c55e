//! End-to-end tests of mayfly, one binary grouped by what a user does. Each test boots the real
//! stack through the harness in `src/` and stops it when done.

mod browser;
mod client;
mod cors;
mod examples;
mod health;
mod idempotency;
mod ledger;
mod paging;
mod sessions;
mod support;
mod turns;
