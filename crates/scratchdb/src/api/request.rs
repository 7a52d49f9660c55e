//! What a request carries, checked before any handler acts on it: the bodies of `POST /db/new` and
//! `POST /claim`, the `Idempotency-Key` header and the `env` filter. The checks answer with
//! instanode's own codes, in instanode's order, so they live apart from what the handlers do next.

use axum::body::Bytes;
use axum::http::HeaderMap;
use mayfly_core::wire::instanode::NewDatabase;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::service::sha256_hex;

#[derive(Deserialize)]
pub(super) struct EnvQuery {
    pub(super) env: Option<String>,
}

pub(crate) fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=64).contains(&n)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'))
}

fn valid_env(env: &str) -> bool {
    (1..=32).contains(&env.len()) && env.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// JSON with object keys sorted at every level, so key order does not change an idempotency hash.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[k.as_str()]))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A `POST /db/new` body that passed its checks. What it asks for that needs a token
/// (`dedicated`, `parent_resource_id`) is only noted: whether that is allowed depends on the caller.
pub(super) struct NewDatabaseBody {
    /// The whole body, as the idempotency hash covers it.
    pub(super) value: Value,
    pub(super) name: String,
    pub(super) env: String,
    /// No `env` in the query or the body, so the answer says why it got the default.
    pub(super) env_override_reason: bool,
    pub(super) wants_dedicated: bool,
    pub(super) wants_parent: bool,
    /// Fields instanode does not know, sorted; the answer lists them instead of refusing the body.
    pub(super) ignored: Vec<String>,
}

/// Checks a `POST /db/new` body; `query_env` (`?env=`) wins over the body's `env`.
pub(super) fn new_database_body(query_env: Option<&str>, body: &Bytes) -> Result<NewDatabaseBody, ApiError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|_| ApiError::bad("invalid_body", "the body is not valid JSON"))?
    };
    let Value::Object(fields) = &value else {
        return Err(ApiError::bad("invalid_body", "the body must be a JSON object"));
    };
    let name = match fields.get("name") {
        None | Some(Value::Null) => return Err(ApiError::bad("name_required", "name is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(ApiError::bad("name_required", "name is required"))
        }
        Some(Value::String(s)) if valid_name(s.trim()) => s.trim().to_string(),
        Some(_) => {
            return Err(ApiError::bad(
                "invalid_name",
                "name must be 1-64 characters matching ^[A-Za-z0-9][A-Za-z0-9 _-]*$",
            ))
        }
    };
    let env_override_reason = query_env.is_none() && fields.get("env").is_none();
    let env = match (query_env, fields.get("env")) {
        (Some(e), _) => e.to_string(),
        (None, None | Some(Value::Null)) => "development".to_string(),
        (None, Some(Value::String(e))) => e.clone(),
        (None, Some(_)) => String::new(),
    };
    if !valid_env(&env) {
        return Err(ApiError::bad("invalid_env", "env must match ^[a-z0-9-]{1,32}$"));
    }
    let wants_dedicated = fields.get("dedicated").and_then(Value::as_bool) == Some(true);
    let wants_parent = fields.get("parent_resource_id").is_some_and(|v| !v.is_null());
    let mut ignored: Vec<String> =
        fields.keys().filter(|k| !NewDatabase::FIELDS.contains(&k.as_str())).cloned().collect();
    ignored.sort();
    Ok(NewDatabaseBody { value, name, env, env_override_reason, wants_dedicated, wants_parent, ignored })
}

/// The `Idempotency-Key` and the hash of what it promises: the body and the `env` it resolved to,
/// so the same body under another `?env=` is a different request, and for a fork its source, so a
/// key is never answered with a create's database or another source's copy.
pub(super) fn idempotency(
    headers: &HeaderMap,
    value: &Value,
    env: &str,
    fork_of: Option<&str>,
) -> Result<Option<(String, String)>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let key = v
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or_else(|| ApiError::bad("invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII"))?;
    // A create's hash is what it always was, so keys stored by earlier versions still replay.
    let fork = fork_of.map(|source| format!("|fork={source}")).unwrap_or_default();
    let hash = sha256_hex(&format!("{}|env={env}{fork}", canonical(value)));
    Ok(Some((key.to_string(), hash)))
}

/// A `POST /claim` body: the claim token (as `token`, or `jwt` as hosted calls it) and an email.
pub(super) struct ClaimBody {
    pub(super) token: String,
    pub(super) email: String,
}

pub(super) fn claim_body(body: &Bytes) -> Result<ClaimBody, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::bad("invalid_body", "the body is not valid JSON"))?;
    let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let token =
        field("token").or_else(|| field("jwt")).ok_or_else(|| ApiError::bad("missing_token", "token is required"))?;
    let email = field("email").ok_or_else(|| ApiError::bad("missing_email", "email is required"))?;
    let well_formed = email
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace));
    if !well_formed {
        return Err(ApiError::bad("invalid_email_format", "email is not a valid address"));
    }
    Ok(ClaimBody { token: token.to_string(), email: email.to_string() })
}
