//! The events of a turn: what every viewer of a turn sees, in order.
//!
//! On the wire an event is one flat JSON object: `seq`, `at_ms` and a `type` tag, followed by the
//! fields of that type. The shape is stable: the worker stores it, the web app and the CLI read it,
//! and snapshot tests pin it.

use serde::{Deserialize, Serialize};

use crate::wire::database::{DatabaseSummary, SummaryDiff};

/// One event of a turn.
///
/// `seq` starts at 1 and has no gaps, so a viewer that saw up to `seq = N` resumes with `after=N`.
/// `at_ms` counts milliseconds since the turn was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at_ms: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// How to take over a database that was kept past its turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInfo {
    pub claim_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_jwt: Option<String>,
    /// When the provider deletes the database unless it is claimed (RFC 3339), if it ever does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub instructions: String,
}

/// What happened, with the data that belongs to it. Never carries a database password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    #[serde(rename = "turn.accepted")]
    TurnAccepted {
        turn_id: String,
        /// Milliseconds after acceptance at which the turn's code is stopped.
        deadline_ms: u64,
    },
    #[serde(rename = "sandbox.creating")]
    SandboxCreating { template: String },
    #[serde(rename = "sandbox.ready")]
    SandboxReady { sandbox_id: String, ms: u64 },
    #[serde(rename = "database.creating")]
    DatabaseCreating {
        /// The turn whose checkpoint the database is a copy of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    #[serde(rename = "database.ready")]
    DatabaseReady { ms: u64, host: String, database: String },
    /// The checkpoint of turn `from` is being copied into the database from inside the sandbox,
    /// before the seed and the code: a fork where the provider cannot fork (hosted instanode).
    #[serde(rename = "database.copying")]
    DatabaseCopying { from: String },
    #[serde(rename = "database.copied")]
    DatabaseCopied {
        ms: u64,
        /// The size of the dump that went from the checkpoint into the database.
        bytes: u64,
    },
    /// The seed SQL is running against the database, before the code.
    #[serde(rename = "database.seeding")]
    DatabaseSeeding { bytes: u64 },
    #[serde(rename = "database.seeded")]
    DatabaseSeeded { ms: u64 },
    #[serde(rename = "code.uploaded")]
    CodeUploaded { path: String, bytes: u64 },
    #[serde(rename = "process.started")]
    ProcessStarted { pid: u32 },
    #[serde(rename = "stdout")]
    Stdout { data: String },
    #[serde(rename = "stderr")]
    Stderr { data: String },
    /// The turn's output reached its limit: what came after is dropped, once, and only said here.
    #[serde(rename = "output.truncated")]
    OutputTruncated {
        /// The output kept (stdout and stderr together, bytes of UTF-8): the limit, or just under
        /// it where a character would have been cut.
        kept_bytes: u64,
    },
    #[serde(rename = "process.exited")]
    ProcessExited { exit_code: i32, ms: u64 },
    #[serde(rename = "sandbox.reaped")]
    SandboxReaped { ms: u64 },
    #[serde(rename = "database.reaped")]
    DatabaseReaped { ms: u64 },
    #[serde(rename = "database.kept")]
    DatabaseKept { claim: ClaimInfo },
    /// What the database held after the process exited, and for a fork what changed.
    #[serde(rename = "database.summary")]
    DatabaseSummarized {
        /// Absent when it could not be computed; `error` says why. Boxed, as `diff`, so that
        /// every other event stays small.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<Box<DatabaseSummary>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diff: Option<Box<SummaryDiff>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The database is frozen and kept for forks until then (Unix ms), unless extended.
    #[serde(rename = "database.checkpointed")]
    DatabaseCheckpointed { keep_until_unix_ms: u64 },
    #[serde(rename = "reap.failed")]
    ReapFailed {
        resource: Resource,
        error: String,
        /// Milliseconds after acceptance at which the reap is tried again.
        retry_at: u64,
    },
    #[serde(rename = "turn.finished")]
    TurnFinished {
        outcome: Outcome,
        timings: Timings,
        /// Why the turn did not succeed, in words meant for the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl EventBody {
    /// The `type` tag this body has on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::TurnAccepted { .. } => "turn.accepted",
            EventBody::SandboxCreating { .. } => "sandbox.creating",
            EventBody::SandboxReady { .. } => "sandbox.ready",
            EventBody::DatabaseCreating { .. } => "database.creating",
            EventBody::DatabaseCopying { .. } => "database.copying",
            EventBody::DatabaseCopied { .. } => "database.copied",
            EventBody::DatabaseSeeding { .. } => "database.seeding",
            EventBody::DatabaseSeeded { .. } => "database.seeded",
            EventBody::DatabaseReady { .. } => "database.ready",
            EventBody::CodeUploaded { .. } => "code.uploaded",
            EventBody::ProcessStarted { .. } => "process.started",
            EventBody::Stdout { .. } => "stdout",
            EventBody::Stderr { .. } => "stderr",
            EventBody::OutputTruncated { .. } => "output.truncated",
            EventBody::ProcessExited { .. } => "process.exited",
            EventBody::SandboxReaped { .. } => "sandbox.reaped",
            EventBody::DatabaseReaped { .. } => "database.reaped",
            EventBody::DatabaseKept { .. } => "database.kept",
            EventBody::DatabaseSummarized { .. } => "database.summary",
            EventBody::DatabaseCheckpointed { .. } => "database.checkpointed",
            EventBody::ReapFailed { .. } => "reap.failed",
            EventBody::TurnFinished { .. } => "turn.finished",
        }
    }

    /// Whether this is the last event a turn emits.
    pub fn is_terminal(&self) -> bool {
        matches!(self, EventBody::TurnFinished { .. })
    }
}

/// Where a turn is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnState {
    Accepted,
    Provisioning,
    Running,
    Reaping,
    Finished,
}

/// How a finished turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The code ran and exited with status 0.
    Succeeded,
    /// The code exited non-zero, or a provider failed.
    Failed,
    /// The caller cancelled the turn.
    Cancelled,
    /// The code was still running at the turn's deadline.
    TimedOut,
}

/// The two kinds of resource a turn holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Sandbox,
    Database,
}

/// Where a resource is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReapState {
    /// Created and not yet torn down.
    Live,
    /// Teardown has started.
    Reaping,
    /// Gone at the provider.
    Reaped,
    /// The user asked to keep it (databases only).
    Kept,
    /// Frozen and kept by mayfly for forks until its lease runs out (databases only).
    Checkpointed,
    /// Teardown failed; it is retried until it succeeds or the provider's expiry takes it.
    Failed,
}

/// The wire names (`"timed_out"`, `"reaped"`, …), for anyone who shows these values to people.
macro_rules! wire_names {
    ($($ty:ident { $($variant:ident => $name:literal),+ $(,)? })+) => {$(
        impl $ty {
            /// Every value, in the order declared.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// This value's name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }
    )+};
}

wire_names! {
    TurnState { Accepted => "accepted", Provisioning => "provisioning", Running => "running", Reaping => "reaping", Finished => "finished" }
    Outcome { Succeeded => "succeeded", Failed => "failed", Cancelled => "cancelled", TimedOut => "timed_out" }
    Resource { Sandbox => "sandbox", Database => "database" }
    ReapState { Live => "live", Reaping => "reaping", Reaped => "reaped", Kept => "kept", Checkpointed => "checkpointed", Failed => "failed" }
}

/// Milliseconds spent in each phase; a phase that did not happen is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_ms: Option<u64>,
    /// From the first provider request to both resources ready: close to the larger of the two,
    /// because they are requested in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision_ms: Option<u64>,
    /// From the sandbox ready to the code and every file in it (they go up together, while the
    /// database may still be being made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_ms: Option<u64>,
    /// A fork's copy of its checkpoint, where the provider cannot fork (`database.copying`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_ms: Option<u64>,
    /// The seed SQL's run, before the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reap_ms: Option<u64>,
    pub total_ms: u64,
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check(body: EventBody, expect: Expect) {
        let event = Event { seq: 7, at_ms: 1234, body };
        let json = serde_json::to_string(&event).unwrap();
        expect.assert_eq(&json);
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event, "round trip changed the event");
        assert!(json.contains(&format!("\"type\":\"{}\"", event.body.kind())));
    }

    #[test]
    fn wire_names_are_the_serialized_names() {
        fn same<T: Serialize + Copy>(values: &[T], name: impl Fn(T) -> &'static str) {
            for &value in values {
                assert_eq!(serde_json::to_value(value).unwrap(), name(value));
            }
        }
        same(TurnState::ALL, TurnState::as_str);
        same(Outcome::ALL, Outcome::as_str);
        same(Resource::ALL, Resource::as_str);
        same(ReapState::ALL, ReapState::as_str);
    }

    #[test]
    fn turn_accepted() {
        check(
            EventBody::TurnAccepted { turn_id: "t_0123456789abcdef".into(), deadline_ms: 30_000 },
            expect![[
                r#"{"seq":7,"at_ms":1234,"type":"turn.accepted","turn_id":"t_0123456789abcdef","deadline_ms":30000}"#
            ]],
        );
    }

    #[test]
    fn provisioning_events() {
        check(
            EventBody::SandboxCreating { template: "python".into() },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"sandbox.creating","template":"python"}"#]],
        );
        check(
            EventBody::SandboxReady { sandbox_id: "sbx1".into(), ms: 80 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"sandbox.ready","sandbox_id":"sbx1","ms":80}"#]],
        );
        check(
            EventBody::DatabaseCreating { from: None },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"database.creating"}"#]],
        );
        check(
            EventBody::DatabaseReady { ms: 12, host: "127.0.0.1:5432".into(), database: "db_x".into() },
            expect![[
                r#"{"seq":7,"at_ms":1234,"type":"database.ready","ms":12,"host":"127.0.0.1:5432","database":"db_x"}"#
            ]],
        );
    }

    #[test]
    fn running_events() {
        check(
            EventBody::CodeUploaded { path: "/home/user/main.py".into(), bytes: 42 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"code.uploaded","path":"/home/user/main.py","bytes":42}"#]],
        );
        check(
            EventBody::ProcessStarted { pid: 12 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"process.started","pid":12}"#]],
        );
        check(
            EventBody::Stdout { data: "(1000000,)\n".into() },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"stdout","data":"(1000000,)\n"}"#]],
        );
        check(
            EventBody::Stderr { data: "Traceback \u{1b}[31m".into() },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"stderr","data":"Traceback \u001b[31m"}"#]],
        );
        check(
            EventBody::OutputTruncated { kept_bytes: 4_194_304 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"output.truncated","kept_bytes":4194304}"#]],
        );
        check(
            EventBody::ProcessExited { exit_code: -9, ms: 900 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"process.exited","exit_code":-9,"ms":900}"#]],
        );
    }

    #[test]
    fn reaping_events() {
        check(
            EventBody::SandboxReaped { ms: 3 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"sandbox.reaped","ms":3}"#]],
        );
        check(
            EventBody::DatabaseReaped { ms: 5 },
            expect![[r#"{"seq":7,"at_ms":1234,"type":"database.reaped","ms":5}"#]],
        );
        check(
            EventBody::DatabaseKept {
                claim: ClaimInfo {
                    claim_url: "http://127.0.0.1:7001/claim?t=abc".into(),
                    upgrade_jwt: Some("abc".into()),
                    expires_at: Some("2026-11-30T12:00:00Z".into()),
                    instructions: "open the claim URL".into(),
                },
            },
            expect![[
                r#"{"seq":7,"at_ms":1234,"type":"database.kept","claim":{"claim_url":"http://127.0.0.1:7001/claim?t=abc","upgrade_jwt":"abc","expires_at":"2026-11-30T12:00:00Z","instructions":"open the claim URL"}}"#
            ]],
        );
        check(
            EventBody::ReapFailed {
                resource: Resource::Database,
                error: "instanode answered 503".into(),
                retry_at: 5000,
            },
            expect![[
                r#"{"seq":7,"at_ms":1234,"type":"reap.failed","resource":"database","error":"instanode answered 503","retry_at":5000}"#
            ]],
        );
    }

    #[test]
    fn turn_finished() {
        check(
            EventBody::TurnFinished {
                outcome: Outcome::TimedOut,
                timings: Timings {
                    sandbox_ms: Some(80),
                    database_ms: Some(12),
                    provision_ms: Some(81),
                    upload_ms: Some(2),
                    copy_ms: None,
                    seed_ms: None,
                    run_ms: Some(1000),
                    reap_ms: Some(7),
                    total_ms: 1100,
                },
                error: Some("the code ran past its 1 s timeout".into()),
            },
            expect![[
                r#"{"seq":7,"at_ms":1234,"type":"turn.finished","outcome":"timed_out","timings":{"sandbox_ms":80,"database_ms":12,"provision_ms":81,"upload_ms":2,"run_ms":1000,"reap_ms":7,"total_ms":1100},"error":"the code ran past its 1 s timeout"}"#
            ]],
        );
        check(
            EventBody::TurnFinished {
                outcome: Outcome::Succeeded,
                timings: Timings { total_ms: 10, ..Timings::default() },
                error: None,
            },
            expect![[
                r#"{"seq":7,"at_ms":1234,"type":"turn.finished","outcome":"succeeded","timings":{"total_ms":10}}"#
            ]],
        );
    }

    #[test]
    fn unknown_event_type_is_an_error_not_a_panic() {
        let err = serde_json::from_str::<Event>(r#"{"seq":1,"at_ms":0,"type":"nope"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn enums_use_snake_case() {
        let all = serde_json::to_string(&(
            [TurnState::Accepted, TurnState::Provisioning, TurnState::Running, TurnState::Reaping, TurnState::Finished],
            [Outcome::Succeeded, Outcome::Failed, Outcome::Cancelled, Outcome::TimedOut],
            [ReapState::Live, ReapState::Reaping, ReapState::Reaped, ReapState::Kept, ReapState::Failed],
            [Resource::Sandbox, Resource::Database],
        ))
        .unwrap();
        expect![[r#"[["accepted","provisioning","running","reaping","finished"],["succeeded","failed","cancelled","timed_out"],["live","reaping","reaped","kept","failed"],["sandbox","database"]]"#]]
            .assert_eq(&all);
    }
}
