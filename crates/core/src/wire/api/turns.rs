//! The turn's bodies: what `POST /v1/turns` takes and answers, and how `GET /v1/turns` and
//! `GET /v1/turns/{id}` show turns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::api::session::{CheckpointRequest, CheckpointView, DatabaseField};
use crate::wire::event::{ClaimInfo, Outcome, ReapState, Resource, Timings, TurnState};

/// The language of a turn's code; it decides the file name and the command that runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    Python,
    Bash,
    Node,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Python, Language::Bash, Language::Node];

    /// The name used on the wire and in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Bash => "bash",
            Language::Node => "node",
        }
    }

    /// Where the code is written inside the sandbox.
    pub fn code_path(self) -> &'static str {
        match self {
            Language::Python => "/home/user/main.py",
            Language::Bash => "/home/user/main.sh",
            Language::Node => "/home/user/main.js",
        }
    }

    /// The command line that runs the uploaded code.
    pub fn command(self) -> String {
        let interpreter = match self {
            Language::Python => "python3 -u",
            Language::Bash => "bash",
            Language::Node => "node",
        };
        format!("{interpreter} {}", self.code_path())
    }
}

/// `POST /v1/turns`: what the agent wants run.
///
/// Unknown fields are refused so that a typo (`timeout` for `timeout_s`) is an error rather than a
/// silently ignored setting. Validate with [`crate::turn::spec::TurnSpec::from_request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTurnRequest {
    pub code: String,
    #[serde(default)]
    pub language: Language,
    /// Extra files, by path relative to `/home/user`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// Whether the turn gets a scratch database (default: yes), or what it starts from.
    #[serde(default)]
    pub database: DatabaseField,
    /// Keep the database, frozen, after the process exits, for later turns to fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointRequest>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl CreateTurnRequest {
    /// A request for `code` in `language` with every other setting at its default.
    pub fn new(code: impl Into<String>, language: Language) -> CreateTurnRequest {
        CreateTurnRequest {
            code: code.into(),
            language,
            files: BTreeMap::new(),
            template: None,
            timeout_s: None,
            database: DatabaseField::default(),
            checkpoint: None,
            env: BTreeMap::new(),
        }
    }
}

/// `201` answer to `POST /v1/turns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTurnResponse {
    pub turn_id: String,
    /// Relative URL of the event stream (WebSocket, or SSE with `Accept: text/event-stream`).
    pub events_url: String,
    pub status_url: String,
}

/// One resource of a turn as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceView {
    pub resource: Resource,
    /// The sandbox id, or the database's name; never a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub reap: ReapState,
    /// Unix milliseconds by which the resource is gone at the latest.
    pub deadline_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entry of `GET /v1/turns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnSummary {
    pub turn_id: String,
    pub created_unix_ms: u64,
    pub language: Language,
    pub state: TurnState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub resources: Vec<ResourceView>,
}

/// `GET /v1/turns`: one page of the tenant's turns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnList {
    pub turns: Vec<TurnSummary>,
    /// Where the next, older page starts (`?cursor=`); absent on the last page. Opaque: a client
    /// passes it back as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The request of a turn as `GET /v1/turns/{id}` shows it: long code is cut, env values are hidden
/// (they may hold the caller's secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecView {
    pub language: Language,
    pub template: String,
    pub timeout_s: u32,
    pub database: bool,
    pub code: String,
    pub code_bytes: u64,
    pub code_elided: bool,
    pub files: Vec<String>,
    pub env: Vec<String>,
    /// The turn whose checkpoint the database was forked from: the turn's parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The size of the seed SQL, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_sql_bytes: Option<u64>,
    /// How long the database is kept as a checkpoint after the process exits, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_keep_s: Option<u32>,
}

/// `GET /v1/turns/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnDetail {
    pub turn_id: String,
    pub created_unix_ms: u64,
    pub state: TurnState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub spec: SpecView,
    pub timings: Timings,
    pub resources: Vec<ResourceView>,
    /// How many events the turn has emitted so far.
    pub events: u64,
    /// The turn's checkpoint, once its process exited with one asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointView>,
}

impl TurnDetail {
    /// Whether nothing about the turn can change any more: it finished and every resource is
    /// gone or kept.
    pub fn is_settled(&self) -> bool {
        self.state == TurnState::Finished
            && self.resources.iter().all(|r| matches!(r.reap, ReapState::Reaped | ReapState::Kept))
    }
}

/// `POST /v1/turns/{id}/keep`: the only answer that carries the connection URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepResponse {
    pub claim: ClaimInfo,
    pub connection_url: String,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::wire::api::check;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn create_turn_request_defaults() {
        let req: CreateTurnRequest = serde_json::from_str(r#"{"code":"print(1)"}"#).unwrap();
        assert_eq!(req, CreateTurnRequest::new("print(1)", Language::Python));
        check(&req, expect![[r#"{"code":"print(1)","language":"python","database":true}"#]]);
    }

    #[test]
    fn create_turn_request_full() {
        let req: CreateTurnRequest = serde_json::from_str(
            r#"{"code":"echo hi","language":"bash","files":{"a/b.txt":"x"},"template":"base","timeout_s":5,"database":false,"env":{"K":"v"}}"#,
        )
        .unwrap();
        check(
            &req,
            expect![[
                r#"{"code":"echo hi","language":"bash","files":{"a/b.txt":"x"},"template":"base","timeout_s":5,"database":false,"env":{"K":"v"}}"#
            ]],
        );
    }

    #[test]
    fn create_turn_request_refuses_bad_shapes() {
        let cases = [
            (r#"{"code":"x","timeout":5}"#, "unknown field `timeout`"),
            (r#"{"language":"python"}"#, "missing field `code`"),
            (r#"{"code":"x","language":"ruby"}"#, "unknown variant `ruby`"),
            (r#"{"code":"x","timeout_s":-1}"#, "invalid value"),
            (r#"{"code":1}"#, "invalid type"),
        ];
        for (json, want) in cases {
            let err = serde_json::from_str::<CreateTurnRequest>(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn languages() {
        let got: Vec<String> = Language::ALL.iter().map(|l| format!("{} {}", l.as_str(), l.command())).collect();
        expect![[r#"
            [
                "python python3 -u /home/user/main.py",
                "bash bash /home/user/main.sh",
                "node node /home/user/main.js",
            ]
        "#]]
        .assert_debug_eq(&got);
    }

    #[test]
    fn turn_detail() {
        let detail = TurnDetail {
            turn_id: "t_1".into(),
            created_unix_ms: 1_700_000_000_000,
            state: TurnState::Finished,
            outcome: Some(Outcome::Failed),
            error: Some("the code exited with status 2".into()),
            exit_code: Some(2),
            spec: SpecView {
                language: Language::Python,
                template: "python".into(),
                timeout_s: 30,
                database: true,
                code: "import sys; sys.exit(2)".into(),
                code_bytes: 23,
                code_elided: false,
                files: vec!["data.csv".into()],
                env: vec!["MODE".into()],
                from: None,
                seed_sql_bytes: None,
                checkpoint_keep_s: None,
            },
            timings: Timings { total_ms: 400, run_ms: Some(100), ..Timings::default() },
            resources: vec![
                ResourceView {
                    resource: Resource::Sandbox,
                    id: Some("sbx1".into()),
                    reap: ReapState::Reaped,
                    deadline_unix_ms: 1_700_000_060_000,
                    error: None,
                },
                ResourceView {
                    resource: Resource::Database,
                    id: Some("mayfly_t_1".into()),
                    reap: ReapState::Failed,
                    deadline_unix_ms: 1_700_000_060_000,
                    error: Some("instanode answered 503".into()),
                },
            ],
            events: 12,
            checkpoint: None,
        };
        check(
            &detail,
            expect![[
                r#"{"turn_id":"t_1","created_unix_ms":1700000000000,"state":"finished","outcome":"failed","error":"the code exited with status 2","exit_code":2,"spec":{"language":"python","template":"python","timeout_s":30,"database":true,"code":"import sys; sys.exit(2)","code_bytes":23,"code_elided":false,"files":["data.csv"],"env":["MODE"]},"timings":{"run_ms":100,"total_ms":400},"resources":[{"resource":"sandbox","id":"sbx1","reap":"reaped","deadline_unix_ms":1700000060000},{"resource":"database","id":"mayfly_t_1","reap":"failed","deadline_unix_ms":1700000060000,"error":"instanode answered 503"}],"events":12}"#
            ]],
        );
    }

    #[test]
    fn create_list_and_keep() {
        check(
            &CreateTurnResponse {
                turn_id: "t_1".into(),
                events_url: "/v1/turns/t_1/events".into(),
                status_url: "/v1/turns/t_1".into(),
            },
            expect![[r#"{"turn_id":"t_1","events_url":"/v1/turns/t_1/events","status_url":"/v1/turns/t_1"}"#]],
        );
        check(
            &TurnList {
                turns: vec![TurnSummary {
                    turn_id: "t_1".into(),
                    created_unix_ms: 5,
                    language: Language::Node,
                    state: TurnState::Running,
                    outcome: None,
                    duration_ms: None,
                    resources: vec![],
                }],
                next_cursor: None,
            },
            expect![[
                r#"{"turns":[{"turn_id":"t_1","created_unix_ms":5,"language":"node","state":"running","resources":[]}]}"#
            ]],
        );
        check(
            &TurnList { turns: vec![], next_cursor: Some("MTcwMDAwMDAwMDAwMDp0XzE".into()) },
            expect![[r#"{"turns":[],"next_cursor":"MTcwMDAwMDAwMDAwMDp0XzE"}"#]],
        );
        check(
            &KeepResponse {
                claim: ClaimInfo {
                    claim_url: "https://instanode.dev/claim?t=j".into(),
                    upgrade_jwt: None,
                    expires_at: None,
                    instructions: "open the claim URL and sign in".into(),
                },
                connection_url: "postgres://u:p@h:5432/d".into(),
            },
            expect![[
                r#"{"claim":{"claim_url":"https://instanode.dev/claim?t=j","instructions":"open the claim URL and sign in"},"connection_url":"postgres://u:p@h:5432/d"}"#
            ]],
        );
    }
}
