//! mayfly's client library: for an agent loop or a web IDE, a turn created, its events followed
//! with automatic resume, cancelled, kept and read — over the edge API that `docs/api.md`
//! describes, with core's types on both sides.
//!
//! - [`Client`] has the calls; [`Client::new`] picks the platform's backend: reqwest and
//!   Server-Sent Events natively ([`native::Native`]), `fetch` and `WebSocket` on wasm32
//!   (`wasm::Browser`, in browsers and JS runtimes alike).
//! - [`Client::events`] is a turn's events, each once and in order, across dropped connections:
//!   [`resume::Resume`] is that logic as a pure state machine, fed by [`follow`]'s driver.
//! - Every failure is a [`ClientError`], typed from the API's `{"error": {code, message}}`.
//! - With the `js` feature, on wasm32, `MayflyClient` is the same client for JavaScript, with
//!   TypeScript types for every event ([`typescript`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), mayfly_client::ClientError> {
//! use futures::StreamExt;
//! use mayfly_client::Client;
//! use mayfly_core::{CreateTurnRequest, EventBody, Language};
//!
//! let client = Client::new("https://mayfly.example", "my-key");
//! let turn = client.create(&CreateTurnRequest::new("print(1)", Language::Python)).await?;
//! let mut events = client.events(&turn.turn_id);
//! while let Some(event) = events.next().await {
//!     if let EventBody::Stdout { data } = event?.body {
//!         print!("{data}");
//!     }
//! }
//! println!("{:?}", client.detail(&turn.turn_id).await?.outcome);
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod client;
pub mod error;
pub mod follow;
pub mod resume;
pub mod routes;
pub mod sse;
pub mod typescript;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// The platform's own backend, the one [`Client::new`] uses: code that runs on both (the web
/// app, whose tests build natively) names it instead of either.
#[cfg(not(target_arch = "wasm32"))]
pub type PlatformBackend = native::Native;
#[cfg(target_arch = "wasm32")]
pub type PlatformBackend = wasm::Browser;

pub use backend::Backend;
pub use client::Client;
pub use error::{ClientError, Result};
pub use follow::Update;
pub use resume::RetryPolicy;
