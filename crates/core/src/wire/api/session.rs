//! The bodies of a turn's database across turns (`docs/checkpoints.md`): the `database` and
//! `checkpoint` settings of `POST /v1/turns`, and the checkpoint as `/v1/turns/{id}/checkpoint`
//! shows it.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::wire::database::DatabaseSummary;

/// `database` in `POST /v1/turns`: `true` (the default) or `false`, or the options of the turn's
/// database, which imply that it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DatabaseField {
    Enabled(bool),
    With(DatabaseOptions),
}

impl Default for DatabaseField {
    fn default() -> DatabaseField {
        DatabaseField::Enabled(true)
    }
}

impl DatabaseField {
    pub fn enabled(&self) -> bool {
        !matches!(self, DatabaseField::Enabled(false))
    }

    pub fn options(&self) -> Option<&DatabaseOptions> {
        match self {
            DatabaseField::With(options) => Some(options),
            DatabaseField::Enabled(_) => None,
        }
    }
}

// By hand rather than `untagged`, whose only error is "did not match any variant": a caller who
// misspells `seed_sql` is told which field is unknown.
impl<'de> Deserialize<'de> for DatabaseField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DatabaseField, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = DatabaseField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or an object with `from` and/or `seed_sql`")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<DatabaseField, E> {
                Ok(DatabaseField::Enabled(value))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<DatabaseField, M::Error> {
                DatabaseOptions::deserialize(de::value::MapAccessDeserializer::new(map)).map(DatabaseField::With)
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

/// What the turn's database starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseOptions {
    /// A turn of the same tenant whose checkpoint is live: the database starts as a copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// SQL run against the database before the code, in one transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_sql: Option<String>,
}

/// `checkpoint` in `POST /v1/turns`, and the body of `POST /v1/turns/{id}/checkpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    /// How long the checkpoint is kept after the process exits (or, to extend one, from now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_s: Option<u32>,
}

/// A turn's checkpoint: its frozen database, kept for forks until `keep_until_unix_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    pub turn_id: String,
    /// Whether it can be forked now; `false` once it was released, expired or never made.
    pub live: bool,
    /// When it is reaped unless extended.
    pub keep_until_unix_ms: u64,
    /// The latest it can be extended to.
    pub limit_unix_ms: u64,
    /// What the database held when it was checkpointed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DatabaseSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn database_is_a_flag_or_its_options() {
        let read = |json: &str| serde_json::from_str::<DatabaseField>(json).map_err(|e| e.to_string());
        assert_eq!(read("true"), Ok(DatabaseField::Enabled(true)));
        assert_eq!(read("false"), Ok(DatabaseField::Enabled(false)));
        let options = DatabaseOptions { from: Some("t_1".into()), seed_sql: Some("select 1".into()) };
        assert_eq!(read(r#"{"from":"t_1","seed_sql":"select 1"}"#), Ok(DatabaseField::With(options.clone())));
        assert!(DatabaseField::With(options).enabled());
        assert!(read(r#"{"seed":"x"}"#).unwrap_err().contains("unknown field `seed`"));
        assert!(read("1").unwrap_err().contains("true, false, or an object"));
        assert_eq!(serde_json::to_string(&DatabaseField::Enabled(false)).unwrap(), "false");
        let with = DatabaseField::With(DatabaseOptions { from: None, seed_sql: Some("x".into()) });
        assert_eq!(serde_json::to_string(&with).unwrap(), r#"{"seed_sql":"x"}"#);
    }
}
