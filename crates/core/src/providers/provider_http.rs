//! What both provider clients do with HTTP, once: build a request to the provider's base URL with
//! its credential, send it with the shared retries, and turn the answer into a body or a typed
//! error.
//!
//! Each client keeps what is its own: the paths and bodies, and the one function that maps an error
//! answer to its typed error ([`StatusError`]). E2B's data plane (envd) has a base URL per sandbox;
//! its requests are built by the E2B client and sent through here all the same.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::providers::http::{
    HeaderName, HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse, Method, StatusCode,
};
use crate::providers::retry::{send_with_retry, send_within, RetryPolicy};
use crate::providers::{Clock, ProviderError};
use crate::url::join_url;

/// The most a provider's error body is read for its message: errors are small, and a misbehaving
/// server must not make us buffer without bound.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most a success body is read: a list answer is at most 100 small items, a create answer a
/// few hundred bytes.
pub(crate) const MAX_JSON_BODY: usize = 4 * 1024 * 1024;

/// How a client maps an error answer (any status but 2xx, and its body) to its typed error.
pub(crate) type StatusError = fn(&'static str, StatusCode, &[u8]) -> ProviderError;

/// The header that carries a provider's credential on every request to its base URL.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) header: HeaderName,
    /// The header's name as a person writes it, for the error a bad value gives.
    pub(crate) label: &'static str,
    pub(crate) value: String,
}

/// One provider's HTTP: where it is, as whom the client talks to it, and how patiently.
pub(crate) struct ProviderHttp<H, C> {
    provider: &'static str,
    base_url: String,
    credential: Option<Credential>,
    http: H,
    clock: C,
    retry: RetryPolicy,
    status_error: StatusError,
}

impl<H, C> ProviderHttp<H, C> {
    pub(crate) fn new(
        provider: &'static str,
        base_url: impl Into<String>,
        credential: Option<Credential>,
        http: H,
        clock: C,
        status_error: StatusError,
    ) -> ProviderHttp<H, C> {
        ProviderHttp {
            provider,
            base_url: base_url.into(),
            credential,
            http,
            clock,
            retry: RetryPolicy::default(),
            status_error,
        }
    }

    pub(crate) fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    pub(crate) fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A request the provider does not understand, or a value mayfly cannot send it.
    pub(crate) fn protocol(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Protocol { provider: self.provider, message: message.into() }
    }

    /// A header value from text that came from configuration or a provider. Control characters are
    /// impossible in a valid header; such a value is a configuration error, reported as a protocol
    /// one rather than a panic.
    pub(crate) fn header(&self, label: &str, value: &str) -> Result<HeaderValue, ProviderError> {
        HeaderValue::from_str(value)
            .map_err(|_| self.protocol(format!("the value for the {label} header is not valid in a header")))
    }

    /// A request to `path` under the base URL, with the credential and `Accept: application/json`.
    pub(crate) fn request(&self, method: Method, path: &str) -> Result<HttpRequest, ProviderError> {
        let mut request = HttpRequest::new(method, join_url(&self.base_url, path));
        if let Some(credential) = &self.credential {
            let value = self.header(credential.label, &credential.value)?;
            request = request.with_header(credential.header.clone(), value);
        }
        Ok(request.with_header(header_name("accept"), HeaderValue::from_static("application/json")))
    }

    /// What an answer that is not a 2xx says, as the client's typed error.
    pub(crate) async fn error_of(&self, response: HttpResponse) -> ProviderError {
        let status = response.status;
        let body = error_body(response).await;
        (self.status_error)(self.provider, status, &body)
    }

    /// The body of a 2xx answer, or the typed error of any other.
    pub(crate) async fn expect_success(&self, response: HttpResponse) -> Result<Bytes, ProviderError> {
        if !response.status.is_success() {
            return Err(self.error_of(response).await);
        }
        response
            .collect_body(MAX_JSON_BODY)
            .await
            .map_err(|source| ProviderError::Http { provider: self.provider, source })
    }

    /// A success body read as `T`; what does not read is a protocol error named by `what`.
    pub(crate) fn parse_json<T: DeserializeOwned>(&self, body: &[u8], what: &str) -> Result<T, ProviderError> {
        serde_json::from_slice(body).map_err(|error| self.protocol(format!("{what}: {error}")))
    }
}

impl<H: HttpClient, C: Clock> ProviderHttp<H, C> {
    /// Sends `request` with the client's retries ([`send_with_retry`]).
    pub(crate) async fn send(&self, request: &HttpRequest, idempotent: bool) -> Result<HttpResponse, ProviderError> {
        self.send_with(&self.retry, request, idempotent).await
    }

    /// Sends `request` with retries of another patience than the client's own.
    pub(crate) async fn send_with(
        &self,
        policy: &RetryPolicy,
        request: &HttpRequest,
        idempotent: bool,
    ) -> Result<HttpResponse, ProviderError> {
        send_with_retry(&self.http, &self.clock, policy, request, idempotent, self.provider).await
    }

    /// Sends `request` exactly once, waiting for its answer to begin as long as one attempt may.
    pub(crate) async fn send_once(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        send_within(&self.http, &self.clock, self.retry.attempt_timeout_ms, request).await
    }

    /// Sends `request` (with retries) and reads its 2xx body as `T`, or returns the typed error.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        request: &HttpRequest,
        idempotent: bool,
        what: &str,
    ) -> Result<T, ProviderError> {
        let response = self.send(request, idempotent).await?;
        let body = self.expect_success(response).await?;
        self.parse_json(&body, what)
    }
}

/// Reads an error answer's body (bounded); a body that breaks off is reported as empty, since the
/// status alone still says what went wrong.
pub(crate) async fn error_body(response: HttpResponse) -> Bytes {
    response.collect_body(MAX_ERROR_BODY).await.unwrap_or_default()
}

/// A static header name; all of ours are lowercase ASCII.
pub(crate) fn header_name(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}
