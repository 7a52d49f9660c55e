//! What E2B's failures mean: every HTTP status (of the control plane, envd or the proxy in front of
//! it) and every Connect error becomes an [`E2bError`] in one function, [`error_for_status`], and
//! from there a [`ProviderError`] of the matching [`ProviderErrorKind`].

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use super::templates::missing_template_message;
use super::PROVIDER;
use crate::providers::http::StatusCode;
use crate::providers::{ProviderError, ProviderErrorKind};
use crate::wire::e2b::RpcError;

/// What kind of failure an HTTP status means, after the Python SDK's table for envd plus the
/// control plane's statuses (`docs/protocols/e2b.md` §1.2, §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E2bErrorKind {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    ResourceExhausted,
    RateLimited,
    Canceled,
    Internal,
    Unimplemented,
    /// 502: through the proxy, the sandbox is gone (killed or expired) or its port is closed.
    SandboxGone,
    Unavailable,
    DeadlineExceeded,
    InsufficientStorage,
    /// Any other 4xx.
    Client,
    /// Any other 5xx.
    Server,
    /// 1xx or 3xx, which no E2B endpoint answers.
    Unexpected,
}

impl fmt::Display for E2bErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            E2bErrorKind::InvalidArgument => "invalid argument",
            E2bErrorKind::Unauthenticated => "unauthenticated",
            E2bErrorKind::PermissionDenied => "permission denied",
            E2bErrorKind::NotFound => "not found",
            E2bErrorKind::Conflict => "conflict",
            E2bErrorKind::ResourceExhausted => "resource exhausted",
            E2bErrorKind::RateLimited => "rate limited",
            E2bErrorKind::Canceled => "canceled",
            E2bErrorKind::Internal => "internal error",
            E2bErrorKind::Unimplemented => "unimplemented",
            E2bErrorKind::SandboxGone => "sandbox gone",
            E2bErrorKind::Unavailable => "unavailable",
            E2bErrorKind::DeadlineExceeded => "deadline exceeded",
            E2bErrorKind::InsufficientStorage => "insufficient storage",
            E2bErrorKind::Client => "client error",
            E2bErrorKind::Server => "server error",
            E2bErrorKind::Unexpected => "unexpected status",
        })
    }
}

/// A failure E2B (or envd, or the proxy in front of it) reported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} ({status}): {message}")]
pub struct E2bError {
    pub kind: E2bErrorKind,
    pub status: u16,
    pub message: String,
}

impl E2bError {
    /// What the failure is whichever provider it came from: every status means what it means
    /// anywhere, except E2B's 502, which says the sandbox is gone.
    pub fn provider_kind(&self) -> ProviderErrorKind {
        match self.kind {
            E2bErrorKind::SandboxGone => ProviderErrorKind::SandboxGone,
            _ => ProviderErrorKind::from_status(self.status),
        }
    }
}

impl From<E2bError> for ProviderError {
    fn from(error: E2bError) -> ProviderError {
        ProviderError::Status {
            provider: PROVIDER,
            status: error.status,
            kind: error.provider_kind(),
            message: format!("{}: {}", error.kind, error.message),
        }
    }
}

/// A create refused because its template does not exist (`404`) or belongs to another team
/// (`403` naming the template), told in words that say how to get one.
pub(super) fn missing_template(error: ProviderError, template: &str) -> ProviderError {
    match error {
        ProviderError::Status { provider, status, kind, message }
            if status == 404 || (status == 403 && message.contains("template")) =>
        {
            ProviderError::Status { provider, status, kind, message: missing_template_message(template, &message) }
        }
        other => other,
    }
}

/// The one mapping from an answer's status to a typed error: `None` for 2xx, an error for every
/// other status. The message is the body's JSON `message` (control plane, envd REST, proxy and
/// unary Connect errors all carry one), else the body's text, else the status's reason phrase.
pub fn error_for_status(status: StatusCode, body: &[u8]) -> Option<E2bError> {
    let code = status.as_u16();
    let kind = match code {
        200..=299 => return None,
        400 => E2bErrorKind::InvalidArgument,
        401 => E2bErrorKind::Unauthenticated,
        403 => E2bErrorKind::PermissionDenied,
        404 => E2bErrorKind::NotFound,
        409 => E2bErrorKind::Conflict,
        413 => E2bErrorKind::ResourceExhausted,
        429 => E2bErrorKind::RateLimited,
        499 => E2bErrorKind::Canceled,
        500 => E2bErrorKind::Internal,
        501 | 505 => E2bErrorKind::Unimplemented,
        502 => E2bErrorKind::SandboxGone,
        503 => E2bErrorKind::Unavailable,
        504 => E2bErrorKind::DeadlineExceeded,
        507 => E2bErrorKind::InsufficientStorage,
        _ if status.is_client_error() => E2bErrorKind::Client,
        _ if status.is_server_error() => E2bErrorKind::Server,
        _ => E2bErrorKind::Unexpected,
    };
    #[derive(Deserialize)]
    struct WithMessage {
        message: String,
    }
    let message = match serde_json::from_slice::<WithMessage>(body) {
        Ok(parsed) => parsed.message,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no reason given").to_lowercase()
            } else {
                // A proxy's HTML page can be long; the first line or so is what says why.
                text.chars().take(200).collect()
            }
        }
    };
    Some(E2bError { kind, status: code, message })
}

/// A Connect error from an end-stream frame, typed through the same table as its HTTP status.
pub(super) fn rpc_error(error: &RpcError) -> ProviderError {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut typed = error_for_status(status, b"").unwrap_or(E2bError {
        kind: E2bErrorKind::Internal,
        status: 500,
        message: String::new(),
    });
    typed.message = format!("{}: {}", error.code, error.message);
    typed.into()
}

/// The typed error of an answer that is not a 2xx.
pub(super) fn status_error(provider: &'static str, status: StatusCode, body: &[u8]) -> ProviderError {
    error_for_status(status, body)
        .map(ProviderError::from)
        .unwrap_or_else(|| ProviderError::Protocol { provider, message: "unreachable status".into() })
}
