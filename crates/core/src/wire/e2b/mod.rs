//! E2B's wire types: the control plane's JSON bodies and envd's process messages in their
//! protobuf-JSON form, shared by sandboxd (the server) and the client.
//!
//! The shapes follow `docs/protocols/e2b.md` (§1.3, §2.4): camelCase names except where E2B
//! itself deviates (`allow_internet_access`), zero values omitted on output the way protojson
//! does (`exitCode` absent when 0), `bytes` fields as standard base64, and unknown input fields
//! ignored.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod control;
mod filesystem;
mod process;

pub use control::{
    ControlError, ListedSandbox, NewSandbox, RefreshRequest, Sandbox, SandboxNotFound, SandboxState, TimeoutRequest,
};
pub use filesystem::{EntryInfo, EntryResponse, ListDirRequest, ListDirResponse, PathRequest, WriteInfo};
pub use process::{
    ConnectRequest, DataEvent, EndEvent, EndStream, KeepAlive, ListResponse, ProcessConfig, ProcessEvent, ProcessInfo,
    ProcessInput, ProcessSelector, RpcError, SendInputRequest, SendSignalRequest, StartEvent, StartRequest,
    StreamMessage,
};

/// String maps keep a stable order so JSON output is reproducible.
pub type StringMap = BTreeMap<String, String>;

/// `clientID` of API-created sandboxes; deprecated by E2B but still required by the SDKs.
pub const CLIENT_ID: &str = "6532622b";
/// The envd port the per-sandbox host names and routing headers carry.
pub const ENVD_PORT: u16 = 49983;

/// base64 `bytes` as protojson writes them (standard, padded); reading also takes unpadded and
/// URL-safe input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<B64, D::Error> {
        let s = String::deserialize(d)?;
        decode_b64(&s).map(B64).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = s.trim_end_matches('=');
    STANDARD_NO_PAD.decode(trimmed).or_else(|_| URL_SAFE_NO_PAD.decode(trimmed)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn base64_accepts_unpadded_and_url_safe() {
        assert_eq!(decode_b64("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(decode_b64("d2FybjogeAo").unwrap(), b"warn: x\n");
        assert_eq!(decode_b64("_-8").unwrap(), vec![0xff, 0xef]);
        assert!(decode_b64("***").is_none());
    }
}
