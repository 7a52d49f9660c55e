//! `GET /v1/health`: the deployment's providers without their credentials, and what the providers
//! answered when asked (`mayfly doctor` prints the same checks).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether a secret is configured; its value is never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    Set,
    Unset,
}

impl SecretState {
    pub fn of(value: Option<&str>) -> SecretState {
        match value {
            Some(v) if !v.is_empty() => SecretState::Set,
            _ => SecretState::Unset,
        }
    }
}

/// The providers a deployment talks to, with credentials removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvidersView {
    pub e2b_api_url: String,
    pub e2b_domain: String,
    pub e2b_api_key: SecretState,
    pub instanode_url: String,
    pub instanode_token: SecretState,
    /// The template each language's turns run in when a request names none.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

/// `GET /v1/health` (and, with `?check=providers`, what the providers said when asked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub version: String,
    pub providers: ProvidersView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<ProviderCheck>>,
}

/// How one provider check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Turns run, but not as well as they could (anonymous databases).
    Warn,
    /// Turns will fail until this is fixed.
    Fail,
}

/// One thing `mayfly doctor` / `GET /v1/health?check=providers` asked a provider, with what it
/// answered and, when it is not fine, the one thing to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCheck {
    /// e.g. `e2b key`, `e2b template mayfly`, `instanode token`.
    pub check: String,
    pub verdict: Verdict,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::wire::api::check;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn health() {
        check(
            &Health {
                ok: true,
                version: "0.1.0".into(),
                providers: ProvidersView {
                    e2b_api_url: "http://127.0.0.1:7000".into(),
                    e2b_domain: "localhost".into(),
                    e2b_api_key: SecretState::of(Some("k")),
                    instanode_url: "http://127.0.0.1:7001".into(),
                    instanode_token: SecretState::of(Some("")),
                    templates: ["bash", "node", "python"].map(|l| (l.to_owned(), "base".to_owned())).into(),
                },
                checks: None,
            },
            expect![[
                r#"{"ok":true,"version":"0.1.0","providers":{"e2b_api_url":"http://127.0.0.1:7000","e2b_domain":"localhost","e2b_api_key":"set","instanode_url":"http://127.0.0.1:7001","instanode_token":"unset","templates":{"bash":"base","node":"base","python":"base"}}}"#
            ]],
        );
    }
}
