//! The `mayfly` command line as a library: native adapters for core (HTTP on reqwest, the system
//! clock), the local stack in one process, and the `run`, `stack`, `reap` and `selftest` commands. Tests and
//! benchmarks use the same pieces the binary does.

pub mod clock;
pub mod http;
pub mod providers;
pub mod run;
pub mod selftest;
pub mod stack;
