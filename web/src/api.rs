//! Every call the web app makes to the edge API, with core's types on both sides. Components
//! never build URLs or parse JSON themselves.

use mayfly_core::{ErrorBody, Health};
use serde::de::DeserializeOwned;

/// Why a call to the API did not give the expected answer, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFailure(pub(crate) String);

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `GET /v1/health`.
pub(crate) async fn health() -> Result<Health, ApiFailure> {
    get_json("/v1/health").await
}

async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiFailure> {
    let response = gloo_net::http::Request::get(path)
        .send()
        .await
        .map_err(|err| ApiFailure(format!("the API is unreachable: {err}")))?;
    if response.ok() {
        return response.json::<T>().await.map_err(|err| ApiFailure(format!("unexpected answer: {err}")));
    }
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => Err(ApiFailure(format!("{} ({status})", body.error.message))),
        Err(_) => Err(ApiFailure(format!("the API answered {status}"))),
    }
}
