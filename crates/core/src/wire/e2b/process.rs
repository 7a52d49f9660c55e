//! envd's `process` service in protojson form (`docs/protocols/e2b.md` §2.4): starting, selecting
//! and signalling processes, their streamed events and the Connect end-of-stream error.

use serde::{Deserialize, Serialize};

use super::{StringMap, B64};

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
    fn selectors_and_inputs() {
        let r: SendSignalRequest = serde_json::from_str(r#"{"process":{"pid":7},"signal":"SIGNAL_SIGKILL"}"#).unwrap();
        assert_eq!(r.process, ProcessSelector::Pid(7));
        let i: SendInputRequest = serde_json::from_str(r#"{"process":{"tag":"t"},"input":{"stdin":"aGk="}}"#).unwrap();
        assert_eq!(i.process, ProcessSelector::Tag("t".into()));
        assert_eq!(i.input, ProcessInput::Stdin(B64(b"hi".to_vec())));
    }
}
