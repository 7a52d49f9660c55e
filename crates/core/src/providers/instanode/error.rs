//! What instanode's failures mean: every error answer
//! (`{"ok":false,"error":code,"message",…,"retry_after_seconds"}`) becomes an [`InstanodeError`] in
//! one function, [`error_from_response`], and from there a [`ProviderError`] of the kind its status
//! says.

use thiserror::Error;

use super::PROVIDER;
use crate::providers::http::StatusCode;
use crate::providers::{ProviderError, ProviderErrorKind};
use crate::url::redact_credentials_in_text;
use crate::wire::instanode::ErrorAnswer;

/// A failure instanode reported, from its error envelope (or, lacking one, the status alone).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code} ({status}): {message}")]
pub struct InstanodeError {
    pub status: u16,
    /// instanode's stable code (`name_required`, `rate_limited`, `not_found`, …); `http_<status>`
    /// when the body had none.
    pub code: String,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
}

impl InstanodeError {
    /// Whether sending the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        crate::providers::retry::is_retryable_status(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
    }
}

impl From<InstanodeError> for ProviderError {
    fn from(error: InstanodeError) -> ProviderError {
        ProviderError::Status {
            provider: PROVIDER,
            status: error.status,
            kind: ProviderErrorKind::from_status(error.status),
            message: format!("{}: {}", error.code, error.message),
        }
    }
}

/// The one mapping from an answer to a typed error: `None` for 2xx, an error for every other
/// status. Messages pass through [`redact_credentials_in_text`]: an error may echo a connection URL.
pub fn error_from_response(status: StatusCode, body: &[u8]) -> Option<InstanodeError> {
    if status.is_success() {
        return None;
    }
    let envelope = serde_json::from_slice::<ErrorAnswer>(body).unwrap_or_default();
    let code = envelope.error.filter(|code| !code.is_empty()).unwrap_or_else(|| format!("http_{}", status.as_u16()));
    let message = envelope.message.filter(|message| !message.is_empty()).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        match text.trim() {
            "" => status.canonical_reason().unwrap_or("no reason given").to_lowercase(),
            text if text.starts_with('{') => status.canonical_reason().unwrap_or("no reason given").to_lowercase(),
            text => text.chars().take(200).collect(),
        }
    });
    Some(InstanodeError {
        status: status.as_u16(),
        code,
        message: redact_credentials_in_text(&message),
        retry_after_seconds: envelope.retry_after_seconds,
    })
}

/// The typed error of an answer that is not a 2xx.
pub(super) fn status_error(provider: &'static str, status: StatusCode, body: &[u8]) -> ProviderError {
    error_from_response(status, body)
        .map(ProviderError::from)
        .unwrap_or_else(|| ProviderError::Protocol { provider, message: "unreachable status".into() })
}

/// A `402` to a create: the free tier's gates (`free_tier_recycle_requires_claim`, quotas), in words
/// that say what to do.
pub(super) fn payment_required(body: &[u8]) -> ProviderError {
    let claim = serde_json::from_slice::<ErrorAnswer>(body).ok().and_then(|gate| gate.claim_url);
    let error = error_from_response(StatusCode::PAYMENT_REQUIRED, body).unwrap_or(InstanodeError {
        status: 402,
        code: "http_402".into(),
        message: "payment required".into(),
        retry_after_seconds: None,
    });
    let claim = claim.map(|url| format!("claim the earlier database at {url}, or ")).unwrap_or_default();
    ProviderError::Status {
        provider: PROVIDER,
        status: 402,
        kind: ProviderErrorKind::PaymentRequired,
        message: format!(
            "{}: {} To go on, {claim}set INSTANODE_TOKEN for databases that belong to an account.",
            error.code, error.message
        ),
    }
}
