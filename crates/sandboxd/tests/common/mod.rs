//! Test harness: a sandboxd on 127.0.0.1:0 with its own state directory and jail uid range, plus
//! small clients for the control plane, the Connect process stream and `/files`.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mayfly_core::wire::connect::Decoder;
use mayfly_core::wire::e2b::{EndEvent, EndStream, ProcessEvent, StreamMessage};
use mayfly_sandboxd::{AppState, Config};

pub const KEY: &str = "test-key";

pub struct Server {
    pub base: String,
    pub state: AppState,
    pub state_dir: PathBuf,
    pub uid_base: u32,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// What the `mayfly` template mounts: the sandboxes' venv (psycopg only).
pub fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/sandbox-venv")
}

/// The tests' own Python tools (the official e2b SDK among them).
pub fn tools_venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/venv")
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new("localhost");
        config.api_keys = vec![KEY.into()];
        config.state_dir = dir.path().join("state");
        config.python_venv = Some(venv());
        // A uid range of our own, so leftover checks cannot see another test's jails.
        config.jail_uid_base = 300_000 + rand::random_range(0..10_000u32) * 100;
        tweak(&mut config);
        let (state_dir, uid_base) = (config.state_dir.clone(), config.jail_uid_base);
        let state = AppState::new(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = mayfly_sandboxd::router(state.clone());
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { base, state, state_dir, uid_base, http: reqwest::Client::new(), task, _dir: dir }
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).header("x-api-key", KEY)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).header("x-api-key", KEY)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(format!("{}{path}", self.base)).header("x-api-key", KEY)
    }

    pub async fn create(&self, body: serde_json::Value) -> Sbx {
        let res = self.post("/sandboxes").json(&body).send().await.unwrap();
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        let v: serde_json::Value = res.json().await.unwrap();
        Sbx {
            id: v["sandboxID"].as_str().unwrap().to_owned(),
            token: v["envdAccessToken"].as_str().map(str::to_owned),
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn kill(&self, id: &str) -> u16 {
        self.delete(&format!("/sandboxes/{id}")).send().await.unwrap().status().as_u16()
    }

    /// Kills what is left and asserts nothing of this server remains on the host: not even its
    /// templates' files, or its state directory.
    pub async fn finish(self) {
        self.state.shutdown().await;
        self.task.abort();
        assert_no_leftovers(&self.state_dir, self.uid_base).await;
        assert!(!self.state_dir.exists(), "{} is left after shutdown", self.state_dir.display());
    }
}

/// Host processes running as one of this server's jail uids.
pub fn jailed_processes(uid_base: u32) -> Vec<String> {
    jailed(uid_base)
        .into_iter()
        .map(|(pid, dir, status)| {
            let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap_or_default();
            let uid = uid.split_whitespace().next().unwrap_or_default();
            let cmd = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            format!("{pid} uid={uid} {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

/// `(pid, /proc/<pid>, its status)` of every live host process whose real uid is one of this
/// server's jail uids.
pub fn jailed(uid_base: u32) -> Vec<(String, PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
        let ours = uid.and_then(|u| u.parse::<u32>().ok()).is_some_and(|u| (uid_base..uid_base + 100).contains(&u));
        if ours && !status.contains("State:\tZ") {
            found.push((pid, entry.path(), status));
        }
    }
    found
}

/// Polls (with a deadline) until no process, mount or directory of the server's sandboxes is left
/// (the server's own templates stay while it runs).
pub async fn assert_no_leftovers(state_dir: &std::path::Path, uid_base: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = jailed_processes(uid_base);
        let mounts: Vec<String> = std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .filter(|l| l.contains(state_dir.to_str().unwrap()) && !l.contains("/.templates"))
            .map(str::to_owned)
            .collect();
        let dirs: Vec<String> = std::fs::read_dir(state_dir)
            .map(|d| {
                d.flatten().filter(|e| e.file_name() != ".templates").map(|e| e.path().display().to_string()).collect()
            })
            .unwrap_or_default();
        if procs.is_empty() && mounts.is_empty() && dirs.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "leftovers: procs={procs:?} mounts={mounts:?} dirs={dirs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A created sandbox, addressed through the routing headers.
#[derive(Clone)]
pub struct Sbx {
    pub id: String,
    pub token: Option<String>,
    pub base: String,
    pub http: reqwest::Client,
}

/// Everything a process stream said.
#[derive(Debug, Default)]
pub struct Run {
    pub pid: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub end: Option<EndEvent>,
    pub end_stream: Option<EndStream>,
    pub keepalives: usize,
    pub max_chunk: usize,
    pub first_event_start: bool,
    /// Raw end-event JSON, to check what is omitted.
    pub end_json: Option<String>,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn exit_code(&self) -> i32 {
        self.end.as_ref().expect("no end event").exit_code
    }
}

impl Sbx {
    pub fn envd(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("E2b-Sandbox-Id", &self.id)
            .header("E2b-Sandbox-Port", "49983");
        if let Some(t) = &self.token {
            r = r.header("X-Access-Token", t);
        }
        r
    }

    /// Runs a shell command through `process.Process/Start` and collects the stream.
    pub async fn run(&self, script: &str) -> Run {
        self.start(
            serde_json::json!({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", script]}, "stdin": false}),
            &[],
        )
        .await
    }

    /// Runs `script` in the background, returning once it has started (it touches a marker file
    /// first, which is looked for through the file API, for at most 10 s).
    pub async fn running(&self, script: &str) -> tokio::task::JoinHandle<Run> {
        let bg = self.clone();
        let script = format!("touch /tmp/.started; {script}");
        let handle = tokio::spawn(async move { bg.run(&script).await });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.rpc("/filesystem.Filesystem/Stat", serde_json::json!({"path": "/tmp/.started"})).await.0 != 200 {
            assert!(std::time::Instant::now() < deadline, "the process never started");
        }
        handle
    }

    /// Starts a shell command and reads its stream until it ends or breaks off.
    pub async fn run_until_cut(&self, script: &str) -> (Run, Option<reqwest::Error>) {
        let req = serde_json::json!({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", script]}, "stdin": false});
        read_stream_until_cut(self.start_response(req, &[]).await).await
    }

    pub async fn start(&self, req: serde_json::Value, headers: &[(&str, &str)]) -> Run {
        read_stream(self.start_response(req, &[&[("authorization", "Basic dXNlcjo=")], headers].concat()).await).await
    }

    /// `process.Process/Start` with `req` and `headers`, its stream not yet read.
    pub async fn start_response(&self, req: serde_json::Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let body = mayfly_core::wire::connect::encode(0, &serde_json::to_vec(&req).unwrap());
        let mut r = self
            .envd(reqwest::Method::POST, "/process.Process/Start")
            .header("content-type", "application/connect+json")
            .header("connect-protocol-version", "1")
            .body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/connect+json");
        res
    }

    /// The pid of the first process `process.Process/List` names, once it names one.
    pub async fn first_listed_pid(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, v) = self.rpc("/process.Process/List", serde_json::json!({})).await;
            if let Some(p) = v["processes"].as_array().and_then(|p| p.first()) {
                return p["pid"].as_u64().unwrap();
            }
            assert!(tokio::time::Instant::now() < deadline, "no command showed in List");
        }
    }

    pub async fn write(&self, path: &str, data: &[u8]) -> reqwest::Response {
        self.envd(reqwest::Method::POST, &format!("/files?path={path}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn read(&self, path: &str) -> reqwest::Response {
        self.envd(reqwest::Method::GET, &format!("/files?path={path}")).send().await.unwrap()
    }

    pub async fn rpc(&self, method: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let res = self
            .envd(reqwest::Method::POST, method)
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// Decodes a Connect stream chunk by chunk with core's decoder.
pub async fn read_stream(res: reqwest::Response) -> Run {
    let (run, cut) = read_stream_until_cut(res).await;
    assert!(cut.is_none(), "the stream broke off: {cut:?}");
    assert!(run.end_stream.is_some(), "stream ended without an end-stream frame");
    run
}

/// What a stream said until it ended, or broke off (then with the transfer's error), as a stream
/// does when its sandbox is killed.
pub async fn read_stream_until_cut(mut res: reqwest::Response) -> (Run, Option<reqwest::Error>) {
    let mut d = Decoder::default();
    let mut run = Run::default();
    let mut first = true;
    loop {
        let chunk = match res.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return (run, Some(e)),
        };
        d.push(&chunk);
        while let Some(f) = d.next_frame().unwrap() {
            assert!(run.end_stream.is_none(), "a frame after end-stream");
            if f.is_end_stream() {
                run.end_stream = Some(serde_json::from_slice(&f.payload).unwrap());
                continue;
            }
            let msg: StreamMessage = serde_json::from_slice(&f.payload).unwrap();
            if first {
                run.first_event_start = matches!(msg.event, ProcessEvent::Start(_));
                first = false;
            }
            match msg.event {
                ProcessEvent::Start(s) => run.pid = Some(s.pid),
                ProcessEvent::Data(mayfly_core::wire::e2b::DataEvent::Stdout(b)) => {
                    run.max_chunk = run.max_chunk.max(b.0.len());
                    run.stdout.extend(b.0);
                }
                ProcessEvent::Data(mayfly_core::wire::e2b::DataEvent::Stderr(b)) => {
                    run.max_chunk = run.max_chunk.max(b.0.len());
                    run.stderr.extend(b.0);
                }
                ProcessEvent::Data(_) => {}
                ProcessEvent::Keepalive(_) => run.keepalives += 1,
                ProcessEvent::End(e) => {
                    let raw: serde_json::Value = serde_json::from_slice(&f.payload).unwrap();
                    run.end_json = Some(raw["event"]["end"].to_string());
                    run.end = Some(e);
                }
            }
        }
    }
    d.finish().unwrap();
    (run, None)
}
