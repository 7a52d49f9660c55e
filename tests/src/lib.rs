//! The harness that boots mayfly's real stack for end-to-end tests and for `cargo xtask dev`:
//! real processes on 127.0.0.1, each in a process group of its own, always stopped on drop.

pub mod fault_proxy;
pub mod inspector;
pub mod paths;
pub mod process_stack;
pub mod service;
pub mod stack;
pub mod turns;

pub use paths::Tools;
pub use service::Service;
pub use stack::{Stack, StackOptions};
