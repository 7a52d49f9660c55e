//! What `mayfly doctor` asks instanode before a first turn: is it there, and does it take the
//! token as an account's (`docs/protocols/instanode.md` §8).

use super::InstanodeClient;
use crate::providers::http::{HttpClient, Method};
use crate::providers::{Clock, ProviderError};
use crate::wire::instanode::Whoami;

impl<H: HttpClient, C: Clock> InstanodeClient<H, C> {
    /// Whether instanode answers at all: `GET /healthz`.
    pub async fn check_reachable(&self) -> Result<(), ProviderError> {
        let request = self.http.request(Method::GET, "healthz")?;
        let response = self.http.send(&request, true).await?;
        self.http.expect_success(response).await.map(drop)
    }

    /// Whose the configured token is; a `401` when instanode does not take it. Token mode only.
    pub async fn whoami(&self) -> Result<Whoami, ProviderError> {
        self.require_token("tell whose a token is")?;
        let request = self.http.request(Method::GET, "api/v1/whoami")?;
        self.http.send_json(&request, true, "whoami answer").await
    }
}
