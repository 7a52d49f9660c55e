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
