//! The harness that boots mayfly's real stack for end-to-end tests and for `cargo xtask dev`:
//! real processes on 127.0.0.1, each in a process group of its own, always stopped on drop.
//!
//! [`WranglerDev`] runs the worker; [`InProcessStack`] puts it in front of providers that run in
//! the test's own process, [`SeparateProcessStack`] in front of providers a test can kill. Tests,
//! the soak and the bench speak to the API through [`ApiClient`].

pub mod api;
pub mod cpu;
pub mod fault_proxy;
pub mod in_process_stack;
pub mod inspector;
pub mod leftovers;
pub mod paths;
pub mod procfs;
pub mod separate_process_stack;
pub mod service;
pub mod stack;
pub mod turns;
pub mod wrangler;

pub use api::{Answer, ApiClient};
pub use in_process_stack::{InProcessStack, ALICE_KEY, BOB_KEY, TOKEN_SECRET};
pub use paths::Tools;
pub use separate_process_stack::SeparateProcessStack;
pub use service::Service;
pub use stack::{Profile, TestStackOptions};
pub use wrangler::{WranglerDev, WranglerOptions};
