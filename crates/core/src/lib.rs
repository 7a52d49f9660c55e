//! mayfly's core: the turn model and its events, the edge API's types, the provider clients and
//! the turn orchestrator, in three layers that depend downwards only:
//!
//! - [`wire`]: what crosses a wire, as data — the edge API's bodies and events, and the E2B,
//!   Connect and instanode protocols that core's clients and the local stand-ins share;
//! - [`providers`]: what a turn needs from the world (sandboxes, databases, a clock) and the
//!   clients that provide it over core's own HTTP trait, with the sweep and the doctor that use
//!   them outside a turn;
//! - [`turn`]: the request validated into a turn's spec, and the orchestrator that runs it.
//!
//! [`url`] builds and redacts URLs for all three.
//!
//! This crate is sans-IO: it performs no networking of its own and reads no clock. It compiles
//! natively and to `wasm32-unknown-unknown`, so the worker, the web app and the CLI share one
//! definition of every type that crosses a wire.

pub mod providers;
pub mod turn;
pub mod url;
pub mod wire;

pub use providers::e2b::templates::TemplateMap;
pub use turn::progress::TurnProgress;
pub use turn::spec::{Limits, SandboxFile, SpecError, TurnSpec};
pub use url::redact_url;
pub use wire::api::*;
pub use wire::error::{ApiError, ErrorBody, ErrorCode};
pub use wire::event::{ClaimInfo, Event, EventBody, Outcome, ReapState, Resource, Timings, TurnState};

/// The version of mayfly, as every component reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
