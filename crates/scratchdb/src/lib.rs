//! scratchdb: an instanode-compatible scratch-Postgres provisioner over a real Postgres server.
//!
//! One role and one database per resource, made in milliseconds from a warm pool and dropped for real
//! on delete or expiry; a registry in its own schema of the admin database so a restart loses nothing.
//! Without an admin URL it runs a private cluster ([`EmbeddedPostgres`]).
//!
//! To boot it in-process:
//!
//! ```no_run
//! # async fn boot() -> anyhow::Result<()> {
//! let pg = mayfly_scratchdb::EmbeddedPostgres::start_temporary()?;
//! let service = mayfly_scratchdb::Service::start(mayfly_scratchdb::Config::new(pg.admin_url())).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! mayfly_scratchdb::serve(service, listener).await?;
//! # Ok(()) }
//! ```
//!
//! What differs from the hosted instanode (see also README's `## scratchdb`):
//! - `upgrade_jwt` is an opaque claim token for one resource, not a JWT over a fingerprint's resources;
//!   `upgrade`/`claim_url` point at this server's `GET /claim/preview?t=…`.
//! - `POST /claim` transfers the resource at once (no magic-link email) to a freshly minted Bearer
//!   token returned as `session_token`, and clears its expiry (hosted: the expiry stays until a payment).
//! - No fingerprint dedup, daily caps, recycle gate or rate limit; idempotency only via `Idempotency-Key`.
//! - Storage limits are reported, not enforced; no pgvector, no dedicated databases (`402`).
//! - Owned resources get the `pro` tier's limits and never expire.

mod admin;
mod api;
mod embedded;
mod registry;
mod service;

pub use admin::AdminError;
pub use api::router;
pub use embedded::{bin_dir, EmbeddedError, EmbeddedPostgres};
pub use service::{Config, Service, ServiceError};

/// Serves the API on `listener` until the future is dropped or the listener fails.
pub async fn serve(service: Service, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(no_delay(listener), router(service)).await
}

/// The listener with Nagle's algorithm off on every connection: answers are small and awaited,
/// and Nagle with delayed ACKs would hold each one back ~40 ms.
pub fn no_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, impl FnMut(&mut tokio::net::TcpStream) + Send + 'static> {
    axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    })
}
