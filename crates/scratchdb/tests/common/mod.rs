//! Test harness: one private Postgres cluster per test binary, a scratchdb per test in its own registry
//! schema, and a minimal HTTP client.
//!
//! The cluster is a static that is never dropped; its watchdog stops it and removes its directory when
//! the test process exits, however it exits.

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

pub use mayfly_scratchdb::Config;
use mayfly_scratchdb::{EmbeddedPostgres, Service};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TOKEN_A: &str = "token-alpha";
pub const TOKEN_B: &str = "token-bravo";

static CLUSTER: OnceLock<EmbeddedPostgres> = OnceLock::new();

pub fn cluster() -> &'static EmbeddedPostgres {
    CLUSTER.get_or_init(|| EmbeddedPostgres::start_temporary().expect("start the test cluster"))
}

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub service: Service,
    pub schema: String,
    task: tokio::task::JoinHandle<()>,
}

pub fn config(schema: &str, pool: usize) -> Config {
    Config {
        schema: schema.into(),
        pool_size: pool,
        tokens: vec![TOKEN_A.into(), TOKEN_B.into()],
        sweep_interval: Duration::from_secs(3600),
        storage_check_interval: Duration::from_millis(200),
        ..Config::new(cluster().admin_url())
    }
}

pub fn fresh_schema() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

impl Server {
    pub async fn start(config: Config) -> Server {
        let schema = config.schema.clone();
        let service = Service::start(config).await.expect("start service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn({
            let service = service.clone();
            async move {
                let _ = mayfly_scratchdb::serve(service, listener).await;
            }
        });
        Server { addr, service, schema, task }
    }

    pub async fn stop(self) {
        self.task.abort();
        self.service.shutdown().await;
    }

    /// Sends one request; returns status, JSON body (Null if none) and the raw head.
    pub async fn call(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<&str>) -> Resp {
        self.call_h(method, path, bearer, &[], body).await
    }

    pub async fn call_h(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        exchange(s, self.addr, method, path, bearer, headers, body).await
    }

    /// Like `call_h`, from a connection bound to `source` (any 127.x.y.z works on loopback), so the
    /// server sees another caller.
    pub async fn call_from(
        &self,
        source: IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let s = socket.connect(self.addr).await.unwrap();
        exchange(s, self.addr, method, path, None, headers, body).await
    }

    /// Creates a resource and returns the 201 body.
    pub async fn create(&self, bearer: Option<&str>, name: &str) -> Value {
        let r = self.call("POST", "/db/new", bearer, Some(&format!(r#"{{"name":"{name}"}}"#))).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        r.json
    }
}

pub async fn exchange(
    mut s: tokio::net::TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(b) = bearer {
        req.push_str(&format!("Authorization: Bearer {b}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let json = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // Axum only chunks bodies of unknown length; JSON answers carry a length, but be safe.
        let mut out = String::new();
        let mut r = rest;
        loop {
            let (len, tail) = r.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(len.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            r = &tail[n + 2..];
        }
        serde_json::from_str(&out).unwrap_or(Value::Null)
    } else {
        serde_json::from_str(rest).unwrap_or(Value::Null)
    };
    Resp { status, json, head: head.to_ascii_lowercase() }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub json: Value,
    pub head: String,
}

/// A superuser connection to the shared cluster, for checking what really exists.
pub async fn admin() -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(cluster().admin_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

pub async fn db_exists(admin: &tokio_postgres::Client, token: &str) -> bool {
    admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&format!("db_{token}")]).await.unwrap().is_some()
}

/// Whether the resource's role exists, under its name or the one older versions gave it.
pub async fn role_exists(admin: &tokio_postgres::Client, token: &str) -> bool {
    let names = [format!("db_{token}"), format!("usr_{token}")];
    admin.query_opt("SELECT 1 FROM pg_roles WHERE rolname = ANY($1)", &[&names.as_slice()]).await.unwrap().is_some()
}

/// Connects with a resource's URL; the error text on failure.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok((c, conn)) => {
            tokio::spawn(conn);
            Ok(c)
        }
        Err(e) => Err(match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        }),
    }
}

/// `url` with its database (the path) replaced by `db`, user and password untouched.
pub fn with_database(url: &str, db: &str) -> String {
    let (credentials, rest) = url.rsplit_once('@').expect("a url with credentials");
    let (host, path) = rest.split_once('/').expect("a url with a database");
    let query = path.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{credentials}@{host}/{db}{query}")
}

/// Polls `f` until it holds; panics with `what` after 60 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {v}")).to_string()
}

/// Sessions of a resource's role, or in its database, that Postgres shows right now.
pub async fn sessions_of(admin: &tokio_postgres::Client, token: &str) -> i64 {
    let name = format!("db_{token}");
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE (usename = $1 OR datname = $1) AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

/// The error envelope with `status` and `code`; a `503` must say when to retry.
pub fn assert_envelope(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    assert_eq!((r.json["ok"].clone(), r.json["error"].clone()), (Value::Bool(false), code.into()), "{:?}", r.json);
    assert!(r.json["message"].is_string(), "{:?}", r.json);
    if status == 503 {
        assert!(r.json["retry_after_seconds"].as_u64().is_some_and(|s| s > 0), "{:?}", r.json);
    }
}

/// Runs the futures together on this task (each is a round trip to the same server) and returns
/// their outputs in order.
pub async fn futures_join<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
