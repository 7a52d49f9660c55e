//! The security suite: what an attacker tries through the edge API and from inside a turn. Bad
//! input gets a clear 4xx and provisions nothing; code run as a turn cannot reach the host or
//! another turn and leaves no process behind; secrets appear in no log, event or answer; every
//! route refuses a missing, wrong or foreign key without telling anything, and a turn token
//! anywhere but the turn routes. Each test boots its own stack through the harness in `src/`.

mod auth;
mod bad_input;
mod escapes;
mod host_chain;
mod limits;
mod pages;
mod secrets;
mod support;
mod tokens;
