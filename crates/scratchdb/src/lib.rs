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
//! Isolation: a resource's role is named like its database (`db_<token>` for both) and reaches
//! only that database. Its database is created with connections off and opened only in the
//! transaction that takes CONNECT from PUBLIC and gives the role its login, so no other role is
//! ever let in; the embedded cluster's pg_hba.conf adds `sameuser`, so even a database whose ACL
//! lets PUBLIC in refuses every other resource's role. Against an `--admin-url` server whose
//! pg_hba.conf scratchdb does not write, the ACL is the only barrier.
//!
//! What differs from the hosted instanode (see also README's `## scratchdb`):
//! - `upgrade_jwt` is an opaque claim token for one resource, not a JWT over a fingerprint's resources;
//!   `upgrade`/`claim_url` point at this server's `GET /claim/preview?t=…`.
//! - `POST /claim` transfers the resource at once (no magic-link email) to a freshly minted Bearer
//!   token returned as `session_token`, and clears its expiry (hosted: the expiry stays until a payment).
//! - No fingerprint dedup, daily caps, recycle gate or rate limit; idempotency only via
//!   `Idempotency-Key`, scoped per owner, and per exact IP address for anonymous callers (hosted:
//!   /24 + ASN). Served without peer addresses (not via [`serve`]), anonymous keys are not honoured.
//! - Storage limits are enforced by a periodic check (`storage_check_interval`): a database over its
//!   limit is stopped (no connections) and shown as `status: "suspended"`, `storage_exceeded: true`
//!   until deleted or expired. Temporary files are capped per role (`temp_file_limit` = the storage
//!   limit, at least 32 MB). No pgvector, no dedicated databases (`402`).
//! - Owned resources get the `pro` tier's limits and never expire.
//! - `connection_url`'s user is `db_<token>`, the database's own name (hosted: `usr_<token>`).
//! - Extensions hosted instanode does not have: `POST /api/v1/resources/{token}/fork` copies an
//!   owner's database into a new resource of theirs, and `POST /api/v1/resources/{token}/freeze`
//!   closes one for good but keeps it to fork from (docs/protocols/instanode.md §12).

mod admin;
mod api;
mod config;
mod embedded;
mod fork;
mod freeze;
mod hosted;
mod limits;
mod provision;
mod reaping;
mod registry;
mod resources;
mod service;
mod storage_check;

pub use admin::AdminError;
pub use api::router;
pub use config::{Config, LikeHosted};
pub use embedded::{bin_dir, EmbeddedError, EmbeddedPostgres};
pub use service::{Service, ServiceError};

/// Serves the API on `listener` until the future is dropped or the listener fails, with each
/// request's peer address (anonymous idempotency keys are scoped by it).
pub async fn serve(service: Service, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(no_delay(listener), router(service).into_make_service_with_connect_info::<std::net::SocketAddr>()).await
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
