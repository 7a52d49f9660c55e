//! Bearer API keys. `MAYFLY_API_KEYS` (a secret; `.dev.vars` locally) lists `tenant:key` pairs,
//! comma-separated; each key is a tenant and sees only its own turns.
//!
//! A browser's `WebSocket` cannot send an `Authorization` header, so a WebSocket handshake may
//! carry the key as a subprotocol instead: `Sec-WebSocket-Protocol: mayfly, bearer.<key>`. The
//! server then speaks `mayfly`, and the key goes no further than this module. A key in the URL
//! would end up in access logs; a subprotocol does not.
//!
//! Wherever a route takes a turn token ([`crate::tokens`]) instead of the key, it rides the same
//! two ways. Routes take the key alone unless they ask for [`turn_tenant`]: a route added later
//! refuses tokens until someone decides it should not.

use mayfly_core::{ApiError, ErrorCode};
use worker::{Date, Env, Request};

use crate::tokens::{self, Secrets, TokenError};

/// The tenant a request acts for, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant(pub(crate) String);

/// What a route takes as its caller's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepts {
    /// The tenant's API key; a turn token is refused with `403`.
    Key,
    /// The key or a turn token: the routes that create, read, watch and cancel turns.
    KeyOrTurnToken,
}

/// The tenant of `req`'s API key, or the 401 (no key, or not a known one) or 403 (a turn token)
/// to answer.
pub(crate) fn tenant(req: &Request, env: &Env) -> Result<Tenant, ApiError> {
    tenant_for(req, env, Accepts::Key)
}

/// The tenant of `req`'s API key or turn token, or the 401 to answer: for the turn routes only.
pub(crate) fn turn_tenant(req: &Request, env: &Env) -> Result<Tenant, ApiError> {
    tenant_for(req, env, Accepts::KeyOrTurnToken)
}

fn tenant_for(req: &Request, env: &Env, accepts: Accepts) -> Result<Tenant, ApiError> {
    let header = |name: &str| req.headers().get(name).ok().flatten().unwrap_or_default();
    let authorization = header("Authorization");
    let protocols = header("Sec-WebSocket-Protocol");
    let Some(credential) = bearer_key(&authorization).or_else(|| protocol_key(&protocols)) else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "send an API key as `Authorization: Bearer <key>`"));
    };
    let keys = env.secret("MAYFLY_API_KEYS").map(|v| v.to_string()).unwrap_or_default();
    resolve(&keys, credential, accepts, || Secrets::from_env(env), Date::now().as_millis())
}

/// Whose `credential` is: a key of `keys`, or a token one of the secrets signed for a tenant that
/// still has a key (taking a tenant off `MAYFLY_API_KEYS` ends its tokens too).
fn resolve(
    keys: &str,
    credential: &str,
    accepts: Accepts,
    secrets: impl FnOnce() -> Secrets,
    now_ms: u64,
) -> Result<Tenant, ApiError> {
    if let Some(tenant) = find_tenant(keys, credential) {
        return Ok(tenant);
    }
    if !tokens::is_token(credential) {
        return Err(ApiError::new(ErrorCode::Unauthorized, "the API key is not known"));
    }
    let claims = secrets().verify(credential, now_ms).map_err(TokenError::to_api_error)?;
    if !has_key(keys, &claims.tenant) {
        return Err(TokenError::Invalid.to_api_error());
    }
    match accepts {
        Accepts::KeyOrTurnToken => Ok(Tenant(claims.tenant)),
        Accepts::Key => Err(ApiError::new(
            ErrorCode::Forbidden,
            "a turn token may only create turns and read, watch or cancel them; this route needs the tenant's API key",
        )),
    }
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

/// Whether `tenant` has a key in a `tenant:key,tenant:key` list.
fn has_key(keys: &str, tenant: &str) -> bool {
    keys.split(',').filter_map(|entry| entry.trim().split_once(':')).any(|(t, k)| t == tenant && !k.is_empty())
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

    const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes-0123";
    const NOW: u64 = 1_700_000_000_000;

    fn token(tenant: &str, exp_ms: u64) -> String {
        let claims = tokens::Claims { tenant: tenant.to_owned(), scope: mayfly_core::TokenScope::Turns, exp_ms };
        Secrets::new(Some(SECRET), None).mint(&claims).unwrap()
    }

    fn code(result: Result<Tenant, ApiError>) -> Result<Tenant, ErrorCode> {
        result.map_err(|err| err.code)
    }

    #[test]
    fn a_turn_token_is_its_tenant_on_the_turn_routes_and_forbidden_elsewhere() {
        let keys = "alice:k1,bob:k2";
        let secrets = || Secrets::new(Some(SECRET), None);
        let alice = token("alice", NOW + 1000);
        let turns = |credential: &str| code(resolve(keys, credential, Accepts::KeyOrTurnToken, secrets, NOW));
        let key_only = |credential: &str| code(resolve(keys, credential, Accepts::Key, secrets, NOW));
        assert_eq!(turns(&alice), Ok(Tenant("alice".into())));
        assert_eq!(key_only(&alice), Err(ErrorCode::Forbidden));
        assert_eq!(turns("k1"), Ok(Tenant("alice".into())));
        assert_eq!(key_only("k2"), Ok(Tenant("bob".into())));
        // Expired, forged, or of a tenant no longer listed: 401 whatever the route.
        for bad in [token("alice", NOW), token("carol", NOW + 1000), format!("{alice}x"), "mft1.x.y".to_owned()] {
            assert_eq!(turns(&bad), Err(ErrorCode::Unauthorized), "{bad}");
            assert_eq!(key_only(&bad), Err(ErrorCode::Unauthorized), "{bad}");
        }
        assert_eq!(turns("k3"), Err(ErrorCode::Unauthorized));
        // Without a secret no token is anyone's.
        let unset = || Secrets::new(None, None);
        assert_eq!(code(resolve(keys, &alice, Accepts::KeyOrTurnToken, unset, NOW)), Err(ErrorCode::Unauthorized));
    }

    #[test]
    fn a_token_rides_as_a_subprotocol_like_a_key() {
        let alice = token("alice", NOW + 1000);
        assert_eq!(protocol_key(&format!("mayfly, bearer.{alice}")), Some(alice.as_str()));
        assert!(has_key("alice:k1", "alice"));
        assert!(!has_key("alice:k1", "ali"));
        assert!(!has_key("alice:", "alice"));
    }
}
