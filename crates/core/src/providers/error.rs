//! Why a provider call failed: [`ProviderError`] in the words a person reads, and its
//! [`ProviderErrorKind`], which a caller decides by.

use thiserror::Error;

use crate::providers::http::HttpError;

/// Why a provider call failed. Messages name the provider so a user knows whom to blame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    /// An error status; `kind` is what the provider's client made of the status and the body.
    #[error("{provider} answered {status}: {message}")]
    Status { provider: &'static str, status: u16, kind: ProviderErrorKind, message: String },
    #[error("{provider} could not be reached: {source}")]
    Http { provider: &'static str, source: HttpError },
    #[error("{provider} sent an answer mayfly does not understand: {message}")]
    Protocol { provider: &'static str, message: String },
    #[error("the process output stream ended before the process exited")]
    StreamTruncated,
    #[error("{provider} cannot {operation}")]
    Unsupported { provider: &'static str, operation: &'static str },
}

impl ProviderError {
    /// What kind of failure this is, whichever provider reported it.
    pub fn kind(&self) -> ProviderErrorKind {
        match self {
            ProviderError::Status { kind, .. } => *kind,
            ProviderError::Http { .. } | ProviderError::StreamTruncated => ProviderErrorKind::Network,
            ProviderError::Protocol { .. } => ProviderErrorKind::Protocol,
            ProviderError::Unsupported { .. } => ProviderErrorKind::Unsupported,
        }
    }
}

/// What kind of failure a [`ProviderError`] is: enough for a caller to tell a sandbox that is gone
/// from a rate limit, or a refused key from a provider that is down, without reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The request was refused as sent (400, 413, and any other 4xx not named here).
    BadRequest,
    /// The credential is missing or not accepted (401).
    Unauthorized,
    /// The account's plan or free tier does not allow it (402).
    PaymentRequired,
    /// The credential is accepted, but not for this (403).
    Forbidden,
    /// What the request names does not exist (404).
    NotFound,
    /// The request clashes with what exists (409).
    Conflict,
    /// Too many requests (429).
    RateLimited,
    /// The sandbox was killed or expired while in use (E2B's proxy answers 502).
    SandboxGone,
    /// Trouble at the provider that may pass (5xx, and 499 when it gave the request up).
    Unavailable,
    /// The provider does not do this at all (501, 505, or anything but create for an anonymous
    /// instanode caller).
    Unsupported,
    /// No complete answer: the connection failed, timed out or broke off.
    Network,
    /// An answer mayfly does not understand.
    Protocol,
}

impl ProviderErrorKind {
    /// The kind an error status means when the provider's client knows nothing more specific.
    pub fn from_status(status: u16) -> ProviderErrorKind {
        match status {
            401 => ProviderErrorKind::Unauthorized,
            402 => ProviderErrorKind::PaymentRequired,
            403 => ProviderErrorKind::Forbidden,
            404 => ProviderErrorKind::NotFound,
            409 => ProviderErrorKind::Conflict,
            429 => ProviderErrorKind::RateLimited,
            501 | 505 => ProviderErrorKind::Unsupported,
            400..=498 => ProviderErrorKind::BadRequest,
            499..=599 => ProviderErrorKind::Unavailable,
            // 1xx and 3xx: no provider answers them, so they are not understood.
            _ => ProviderErrorKind::Protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn statuses_map_to_kinds() {
        use ProviderErrorKind::*;
        let kinds: Vec<(u16, ProviderErrorKind)> =
            [302, 400, 401, 402, 403, 404, 409, 413, 418, 429, 499, 500, 501, 502, 503, 505, 507]
                .into_iter()
                .map(|status| (status, ProviderErrorKind::from_status(status)))
                .collect();
        assert_eq!(
            kinds,
            [
                (302, Protocol),
                (400, BadRequest),
                (401, Unauthorized),
                (402, PaymentRequired),
                (403, Forbidden),
                (404, NotFound),
                (409, Conflict),
                (413, BadRequest),
                (418, BadRequest),
                (429, RateLimited),
                (499, Unavailable),
                (500, Unavailable),
                (501, Unsupported),
                (502, Unavailable),
                (503, Unavailable),
                (505, Unsupported),
                (507, Unavailable),
            ]
        );
    }

    #[test]
    fn the_kind_does_not_change_the_message() {
        let error = ProviderError::Status {
            provider: "e2b",
            status: 429,
            kind: ProviderErrorKind::RateLimited,
            message: "rate limited: slow down".into(),
        };
        assert_eq!(error.to_string(), "e2b answered 429: rate limited: slow down");
        assert_eq!(error.kind(), ProviderErrorKind::RateLimited);
        let cut = ProviderError::Http { provider: "instanode", source: HttpError::Timeout };
        assert_eq!(cut.kind(), ProviderErrorKind::Network);
        assert_eq!(ProviderError::StreamTruncated.kind(), ProviderErrorKind::Network);
    }
}
