//! What `mayfly doctor` asks instanode before a first turn: is it there, and does it take the
//! token as an account's (`docs/protocols/instanode.md` §8).

use super::*;

/// Who instanode says a token belongs to (`GET /api/v1/whoami`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Whoami {
    #[serde(default)]
    pub team_id: String,
    #[serde(default)]
    pub team_name: Option<String>,
    #[serde(default)]
    pub plan_tier: Option<String>,
}

impl<H: HttpClient, C: Clock> InstanodeClient<H, C> {
    /// Whether instanode answers at all: `GET /healthz`.
    pub async fn check_reachable(&self) -> Result<(), ProviderError> {
        let request = self.request(Method::GET, "healthz")?;
        let response = self.send(&request, true).await?;
        self.expect_success(response).await.map(drop)
    }

    /// Whose the configured token is; a `401` when instanode does not take it. Token mode only.
    pub async fn whoami(&self) -> Result<Whoami, ProviderError> {
        self.require_token("tell whose a token is")?;
        let request = self.request(Method::GET, "api/v1/whoami")?;
        let response = self.send(&request, true).await?;
        let body = self.expect_success(response).await?;
        serde_json::from_slice(&body).map_err(|error| protocol(format!("whoami answer: {error}")))
    }
}
