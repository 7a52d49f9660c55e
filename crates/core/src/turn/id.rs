//! A turn's id: checked once, so that it fits sandbox metadata, database names and URLs.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A turn's id: 1 to 40 of `A-Z a-z 0-9 _ -`, so it fits sandbox metadata and database names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TurnId(String);

impl TurnId {
    pub fn new(id: impl Into<String>) -> Result<TurnId, TurnIdError> {
        let id = id.into();
        let ok =
            (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(TurnId(id))
        } else {
            Err(TurnIdError(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TurnId {
    type Error = TurnIdError;
    fn try_from(id: String) -> Result<TurnId, TurnIdError> {
        TurnId::new(id)
    }
}

impl From<TurnId> for String {
    fn from(id: TurnId) -> String {
        id.0
    }
}

/// Why a string is not a [`TurnId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("turn id {0:?} is not allowed: use 1-40 of A-Z a-z 0-9 _ -")]
pub struct TurnIdError(pub String);
