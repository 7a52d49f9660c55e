//! What `mayfly doctor` asks E2B before a first turn: does it take the key, and does each
//! configured template exist (docs/templates.md).

use super::E2bClient;
use crate::providers::http::{HttpClient, Method, StatusCode};
use crate::providers::{Clock, ProviderError};
use crate::url::percent_encode;

/// What E2B says of a template name when asked whether it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateStatus {
    /// The caller's team built it.
    Own,
    /// It exists but is another team's: usable when public, as E2B's `base` is.
    Others,
    /// No template has that name.
    Missing,
}

impl<H: HttpClient, C: Clock> E2bClient<H, C> {
    /// Whether E2B accepts the API key: one listing of at most one running sandbox.
    pub async fn check_key(&self) -> Result<(), ProviderError> {
        let request = self.control(Method::GET, "v2/sandboxes?state=running&limit=1")?;
        let response = self.http.send(&request, true).await?;
        self.http.expect_success(response).await.map(drop)
    }

    /// Whether `name` exists, the way the SDKs' `Template.exists` asks: `GET
    /// /templates/aliases/{name}` answers `200` for the team's own, `403` for another team's and
    /// `404` for none.
    pub async fn template_status(&self, name: &str) -> Result<TemplateStatus, ProviderError> {
        let request = self.control(Method::GET, &format!("templates/aliases/{}", percent_encode(name)))?;
        let response = self.http.send(&request, true).await?;
        match response.status {
            StatusCode::FORBIDDEN => Ok(TemplateStatus::Others),
            StatusCode::NOT_FOUND => Ok(TemplateStatus::Missing),
            _ => self.http.expect_success(response).await.map(|_| TemplateStatus::Own),
        }
    }
}
