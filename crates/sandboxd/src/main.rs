//! `mayfly-sandboxd`: serves the E2B-compatible sandbox host on one loopback listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// An E2B-compatible sandbox host whose sandboxes are bubblewrap jails.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback only.
    #[arg(long, default_value = "127.0.0.1:49982")]
    listen: SocketAddr,
    /// Domain of the per-sandbox hosts, `49983-<id>.<domain>`.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Accepted `X-API-Key` values (repeat, or comma-separate in the env var); none = no key required.
    #[arg(long = "api-key", env = "SANDBOXD_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    api_keys: Vec<String>,
    #[arg(long, default_value_t = 100)]
    max_sandboxes: usize,
    /// Longest sandbox lifetime, e.g. `1h`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    max_timeout: std::time::Duration,
    /// The venv the `mayfly` template mounts read-only.
    #[arg(long, env = "SANDBOXD_PYTHON_VENV")]
    python_venv: Option<PathBuf>,
    /// Where per-sandbox directories live (default: a fresh directory under the temp dir).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A port of the host's 127.0.0.1 that sandboxes reach at their own 127.0.0.1 (repeat; e.g.
    /// the Postgres their database URLs name). Nothing else on the host is reachable from inside.
    #[arg(long = "forward-port", value_name = "PORT")]
    forward_ports: Vec<u16>,
    /// Let sandboxes share the host's network instead (everything on the host's loopback is then
    /// reachable from inside). Without root this is what happens anyway.
    #[arg(long, conflicts_with = "forward_ports")]
    host_network: bool,
    /// Connections one sandbox may hold open at once through its forwarded ports (a scratch
    /// database's own limit plus a margin); past it, a connection is closed when it is accepted.
    #[arg(long, default_value_t = mayfly_sandboxd::DEFAULT_FORWARD_CONNECTIONS)]
    forward_connections: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    anyhow::ensure!(args.listen.ip().is_loopback(), "--listen must be a loopback address");
    let mut config = mayfly_sandboxd::Config::new(args.domain);
    config.api_keys = args.api_keys;
    config.max_sandboxes = args.max_sandboxes;
    config.max_timeout = args.max_timeout;
    config.python_venv = args.python_venv;
    config.forward_connections = args.forward_connections;
    config.network = if args.host_network {
        mayfly_sandboxd::SandboxNetwork::Host
    } else {
        mayfly_sandboxd::SandboxNetwork::Isolated { forward_ports: args.forward_ports }
    };
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    let state = mayfly_sandboxd::AppState::new(config).context("sandboxd cannot start")?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, root = mayfly_sandboxd::is_root(), "sandboxd listening");
    // Connect frames are small and latency-bound; Nagle plus delayed ACKs would add ~40 ms each.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, mayfly_sandboxd::router(state.clone()))
        .with_graceful_shutdown(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        })
        .await?;
    state.shutdown().await;
    Ok(())
}
