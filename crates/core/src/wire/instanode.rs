//! instanode's bodies (`docs/protocols/instanode.md`), shared by scratchdb (the server) and core's
//! client.
//!
//! The server writes every answer as an [`Envelope`]: `ok`, then the fields of its body. The client
//! reads the body alone and reads it leniently, because hosted instanode and its documents disagree
//! on details (§11): unknown fields are ignored, and a field the client does not use is read with
//! `lenient`, so a value of an unexpected type there is taken as absent instead of failing the
//! whole answer.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

/// A field the client does not need: what does not read as `T` is absent.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).ok())
}

/// An answer as the server writes it: `{"ok": true, …}` for a success, `{"ok": false, …}` with an
/// [`ErrorAnswer`] for every `4xx` and `5xx` (§1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope<T> {
    pub ok: bool,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Envelope<T> {
    pub fn success(body: T) -> Envelope<T> {
        Envelope { ok: true, body }
    }
}

impl Envelope<ErrorAnswer> {
    pub fn failure(error: ErrorAnswer) -> Envelope<ErrorAnswer> {
        Envelope { ok: false, body: error }
    }
}

/// The error envelope's fields (§1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// The stable machine code (`name_required`, `not_found`, `rate_limited`, …).
    #[serde(default)]
    pub error: Option<String>,
    /// For people; it may echo a connection URL.
    #[serde(default)]
    pub message: Option<String>,
    /// `null` when the request is not worth repeating, and written so.
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Why a `401` (`missing_credentials`, `malformed_token`, …).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub agent_action: Option<String>,
    /// Where to claim the earlier database, on the recycle gate's `402` (§7).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub claim_url: Option<String>,
}

/// `POST /db/new`'s body (§2). mayfly sends `name` only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDatabase {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_resource_id: Option<String>,
}

impl NewDatabase {
    /// The fields a create knows: the server lists any other back as `ignored_fields`.
    pub const FIELDS: [&'static str; 4] = ["name", "env", "dedicated", "parent_resource_id"];
}

/// `POST /db/new`'s answer (§2), both shapes: anonymous (limits with `expires_in`, the claim links,
/// `upgrade_jwt` and `expires_at`) and with a token (`dedicated`, none of those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDatabaseAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub id: Option<String>,
    /// What every later call names the database by.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Holds the password.
    pub connection_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub dedicated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub limits: Option<DatabaseLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub note: Option<String>,
    /// The claim link of older answers, which have no `claim_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_jwt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_url: Option<String>,
    /// RFC 3339; anonymous databases only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub env_override_reason: Option<String>,
    /// The request's fields the server does not know, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub ignored_fields: Option<Vec<String>>,
}

/// A new database's limits; `expires_in` (`24h`) for anonymous ones only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseLimits {
    pub storage_mb: i64,
    pub connections: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// A resource as listing and reading show it (§3). It never holds the connection URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceItem {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub id: Option<String>,
    pub token: String,
    /// `postgres`, `redis`, `vector`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub tier: Option<String>,
    /// `active`, `paused`, `expired`, `deleted`, `error` (scratchdb adds `suspended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub storage_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub connections_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_limit_bytes: Option<u64>,
    /// The database went past its storage limit, and the provider stopped (or may stop) it.
    #[serde(default)]
    pub storage_exceeded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub expires_at: Option<String>,
}

/// `GET /api/v1/resources` (§3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceList {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub total: Option<u64>,
    /// `resources` in the shape `llms.txt` documents.
    #[serde(default, alias = "resources")]
    pub items: Vec<ResourceItem>,
    /// Only in the Go SDK's reading of the API; followed when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/resources/{token}` (§3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAnswer {
    pub item: ResourceItem,
}

/// `GET /api/v1/resources/{token}/credentials` (§3): the one read that holds the connection URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub id: String,
    pub token: String,
    pub resource_type: String,
    pub env: String,
    pub connection_url: String,
}

/// `DELETE /api/v1/resources/{token}` (§4): a repeated delete says "already" in one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `POST /api/v1/resources/{token}/rotate-credentials` (§5): the new URL, with the new password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateAnswer {
    pub connection_url: String,
}

/// `GET /claim/preview?t=…` (§6): what a claim token would claim; `items` and `resources` alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPreview {
    pub token_valid: bool,
    #[serde(default)]
    pub items: Vec<ResourceItem>,
    #[serde(default)]
    pub resources: Vec<ResourceItem>,
    /// When the claim token stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `POST /claim`'s answer (§6): the account the resources now belong to, and its session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimed {
    pub team_id: String,
    pub user_id: String,
    pub message: String,
    pub session_token: String,
}

/// Who instanode says a token belongs to (`GET /api/v1/whoami`, §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_tier: Option<String>,
}

/// `GET /healthz` (§8): the client looks at the status only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthz {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub service: Option<String>,
    /// scratchdb's own: how many warm databases wait in its pool.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub pool_ready: Option<u64>,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn an_error_always_says_whether_to_retry_and_hints_only_when_it_has_them() {
        let error = ErrorAnswer {
            error: Some("not_found".into()),
            message: Some("Resource not found".into()),
            ..ErrorAnswer::default()
        };
        expect![[r#"{"ok":false,"error":"not_found","message":"Resource not found","retry_after_seconds":null}"#]]
            .assert_eq(&serde_json::to_string(&Envelope::failure(error)).unwrap());
        let gate = ErrorAnswer {
            error: Some("free_tier_recycle_requires_claim".into()),
            message: Some("claim first".into()),
            claim_url: Some("http://h/claim".into()),
            ..ErrorAnswer::default()
        };
        expect![[
            r#"{"ok":false,"error":"free_tier_recycle_requires_claim","message":"claim first","retry_after_seconds":null,"claim_url":"http://h/claim"}"#
        ]]
        .assert_eq(&serde_json::to_string(&Envelope::failure(gate)).unwrap());
    }

    #[test]
    fn the_create_answer_has_two_shapes() {
        let anonymous = NewDatabaseAnswer {
            id: Some("8b1c".into()),
            token: "3f2a".into(),
            name: Some("n".into()),
            connection_url: "postgres://u:p@h:5432/d".into(),
            tier: Some("anonymous".into()),
            env: Some("development".into()),
            dedicated: None,
            limits: Some(DatabaseLimits { storage_mb: 10, connections: 2, expires_in: Some("24h".into()) }),
            note: Some("Works for 24h.".into()),
            upgrade: Some("http://h/claim/preview?t=j".into()),
            upgrade_jwt: Some("j".into()),
            claim_url: Some("http://h/claim/preview?t=j".into()),
            expires_at: Some("2023-11-15T22:13:50Z".into()),
            env_override_reason: Some("default_no_env_specified".into()),
            ignored_fields: None,
        };
        expect![[
            r#"{"ok":true,"id":"8b1c","token":"3f2a","name":"n","connection_url":"postgres://u:p@h:5432/d","tier":"anonymous","env":"development","limits":{"storage_mb":10,"connections":2,"expires_in":"24h"},"note":"Works for 24h.","upgrade":"http://h/claim/preview?t=j","upgrade_jwt":"j","claim_url":"http://h/claim/preview?t=j","expires_at":"2023-11-15T22:13:50Z","env_override_reason":"default_no_env_specified"}"#
        ]]
        .assert_eq(&serde_json::to_string(&Envelope::success(&anonymous)).unwrap());
        let owned = NewDatabaseAnswer {
            tier: Some("pro".into()),
            dedicated: Some(false),
            limits: Some(DatabaseLimits { storage_mb: 1024, connections: 8, expires_in: None }),
            note: None,
            upgrade: None,
            upgrade_jwt: None,
            claim_url: None,
            expires_at: None,
            env_override_reason: None,
            ignored_fields: Some(vec!["region".into()]),
            ..anonymous
        };
        expect![[
            r#"{"ok":true,"id":"8b1c","token":"3f2a","name":"n","connection_url":"postgres://u:p@h:5432/d","tier":"pro","env":"development","dedicated":false,"limits":{"storage_mb":1024,"connections":8},"ignored_fields":["region"]}"#
        ]]
        .assert_eq(&serde_json::to_string(&Envelope::success(&owned)).unwrap());
    }

    #[test]
    fn what_the_client_does_not_use_never_fails_an_answer() {
        let odd = r#"{"ok":true,"id":17,"token":"t","connection_url":"u","limits":"none","dedicated":"no","ignored_fields":3}"#;
        let answer: NewDatabaseAnswer = serde_json::from_str(odd).unwrap();
        assert_eq!((answer.id, answer.limits, answer.dedicated, answer.ignored_fields), (None, None, None, None));
        // What it does use is still checked.
        assert!(serde_json::from_str::<NewDatabaseAnswer>(r#"{"token":"t","connection_url":7}"#).is_err());
        let list: ResourceList = serde_json::from_str(r#"{"resources":[{"token":"a","created_at":5}]}"#).unwrap();
        assert_eq!((list.items[0].token.as_str(), list.total), ("a", None));
    }

    #[test]
    fn the_create_fields_are_the_ones_the_body_has() {
        let full = NewDatabase {
            name: "n".into(),
            env: Some("e".into()),
            dedicated: Some(false),
            parent_resource_id: Some("p".into()),
        };
        let value = serde_json::to_value(&full).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut fields = NewDatabase::FIELDS;
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields);
        let only_name = NewDatabase { name: "n".into(), ..NewDatabase::default() };
        assert_eq!(serde_json::to_string(&only_name).unwrap(), r#"{"name":"n"}"#);
    }
}
