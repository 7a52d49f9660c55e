//! The native backend: reqwest for the calls, and the event stream as Server-Sent Events read
//! from reqwest's body as it arrives; tokio's timer for the waits. Its futures and streams are
//! `Send`, so a client's calls and streams can move between a runtime's threads.

use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{Future, StreamExt};

use crate::backend::Backend;
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::routes::{Answer, Call, Endpoint, Method};
use crate::sse;

/// How long a call may take, answer included.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The API sends a comment every 15 s on a silent stream: past this with nothing at all, the
/// connection is dead, and a new one is opened.
const SILENT_STREAM: Duration = Duration::from_secs(45);

/// reqwest and tokio behind [`Backend`]. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct Native {
    http: reqwest::Client,
}

impl Native {
    pub fn new() -> Native {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(SILENT_STREAM)
            .build()
            .expect("a reqwest client with default TLS settings builds");
        Native { http }
    }

    /// A backend on a reqwest client of the caller's (proxies, TLS roots, timeouts).
    pub fn with_http(http: reqwest::Client) -> Native {
        Native { http }
    }

    fn request(&self, call: &Call) -> reqwest::RequestBuilder {
        let method = match call.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut request = self.http.request(method, &call.url);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.header("Content-Type", "application/json").body(body.clone());
        }
        request
    }
}

impl Default for Native {
    fn default() -> Native {
        Native::new()
    }
}

impl Client<Native> {
    /// A client of the API at `base_url` (`https://mayfly.example`) with the API key `key`.
    pub fn new(base_url: &str, key: &str) -> Client<Native> {
        Client::with_backend(base_url, key, Native::new())
    }
}

impl Backend for Native {
    type Frames = BoxStream<'static, Result<String>>;

    fn send(&self, call: Call) -> impl Future<Output = Result<Answer>> {
        let request = self.request(&call).timeout(CALL_TIMEOUT);
        async move {
            let response = request.send().await.map_err(|err| transport(&err))?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|err| transport(&err))?;
            Ok(Answer { status, body })
        }
    }

    fn open_events(
        &self,
        endpoint: &Endpoint,
        key: &str,
        turn_id: &str,
        after: u64,
    ) -> impl Future<Output = Result<Self::Frames>> {
        let request = self.request(&Call::events(endpoint, key, turn_id, after));
        async move {
            let response = request.send().await.map_err(|err| transport(&err))?;
            let status = response.status().as_u16();
            if !response.status().is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err(ClientError::from_answer(status, &body));
            }
            let mut decoder = sse::Decoder::default();
            let frames = response.bytes_stream().flat_map(move |chunk| match chunk {
                Ok(bytes) => stream::iter(decoder.feed(&bytes).into_iter().map(Ok).collect::<Vec<_>>()),
                Err(err) => stream::iter(vec![Err(transport(&err))]),
            });
            Ok(frames.boxed())
        }
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}

/// reqwest's message names the URL; what went wrong is enough (a URL may one day hold a token).
fn transport(err: &reqwest::Error) -> ClientError {
    let what = if err.is_connect() {
        "the connection was refused or the host is unreachable"
    } else if err.is_timeout() {
        "no answer in time"
    } else if err.is_body() || err.is_decode() {
        "the connection broke while the answer was read"
    } else {
        "the request failed"
    };
    ClientError::Transport(what.to_owned())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use futures::{Stream, StreamExt};
    use mayfly_core::{CreateTurnRequest, Language};

    use super::*;

    #[test]
    fn a_client_printed_for_debugging_never_shows_the_credential() {
        let printed = format!("{:?}", Client::new("https://api.example", "mk_secret-key"));
        assert!(!printed.contains("mk_secret-key"), "{printed}");
        assert!(printed.contains("https://api.example"), "{printed}");
    }

    fn assert_send<T: Send>(_: &T) {}

    /// A one-request server: reads the request and answers `answer`, then hands back the request.
    fn serve_once(answer: String) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (url, handle)
    }

    #[tokio::test]
    async fn calls_and_streams_are_send_and_a_create_sends_its_idempotency_key() {
        let body = r#"{"turn_id":"t_1","events_url":"/v1/turns/t_1/events","status_url":"/v1/turns/t_1"}"#;
        let answer =
            format!("HTTP/1.1 201 Created\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        let (url, server) = serve_once(answer);
        let client = Client::new(&url, "key-1");
        let request = CreateTurnRequest::new("print(1)", Language::Python);
        let create = client.create_idempotent(&request, "retry-7");
        assert_send(&create);
        assert_eq!(create.await.unwrap().turn_id, "t_1");
        let sent = server.join().unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("post /v1/turns "), "{sent}");
        assert!(sent.contains("idempotency-key: retry-7") && sent.contains("authorization: bearer key-1"), "{sent}");
        let events = client.events("t_1");
        assert_send(&events);
        fn is_stream<S: Stream>(_: &S) {}
        is_stream(&events);
    }

    #[tokio::test]
    async fn a_stream_the_api_refuses_ends_with_its_error() {
        let body = r#"{"error":{"code":"not_found","message":"no such turn"}}"#;
        let answer =
            format!("HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        let (url, server) = serve_once(answer);
        let events: Vec<_> = Client::new(&url, "k").events("t 1").collect().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].as_ref().unwrap_err().to_string(), "no such turn (404)");
        let sent = server.join().unwrap();
        assert!(sent.starts_with("GET /v1/turns/t%201/events?after=0 "), "{sent}");
        assert!(sent.to_ascii_lowercase().contains("accept: text/event-stream"), "{sent}");
    }
}
