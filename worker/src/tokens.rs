//! Turn tokens: short-lived, scoped stand-ins for a tenant's API key that a page in a browser may
//! hold. [`crate::mint`] mints one (`POST /v1/tokens`, with the key); [`crate::auth`] accepts it
//! on the turn routes only (create a turn; read, watch and cancel one) and refuses it with `403`
//! wherever else a key is needed. This module is the format alone, and knows no route.
//!
//! A token is stateless and signed: `mft1.<claims>.<signature>`, where `<claims>` is the unpadded
//! base64url of `{"tenant":…,"scope":"turns","exp_ms":…}` and `<signature>` the unpadded
//! base64url of HMAC-SHA256 over `mft1.<claims>` with `MAYFLY_TOKEN_SECRET`. Every character is
//! one a WebSocket subprotocol may carry, so a token rides as `bearer.<token>` like a key. The
//! claims are readable by whoever holds the token (the tenant's name and the expiry); they are
//! not secret, only unforgeable. `MAYFLY_TOKEN_SECRET_PREVIOUS`, when set, is accepted too but
//! signs nothing: the secret can be rotated without cutting off the tokens in flight
//! (`docs/security.md`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use mayfly_core::{ApiError, CreateTokenRequest, ErrorCode, TokenScope};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use worker::Env;

/// What every token starts with: the format's version.
const PREFIX: &str = "mft1.";

/// The shortest secret taken: HMAC-SHA256's own strength needs 32 bytes of key.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// Far longer than any token minted here (a tenant's name is short): a longer one is refused
/// before anything is decoded.
const MAX_TOKEN_BYTES: usize = 1024;

/// What a token says, and all its signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Claims {
    pub(crate) tenant: String,
    pub(crate) scope: TokenScope,
    /// When it stops working, in milliseconds since the Unix epoch.
    pub(crate) exp_ms: u64,
}

/// Why a token is refused. Only a token whose signature holds is ever called expired, so the
/// words tell a forger nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not a token of this deployment's: malformed, altered, or signed with another secret.
    Invalid,
    Expired,
}

impl TokenError {
    pub(crate) fn to_api_error(self) -> ApiError {
        let message = match self {
            TokenError::Invalid => "the turn token is not valid",
            TokenError::Expired => "the turn token has expired; mint a new one with POST /v1/tokens",
        };
        ApiError::new(ErrorCode::Unauthorized, message)
    }
}

/// The secrets of this deployment: the one that signs (and verifies), and the one before it,
/// which only verifies.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    current: Option<Vec<u8>>,
    previous: Option<Vec<u8>>,
}

// Never shows a secret, not even in a log line that prints the configuration.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &self.current.as_ref().map(|_| "set"))
            .field("previous", &self.previous.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Secrets {
    /// `current` and `previous` as configured; one shorter than [`MIN_SECRET_BYTES`] is left out
    /// (and logged by name), so a weak secret signs and accepts nothing.
    pub(crate) fn new(current: Option<&str>, previous: Option<&str>) -> Secrets {
        let strong = |name: &str, value: Option<&str>| {
            let value = value.map(str::trim).filter(|v| !v.is_empty())?;
            if value.len() < MIN_SECRET_BYTES {
                log_config_error(&format!(
                    "config: {name} is shorter than {MIN_SECRET_BYTES} bytes; it signs and accepts no token"
                ));
                return None;
            }
            Some(value.as_bytes().to_vec())
        };
        Secrets {
            current: strong("MAYFLY_TOKEN_SECRET", current),
            previous: strong("MAYFLY_TOKEN_SECRET_PREVIOUS", previous),
        }
    }

    pub(crate) fn from_env(env: &Env) -> Secrets {
        let secret = |name: &str| env.secret(name).ok().map(|v| v.to_string());
        Secrets::new(secret("MAYFLY_TOKEN_SECRET").as_deref(), secret("MAYFLY_TOKEN_SECRET_PREVIOUS").as_deref())
    }

    /// A token for `claims`, or `None` when no secret signs.
    pub(crate) fn mint(&self, claims: &Claims) -> Option<String> {
        let secret = self.current.as_deref()?;
        let json = serde_json::to_vec(claims).ok()?;
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
        let signature = URL_SAFE_NO_PAD.encode(mac(secret, &signed).finalize().into_bytes());
        Some(format!("{signed}.{signature}"))
    }

    /// The claims of `token` if one of the secrets signed it and it has not expired at `now_ms`.
    pub(crate) fn verify(&self, token: &str, now_ms: u64) -> std::result::Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let claims = signed.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Invalid)?;
        // `verify_slice` compares in constant time.
        let signed_by_us = [self.current.as_deref(), self.previous.as_deref()]
            .into_iter()
            .flatten()
            .any(|secret| mac(secret, signed).verify_slice(&signature).is_ok());
        if !signed_by_us {
            return Err(TokenError::Invalid);
        }
        let json = URL_SAFE_NO_PAD.decode(claims).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        // No token we mint lives longer than the longest lifetime: one that says otherwise was not
        // minted by this code, whatever signed it.
        let longest_ms = u64::from(CreateTokenRequest::MAX_TTL_S) * 1000 + CLOCK_SKEW_MS;
        if claims.exp_ms > now_ms.saturating_add(longest_ms) {
            return Err(TokenError::Invalid);
        }
        if now_ms >= claims.exp_ms {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// How far the clocks of the instances that mint and verify tokens may disagree.
const CLOCK_SKEW_MS: u64 = 60_000;

fn mac(secret: &[u8], signed: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(signed.as_bytes());
    mac
}

/// Whether a credential is meant as a token rather than a key (it may still be a bad one).
pub(crate) fn is_token(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

#[cfg(target_arch = "wasm32")]
fn log_config_error(message: &str) {
    worker::console_error!("{message}");
}

#[cfg(not(target_arch = "wasm32"))]
fn log_config_error(message: &str) {
    eprintln!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes-0123";
    const OTHER: &str = "another-secret-of-thirty-two-bytes-or-more-9876";
    const NOW: u64 = 1_700_000_000_000;

    fn claims(tenant: &str, exp_ms: u64) -> Claims {
        Claims { tenant: tenant.to_owned(), scope: TokenScope::Turns, exp_ms }
    }

    fn sign_raw(secret: &str, claims_json: &str) -> String {
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(claims_json));
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac(secret.as_bytes(), &signed).finalize().into_bytes()))
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let secrets = Secrets::new(Some(SECRET), None);
        let token = secrets.mint(&claims("alice", NOW + 600_000)).unwrap();
        assert!(is_token(&token), "{token}");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "not a subprotocol: {token}");
        assert_eq!(secrets.verify(&token, NOW), Ok(claims("alice", NOW + 600_000)));
        assert_eq!(secrets.verify(&token, NOW + 599_999).map(|c| c.tenant), Ok("alice".to_owned()));
        assert_eq!(secrets.verify(&token, NOW + 600_000), Err(TokenError::Expired));
        assert_eq!(secrets.verify(&token, u64::MAX), Err(TokenError::Expired));
        assert!(!token.contains(SECRET));
    }

    #[test]
    fn a_token_that_claims_to_outlive_the_longest_lifetime_is_invalid() {
        // Signed with a secret that leaked, or minted by a mistake: whatever it claims, no token
        // lives longer than a minted one may.
        let secrets = Secrets::new(Some(SECRET), None);
        let longest = NOW + u64::from(CreateTokenRequest::MAX_TTL_S) * 1000;
        assert!(secrets.verify(&secrets.mint(&claims("alice", longest)).unwrap(), NOW).is_ok());
        let skewed = longest + CLOCK_SKEW_MS;
        assert!(secrets.verify(&secrets.mint(&claims("alice", skewed)).unwrap(), NOW).is_ok());
        for exp_ms in [skewed + 1, NOW + 86_400_000, u64::MAX] {
            let token = secrets.mint(&claims("alice", exp_ms)).unwrap();
            assert_eq!(secrets.verify(&token, NOW), Err(TokenError::Invalid), "{exp_ms}");
        }
    }

    #[test]
    fn an_altered_or_foreign_token_is_invalid() {
        let secrets = Secrets::new(Some(SECRET), None);
        let token = secrets.mint(&claims("alice", NOW + 1000)).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        // Claims rewritten under the old signature: another tenant, a later expiry.
        let forged_claims = [
            r#"{"tenant":"bob","scope":"turns","exp_ms":1700000001000}"#.to_owned(),
            format!(r#"{{"tenant":"alice","scope":"turns","exp_ms":{}}}"#, NOW + 3_600_000),
        ];
        for json in &forged_claims {
            let forged = format!("{PREFIX}{}.{signature}", URL_SAFE_NO_PAD.encode(json));
            assert_eq!(secrets.verify(&forged, NOW), Err(TokenError::Invalid), "{json}");
        }
        // Every single character changed, anywhere past the prefix.
        for at in PREFIX.len()..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != token {
                assert!(secrets.verify(&altered, NOW).is_err(), "accepted with byte {at} changed: {altered}");
            }
        }
        // Signed with another secret, truncated, or not a token at all.
        let foreign = Secrets::new(Some(OTHER), None).mint(&claims("alice", NOW + 1000)).unwrap();
        let long = format!("{token}{}", "A".repeat(MAX_TOKEN_BYTES));
        let swapped = token.replacen(PREFIX, "mft2.", 1);
        for bad in
            [foreign.as_str(), signed, &token[..token.len() - 1], "", "mft1.", "mft1..", "mft1.e30.", &long, &swapped]
        {
            assert_eq!(secrets.verify(bad, NOW), Err(TokenError::Invalid), "{bad:?}");
        }
        // Signed, but not claims this worker writes: an unknown scope or field.
        for json in [
            r#"{"tenant":"alice","scope":"admin","exp_ms":1700000600000}"#,
            r#"{"tenant":"alice","scope":"turns","exp_ms":1700000600000,"keep":true}"#,
            r#"{"tenant":"alice","scope":"turns"}"#,
        ] {
            assert_eq!(secrets.verify(&sign_raw(SECRET, json), NOW), Err(TokenError::Invalid), "{json}");
        }
        assert_eq!(
            secrets.verify(&sign_raw(SECRET, r#"{"tenant":"alice","scope":"turns","exp_ms":1700000600000}"#), NOW),
            Ok(claims("alice", 1_700_000_600_000)),
            "the helper signs as mint does"
        );
    }

    #[test]
    fn the_previous_secret_verifies_but_never_signs() {
        let old = Secrets::new(Some(OTHER), None).mint(&claims("alice", NOW + 1000)).unwrap();
        let rotated = Secrets::new(Some(SECRET), Some(OTHER));
        assert_eq!(rotated.verify(&old, NOW).map(|c| c.tenant), Ok("alice".to_owned()));
        let new = rotated.mint(&claims("alice", NOW + 1000)).unwrap();
        assert_eq!(Secrets::new(Some(SECRET), None).verify(&new, NOW).map(|c| c.tenant), Ok("alice".to_owned()));
        assert_eq!(Secrets::new(Some(OTHER), None).verify(&new, NOW), Err(TokenError::Invalid));
        // Once the previous secret is dropped, its tokens are gone.
        assert_eq!(Secrets::new(Some(SECRET), None).verify(&old, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn without_a_strong_secret_nothing_is_signed_or_accepted() {
        let token = Secrets::new(Some(SECRET), None).mint(&claims("alice", NOW + 1000)).unwrap();
        for secrets in [Secrets::new(None, None), Secrets::new(Some(""), None), Secrets::new(Some("short"), None)] {
            assert_eq!(secrets.mint(&claims("alice", NOW + 1000)), None, "{secrets:?}");
            assert_eq!(secrets.verify(&token, NOW), Err(TokenError::Invalid), "{secrets:?}");
        }
        // A short previous secret is dropped too, and never shown.
        let secrets = Secrets::new(Some(SECRET), Some("short"));
        assert_eq!(format!("{secrets:?}"), r#"Secrets { current: Some("set"), previous: None }"#);
    }

    #[test]
    fn refusals_say_expired_only_of_genuine_tokens() {
        assert_eq!(TokenError::Invalid.to_api_error().status(), 401);
        assert_eq!(TokenError::Expired.to_api_error().status(), 401);
        assert!(TokenError::Expired.to_api_error().message.contains("POST /v1/tokens"));
    }
}
