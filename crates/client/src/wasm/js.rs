//! `MayflyClient`, the client for JavaScript: the same calls and the same resuming event stream
//! as the Rust API, with plain objects in and out (core's JSON shapes, typed by the package's
//! `.d.ts`) and every failure a `MayflyError` carrying the API's `status` and `code`.

use std::future::Future;
use std::pin::Pin;

use futures::future::Either;
use futures::StreamExt;
use js_sys::{Function, Promise, Reflect};
use mayfly_core::CreateTurnRequest;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::client::Client;
use crate::error::ClientError;
use crate::follow::Update;
use crate::wasm::Browser;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = crate::typescript::DEFINITIONS;

/// A client of mayfly's edge API.
#[wasm_bindgen(js_name = MayflyClient)]
#[derive(Debug)]
pub struct JsClient {
    client: Client<Browser>,
}

#[wasm_bindgen(js_class = MayflyClient)]
impl JsClient {
    /// A client of the API at `baseUrl` (`location.origin` on a page of the API's own origin)
    /// with the API key `key`.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(js_name = baseUrl)] base_url: &str, key: &str) -> JsClient {
        JsClient { client: Client::new(base_url, key) }
    }

    /// Starts a turn. With `idempotencyKey`, a retry with the same key gives back the same turn
    /// where the API supports it.
    #[wasm_bindgen(js_name = createTurn, unchecked_return_type = "Promise<CreateTurnResponse>")]
    pub fn create_turn(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CreateTurnRequest")] request: JsValue,
        #[wasm_bindgen(js_name = idempotencyKey)] idempotency_key: Option<String>,
    ) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let request: CreateTurnRequest = from_js(&request)?;
            let created = match idempotency_key {
                Some(key) => client.create_idempotent(&request, &key).await,
                None => client.create(&request).await,
            };
            to_js(&created.map_err(|err| js_error(&err))?)
        })
    }

    /// The turn now: state, outcome, timings, each resource's reap state.
    #[wasm_bindgen(unchecked_return_type = "Promise<TurnDetail>")]
    pub fn detail(&self, #[wasm_bindgen(js_name = turnId)] turn_id: String) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move { to_js(&client.detail(&turn_id).await.map_err(|err| js_error(&err))?) })
    }

    /// Stops the code and reaps now; the turn's events tell the rest.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn cancel(&self, #[wasm_bindgen(js_name = turnId)] turn_id: String) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            client.cancel(&turn_id).await.map_err(|err| js_error(&err))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Keeps the database past the turn: its connection URL and how to claim it.
    #[wasm_bindgen(unchecked_return_type = "Promise<KeepResponse>")]
    pub fn keep(&self, #[wasm_bindgen(js_name = turnId)] turn_id: String) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move { to_js(&client.keep(&turn_id).await.map_err(|err| js_error(&err))?) })
    }

    /// Calls `onEvent` with each of the turn's events, once and in order, reconnecting after the
    /// last one whenever the connection drops. Resolves with `turn.finished` (or `undefined` when
    /// `options.signal` stopped it); rejects with the `MayflyError` that ended the stream, or
    /// with what `onEvent` threw.
    #[wasm_bindgen(unchecked_return_type = "Promise<TurnEvent | undefined>")]
    pub fn events(
        &self,
        #[wasm_bindgen(js_name = turnId)] turn_id: String,
        #[wasm_bindgen(js_name = onEvent, unchecked_param_type = "(event: TurnEvent) => void")] on_event: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "EventsOptions")] options: JsValue,
    ) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let option = |name: &str| Reflect::get(&options, &name.into()).ok().filter(|v| !v.is_undefined());
            let after = option("after").and_then(|v| v.as_f64()).map_or(0, |v| v as u64);
            let on_status = option("onStatus").and_then(|v| v.dyn_into::<Function>().ok());
            let signal = option("signal").and_then(|v| v.dyn_into::<web_sys::AbortSignal>().ok());
            if signal.as_ref().is_some_and(web_sys::AbortSignal::aborted) {
                return Ok(JsValue::UNDEFINED);
            }
            let (_listener, mut aborted) = abort_of(signal);
            let mut updates = client.follow(&turn_id, after);
            let mut finished = JsValue::UNDEFINED;
            loop {
                let update = match futures::future::select(updates.next(), aborted.as_mut()).await {
                    Either::Left((Some(update), _)) => update.map_err(|err| js_error(&err))?,
                    Either::Left((None, _)) => return Ok(finished),
                    Either::Right(_) => return Ok(JsValue::UNDEFINED),
                };
                match update {
                    Update::Event(event) => {
                        let value = to_js(&event)?;
                        on_event.call1(&JsValue::NULL, &value)?;
                        if event.body.is_terminal() {
                            finished = value;
                        }
                    }
                    Update::Connected { after } => {
                        report(on_status.as_ref(), serde_json::json!({ "state": "connected", "after": after }))?;
                    }
                    Update::Reconnecting { attempt, after, delay } => {
                        let status = serde_json::json!({
                            "state": "reconnecting", "attempt": attempt, "after": after, "delay_ms": delay.as_millis() as u64,
                        });
                        report(on_status.as_ref(), status)?;
                    }
                }
            }
        })
    }
}

type Abort = Pin<Box<dyn Future<Output = ()>>>;

/// The `abort` listener on a signal, removed with it: the signal may outlive the stream, and
/// must not call a listener that is gone.
struct AbortListener {
    signal: web_sys::AbortSignal,
    listener: Closure<dyn FnMut()>,
}

impl Drop for AbortListener {
    fn drop(&mut self) {
        let _ = self.signal.remove_event_listener_with_callback("abort", self.listener.as_ref().unchecked_ref());
    }
}

/// A future that resolves when `signal` aborts (never without one), and the listener that must
/// live as long as it.
fn abort_of(signal: Option<web_sys::AbortSignal>) -> (Option<AbortListener>, Abort) {
    let Some(signal) = signal else { return (None, Box::pin(futures::future::pending())) };
    let (done, aborted) = futures::channel::oneshot::channel::<()>();
    let mut done = Some(done);
    let listener = Closure::<dyn FnMut()>::new(move || {
        if let Some(done) = done.take() {
            let _ = done.send(());
        }
    });
    let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
    let aborted = Box::pin(async move {
        let _ = aborted.await;
    });
    (Some(AbortListener { signal, listener }), aborted)
}

fn report(on_status: Option<&Function>, status: serde_json::Value) -> Result<(), JsValue> {
    if let Some(on_status) = on_status {
        on_status.call1(&JsValue::NULL, &to_js(&status)?)?;
    }
    Ok(())
}

/// A JavaScript value as one of core's types, through JSON: the same shapes as on the wire.
fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T, JsValue> {
    let text: String = js_sys::JSON::stringify(value).map(String::from).unwrap_or_default();
    serde_json::from_str(&text).map_err(|err| js_error(&ClientError::Decode(format!("not a valid argument: {err}"))))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(|err| js_error(&ClientError::Decode(err.to_string())))?;
    js_sys::JSON::parse(&text)
}

/// A `MayflyError`: an `Error` with the API's `status` and `code` when it answered.
fn js_error(err: &ClientError) -> JsValue {
    let error = js_sys::Error::new(&err.to_string());
    error.set_name("MayflyError");
    if let Some(status) = err.status() {
        let _ = Reflect::set(&error, &"status".into(), &status.into());
    }
    if let ClientError::Api { code, .. } = err {
        let _ = Reflect::set(&error, &"code".into(), &code.into());
    }
    error.into()
}
