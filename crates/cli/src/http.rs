//! core's `HttpClient` on reqwest, for native callers (the CLI, tests, benchmarks). Response bodies
//! stay streams, so process output reaches the terminal as it is produced.

use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use mayfly_core::providers::http::{HttpClient, HttpError, HttpRequest, HttpResponse};

/// A reqwest client behind core's `HttpClient` trait. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
}

impl Default for ReqwestHttpClient {
    fn default() -> ReqwestHttpClient {
        let client = reqwest::Client::builder()
            // A provider that never answers must not hang a turn: connecting is bounded here, and
            // the turn's own deadline bounds the rest.
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("a reqwest client with default TLS settings builds");
        ReqwestHttpClient { client }
    }
}

impl HttpClient for ReqwestHttpClient {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        async move {
            let HttpRequest { method, url, headers, body } = request;
            let response = self
                .client
                .request(method, &url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|err| request_error(&err))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes_stream().map_err(|err| body_error(&err)).boxed_local();
            Ok(HttpResponse { status, headers, body })
        }
        .boxed_local()
    }
}

/// reqwest's own message may carry the URL, and URLs can hold tokens: keep only what went wrong.
fn request_error(err: &reqwest::Error) -> HttpError {
    if err.is_connect() {
        HttpError::Connect("connection refused or host unreachable".to_owned())
    } else if err.is_timeout() {
        HttpError::Timeout
    } else {
        HttpError::Request(kind_of(err).to_owned())
    }
}

fn body_error(err: &reqwest::Error) -> HttpError {
    if err.is_timeout() {
        HttpError::Timeout
    } else {
        HttpError::Body(kind_of(err).to_owned())
    }
}

fn kind_of(err: &reqwest::Error) -> &'static str {
    if err.is_body() || err.is_decode() {
        "the connection broke while the body was read"
    } else if err.is_redirect() {
        "too many redirects"
    } else if err.is_builder() {
        "the request could not be built"
    } else {
        "the connection failed"
    }
}
