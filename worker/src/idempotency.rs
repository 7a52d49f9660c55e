//! `Idempotency-Key` on `POST /v1/turns`: what a key may be, and the fingerprint of the request it
//! is sent with. A retry with the same key and the same body gets the turn the key started, not a
//! second one; the same key with another body is a `409`. The tenant's ledger remembers the keys
//! (`ledger/keys.rs`), for 24 hours and at most its 1,000 newest.

use mayfly_core::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};
use worker::Request;

/// The request header.
pub(crate) const HEADER: &str = "Idempotency-Key";

/// The longest key taken, in characters (each one byte: visible ASCII only).
pub(crate) const MAX_KEY_LEN: usize = 255;

/// The request's key, when it sends one; a key that is empty, too long or holds anything but
/// visible ASCII is a `400`.
pub(crate) fn key_of(req: &Request) -> Result<Option<String>, ApiError> {
    let value = req.headers().get(HEADER).ok().flatten();
    value.map(check_key).transpose()
}

/// A key is 1 to [`MAX_KEY_LEN`] visible ASCII characters: a UUID, a hash, a name with dashes.
/// Two `Idempotency-Key` headers reach here joined by ", ", and are refused for the space.
fn check_key(value: String) -> Result<String, ApiError> {
    let visible = value.bytes().all(|b| b.is_ascii_graphic());
    if value.is_empty() || value.len() > MAX_KEY_LEN || !visible {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "{HEADER} must be 1 to {MAX_KEY_LEN} visible ASCII characters (letters, digits, punctuation; \
                 no spaces), sent once"
            ),
        ));
    }
    Ok(value)
}

/// The fingerprint of a request body: SHA-256 of its bytes, in hex. Byte for byte: a retry must
/// send the very body it sent before.
pub(crate) fn body_sha256(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_a_bounded_length() {
        for good in ["a", "3f2c-41d9-9a7e", "retry:turn/7?x=1", &"k".repeat(MAX_KEY_LEN)] {
            assert_eq!(check_key(good.to_owned()).as_deref(), Ok(good));
        }
        for bad in ["", "two words", "tab\there", "é", "a, b", &"k".repeat(MAX_KEY_LEN + 1), "nul\0"] {
            let refused = check_key(bad.to_owned()).unwrap_err();
            assert_eq!(refused.status(), 400, "{bad:?}");
            assert!(refused.message.starts_with("Idempotency-Key must be 1 to 255"), "{}", refused.message);
        }
    }

    #[test]
    fn a_fingerprint_is_the_sha256_of_the_bytes() {
        assert_eq!(body_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(body_sha256(br#"{"code":"1"}"#), body_sha256(br#"{"code": "1"}"#));
    }
}
