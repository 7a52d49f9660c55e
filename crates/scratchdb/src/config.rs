//! What a scratchdb runs with: its `Config` and the tiers' limits.

use std::time::Duration;

/// Everything scratchdb needs to run against one Postgres server.
#[derive(Clone)]
pub struct Config {
    /// A superuser URL for the server that holds the registry and the scratch databases.
    pub admin_url: String,
    /// The registry's schema in the admin database.
    pub schema: String,
    /// Ready (role, database) pairs to keep; 0 turns the pool off.
    pub pool_size: usize,
    pub anonymous_ttl: Duration,
    pub sweep_interval: Duration,
    /// How often database sizes are checked against their limits; one over its limit is stopped.
    pub storage_check_interval: Duration,
    /// Bearer tokens that may create owned resources and use `/api/v1`.
    pub tokens: Vec<String>,
    /// Base of the claim links; when `None`, taken from the request's `Host`.
    pub public_url: Option<String>,
    /// Connections an authenticated resource's role may hold.
    pub authenticated_connections: i32,
    /// The storage an authenticated resource may use, in MB (instanode's Pro tier by default).
    pub authenticated_storage_mb: i32,
    /// How many admin connections may be open at once.
    pub admin_connections: usize,
    /// The largest database a fork may copy, in bytes: each fork copies its whole source while
    /// holding an admin connection, and the copy lands on the same disk as every tenant's database.
    pub fork_source_max_bytes: u64,
    /// Answer as hosted instanode does where a caller that wants a database per request would
    /// notice (`--like-hosted`; see `crate::hosted`), and without scratchdb's own extensions, fork
    /// and freeze, which hosted instanode does not have. Off by default.
    pub like_hosted: Option<LikeHosted>,
}

/// How hosted instanode treats anonymous callers, as far as scratchdb copies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeHosted {
    /// Anonymous creates one caller gets a day; past them, its newest database is answered again.
    pub anonymous_daily_cap: u32,
}

impl Default for LikeHosted {
    fn default() -> Self {
        // Hosted instanode's free tier: 5 provisions a day per fingerprint.
        LikeHosted { anonymous_daily_cap: 5 }
    }
}

impl std::fmt::Debug for Config {
    // Tokens and the admin URL are secrets: the debug form says only whether they are set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("anonymous_ttl", &self.anonymous_ttl)
            .field("sweep_interval", &self.sweep_interval)
            .field("storage_check_interval", &self.storage_check_interval)
            .field("fork_source_max_bytes", &self.fork_source_max_bytes)
            .field("like_hosted", &self.like_hosted)
            .field("tokens", &self.tokens.len())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn new(admin_url: impl Into<String>) -> Self {
        Self {
            admin_url: admin_url.into(),
            schema: "scratchdb".into(),
            pool_size: 4,
            anonymous_ttl: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(60),
            storage_check_interval: Duration::from_secs(5),
            tokens: Vec::new(),
            public_url: None,
            authenticated_connections: 20,
            authenticated_storage_mb: OWNED_STORAGE_MB,
            admin_connections: 8,
            fork_source_max_bytes: 1 << 30,
            like_hosted: None,
        }
    }

    /// How many forks may copy at once (`crate::fork`): two, and always one admin connection left
    /// for everything else when there are two or more, since a copy holds its connection for as
    /// long as it takes.
    pub(crate) fn fork_slots(&self) -> usize {
        const FORK_SLOTS: usize = 2;
        FORK_SLOTS.min(self.admin_connections.saturating_sub(1)).max(1)
    }
}

/// The anonymous tier's limits, as instanode's `plans.yaml` has them.
pub(crate) const ANON_STORAGE_MB: i32 = 10;
pub(crate) const ANON_CONNECTIONS: i32 = 2;
/// The tier named for owned resources; instanode's Pro limits, without an expiry.
pub(crate) const OWNED_TIER: &str = "pro";
const OWNED_STORAGE_MB: i32 = 10240;
