//! Core's own HTTP boundary: one small trait that every provider client in core talks through.
//!
//! Core performs no I/O, so it cannot own an HTTP client. The worker implements [`HttpClient`] on
//! `worker::Fetch`, native code on reqwest, and tests use `memory::MemoryHttpClient`. Futures are not
//! `Send` (`LocalBoxFuture`) because `worker::Fetch` futures are not, and a response body is a byte
//! stream so a process's output can be read while the process still runs.

use std::fmt;

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use futures::stream::{LocalBoxStream, StreamExt};
use thiserror::Error;

pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// Sends one request and answers with the status, the headers and a streaming body.
///
/// The future resolves when the status and headers have arrived; the body is read afterwards.
pub trait HttpClient {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>>;
}

impl<T: HttpClient + ?Sized> HttpClient for &T {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        (**self).send(request)
    }
}

impl<T: HttpClient + ?Sized> HttpClient for std::rc::Rc<T> {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        (**self).send(request)
    }
}

/// A request with its whole body in memory: every request mayfly sends is small.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> HttpRequest {
        HttpRequest { method, url: url.into(), headers: HeaderMap::new(), body: Bytes::new() }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> HttpRequest {
        self.headers.append(name, value);
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> HttpRequest {
        self.body = body.into();
        self
    }
}

/// The body of a response, chunk by chunk, as the network delivers it.
pub type HttpBody = LocalBoxStream<'static, Result<Bytes, HttpError>>;

/// A response whose body has not been read yet.
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: HttpBody,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse").field("status", &self.status).field("headers", &self.headers).finish()
    }
}

impl HttpResponse {
    /// A response whose body arrives as the given chunks, in order; an `Err` chunk breaks the body
    /// off there, as a dropped connection would.
    pub fn from_chunks(status: StatusCode, chunks: Vec<Result<Bytes, HttpError>>) -> HttpResponse {
        HttpResponse { status, headers: HeaderMap::new(), body: futures::stream::iter(chunks).boxed_local() }
    }

    /// A response with its whole body in one chunk.
    pub fn from_bytes(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
        HttpResponse::from_chunks(status, vec![Ok(body.into())])
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> HttpResponse {
        self.headers.append(name, value);
        self
    }

    /// Reads the whole body, refusing more than `max_bytes` so a misbehaving server cannot make
    /// the caller buffer without bound.
    pub async fn collect_body(self, max_bytes: usize) -> Result<Bytes, HttpError> {
        let mut body = self.body;
        let mut all = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if all.len() + chunk.len() > max_bytes {
                return Err(HttpError::BodyTooLarge { max_bytes });
            }
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}

/// Why a request got no (complete) answer. A status code, even 500, is an answer, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the request timed out")]
    Timeout,
    #[error("the request failed: {0}")]
    Request(String),
    #[error("the response body broke off: {0}")]
    Body(String),
    #[error("the response body is larger than {max_bytes} bytes")]
    BodyTooLarge { max_bytes: usize },
}
