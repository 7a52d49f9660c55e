//! envd's `filesystem` service and the `/files` answers (`docs/protocols/e2b.md` §3): entries,
//! directory listings and what a write stored.

use serde::{Deserialize, Serialize};

use super::StringMap;

/// `filesystem.EntryInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryInfo {
    pub name: String,
    /// `FILE_TYPE_FILE`, `FILE_TYPE_DIRECTORY` or `FILE_TYPE_SYMLINK`.
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    /// An `int64`, hence a JSON string.
    pub size: String,
    pub mode: u32,
    pub permissions: String,
    pub owner: String,
    pub group: String,
    /// RFC 3339.
    pub modified_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    /// The file's `user.e2b.*` extended attributes, prefix stripped (envd 0.6.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<StringMap>,
}

/// `filesystem.StatRequest`, `MakeDirRequest`, `RemoveRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRequest {
    pub path: String,
}

/// `filesystem.ListDirRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDirRequest {
    pub path: String,
    #[serde(default)]
    pub depth: u32,
}

/// `filesystem.StatResponse` / `MakeDirResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryResponse {
    pub entry: EntryInfo,
}

/// `filesystem.ListDirResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDirResponse {
    #[serde(default)]
    pub entries: Vec<EntryInfo>,
}

/// One item of `POST /files`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteInfo {
    pub path: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// What was stored as the file's metadata, when any was (envd 0.6.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<StringMap>,
}
