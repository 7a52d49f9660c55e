//! Provisioning latency: create and delete through the HTTP API with and without the warm pool, next to
//! a bare `CREATE DATABASE` + `DROP DATABASE` on the same private cluster in the same run.

use std::time::{Duration, Instant};

use mayfly_scratchdb::{Config, EmbeddedPostgres, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SAMPLES: usize = 40;
const TOKEN: &str = "bench-token";

fn pct(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

fn report(label: &str, samples: &mut [Duration]) {
    println!(
        "{label:<40} p50 {:>8.2} ms   p95 {:>8.2} ms   (n={})",
        pct(samples, 0.5),
        pct(samples, 0.95),
        samples.len()
    );
}

/// One HTTP/1.1 request; returns the status and body.
async fn call(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), rest.to_string())
}

async fn api_run(pg: &EmbeddedPostgres, pool: usize) -> (Vec<Duration>, Vec<Duration>) {
    let config = Config {
        schema: format!("bench_pool_{pool}"),
        pool_size: pool,
        tokens: vec![TOKEN.into()],
        ..Config::new(pg.admin_url())
    };
    let service = Service::start(config).await.expect("service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(mayfly_scratchdb::serve(service.clone(), listener));
    let (mut creates, mut deletes) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES + 3 {
        // Measure a hand-out from a full pool, the state a per-turn caller normally meets.
        while pool > 0 && service.pool_ready().await.expect("pool count") < pool {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        let (status, body) = call(addr, "POST", "/db/new", &format!(r#"{{"name":"bench-{i}"}}"#)).await;
        let create = t.elapsed();
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let token = v["token"].as_str().expect("token").to_string();
        let t = Instant::now();
        let (status, body) = call(addr, "DELETE", &format!("/api/v1/resources/{token}"), "").await;
        let delete = t.elapsed();
        assert_eq!(status, 200, "{body}");
        // The first few warm up connections and caches.
        if i >= 3 {
            creates.push(create);
            deletes.push(delete);
        }
    }
    server.abort();
    service.shutdown().await;
    (creates, deletes)
}

async fn bare_run(pg: &EmbeddedPostgres, strategy: &str) -> (Vec<Duration>, Vec<Duration>) {
    let (c, conn) = tokio_postgres::connect(pg.admin_url(), tokio_postgres::NoTls).await.expect("admin");
    tokio::spawn(conn);
    let (mut creates, mut drops) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES + 3 {
        let t = Instant::now();
        c.batch_execute(&format!("CREATE DATABASE bare_{i} {strategy}")).await.expect("create");
        let create = t.elapsed();
        let t = Instant::now();
        c.batch_execute(&format!("DROP DATABASE bare_{i} WITH (FORCE)")).await.expect("drop");
        if i >= 3 {
            creates.push(create);
            drops.push(t.elapsed());
        }
    }
    (creates, drops)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; there are no filters to honour.
    let pg = EmbeddedPostgres::start_temporary().expect("start the private cluster");
    let (mut bc, mut bd) = bare_run(&pg, "").await;
    let (mut fc, mut fd) = bare_run(&pg, "STRATEGY = FILE_COPY").await;
    let (mut nc, mut nd) = api_run(&pg, 0).await;
    let (mut pc, mut pd) = api_run(&pg, 8).await;
    println!("scratchdb provisioning latency (private cluster, fsync off, {SAMPLES} samples each)");
    report("bare CREATE DATABASE (default WAL_LOG)", &mut bc);
    report("bare DROP DATABASE", &mut bd);
    report("bare CREATE DATABASE (FILE_COPY)", &mut fc);
    report("bare DROP DATABASE (after FILE_COPY)", &mut fd);
    report("POST /db/new, no pool", &mut nc);
    report("DELETE resource, no pool", &mut nd);
    report("POST /db/new, pool of 8", &mut pc);
    report("DELETE resource, pool of 8", &mut pd);
    pg.stop();
}
