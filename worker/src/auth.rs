//! Bearer API keys. `MAYFLY_API_KEYS` (a secret; `.dev.vars` locally) lists `tenant:key` pairs,
//! comma-separated; each key is a tenant and sees only its own turns.

use mayfly_core::{ApiError, ErrorCode};
use worker::{Env, Request};

/// The tenant a request acts for, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant(pub(crate) String);

/// The tenant of `req`'s `Authorization: Bearer <key>`, or the 401 to answer.
pub(crate) fn tenant(req: &Request, env: &Env) -> Result<Tenant, ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message);
    let header = req.headers().get("Authorization").ok().flatten().unwrap_or_default();
    let Some(key) = header.strip_prefix("Bearer ").map(str::trim).filter(|k| !k.is_empty()) else {
        return Err(unauthorized("send an API key as `Authorization: Bearer <key>`"));
    };
    let keys = env.secret("MAYFLY_API_KEYS").map(|v| v.to_string()).unwrap_or_default();
    find_tenant(&keys, key).ok_or_else(|| unauthorized("the API key is not known"))
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
}
