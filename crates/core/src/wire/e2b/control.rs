//! The control plane's bodies (`docs/protocols/e2b.md` §1): create, list, time out, and the errors
//! of the API and of the proxy in front of envd.

use serde::{Deserialize, Serialize};

use super::StringMap;

/// `POST /sandboxes` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(rename = "allow_internet_access", default, skip_serializing_if = "Option::is_none")]
    pub allow_internet_access: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pause: Option<bool>,
}

/// The answer to create and connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub envd_version: String,
    #[serde(default)]
    pub envd_access_token: Option<String>,
    #[serde(default)]
    pub traffic_access_token: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// `running` or `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Running,
    Paused,
}

/// An item of `GET /v2/sandboxes` (and, with the token, the body of `GET /sandboxes/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub end_at: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u64,
    #[serde(default)]
    pub metadata: StringMap,
    pub state: SandboxState,
    pub envd_version: String,
    /// Only in `GET /sandboxes/{id}`; never in list answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `POST /sandboxes/{id}/timeout` and `/connect` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutRequest {
    pub timeout: i64,
}

/// `POST /sandboxes/{id}/refreshes` body (optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    #[serde(default)]
    pub duration: Option<i64>,
}

/// The control plane's (and envd REST's) error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlError {
    pub code: u16,
    pub message: String,
}

/// The proxy's answer for a sandbox that is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxNotFound {
    pub sandbox_id: String,
    pub message: String,
    pub code: u16,
}

impl SandboxNotFound {
    pub fn new(sandbox_id: impl Into<String>) -> SandboxNotFound {
        SandboxNotFound { sandbox_id: sandbox_id.into(), message: "The sandbox was not found".into(), code: 502 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::e2b::CLIENT_ID;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn control_plane_shapes() {
        let n: NewSandbox = serde_json::from_str(
            r#"{"templateID":"base","timeout":300,"envVars":{"A":"1"},"metadata":{"k":"v"},"secure":true,"allow_internet_access":true,"autoPause":false,"mcp":null}"#,
        )
        .unwrap();
        assert_eq!(n.template_id, "base");
        assert_eq!(n.timeout, Some(300));
        assert_eq!(n.secure, Some(true));
        assert_eq!(n.allow_internet_access, Some(true));
        let s = Sandbox {
            template_id: "base".into(),
            sandbox_id: "iabc".into(),
            alias: Some("base".into()),
            client_id: CLIENT_ID.into(),
            envd_version: "0.5.7".into(),
            envd_access_token: Some("tok".into()),
            traffic_access_token: None,
            domain: Some("localhost".into()),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"templateID":"base","sandboxID":"iabc","alias":"base","clientID":"6532622b","envdVersion":"0.5.7","envdAccessToken":"tok","trafficAccessToken":null,"domain":"localhost"}"#
        );
        assert_eq!(
            serde_json::to_string(&SandboxNotFound::new("iabc")).unwrap(),
            r#"{"sandboxId":"iabc","message":"The sandbox was not found","code":502}"#
        );
    }
}
