//! core's `HttpClient` on `worker::Fetch`. Response bodies stay `ReadableStream`s read chunk by
//! chunk, so a process's output reaches viewers while the process still runs.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::future::LocalBoxFuture;
use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;
use mayfly_core::providers::http::{
    HeaderMap, HeaderName, HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse, StatusCode,
};
use web_sys::{
    ReadableStream, ReadableStreamByobReader, ReadableStreamDefaultReader, ReadableStreamGetReaderOptions,
    ReadableStreamReaderMode,
};
use worker::js_sys::{Function, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Headers, Method, Request, RequestInit, ResponseBody};

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
            let response = Fetch::Request(request).send().await.map_err(|err| fetch_error(&err.to_string()))?;
            let status = StatusCode::from_u16(response.status_code())
                .map_err(|_| HttpError::Request("the answer has an invalid status".into()))?;
            let mut header_map = HeaderMap::new();
            for (name, value) in response.headers().entries() {
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
                {
                    header_map.append(name, value);
                }
            }
            let body = match response.body() {
                ResponseBody::Stream(body) => BodyStream::new(body).boxed_local(),
                // A response without a body (204, HEAD) is not a stream at all.
                _ => stream::empty().boxed_local(),
            };
            Ok(HttpResponse { status, headers: header_map, body })
        }
        .boxed_local()
    }
}

/// The most a read of a response body takes at once. The runtime hands a default reader about
/// 4 KiB a read however much has arrived; a read into a buffer of this size takes all of it, so a
/// process's output costs a read per provider message, not one per 4 KiB (docs/performance.md).
const READ_BYTES: u32 = 64 * 1024;

/// A response body, chunk by chunk. Dropped before its end (a caller that stops reading), it
/// cancels the body so the connection is let go, and keeps nothing for it: `worker`'s own byte
/// stream (`wasm-streams` 0.7) leaves a forgotten JavaScript callback behind for every body
/// dropped early — two a turn, never freed.
struct BodyStream {
    /// `None` once the body ended or failed.
    reader: Option<Reader>,
    read: Option<JsFuture>,
}

/// A byte stream is read into a buffer of its reader's own ([`READ_BYTES`]), which each read
/// hands back to be read into again; any other stream with the default reader.
enum Reader {
    Bytes { reader: ReadableStreamByobReader, buffer: Option<Uint8Array> },
    Default(ReadableStreamDefaultReader),
}

impl Reader {
    fn of(body: &ReadableStream) -> Reader {
        match byob_reader(body) {
            Some(reader) => Reader::Bytes { reader, buffer: Some(Uint8Array::new_with_length(READ_BYTES)) },
            None => Reader::Default(body.get_reader().unchecked_into()),
        }
    }

    fn read(&mut self) -> JsFuture {
        match self {
            Reader::Bytes { reader, buffer } => {
                let buffer = buffer.take().unwrap_or_else(|| Uint8Array::new_with_length(READ_BYTES));
                JsFuture::from(reader.read_with_array_buffer_view(&buffer))
            }
            Reader::Default(reader) => JsFuture::from(reader.read()),
        }
    }

    /// The bytes a read brought, copied into wasm once. A byte stream's buffer comes back with
    /// them, and is read into again if it is still whole.
    fn take(&mut self, value: JsValue) -> Vec<u8> {
        // The value is the runtime's own view: `Uint8Array::new` of it would copy it first.
        let Ok(view) = value.dyn_into::<Uint8Array>() else { return Vec::new() };
        let bytes = view.to_vec();
        if let Reader::Bytes { buffer, .. } = self {
            let returned = view.buffer();
            *buffer = (returned.byte_length() == READ_BYTES).then(|| Uint8Array::new(&returned));
        }
        bytes
    }

    fn cancel(&self) {
        // Nothing waits on the cancel: its promise settles on its own and holds nothing of ours.
        let _ = match self {
            Reader::Bytes { reader, .. } => reader.cancel(),
            Reader::Default(reader) => reader.cancel(),
        };
    }
}

/// A reader that reads into buffers of ours, if the runtime offers one for `body` (a byte stream).
fn byob_reader(body: &ReadableStream) -> Option<ReadableStreamByobReader> {
    let options = ReadableStreamGetReaderOptions::new();
    options.set_mode(ReadableStreamReaderMode::Byob);
    // Called through `Reflect` so that a stream that is not a byte stream, which throws, is
    // answered with `None` rather than the exception.
    let get_reader = Reflect::get(body, &JsValue::from_str("getReader")).ok()?.dyn_into::<Function>().ok()?;
    get_reader.call1(body, &options).ok()?.dyn_into::<ReadableStreamByobReader>().ok()
}

impl BodyStream {
    fn new(body: &ReadableStream) -> BodyStream {
        BodyStream { reader: Some(Reader::of(body)), read: None }
    }
}

impl Stream for BodyStream {
    type Item = Result<bytes::Bytes, HttpError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(reader) = &mut this.reader else { return Poll::Ready(None) };
        let read = this.read.get_or_insert_with(|| reader.read());
        let result = ready!(read.poll_unpin(cx));
        this.read = None;
        let chunk = match result {
            Ok(chunk) => chunk,
            Err(err) => {
                this.reader = None;
                // The runtime's "aborted" is the other side closing early: the body simply ends.
                let aborted = err.dyn_ref::<worker::js_sys::Error>().is_some_and(|e| e.message() == "aborted");
                return Poll::Ready(
                    (!aborted).then(|| Err(HttpError::Body("the connection broke while the body was read".into()))),
                );
            }
        };
        let field = |name: &str| Reflect::get(&chunk, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
        if field("done").is_truthy() {
            this.reader = None;
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(bytes::Bytes::from(reader.take(field("value"))))))
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.cancel();
        }
    }
}

/// What a failed `fetch` means for sending it again. The runtime says only "network connection
/// lost" and the like; only a refusal proves the request never reached the provider, so anything
/// else is taken as "it may have": a create is then not sent twice. The runtime's text is not
/// repeated, since it can quote the URL.
fn fetch_error(text: &str) -> HttpError {
    let text = text.to_ascii_lowercase();
    if ["refused", "econnrefused", "dns", "not found", "no such host"].iter().any(|word| text.contains(word)) {
        HttpError::Connect("the connection was refused".into())
    } else {
        HttpError::Request("the connection failed or broke: the request may have reached the provider".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_says_the_request_never_arrived() {
        assert!(matches!(fetch_error("TypeError: connect ECONNREFUSED 127.0.0.1:9"), HttpError::Connect(_)));
        for text in ["Network connection lost.", "TypeError: fetch failed", "internal error"] {
            assert!(matches!(fetch_error(text), HttpError::Request(_)), "{text}");
        }
    }
}
