//! Bearer API keys. `MAYFLY_API_KEYS` (a secret; `.dev.vars` locally) lists `tenant:key` pairs,
//! comma-separated; each key is a tenant and sees only its own turns.
//!
//! A browser's `WebSocket` cannot send an `Authorization` header, so a WebSocket handshake may
//! carry the key as a subprotocol instead: `Sec-WebSocket-Protocol: mayfly, bearer.<key>`. The
//! server then speaks `mayfly`, and the key goes no further than this module. A key in the URL
//! would end up in access logs; a subprotocol does not.

use mayfly_core::{ApiError, ErrorCode};
use worker::{Env, Request};

/// The tenant a request acts for, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant(pub(crate) String);

/// The tenant of `req`'s `Authorization: Bearer <key>`, or the 401 to answer.
pub(crate) fn tenant(req: &Request, env: &Env) -> Result<Tenant, ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message);
    let header = |name: &str| req.headers().get(name).ok().flatten().unwrap_or_default();
    let authorization = header("Authorization");
    let protocols = header("Sec-WebSocket-Protocol");
    let Some(key) = bearer_key(&authorization).or_else(|| protocol_key(&protocols)) else {
        return Err(unauthorized("send an API key as `Authorization: Bearer <key>`"));
    };
    let keys = env.secret("MAYFLY_API_KEYS").map(|v| v.to_string()).unwrap_or_default();
    find_tenant(&keys, key).ok_or_else(|| unauthorized("the API key is not known"))
}

/// The subprotocol a browser's event stream speaks; offered with the key beside it.
pub(crate) const WS_PROTOCOL: &str = "mayfly";
const WS_KEY_PREFIX: &str = "bearer.";

/// Whether a `Sec-WebSocket-Protocol` offer includes mayfly's subprotocol.
pub(crate) fn offers_ws_protocol(protocols: &str) -> bool {
    protocols.split(',').any(|p| p.trim() == WS_PROTOCOL)
}

fn bearer_key(authorization: &str) -> Option<&str> {
    authorization.strip_prefix("Bearer ").map(str::trim).filter(|k| !k.is_empty())
}

/// The key in a `mayfly, bearer.<key>` subprotocol offer; only with `mayfly` offered too, so the
/// handshake can be answered with a protocol the browser asked for.
fn protocol_key(protocols: &str) -> Option<&str> {
    if !offers_ws_protocol(protocols) {
        return None;
    }
    protocols.split(',').find_map(|p| p.trim().strip_prefix(WS_KEY_PREFIX)).filter(|k| !k.is_empty())
}

/// Looks `key` up in a `tenant:key,tenant:key` list. Every entry is compared in full, so how
/// long the check takes does not tell which prefix matched.
fn find_tenant(keys: &str, key: &str) -> Option<Tenant> {
    let mut found = None;
    for entry in keys.split(',') {
        let Some((tenant, candidate)) = entry.trim().split_once(':') else { continue };
        if !tenant.is_empty() && !candidate.is_empty() && constant_time_eq(candidate.as_bytes(), key.as_bytes()) {
            found = Some(Tenant(tenant.to_owned()));
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_tenants() {
        let keys = " alice:k1 ,bob:k2,broken,:nokey,empty:";
        assert_eq!(find_tenant(keys, "k1"), Some(Tenant("alice".into())));
        assert_eq!(find_tenant(keys, "k2"), Some(Tenant("bob".into())));
        assert_eq!(find_tenant(keys, "k3"), None);
        assert_eq!(find_tenant(keys, "nokey"), None);
        assert_eq!(find_tenant(keys, ""), None);
        assert_eq!(find_tenant("", "k1"), None);
    }

    #[test]
    fn a_websocket_may_carry_the_key_as_a_subprotocol() {
        assert_eq!(protocol_key("mayfly, bearer.k1"), Some("k1"));
        assert_eq!(protocol_key("bearer.k1,mayfly"), Some("k1"));
        assert_eq!(protocol_key("bearer.k1"), None, "without `mayfly` the handshake could not be answered");
        assert_eq!(protocol_key("mayfly, bearer."), None);
        assert_eq!(protocol_key("mayfly"), None);
        assert_eq!(bearer_key("Bearer  k2 "), Some("k2"));
        assert_eq!(bearer_key("Basic k2"), None);
        assert!(offers_ws_protocol("chat, mayfly"));
        assert!(!offers_ws_protocol("mayflyx"));
    }
}
