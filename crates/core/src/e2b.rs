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

/// String maps keep a stable order so JSON output is reproducible.
pub type StringMap = BTreeMap<String, String>;

/// `clientID` of API-created sandboxes; deprecated by E2B but still required by the SDKs.
pub const CLIENT_ID: &str = "6532622b";
/// The envd port the per-sandbox host names and routing headers carry.
pub const ENVD_PORT: u16 = 49983;

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

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// `process.ProcessConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub cmd: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub envs: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// `process.StartRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    pub process: ProcessConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
}

/// `process.ProcessSelector`: by pid or by tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessSelector {
    Pid(u32),
    Tag(String),
}

/// `process.ConnectRequest`, and the `process` part of the unary process RPCs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub process: ProcessSelector,
}

/// `process.SendSignalRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSignalRequest {
    pub process: ProcessSelector,
    pub signal: String,
}

/// `process.ProcessInput`: stdin or pty bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessInput {
    Stdin(B64),
    Pty(B64),
}

/// `process.SendInputRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendInputRequest {
    pub process: ProcessSelector,
    pub input: ProcessInput,
}

/// `process.ProcessInfo`, an item of `ListResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub config: ProcessConfig,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `process.ListResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    #[serde(default)]
    pub processes: Vec<ProcessInfo>,
}

/// `process.ProcessEvent.DataEvent`: exactly one of the streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DataEvent {
    Stdout(B64),
    Stderr(B64),
    Pty(B64),
}

/// `process.ProcessEvent.EndEvent`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndEvent {
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exited: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `process.ProcessEvent.StartEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartEvent {
    pub pid: u32,
}

/// `process.ProcessEvent.KeepAlive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepAlive {}

/// `process.ProcessEvent`, a oneof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessEvent {
    Start(StartEvent),
    Data(DataEvent),
    End(EndEvent),
    Keepalive(KeepAlive),
}

/// `process.StartResponse` / `ConnectResponse`: one streamed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMessage {
    pub event: ProcessEvent,
}

/// A Connect error: `code` in snake_case (`deadline_exceeded`, `not_found`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: String,
    pub message: String,
}

impl RpcError {
    pub fn new(code: &str, message: impl Into<String>) -> RpcError {
        RpcError { code: code.into(), message: message.into() }
    }

    /// The HTTP status a unary call answers with for this code (connect-go's table).
    pub fn http_status(&self) -> u16 {
        match self.code.as_str() {
            "canceled" => 499,
            "invalid_argument" | "out_of_range" | "failed_precondition" => 400,
            "deadline_exceeded" => 504,
            "not_found" => 404,
            "already_exists" | "aborted" => 409,
            "permission_denied" => 403,
            "resource_exhausted" => 429,
            "unimplemented" => 501,
            "unavailable" => 503,
            "unauthenticated" => 401,
            _ => 500,
        }
    }
}

/// The payload of the final `0x02` frame: `{}` or `{"error": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn event(e: ProcessEvent) -> String {
        serde_json::to_string(&StreamMessage { event: e }).unwrap()
    }

    #[test]
    fn events_match_the_worked_example() {
        assert_eq!(event(ProcessEvent::Start(StartEvent { pid: 412 })), r#"{"event":{"start":{"pid":412}}}"#);
        assert_eq!(
            event(ProcessEvent::Data(DataEvent::Stdout(B64(b"hello\n".to_vec())))),
            r#"{"event":{"data":{"stdout":"aGVsbG8K"}}}"#
        );
        assert_eq!(
            event(ProcessEvent::Data(DataEvent::Stderr(B64(b"warn: x\n".to_vec())))),
            r#"{"event":{"data":{"stderr":"d2FybjogeAo="}}}"#
        );
        assert_eq!(event(ProcessEvent::Keepalive(KeepAlive {})), r#"{"event":{"keepalive":{}}}"#);
        let failed = EndEvent {
            exit_code: 3,
            exited: true,
            status: "exit status 3".into(),
            error: Some("exit status 3".into()),
        };
        assert_eq!(
            event(ProcessEvent::End(failed)),
            r#"{"event":{"end":{"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"}}}"#
        );
    }

    #[test]
    fn exit_code_zero_is_omitted() {
        let ok = EndEvent { exit_code: 0, exited: true, status: "exit status 0".into(), error: None };
        assert_eq!(
            event(ProcessEvent::End(ok.clone())),
            r#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#
        );
        let back: StreamMessage =
            serde_json::from_str(r#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#).unwrap();
        assert_eq!(back.event, ProcessEvent::End(ok));
    }

    #[test]
    fn start_request_parses_and_ignores_unknown_fields() {
        let raw = r#"{"process":{"cmd":"/bin/bash","args":["-l","-c","python3 /tmp/agent.py"],"envs":{"TURN_ID":"t1"},"cwd":"/tmp"},"stdin":false,"pty":null,"extra":1}"#;
        let req: StartRequest = serde_json::from_str(raw).unwrap();
        assert_eq!(req.process.cmd, "/bin/bash");
        assert_eq!(req.process.args, vec!["-l", "-c", "python3 /tmp/agent.py"]);
        assert_eq!(req.process.envs.get("TURN_ID").map(String::as_str), Some("t1"));
        assert_eq!(req.process.cwd.as_deref(), Some("/tmp"));
        assert_eq!(req.stdin, Some(false));
    }

    #[test]
    fn end_stream_error_shape() {
        let e = EndStream { error: Some(RpcError::new("deadline_exceeded", "context deadline exceeded")) };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}}"#
        );
        assert_eq!(serde_json::to_string(&EndStream::default()).unwrap(), "{}");
        assert_eq!(e.error.unwrap().http_status(), 504);
    }

    #[test]
    fn base64_accepts_unpadded_and_url_safe() {
        assert_eq!(decode_b64("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(decode_b64("d2FybjogeAo").unwrap(), b"warn: x\n");
        assert_eq!(decode_b64("_-8").unwrap(), vec![0xff, 0xef]);
        assert!(decode_b64("***").is_none());
    }

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

    #[test]
    fn selectors_and_inputs() {
        let r: SendSignalRequest = serde_json::from_str(r#"{"process":{"pid":7},"signal":"SIGNAL_SIGKILL"}"#).unwrap();
        assert_eq!(r.process, ProcessSelector::Pid(7));
        let i: SendInputRequest = serde_json::from_str(r#"{"process":{"tag":"t"},"input":{"stdin":"aGk="}}"#).unwrap();
        assert_eq!(i.process, ProcessSelector::Tag("t".into()));
        assert_eq!(i.input, ProcessInput::Stdin(B64(b"hi".to_vec())));
    }
}
