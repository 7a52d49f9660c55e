//! Every call the web app makes to the edge API, with core's types on both sides, and where the
//! API key is kept. Components never build URLs, parse JSON or touch storage themselves. A turn's
//! calls and its resuming event stream are the client library's (`mayfly_client`), as any other
//! page embedding mayfly would make them; the rest are plain requests.

use futures::{Stream, StreamExt};
use gloo_net::http::{Request, RequestBuilder};
use mayfly_client::routes::{Answer, Endpoint};
use mayfly_client::{Client, ClientError, Update};
use mayfly_core::{
    CheckpointRequest, CheckpointView, CreateTurnRequest, CreateTurnResponse, Health, KeepResponse, ReaperStatus,
    TurnDetail, TurnList,
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

impl From<ClientError> for ApiFailure {
    fn from(err: ClientError) -> ApiFailure {
        ApiFailure { status: err.status(), message: err.to_string() }
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

fn origin() -> String {
    leptos::prelude::window().location().origin().unwrap_or_default()
}

/// The client library on this page's own origin, with `key`.
fn client(key: &str) -> Client<mayfly_client::PlatformBackend> {
    Client::new(&origin(), key)
}

/// `/v1/turns/{id}/checkpoint`, with the id encoded the way the client library encodes it.
fn checkpoint_url(turn_id: &str) -> String {
    format!("{}/checkpoint", Endpoint::new(&origin()).turn(turn_id))
}

/// `POST /v1/turns`.
pub(crate) async fn create_turn(key: &str, request: &CreateTurnRequest) -> Result<CreateTurnResponse, ApiFailure> {
    Ok(client(key).create(request).await?)
}

/// `GET /v1/turns/{id}`.
pub(crate) async fn turn(key: &str, turn_id: &str) -> Result<TurnDetail, ApiFailure> {
    Ok(client(key).detail(turn_id).await?)
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
    Ok(client(key).cancel(turn_id).await?)
}

/// `POST /v1/turns/{id}/keep`: keep the database past the turn.
pub(crate) async fn keep(key: &str, turn_id: &str) -> Result<KeepResponse, ApiFailure> {
    Ok(client(key).keep(turn_id).await?)
}

/// `POST /v1/turns/{id}/checkpoint`: keep a live checkpoint until `keep_s` from now (`409` once
/// it is not live).
pub(crate) async fn extend_checkpoint(key: &str, turn_id: &str, keep_s: u32) -> Result<CheckpointView, ApiFailure> {
    let body = CheckpointRequest { keep_s: Some(keep_s) };
    let request =
        authorized(Request::post(&checkpoint_url(turn_id)), key).json(&body).map_err(ApiFailure::unreachable)?;
    Ok(answer(request).await?.json()?)
}

/// `DELETE /v1/turns/{id}/checkpoint`: reap it now. `202` with no body; the database's reap
/// shows on the turn's detail.
pub(crate) async fn release_checkpoint(key: &str, turn_id: &str) -> Result<(), ApiFailure> {
    let answer =
        answer(authorized(Request::delete(&checkpoint_url(turn_id)), key).build().map_err(ApiFailure::unreachable)?)
            .await?;
    Ok(answer.empty()?)
}

/// The turn's events from the first, each once and in order, with the connection's ups and
/// downs between them: the WebSocket is reopened after the last event taken whenever it drops
/// (the key rides as a subprotocol, never in the URL). The stream ends after the turn's last
/// event, or with the refusal that ended it.
pub(crate) fn follow(key: &str, turn_id: &str) -> impl Stream<Item = Result<Update, ApiFailure>> + Unpin {
    client(key).follow(turn_id, 0).map(|update| update.map_err(ApiFailure::from))
}

fn authorized(builder: RequestBuilder, key: &str) -> RequestBuilder {
    builder.header("Authorization", &format!("Bearer {key}"))
}

/// A plain request's answer, read like the client library reads a turn's: the API's error body
/// becomes its message.
async fn send<T: DeserializeOwned>(builder: RequestBuilder) -> Result<T, ApiFailure> {
    let request = builder.build().map_err(ApiFailure::unreachable)?;
    Ok(answer(request).await?.json()?)
}

async fn answer(request: Request) -> Result<Answer, ApiFailure> {
    let response = request.send().await.map_err(ApiFailure::unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(ApiFailure::unreachable)?;
    Ok(Answer { status, body })
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
