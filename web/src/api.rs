//! Every call the web app makes to the edge API, with core's types on both sides, and where the
//! API key is kept. Components never build URLs, parse JSON or touch storage themselves.

use gloo_net::http::{Request, RequestBuilder};
use gloo_net::websocket::futures::WebSocket;
use mayfly_core::{
    CreateTurnRequest, CreateTurnResponse, ErrorBody, Health, KeepResponse, ReaperStatus, TurnDetail, TurnList,
};
use serde::de::DeserializeOwned;

/// Why a call to the API did not give the expected answer, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFailure {
    /// The HTTP status, when the API answered at all.
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
}

impl ApiFailure {
    fn unreachable(err: impl std::fmt::Display) -> ApiFailure {
        ApiFailure { status: None, message: format!("the API is unreachable: {err}") }
    }

    /// The key was refused: the page should ask for another.
    pub(crate) fn is_unauthorized(&self) -> bool {
        self.status == Some(401)
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `GET /v1/health`.
pub(crate) async fn health() -> Result<Health, ApiFailure> {
    send(Request::get("/v1/health")).await
}

/// `POST /v1/turns`.
pub(crate) async fn create_turn(key: &str, request: &CreateTurnRequest) -> Result<CreateTurnResponse, ApiFailure> {
    let builder = authorized(Request::post("/v1/turns"), key);
    send_body(builder.json(request).map_err(ApiFailure::unreachable)?).await
}

/// `GET /v1/turns/{id}`.
pub(crate) async fn turn(key: &str, turn_id: &str) -> Result<TurnDetail, ApiFailure> {
    send(authorized(Request::get(&turn_path(turn_id)), key)).await
}

/// `GET /v1/turns`.
pub(crate) async fn turns(key: &str) -> Result<TurnList, ApiFailure> {
    send(authorized(Request::get("/v1/turns"), key)).await
}

/// `GET /v1/reaper`.
pub(crate) async fn reaper(key: &str) -> Result<ReaperStatus, ApiFailure> {
    send(authorized(Request::get("/v1/reaper"), key)).await
}

/// `DELETE /v1/turns/{id}`: stop the code and reap now. The answer is `202` with no body; what
/// follows arrives on the turn's event stream.
pub(crate) async fn cancel(key: &str, turn_id: &str) -> Result<(), ApiFailure> {
    let request = authorized(Request::delete(&turn_path(turn_id)), key).build().map_err(ApiFailure::unreachable)?;
    let response = request.send().await.map_err(ApiFailure::unreachable)?;
    if response.ok() {
        return Ok(());
    }
    Err(failure(response).await)
}

/// `POST /v1/turns/{id}/keep`: keep the database past the turn.
pub(crate) async fn keep(key: &str, turn_id: &str) -> Result<KeepResponse, ApiFailure> {
    send(authorized(Request::post(&format!("{}/keep", turn_path(turn_id))), key)).await
}

/// The turn's event stream from `seq > after`. A browser cannot put the key in a header of a
/// WebSocket handshake, so it rides as a subprotocol (`mayfly`, `bearer.<key>`), which the
/// worker accepts and no log records.
pub(crate) fn open_events(key: &str, turn_id: &str, after: u64) -> Result<WebSocket, ApiFailure> {
    let location = leptos::prelude::window().location();
    let scheme = if location.protocol().unwrap_or_default() == "https:" { "wss" } else { "ws" };
    let host = location.host().unwrap_or_default();
    let url = format!("{scheme}://{host}{}/events?after={after}", turn_path(turn_id));
    WebSocket::open_with_protocols(&url, &["mayfly".to_owned(), format!("bearer.{key}")])
        .map_err(|err| ApiFailure { status: None, message: format!("cannot open the event stream: {err}") })
}

fn turn_path(turn_id: &str) -> String {
    let id: String = js_sys::encode_uri_component(turn_id).into();
    format!("/v1/turns/{id}")
}

fn authorized(builder: RequestBuilder, key: &str) -> RequestBuilder {
    builder.header("Authorization", &format!("Bearer {key}"))
}

async fn send<T: DeserializeOwned>(builder: RequestBuilder) -> Result<T, ApiFailure> {
    send_body(builder.build().map_err(ApiFailure::unreachable)?).await
}

async fn send_body<T: DeserializeOwned>(request: Request) -> Result<T, ApiFailure> {
    let response = request.send().await.map_err(ApiFailure::unreachable)?;
    let status = response.status();
    if response.ok() {
        return response
            .json::<T>()
            .await
            .map_err(|err| ApiFailure { status: Some(status), message: format!("unexpected answer: {err}") });
    }
    Err(failure(response).await)
}

/// What a refusal says: the API's error body, or its status.
async fn failure(response: gloo_net::http::Response) -> ApiFailure {
    let status = response.status();
    let message = match response.json::<ErrorBody>().await {
        Ok(body) => format!("{} ({status})", body.error.message),
        Err(_) => format!("the API answered {status}"),
    };
    ApiFailure { status: Some(status), message }
}

/// Where the API key lives between visits: this browser's `localStorage`, and nowhere else.
pub(crate) mod key {
    const STORAGE_KEY: &str = "mayfly.api_key";

    fn storage() -> Option<web_sys::Storage> {
        leptos::prelude::window().local_storage().ok().flatten()
    }

    pub(crate) fn load() -> Option<String> {
        storage()?.get_item(STORAGE_KEY).ok().flatten().filter(|k| !k.is_empty())
    }

    pub(crate) fn save(key: &str) {
        if let Some(storage) = storage() {
            let _ = storage.set_item(STORAGE_KEY, key.trim());
        }
    }

    pub(crate) fn forget() {
        if let Some(storage) = storage() {
            let _ = storage.remove_item(STORAGE_KEY);
        }
    }

    /// `cargo xtask dev` prints the app's URL as `…/#key=<dev key>`: the key in the fragment
    /// (which browsers never send to a server) is taken and wiped from the address bar. Whether
    /// it is saved is the caller's decision: it never silently replaces another saved key.
    pub(crate) fn take_from_fragment() -> Option<String> {
        let window = leptos::prelude::window();
        let hash = window.location().hash().unwrap_or_default();
        let key = hash.strip_prefix("#key=").filter(|k| !k.is_empty())?;
        let key: String = js_sys::decode_uri_component(key).map(String::from).unwrap_or_else(|_| key.to_owned());
        let location = window.location();
        let clean = format!("{}{}", location.pathname().unwrap_or_default(), location.search().unwrap_or_default());
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&clean));
        }
        Some(key.trim().to_owned()).filter(|k| !k.is_empty())
    }
}
