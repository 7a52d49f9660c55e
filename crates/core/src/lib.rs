//! mayfly's core: the turn model and its events, the edge API's types, and (as they land) the
//! provider clients and the turn orchestrator.
//!
//! This crate is sans-IO: it performs no networking of its own and reads no clock. It compiles
//! natively and to `wasm32-unknown-unknown`, so the worker, the web app and the CLI share one
//! definition of every type that crosses a wire.

pub mod api;
pub mod connect;
pub mod doctor;
pub mod e2b;
pub mod e2b_client;
pub mod error;
pub mod event;
pub mod http;
pub mod instanode;
pub mod progress;
pub mod provider;
pub mod retry;
pub mod spec;
pub mod sweep;
pub mod templates;
pub mod turn;
pub mod utf8;

pub use api::*;
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use event::{ClaimInfo, Event, EventBody, Outcome, ReapState, Resource, Timings, TurnState};
pub use progress::TurnProgress;
pub use spec::{Limits, SandboxFile, SpecError, TurnSpec};
pub use templates::TemplateMap;

/// The version of mayfly, as every component reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
