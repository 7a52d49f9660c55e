//! The client: a turn created, read, cancelled, kept, and followed with automatic resume, over
//! any [`Backend`] (the streaming calls, `events` and `follow`, are in [`crate::follow`]).
//! [`crate::Client::new`] picks the platform's own (reqwest natively, `fetch`
//! and `WebSocket` on wasm).

use mayfly_core::{CreateTurnRequest, CreateTurnResponse, KeepResponse, TurnDetail};

use crate::backend::Backend;
use crate::error::Result;
use crate::resume::RetryPolicy;
use crate::routes::{Call, Endpoint};

/// mayfly's edge API at one URL, called with one API key or turn token. Its `Debug` leaves the
/// credential out.
#[derive(Clone)]
pub struct Client<B> {
    pub(crate) endpoint: Endpoint,
    pub(crate) key: String,
    pub(crate) backend: B,
    pub(crate) policy: RetryPolicy,
}

impl<B: std::fmt::Debug> std::fmt::Debug for Client<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("key", &"<hidden>")
            .field("backend", &self.backend)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<B: Backend> Client<B> {
    /// A client of the API at `base_url` with `key`, over `backend`.
    pub fn with_backend(base_url: &str, key: &str, backend: B) -> Client<B> {
        Client { endpoint: Endpoint::new(base_url), key: key.to_owned(), backend, policy: RetryPolicy::default() }
    }

    /// The same client, resuming event streams with `policy`.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Client<B> {
        self.policy = policy;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// `POST /v1/turns`: starts a turn. How it goes is told by its events and its detail; a
    /// provider's failure finishes the turn `failed`, it does not fail this call.
    pub async fn create(&self, request: &CreateTurnRequest) -> Result<CreateTurnResponse> {
        self.backend.send(Call::create(&self.endpoint, &self.key, request, None)).await?.json()
    }

    /// [`Client::create`] with an `Idempotency-Key`: a retry with the same key gives back the same
    /// turn instead of starting a second one, where the API supports it.
    pub async fn create_idempotent(
        &self,
        request: &CreateTurnRequest,
        idempotency_key: &str,
    ) -> Result<CreateTurnResponse> {
        self.backend.send(Call::create(&self.endpoint, &self.key, request, Some(idempotency_key))).await?.json()
    }

    /// `GET /v1/turns/{id}`: the turn now.
    pub async fn detail(&self, turn_id: &str) -> Result<TurnDetail> {
        self.backend.send(Call::detail(&self.endpoint, &self.key, turn_id)).await?.json()
    }

    /// `DELETE /v1/turns/{id}`: stops the code and reaps now; the turn's events tell the rest.
    pub async fn cancel(&self, turn_id: &str) -> Result<()> {
        self.backend.send(Call::cancel(&self.endpoint, &self.key, turn_id)).await?.empty()
    }

    /// `POST /v1/turns/{id}/keep`: keeps the database past the turn; the only answer that holds
    /// its connection URL.
    pub async fn keep(&self, turn_id: &str) -> Result<KeepResponse> {
        self.backend.send(Call::keep(&self.endpoint, &self.key, turn_id)).await?.json()
    }
}
