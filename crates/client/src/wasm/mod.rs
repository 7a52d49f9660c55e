//! The wasm backend: the platform's `fetch` for calls and its `WebSocket` for the event stream
//! (the key rides as a subprotocol, which is all a browser's WebSocket can carry; `socket.rs`);
//! calls through gloo-net; waits on the global `setTimeout`. Browsers, Node.js 22, Deno and Bun have all three.

use std::future::Future;
use std::time::Duration;

use futures::stream::LocalBoxStream;
use futures::StreamExt;
use gloo_net::http::Request;
use socket::Socket;
use wasm_bindgen::JsCast;

use crate::backend::Backend;
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::routes::{socket_protocols, Answer, Call, Endpoint, Method};

#[cfg(feature = "js")]
pub mod js;
mod socket;

/// `fetch`, `WebSocket` and `setTimeout` behind [`Backend`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser;

impl Client<Browser> {
    /// A client of the API at `base_url` (a page of the API's own origin passes
    /// `location.origin`) with the API key `key`.
    pub fn new(base_url: &str, key: &str) -> Client<Browser> {
        Client::with_backend(base_url, key, Browser)
    }
}

impl Backend for Browser {
    type Frames = LocalBoxStream<'static, Result<String>>;

    fn send(&self, call: Call) -> impl Future<Output = Result<Answer>> {
        async move {
            let builder = match call.method {
                Method::Get => Request::get(&call.url),
                Method::Post => Request::post(&call.url),
                Method::Delete => Request::delete(&call.url),
            };
            let builder = call.headers.iter().fold(builder, |builder, (name, value)| builder.header(name, value));
            let request = match call.body {
                Some(body) => builder.header("Content-Type", "application/json").body(body),
                None => builder.build(),
            }
            .map_err(transport)?;
            let response = request.send().await.map_err(transport)?;
            let status = response.status();
            let body = response.text().await.map_err(transport)?;
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
        let url = endpoint.events_socket(turn_id, after);
        let protocols = socket_protocols(key);
        async move { Ok(Socket::open(&url, &protocols).await?.boxed_local()) }
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            let global = js_sys::global();
            let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            match set_timeout {
                Some(set_timeout) => {
                    let _ = set_timeout.call2(&global, &resolve, &ms.into());
                }
                None => {
                    let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
                }
            }
        });
        async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        }
    }
}

fn transport(err: gloo_net::Error) -> ClientError {
    ClientError::Transport(err.to_string())
}
