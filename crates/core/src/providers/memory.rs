//! An [`HttpClient`] that answers from a function, for tests of code that talks through core's
//! HTTP boundary. It is compiled for core's own tests and, with the `test-support` feature, for
//! other crates' tests; never into a production build.

use std::cell::RefCell;
use std::fmt;

use futures::future::LocalBoxFuture;

use crate::providers::http::{HttpClient, HttpError, HttpRequest, HttpResponse};

/// How a [`MemoryHttpClient`] answers a request.
pub type MemoryAnswer = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, HttpError>>;

/// An [`HttpClient`] that answers from a function and remembers every request, for tests of the
/// provider clients.
pub struct MemoryHttpClient {
    answer: MemoryAnswer,
    requests: RefCell<Vec<HttpRequest>>,
}

impl fmt::Debug for MemoryHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryHttpClient").field("requests", &self.requests.borrow().len()).finish()
    }
}

impl MemoryHttpClient {
    pub fn new(answer: impl Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static) -> MemoryHttpClient {
        MemoryHttpClient { answer: Box::new(answer), requests: RefCell::new(Vec::new()) }
    }

    /// Every request sent so far, oldest first.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.borrow().clone()
    }
}

impl HttpClient for MemoryHttpClient {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        let answer = (self.answer)(&request);
        self.requests.borrow_mut().push(request);
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;
    use http::{HeaderName, HeaderValue, Method, StatusCode};

    use crate::providers::http::{HttpError, HttpRequest, HttpResponse};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn client() -> MemoryHttpClient {
        MemoryHttpClient::new(|request| match request.url.as_str() {
            "http://x/chunks" => Ok(HttpResponse::from_chunks(
                StatusCode::OK,
                vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))],
            )),
            "http://x/broken" => Ok(HttpResponse::from_chunks(
                StatusCode::OK,
                vec![Ok(Bytes::from_static(b"ab")), Err(HttpError::Body("reset".into()))],
            )),
            "http://x/down" => Err(HttpError::Connect("refused".into())),
            _ => Ok(HttpResponse::from_bytes(StatusCode::NOT_FOUND, "no")),
        })
    }

    /// Everything [`MemoryHttpClient`] answers is ready at once, so no executor is needed.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        future.now_or_never().expect("a memory answer is ready at once")
    }

    #[test]
    fn body_streams_chunk_by_chunk_and_requests_are_recorded() {
        let client = client();
        let request = HttpRequest::new(Method::POST, "http://x/chunks")
            .with_header(HeaderName::from_static("x-api-key"), HeaderValue::from_static("k"))
            .with_body("{}");
        let response = block_on(client.send(request.clone())).unwrap();
        assert_eq!(response.status, StatusCode::OK);
        let chunks: Vec<_> = block_on(response.body.collect::<Vec<_>>());
        assert_eq!(chunks, vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))]);
        assert_eq!(client.requests(), vec![request]);
    }

    #[test]
    fn collect_body_joins_chunks_and_reports_breaks_and_limits() {
        let client = client();
        let send = |url: &str| block_on(client.send(HttpRequest::new(Method::GET, url)));
        assert_eq!(block_on(send("http://x/chunks").unwrap().collect_body(4)).unwrap(), "abcd");
        assert_eq!(
            block_on(send("http://x/chunks").unwrap().collect_body(3)).unwrap_err().to_string(),
            "the response body is larger than 3 bytes"
        );
        assert_eq!(
            block_on(send("http://x/broken").unwrap().collect_body(10)).unwrap_err(),
            HttpError::Body("reset".into())
        );
        assert_eq!(send("http://x/down").unwrap_err().to_string(), "could not connect: refused");
        assert_eq!(send("http://x/other").unwrap().status, StatusCode::NOT_FOUND);
    }
}
