//! The edge API's request and response bodies (`worker/openapi.json`), shared by the worker that serves them,
//! the web app and the CLI that read them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{ClaimInfo, Outcome, ReapState, Resource, Timings, TurnState};

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
/// silently ignored setting. Validate with [`crate::spec::TurnSpec::from_request`].
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
    /// Whether the turn gets a scratch database (default: yes).
    #[serde(default = "default_true")]
    pub database: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
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
            database: true,
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

/// `GET /v1/turns`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnList {
    pub turns: Vec<TurnSummary>,
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

/// A lease as the reaper dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    pub turn_id: String,
    pub resource: Resource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub reap: ReapState,
    pub deadline_unix_ms: u64,
}

/// What one sweep of the providers found and did, across every tenant: the deployment's own
/// record. A tenant is shown only its [`SweepView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub at_unix_ms: u64,
    pub sandboxes_seen: u64,
    pub sandboxes_reaped: u64,
    pub databases_seen: u64,
    pub databases_reaped: u64,
    /// Every resource the sweep tried to reap, with the turn it belonged to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<SweepFinding>,
    /// Failures that belong to no turn: a provider's listing that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One resource a sweep tried to reap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepFinding {
    pub turn_id: String,
    pub resource: Resource,
    /// The sandbox id, or the database's name.
    pub id: String,
    /// Why the reap failed; absent when it worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last sweep as one tenant sees it: what it did to that tenant's turns, and the providers'
/// own failures; nothing of another tenant's resources, not even how many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepView {
    pub at_unix_ms: u64,
    /// The tenant's resources the sweep reaped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaped: Vec<SweepFinding>,
    /// The tenant's resources it could not reap, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<SweepFinding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl SweepReport {
    /// The turns the sweep touched (each once), to ask which of them a tenant owns.
    pub fn turn_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.findings.iter().map(|f| f.turn_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The report as the tenant owning the turns `owns` accepts sees it.
    pub fn view_for(&self, owns: impl Fn(&str) -> bool) -> SweepView {
        let (failed, reaped) =
            self.findings.iter().filter(|f| owns(&f.turn_id)).cloned().partition(|f| f.error.is_some());
        SweepView { at_unix_ms: self.at_unix_ms, reaped, failed, errors: self.errors.clone() }
    }
}

/// `GET /v1/reaper`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaperStatus {
    pub alive: u64,
    pub overdue: Vec<LeaseView>,
    pub failed: Vec<LeaseView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sweep: Option<SweepView>,
}

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

/// Removes credentials from a URL before it is shown: the user-info part (`user:password@`) and
/// the query string, which some providers use for tokens.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = match tail.find(['?', '#']) {
        Some(cut) => format!("{}?***", &tail[..cut]),
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, expect: Expect) {
        let json = serde_json::to_string(value).unwrap();
        expect.assert_eq(&json);
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, value, "round trip changed the value");
    }

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
        };
        check(
            &detail,
            expect![[
                r#"{"turn_id":"t_1","created_unix_ms":1700000000000,"state":"finished","outcome":"failed","error":"the code exited with status 2","exit_code":2,"spec":{"language":"python","template":"python","timeout_s":30,"database":true,"code":"import sys; sys.exit(2)","code_bytes":23,"code_elided":false,"files":["data.csv"],"env":["MODE"]},"timings":{"run_ms":100,"total_ms":400},"resources":[{"resource":"sandbox","id":"sbx1","reap":"reaped","deadline_unix_ms":1700000060000},{"resource":"database","id":"mayfly_t_1","reap":"failed","deadline_unix_ms":1700000060000,"error":"instanode answered 503"}],"events":12}"#
            ]],
        );
    }

    #[test]
    fn list_create_keep_and_reaper() {
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
            },
            expect![[
                r#"{"turns":[{"turn_id":"t_1","created_unix_ms":5,"language":"node","state":"running","resources":[]}]}"#
            ]],
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
        check(
            &ReaperStatus {
                alive: 1,
                overdue: vec![LeaseView {
                    turn_id: "t_2".into(),
                    resource: Resource::Sandbox,
                    id: Some("sbx2".into()),
                    reap: ReapState::Failed,
                    deadline_unix_ms: 9,
                }],
                failed: vec![],
                last_sweep: Some(SweepView {
                    at_unix_ms: 10,
                    reaped: vec![SweepFinding {
                        turn_id: "t_1".into(),
                        resource: Resource::Database,
                        id: "mayfly-9-t_1".into(),
                        error: None,
                    }],
                    failed: vec![],
                    errors: vec!["listing sandboxes: e2b answered 502".into()],
                }),
            },
            expect![[
                r#"{"alive":1,"overdue":[{"turn_id":"t_2","resource":"sandbox","id":"sbx2","reap":"failed","deadline_unix_ms":9}],"failed":[],"last_sweep":{"at_unix_ms":10,"reaped":[{"turn_id":"t_1","resource":"database","id":"mayfly-9-t_1"}],"errors":["listing sandboxes: e2b answered 502"]}}"#
            ]],
        );
    }

    #[test]
    fn a_tenant_sees_only_its_own_part_of_a_sweep() {
        let finding = |turn: &str, error: Option<&str>| SweepFinding {
            turn_id: turn.into(),
            resource: Resource::Sandbox,
            id: format!("sbx-{turn}"),
            error: error.map(Into::into),
        };
        let report = SweepReport {
            at_unix_ms: 10,
            sandboxes_seen: 9,
            sandboxes_reaped: 2,
            findings: vec![
                finding("t_mine", None),
                finding("t_theirs", None),
                finding("t_mine2", Some("e2b answered 503")),
            ],
            errors: vec!["listing databases: instanode answered 502".into()],
            ..SweepReport::default()
        };
        assert_eq!(report.turn_ids(), ["t_mine", "t_mine2", "t_theirs"]);
        let view = report.view_for(|turn| turn.starts_with("t_mine"));
        assert_eq!(view.reaped, [finding("t_mine", None)]);
        assert_eq!(view.failed, [finding("t_mine2", Some("e2b answered 503"))]);
        assert_eq!(view.errors, report.errors);
        assert!(!serde_json::to_string(&view).unwrap().contains("theirs"));
    }

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
                    templates: crate::templates::TemplateMap::default().by_language(),
                },
                checks: None,
            },
            expect![[
                r#"{"ok":true,"version":"0.1.0","providers":{"e2b_api_url":"http://127.0.0.1:7000","e2b_domain":"localhost","e2b_api_key":"set","instanode_url":"http://127.0.0.1:7001","instanode_token":"unset","templates":{"bash":"base","node":"base","python":"base"}}}"#
            ]],
        );
    }

    #[test]
    fn redact_url_removes_credentials() {
        let cases = [
            ("https://api.e2b.app", "https://api.e2b.app"),
            ("http://127.0.0.1:7001/", "http://127.0.0.1:7001/"),
            ("postgres://user:hunter2@db:5432/x", "postgres://***@db:5432/x"),
            ("https://a:b@c@host/p?token=hunter2#frag", "https://***@host/p?***"),
            ("https://host?key=hunter2", "https://host?***"),
            ("host:1/p", "host:1/p"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
            assert!(!redact_url(input).contains("hunter2"));
        }
    }
}
