//! The `mayfly-scratchdb` binary: flags, logging, the embedded cluster, signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use mayfly_scratchdb::{Config, EmbeddedPostgres, LikeHosted, Service};

/// An instanode-compatible scratch-Postgres provisioner.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen; loopback only.
    #[arg(long, default_value = "127.0.0.1:49983")]
    listen: SocketAddr,
    /// A superuser URL of an existing server; without it a private cluster is started.
    #[arg(long, env = "SCRATCHDB_ADMIN_URL", hide_env_values = true)]
    admin_url: Option<String>,
    /// The private cluster's directory (kept between runs); a temporary one when absent.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Ready (role, database) pairs to keep warm; 0 turns the pool off.
    #[arg(long, default_value_t = 4)]
    pool: usize,
    /// How long anonymous databases live.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    anonymous_ttl: Duration,
    /// How often the expiry sweep runs.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    sweep_interval: Duration,
    /// How often database sizes are checked; a database over its storage limit is stopped.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    storage_check_interval: Duration,
    /// Bearer tokens accepted for owned resources (repeatable; comma-separated in the env var).
    #[arg(long = "token", env = "SCRATCHDB_TOKENS", value_delimiter = ',', hide_env_values = true)]
    tokens: Vec<String>,
    /// Base URL for claim links; defaults to the request's Host.
    #[arg(long)]
    public_url: Option<String>,
    /// The largest database a fork may copy, in MiB; a bigger source is refused (`409`).
    #[arg(long, default_value_t = 1024)]
    fork_source_max_mb: u64,
    /// Answer as hosted instanode does: anonymous creates past a caller's daily share get an
    /// earlier database (200), a 402 once all of its databases are gone, an unknown token is taken
    /// as none; and scratchdb's own extensions (fork, freeze) are not there.
    #[arg(long)]
    like_hosted: bool,
    /// With --like-hosted: anonymous creates one caller gets a day.
    #[arg(long, default_value_t = 5, requires = "like_hosted")]
    anonymous_daily_cap: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tokio_postgres=warn".into()),
        )
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        bail!("--listen must be a loopback address");
    }
    let embedded = match &args.admin_url {
        Some(_) => None,
        None => {
            let pg = tokio::task::spawn_blocking({
                let dir = args.data_dir.clone();
                move || match dir {
                    Some(d) => EmbeddedPostgres::start(&d),
                    None => EmbeddedPostgres::start_temporary(),
                }
            })
            .await?
            .context("starting the embedded postgres cluster")?;
            tracing::info!(port = pg.port(), data_dir = %pg.data_dir().display(), "embedded postgres started");
            Some(pg)
        }
    };
    let admin_url = match (&args.admin_url, &embedded) {
        (Some(u), _) => u.clone(),
        (None, Some(pg)) => pg.admin_url().to_string(),
        (None, None) => unreachable!("one of the two is always set"),
    };
    let config = Config {
        pool_size: args.pool,
        anonymous_ttl: args.anonymous_ttl,
        sweep_interval: args.sweep_interval,
        storage_check_interval: args.storage_check_interval,
        tokens: args.tokens.into_iter().filter(|t| !t.is_empty()).collect(),
        public_url: args.public_url,
        fork_source_max_bytes: args.fork_source_max_mb.saturating_mul(1024 * 1024),
        like_hosted: args.like_hosted.then_some(LikeHosted { anonymous_daily_cap: args.anonymous_daily_cap }),
        ..Config::new(admin_url)
    };
    let service = Service::start(config).await.context("starting the provisioner")?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, pool = args.pool, "scratchdb listening");
    // Peer addresses scope anonymous idempotency keys.
    let app = mayfly_scratchdb::router(service.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(mayfly_scratchdb::no_delay(listener), app).with_graceful_shutdown(shutdown_signal()).await?;
    service.shutdown().await;
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop()).await?;
        tracing::info!("embedded postgres stopped");
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
