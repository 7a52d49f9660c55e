//! `POST /v1/tokens`: what a tenant asks for when it mints a short-lived turn token for a browser,
//! and what it gets. The token itself is opaque to every caller; only the worker reads it.

use serde::{Deserialize, Serialize};

use crate::wire::error::{ApiError, ErrorCode};

/// What a token lets its holder do. A token never does what only the tenant's key may: list the
/// tenant's turns, read the reaper, keep a database (whose answer holds a connection URL), check
/// the providers, or mint another token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Create turns, and read, watch and cancel them.
    #[default]
    Turns,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Turns => "turns",
        }
    }
}

/// `POST /v1/tokens`. The body may be left out altogether for the default lifetime. Unknown fields
/// are refused, as everywhere in the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// How long the token lives, in seconds: 1 to [`CreateTokenRequest::MAX_TTL_S`], by default
    /// [`CreateTokenRequest::DEFAULT_TTL_S`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u32>,
}

impl CreateTokenRequest {
    /// Ten minutes: enough for a page to start turns and watch them through ordinary timeouts,
    /// short enough that a token copied out of a page is soon worthless.
    pub const DEFAULT_TTL_S: u32 = 600;
    /// A token is a browser's, not a service's: a service keeps the key.
    pub const MAX_TTL_S: u32 = 3600;

    /// The lifetime asked for, checked.
    pub fn ttl_s(&self) -> Result<u32, ApiError> {
        match self.ttl_s {
            None => Ok(Self::DEFAULT_TTL_S),
            Some(ttl) if (1..=Self::MAX_TTL_S).contains(&ttl) => Ok(ttl),
            Some(ttl) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("ttl_s is {ttl}; a token lives from 1 to {} seconds", Self::MAX_TTL_S),
            )),
        }
    }
}

/// The answer to `POST /v1/tokens`: the one place a token is ever shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Sent like the key: `Authorization: Bearer <token>`, or the WebSocket subprotocol
    /// `bearer.<token>` beside `mayfly`.
    pub token: String,
    pub scope: TokenScope,
    /// When the token stops working, in milliseconds since the Unix epoch.
    pub expires_unix_ms: u64,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::wire::api::check;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_token_request_is_checked_and_may_be_empty() {
        let empty: CreateTokenRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.ttl_s(), Ok(600));
        check(&CreateTokenRequest { ttl_s: Some(60) }, expect![[r#"{"ttl_s":60}"#]]);
        assert_eq!(CreateTokenRequest { ttl_s: Some(1) }.ttl_s(), Ok(1));
        assert_eq!(CreateTokenRequest { ttl_s: Some(3600) }.ttl_s(), Ok(3600));
        for ttl in [0, 3601, u32::MAX] {
            let err = CreateTokenRequest { ttl_s: Some(ttl) }.ttl_s().unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{ttl}");
        }
        for refused in [r#"{"ttl":60}"#, r#"{"ttl_s":-1}"#, r#"{"ttl_s":1.5}"#, r#"{"ttl_s":"60"}"#] {
            assert!(serde_json::from_str::<CreateTokenRequest>(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn token_response_shape() {
        let answer = TokenResponse {
            token: "mft1.e30.c2ln".to_owned(),
            scope: TokenScope::Turns,
            expires_unix_ms: 1_700_000_600_000,
        };
        check(&answer, expect![[r#"{"token":"mft1.e30.c2ln","scope":"turns","expires_unix_ms":1700000600000}"#]]);
    }
}
