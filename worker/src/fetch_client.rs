//! core's `HttpClient` on `worker::Fetch`. Response bodies stay `ReadableStream`s read chunk by
//! chunk, so a process's output reaches viewers while the process still runs.

use futures::future::LocalBoxFuture;
use futures::stream::{self, StreamExt};
use futures::FutureExt;
use mayfly_core::http::{
    HeaderMap, HeaderName, HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse, StatusCode,
};
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// The runtime's `fetch` behind core's trait. It holds nothing: workerd pools connections itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FetchClient;

impl HttpClient for FetchClient {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        async move {
            let HttpRequest { method, url, headers, body } = request;
            let js_headers = Headers::new();
            for (name, value) in &headers {
                let value = value.to_str().map_err(|_| HttpError::Request("a header value is not text".into()))?;
                js_headers
                    .append(name.as_str(), value)
                    .map_err(|_| HttpError::Request("the runtime refused a header".into()))?;
            }
            let mut init = RequestInit::new();
            init.with_method(Method::from(method.as_str().to_owned())).with_headers(js_headers);
            if !body.is_empty() {
                init.with_body(Some(worker::js_sys::Uint8Array::from(&body[..]).into()));
            }
            // The runtime's error texts can quote the URL, and URLs can carry tokens: say only
            // what went wrong.
            let request = Request::new_with_init(&url, &init)
                .map_err(|_| HttpError::Request("the request could not be built".into()))?;
            let mut response = Fetch::Request(request)
                .send()
                .await
                .map_err(|_| HttpError::Connect("the connection failed or was refused".into()))?;
            let status = StatusCode::from_u16(response.status_code())
                .map_err(|_| HttpError::Request("the answer has an invalid status".into()))?;
            let mut header_map = HeaderMap::new();
            for (name, value) in response.headers().entries() {
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
                {
                    header_map.append(name, value);
                }
            }
            let body = match response.stream() {
                Ok(chunks) => chunks
                    .map(|chunk| {
                        chunk
                            .map(bytes::Bytes::from)
                            .map_err(|_| HttpError::Body("the connection broke while the body was read".into()))
                    })
                    .boxed_local(),
                // A response without a body (204, HEAD) is not a stream at all.
                Err(_) => stream::empty().boxed_local(),
            };
            Ok(HttpResponse { status, headers: header_map, body })
        }
        .boxed_local()
    }
}
