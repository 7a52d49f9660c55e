//! What crosses a wire, as data: the edge API's bodies, its error body and a turn's events (shared
//! by the worker, the web app and the CLI), and the protocols of the two providers — the Connect
//! envelope, E2B's bodies and messages, instanode's bodies — shared by each stand-in and core's
//! client for it.
//!
//! Nothing here sends or decides anything: these modules depend on no other part of core, so
//! every side can use them without taking on the provider clients or the orchestrator.

pub mod api;
pub mod connect;
pub mod database;
pub mod e2b;
pub mod error;
pub mod event;
pub mod instanode;
