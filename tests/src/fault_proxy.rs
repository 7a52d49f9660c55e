//! A small HTTP proxy that sits in front of a provider and breaks the requests it is told to.
//!
//! Every request is forwarded with `Connection: close`, so one connection carries one request and a
//! fault hits exactly the request it was armed for, whatever connection pooling the client does.
//! A fault is armed for the next request whose method and path match; it fires once. The kinds are
//! the ways a provider fails in the field: an answer of 503, an answer held back past the client's
//! timeout (the provider did the work, the caller never hears of it), and a connection cut in the
//! middle of the answer or of a streamed body.
//!
//! The proxy runs on plain threads and blocking sockets. Dropping it closes every connection it
//! holds, so nothing outlives the test.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wire::{head_says_no_body, read_body, read_head, RequestHead};

mod wire;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Answers `503 Service Unavailable` without asking the provider.
    Unavailable,
    /// Forwards the request, then holds the answer back until the client gives up.
    Hang,
    /// Forwards the request and cuts the connection in the middle of the answer.
    Cut,
    /// Forwards the request, lets the provider answer in full, and closes the connection before a
    /// byte of the answer: the client cannot tell it from a connection that broke while sending.
    Drop,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::Unavailable, Fault::Hang, Fault::Cut];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Unavailable => "503",
            Fault::Hang => "hang",
            Fault::Cut => "cut",
            Fault::Drop => "drop",
        }
    }
}

/// A fault waiting for its request: the first request with this method whose path starts with
/// `path_prefix` (and does not start with any of `except`, and ends with `suffix` when one is
/// given) gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: String,
    pub path_prefix: String,
    pub except: Vec<String>,
    /// For a call told by its path's end (`…/{token}/fork`), not its start.
    pub suffix: Option<String>,
    pub fault: Fault,
}

impl Rule {
    pub fn new(method: &str, path_prefix: &str, fault: Fault) -> Rule {
        Rule { method: method.to_owned(), path_prefix: path_prefix.to_owned(), except: Vec::new(), suffix: None, fault }
    }

    /// The rule, for paths that also end with `suffix` only.
    pub fn ending(mut self, suffix: &str) -> Rule {
        self.suffix = Some(suffix.to_owned());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        method == self.method
            && path.starts_with(&self.path_prefix)
            && !self.except.iter().any(|e| path.starts_with(e))
            && self.suffix.as_deref().is_none_or(|suffix| path.ends_with(suffix))
    }
}

/// A fault that fired: on which request, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub fault: Fault,
    pub method: String,
    pub path: String,
    pub at: Instant,
}

#[derive(Debug, Default)]
struct Shared {
    armed: Vec<Rule>,
    fired: Vec<Fired>,
    /// Every connection the proxy holds, both sides, by connection, so that dropping the proxy can
    /// close them.
    open: Vec<(u64, TcpStream)>,
    next_id: u64,
}

/// A running proxy; dropping it stops it and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    pub name: String,
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stopping: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// The longest a held answer is held: well past any client's timeout, short enough that a client
/// that never gives up does not keep a test alive for long.
const MAX_HOLD: Duration = Duration::from_secs(90);
/// How long to wait for a request's head and body from the client.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl FaultProxy {
    /// Listens on 127.0.0.1:`port` (a free port when 0) and forwards to `upstream`.
    pub fn start(name: &str, port: u16, upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let accept = std::thread::Builder::new().name(format!("proxy-{name}")).spawn({
            let shared = shared.clone();
            let stopping = stopping.clone();
            move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let shared = shared.clone();
                    let stopping = stopping.clone();
                    std::thread::spawn(move || serve(client, upstream, &shared, &stopping));
                }
            }
        })?;
        Ok(FaultProxy { name: name.to_owned(), addr, shared, stopping, accept: Some(accept) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Arms a fault for the next request that matches `rule`.
    pub fn arm(&self, rule: Rule) {
        self.shared.lock().unwrap().armed.push(rule);
    }

    /// Removes every fault that has not fired and returns them.
    pub fn disarm(&self) -> Vec<Rule> {
        std::mem::take(&mut self.shared.lock().unwrap().armed)
    }

    /// Every fault that fired so far, in order.
    pub fn fired(&self) -> Vec<Fired> {
        self.shared.lock().unwrap().fired.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own; it sees the flag and ends.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for (_, stream) in std::mem::take(&mut self.shared.lock().unwrap().open) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// One client connection: one request, with or without a fault.
fn serve(mut client: TcpStream, upstream: SocketAddr, shared: &Mutex<Shared>, stopping: &AtomicBool) {
    if stopping.load(Ordering::SeqCst) {
        return;
    }
    let _ = client.set_nodelay(true);
    let _ = client.set_read_timeout(Some(REQUEST_READ_TIMEOUT));
    let Some((head, rest)) = read_head(&mut client) else { return };
    let Some(request) = RequestHead::parse(&head) else { return };
    let (id, fault) = {
        let mut shared = shared.lock().unwrap();
        let id = shared.next_id;
        shared.next_id += 1;
        if let Ok(clone) = client.try_clone() {
            shared.open.push((id, clone));
        }
        let index = shared.armed.iter().position(|rule| rule.matches(&request.method, &request.path));
        let fault = index.map(|i| shared.armed.remove(i).fault);
        if let Some(fault) = fault {
            let fired = Fired { fault, method: request.method.clone(), path: request.path.clone(), at: Instant::now() };
            shared.fired.push(fired);
        }
        (id, fault)
    };
    let forget = || shared.lock().unwrap().open.retain(|(open, _)| *open != id);
    if fault == Some(Fault::Unavailable) {
        // The body is read first: closing a socket with unread input resets it, and the client
        // would see a broken connection instead of the answer.
        let _ = read_body(&mut client, rest.len(), request.content_length);
        let body = r#"{"ok":false,"code":503,"error":"service_unavailable","message":"service unavailable (fault injected by the test proxy)"}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(answer.as_bytes());
        let _ = client.shutdown(Shutdown::Both);
        forget();
        return;
    }
    // A provider that is down refuses the connection; the closest a proxy can come is to close it.
    let Ok(mut server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        forget();
        return;
    };
    let _ = server.set_nodelay(true);
    if let Ok(clone) = server.try_clone() {
        shared.lock().unwrap().open.push((id, clone));
    }
    if server.write_all(&request.rewritten(&head)).is_err() || server.write_all(&rest).is_err() {
        forget();
        return;
    }
    // The rest of the request body (and anything else the client sends) goes up as it comes.
    let _ = client.set_read_timeout(None);
    let uploader = match (client.try_clone(), server.try_clone()) {
        (Ok(mut from), Ok(mut to)) => Some(std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
        })),
        _ => None,
    };
    match fault {
        None => {
            let _ = std::io::copy(&mut server, &mut client);
        }
        Some(Fault::Hang) => {
            // The provider answers in full; the client hears nothing until it gives up (its read
            // of our side ends) or the hold runs out.
            let mut sink = Vec::new();
            let _ = server.read_to_end(&mut sink);
            let held = Instant::now();
            let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
            while held.elapsed() < MAX_HOLD && !stopping.load(Ordering::SeqCst) && !peer_closed(&client) {}
        }
        Some(Fault::Cut) => cut_answer(&mut server, &mut client),
        Some(Fault::Drop) => {
            let mut sink = Vec::new();
            let _ = server.read_to_end(&mut sink);
        }
        Some(Fault::Unavailable) => unreachable!("answered above"),
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    if let Some(uploader) = uploader {
        let _ = uploader.join();
    }
    forget();
}

/// Whether the peer has closed its side; waits up to the socket's read timeout to find out.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// Passes the answer's head and half of its first body bytes, then closes: mid-response for a
/// JSON answer, mid-stream for a streamed one. An answer without a body is cut inside its head.
fn cut_answer(server: &mut TcpStream, client: &mut TcpStream) {
    let Some((head, body)) = read_head(server) else { return };
    let mut body = body;
    if body.is_empty() && !head_says_no_body(&head) {
        let mut chunk = [0u8; 16 * 1024];
        let _ = server.set_read_timeout(Some(Duration::from_secs(30)));
        if let Ok(n) = server.read(&mut chunk) {
            body.extend_from_slice(&chunk[..n]);
        }
    }
    if body.is_empty() {
        let _ = client.write_all(&head[..head.len() / 2]);
    } else {
        let _ = client.write_all(&head);
        let _ = client.write_all(&body[..body.len().div_ceil(2).min(body.len() - 1).max(1)]);
    }
    let _ = client.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot upstream that answers every request with `answer` and counts requests.
    fn upstream(answer: &'static str) -> (SocketAddr, Arc<Mutex<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(Mutex::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                if read_head(&mut stream).is_some() {
                    *seen.lock().unwrap() += 1;
                    let _ = stream.write_all(answer.as_bytes());
                }
            }
        });
        (addr, count)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\nhello world";

    fn get(proxy: &FaultProxy, path: &str) -> Result<(u16, String), String> {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        match agent.get(&format!("{}{path}", proxy.url())).call() {
            Ok(resp) => {
                let status = resp.status();
                resp.into_string().map(|body| (status, body)).map_err(|e| e.to_string())
            }
            Err(ureq::Error::Status(status, resp)) => Ok((status, resp.into_string().unwrap_or_default())),
            Err(err) => Err(err.to_string()),
        }
    }

    #[test]
    fn each_fault_hits_one_matching_request_once() {
        let (addr, count) = upstream(OK);
        let proxy = FaultProxy::start("test", 0, addr).unwrap();
        assert_eq!(get(&proxy, "/a").unwrap(), (200, "hello world".to_owned()));

        proxy.arm(Rule::new("GET", "/b", Fault::Unavailable));
        assert_eq!(get(&proxy, "/a").unwrap().0, 200, "another path passes");
        assert_eq!(get(&proxy, "/b/1").unwrap().0, 503);
        assert_eq!(get(&proxy, "/b/1").unwrap().0, 200, "a fault fires once");

        proxy.arm(Rule::new("GET", "/", Fault::Cut));
        let cut = get(&proxy, "/c");
        assert!(cut.is_err(), "a cut answer is not a whole answer: {cut:?}");

        proxy.arm(Rule::new("GET", "/", Fault::Hang));
        let started = Instant::now();
        let held = get(&proxy, "/d");
        assert!(held.is_err() && started.elapsed() >= Duration::from_secs(2), "{held:?}");

        let fired: Vec<_> = proxy.fired().iter().map(|f| (f.fault, f.path.clone())).collect();
        assert_eq!(fired, [(Fault::Unavailable, "/b/1".into()), (Fault::Cut, "/c".into()), (Fault::Hang, "/d".into())]);
        assert!(proxy.disarm().is_empty());
        // The 503 never reached the provider; the cut and the held request did.
        assert_eq!(*count.lock().unwrap(), 5);
    }
}
