//! Benchmark: p50/p95 of create latency and of time to the first stdout byte of `echo`, next to
//! a bare `bwrap … true` measured in the same run (the floor).
//!
//! `cargo bench -p mayfly-sandboxd`. A report, not a test: nothing here fails on a number.

use std::time::{Duration, Instant};

use mayfly_core::connect::Decoder;
use mayfly_core::e2b::{DataEvent, ProcessEvent, StreamMessage};

const ROUNDS: usize = 40;

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, v: &[Duration]) {
    println!(
        "{name:<34} p50 {:>7.2} ms   p95 {:>7.2} ms   (n={})",
        pct(v.to_vec(), 0.5).as_secs_f64() * 1e3,
        pct(v.to_vec(), 0.95).as_secs_f64() * 1e3,
        v.len()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // Floor: a bare bwrap spawn with the same namespaces.
    let mut floor = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let st = mayfly_sandboxd::bwrap_baseline_command().status()?;
        anyhow::ensure!(st.success(), "bare bwrap failed");
        floor.push(t.elapsed());
    }

    let dir = tempfile::tempdir()?;
    let mut config = mayfly_sandboxd::Config::new("localhost");
    config.state_dir = dir.path().join("state");
    let state = mayfly_sandboxd::AppState::new(config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = mayfly_sandboxd::router(state.clone());
    // Small Connect frames must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    let (mut create, mut first_byte, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        let v: serde_json::Value = http
            .post(format!("{base}/sandboxes"))
            .json(&serde_json::json!({"templateID": "base", "timeout": 60}))
            .send()
            .await?
            .json()
            .await?;
        create.push(t0.elapsed());
        let id = v["sandboxID"].as_str().unwrap_or_default().to_owned();
        let req = serde_json::json!({"process": {"cmd": "echo", "args": ["hi"]}, "stdin": false});
        let t1 = Instant::now();
        let mut res = http
            .post(format!("{base}/process.Process/Start"))
            .header("E2b-Sandbox-Id", &id)
            .header("E2b-Sandbox-Port", "49983")
            .header("content-type", "application/connect+json")
            .body(mayfly_core::connect::encode(0, &serde_json::to_vec(&req)?).to_vec())
            .send()
            .await?;
        let mut d = Decoder::default();
        'read: while let Some(chunk) = res.chunk().await? {
            d.push(&chunk);
            while let Some(f) = d.next_frame()? {
                if f.is_end_stream() {
                    break 'read;
                }
                let m: StreamMessage = serde_json::from_slice(&f.payload)?;
                if matches!(m.event, ProcessEvent::Data(DataEvent::Stdout(_))) {
                    first_byte.push(t1.elapsed());
                    total.push(t0.elapsed());
                }
            }
        }
        http.delete(format!("{base}/sandboxes/{id}")).send().await?;
    }
    println!("sandboxd benchmark ({ROUNDS} rounds, sequential)");
    report("floor: bare `bwrap ... true`", &floor);
    report("create (POST /sandboxes)", &create);
    report("first stdout byte of `echo`", &first_byte);
    report("create + first stdout byte", &total);
    println!(
        "ratio first-byte / floor (p50): {:.2}",
        pct(first_byte.clone(), 0.5).as_secs_f64() / pct(floor.clone(), 0.5).as_secs_f64()
    );
    state.shutdown().await;
    server.abort();
    Ok(())
}
