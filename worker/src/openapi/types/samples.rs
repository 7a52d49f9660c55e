//! What core writes, as samples for the document's schemas: every event with and without its
//! optional fields, and every answer body.

use super::*;

/// `body` with everything serde may leave out left out. The match has no wildcard: a variant
/// added to `EventBody` fails to compile here until it is listed, and so gets its samples.
pub(super) fn without_optionals(body: &EventBody) -> EventBody {
    match body.clone() {
        EventBody::TurnFinished { outcome, .. } => {
            EventBody::TurnFinished { outcome, timings: Timings { total_ms: 1, ..Timings::default() }, error: None }
        }
        EventBody::DatabaseKept { claim } => {
            EventBody::DatabaseKept { claim: ClaimInfo { upgrade_jwt: None, expires_at: None, ..claim } }
        }
        EventBody::DatabaseCreating { .. } => EventBody::DatabaseCreating { from: None },
        EventBody::DatabaseSummarized { .. } => {
            EventBody::DatabaseSummarized { summary: None, diff: None, error: None }
        }
        body @ (EventBody::TurnAccepted { .. }
        | EventBody::SandboxCreating { .. }
        | EventBody::SandboxReady { .. }
        | EventBody::DatabaseReady { .. }
        | EventBody::DatabaseCopying { .. }
        | EventBody::DatabaseCopied { .. }
        | EventBody::DatabaseSeeding { .. }
        | EventBody::DatabaseSeeded { .. }
        | EventBody::DatabaseCheckpointed { .. }
        | EventBody::CodeUploaded { .. }
        | EventBody::ProcessStarted { .. }
        | EventBody::Stdout { .. }
        | EventBody::Stderr { .. }
        | EventBody::OutputTruncated { .. }
        | EventBody::ProcessExited { .. }
        | EventBody::SandboxReaped { .. }
        | EventBody::DatabaseReaped { .. }
        | EventBody::ReapFailed { .. }) => body,
    }
}

pub(super) fn full_timings() -> Timings {
    Timings {
        sandbox_ms: Some(80),
        database_ms: Some(12),
        provision_ms: Some(81),
        upload_ms: Some(2),
        copy_ms: Some(140),
        seed_ms: Some(30),
        run_ms: Some(1000),
        reap_ms: Some(7),
        total_ms: 1100,
    }
}

pub(super) fn full_summary() -> DatabaseSummary {
    DatabaseSummary {
        tables: vec![TableSummary {
            name: "public.items".into(),
            rows: u64::MAX,
            columns: vec!["id integer".into(), "name text".into()],
        }],
        bytes: 7_700_000,
        truncated: true,
    }
}

pub(super) fn full_diff() -> SummaryDiff {
    SummaryDiff {
        parent_turn_id: "t_0".into(),
        added: vec!["public.new".into()],
        dropped: vec!["public.old".into()],
        altered: vec!["public.items".into()],
        rows: vec![RowDelta { table: "public.items".into(), before: 3, after: 4 }],
        bytes_before: 7_600_000,
        bytes_after: 7_700_000,
    }
}

pub(super) fn full_claim() -> ClaimInfo {
    ClaimInfo {
        claim_url: "https://instanode.dev/claim?t=j".into(),
        upgrade_jwt: Some("j".into()),
        expires_at: Some("2026-11-30T12:00:00Z".into()),
        instructions: "open the claim URL and sign in".into(),
    }
}

/// One event of each kind with every optional field set, then each without them.
pub(super) fn sample_events() -> Vec<Event> {
    let full = [
        EventBody::TurnAccepted { turn_id: "t_1".into(), deadline_ms: 30_000 },
        EventBody::SandboxCreating { template: "mayfly".into() },
        EventBody::SandboxReady { sandbox_id: "sbx1".into(), ms: 80 },
        EventBody::DatabaseCreating { from: Some("t_0".into()) },
        EventBody::DatabaseReady { ms: 12, host: "db.example:5432".into(), database: "db_t_1".into() },
        EventBody::DatabaseCopying { from: "t_0".into() },
        EventBody::DatabaseCopied { ms: 140, bytes: 52_000 },
        EventBody::DatabaseSeeding { bytes: 120 },
        EventBody::DatabaseSeeded { ms: 30 },
        EventBody::DatabaseSummarized {
            summary: Some(Box::new(full_summary())),
            diff: Some(Box::new(full_diff())),
            error: Some("the database summary failed: it took longer than 10 s".into()),
        },
        EventBody::DatabaseCheckpointed { keep_until_unix_ms: 1_700_000_900_000 },
        // A summary that is a plain one: not truncated, no diff.
        EventBody::DatabaseSummarized {
            summary: Some(Box::new(DatabaseSummary { truncated: false, ..full_summary() })),
            diff: None,
            error: None,
        },
        EventBody::CodeUploaded { path: "/home/user/main.py".into(), bytes: 42 },
        EventBody::ProcessStarted { pid: u32::MAX },
        EventBody::Stdout { data: "row 0\n".into() },
        EventBody::Stderr { data: "Traceback \u{1b}[31m".into() },
        EventBody::OutputTruncated { kept_bytes: Limits::default().max_output_bytes as u64 },
        EventBody::ProcessExited { exit_code: i32::MIN, ms: 900 },
        EventBody::SandboxReaped { ms: 3 },
        EventBody::DatabaseReaped { ms: 5 },
        EventBody::DatabaseKept { claim: full_claim() },
        EventBody::ReapFailed { resource: Resource::Database, error: "instanode answered 503".into(), retry_at: 5000 },
        EventBody::TurnFinished {
            outcome: Outcome::TimedOut,
            timings: full_timings(),
            error: Some("the code ran past its 1 s timeout".into()),
        },
    ];
    let bodies = full.iter().cloned().chain(full.iter().map(without_optionals));
    bodies.zip(1..).map(|(body, seq)| Event { seq, at_ms: u64::MAX, body }).collect()
}

pub(super) fn resource_views() -> Vec<ResourceView> {
    vec![
        ResourceView {
            resource: Resource::Sandbox,
            id: Some("sbx1".into()),
            reap: ReapState::Reaped,
            deadline_unix_ms: 1_700_000_060_000,
            error: None,
        },
        ResourceView {
            resource: Resource::Database,
            id: None,
            reap: ReapState::Failed,
            deadline_unix_ms: 1_700_000_060_000,
            error: Some("instanode answered 503".into()),
        },
    ]
}

pub(super) fn turn_details() -> Vec<TurnDetail> {
    let spec = SpecView {
        language: Language::Python,
        template: "mayfly".into(),
        timeout_s: u32::MAX,
        database: true,
        code: "import sys; sys.exit(2)".into(),
        code_bytes: 23,
        code_elided: false,
        files: vec!["data.csv".into()],
        env: vec!["MODE".into()],
        from: Some("t_0".into()),
        seed_sql_bytes: Some(120),
        checkpoint_keep_s: Some(900),
    };
    let finished = TurnDetail {
        turn_id: "t_1".into(),
        created_unix_ms: 1_700_000_000_000,
        state: TurnState::Finished,
        outcome: Some(Outcome::Failed),
        error: Some("the code exited with status 2".into()),
        exit_code: Some(2),
        spec: spec.clone(),
        timings: full_timings(),
        resources: resource_views(),
        events: 12,
        checkpoint: checkpoint_views().into_iter().next(),
    };
    let accepted = TurnDetail {
        turn_id: "t_2".into(),
        created_unix_ms: 1_700_000_000_000,
        state: TurnState::Accepted,
        outcome: None,
        error: None,
        exit_code: None,
        spec: SpecView {
            files: vec![],
            env: vec![],
            from: None,
            seed_sql_bytes: None,
            checkpoint_keep_s: None,
            ..spec
        },
        timings: Timings::default(),
        resources: vec![],
        events: 1,
        checkpoint: None,
    };
    vec![finished, accepted]
}

pub(super) fn turn_lists() -> Vec<TurnList> {
    let summary = |turn_id: &str, state, outcome, duration_ms| TurnSummary {
        turn_id: turn_id.into(),
        created_unix_ms: 5,
        language: Language::Node,
        state,
        outcome,
        duration_ms,
        resources: resource_views(),
    };
    vec![
        TurnList {
            turns: vec![
                summary("t_2", TurnState::Running, None, None),
                summary("t_1", TurnState::Finished, Some(Outcome::Succeeded), Some(400)),
            ],
            next_cursor: Some("MTcwMDAwMDAwMDAwMDp0XzE".into()),
        },
        TurnList::default(),
    ]
}

pub(super) fn reaper_statuses() -> Vec<ReaperStatus> {
    let finding = |error: Option<&str>| SweepFinding {
        turn_id: "t_1".into(),
        resource: Resource::Database,
        id: "mayfly-9-t_1".into(),
        error: error.map(Into::into),
    };
    let lease = |id: Option<&str>| LeaseView {
        turn_id: "t_2".into(),
        resource: Resource::Sandbox,
        id: id.map(Into::into),
        reap: ReapState::Live,
        deadline_unix_ms: 9,
    };
    vec![
        ReaperStatus {
            alive: 1,
            overdue: vec![lease(Some("sbx2")), lease(None)],
            failed: vec![LeaseView { reap: ReapState::Failed, ..lease(Some("sbx3")) }],
            checkpoints: vec![LeaseView {
                resource: Resource::Database,
                reap: ReapState::Checkpointed,
                ..lease(Some("mayfly-9-t_2"))
            }],
            last_sweep: Some(SweepView {
                at_unix_ms: 10,
                reaped: vec![finding(None)],
                failed: vec![finding(Some("instanode answered 503"))],
                errors: vec!["listing sandboxes: e2b answered 502".into()],
            }),
        },
        ReaperStatus {
            alive: 0,
            overdue: vec![],
            failed: vec![],
            checkpoints: vec![],
            last_sweep: Some(SweepView::default()),
        },
        ReaperStatus::default(),
    ]
}

pub(super) fn healths() -> Vec<Health> {
    let providers = ProvidersView {
        e2b_api_url: "https://api.e2b.app".into(),
        e2b_domain: "e2b.app".into(),
        e2b_api_key: SecretState::Set,
        instanode_url: "https://instanode.dev".into(),
        instanode_token: SecretState::Unset,
        templates: Language::ALL.map(|l| (l.as_str().to_owned(), "mayfly".to_owned())).into(),
    };
    let check = |verdict, fix: Option<&str>| ProviderCheck {
        check: "e2b template mayfly".into(),
        verdict,
        detail: "the template is ready".into(),
        fix: fix.map(Into::into),
    };
    vec![
        Health {
            ok: false,
            version: "0.1.0".into(),
            providers: providers.clone(),
            checks: Some(vec![check(Verdict::Ok, None), check(Verdict::Fail, Some("build the template"))]),
        },
        Health {
            ok: true,
            version: "0.1.0".into(),
            providers: ProvidersView { templates: BTreeMap::new(), ..providers },
            checks: None,
        },
    ]
}

pub(super) fn create_turn_responses() -> Vec<CreateTurnResponse> {
    vec![CreateTurnResponse {
        turn_id: "t_1".into(),
        events_url: "/v1/turns/t_1/events".into(),
        status_url: "/v1/turns/t_1".into(),
    }]
}

pub(super) fn keep_responses() -> Vec<KeepResponse> {
    let claim = full_claim();
    vec![
        KeepResponse { claim: claim.clone(), connection_url: "postgres://u:p@h:5432/d".into() },
        KeepResponse {
            claim: ClaimInfo { upgrade_jwt: None, expires_at: None, ..claim },
            connection_url: "postgres://u:p@h:5432/d".into(),
        },
    ]
}

pub(super) fn checkpoint_views() -> Vec<CheckpointView> {
    vec![
        CheckpointView {
            turn_id: "t_1".into(),
            live: true,
            keep_until_unix_ms: 1_700_000_900_000,
            limit_unix_ms: 1_700_086_400_000,
            summary: Some(full_summary()),
        },
        CheckpointView {
            turn_id: "t_1".into(),
            live: false,
            keep_until_unix_ms: 1_700_000_900_000,
            limit_unix_ms: 1_700_086_400_000,
            summary: None,
        },
    ]
}

pub(super) fn token_responses() -> Vec<TokenResponse> {
    vec![TokenResponse {
        token: "v1.dGVuYW50.c2ln".into(),
        scope: TokenScope::Turns,
        expires_unix_ms: 1_700_000_600_000,
    }]
}

/// Every sample body, by the operation answer whose schema it must meet.
pub(super) fn sample_answers() -> Vec<(&'static str, &'static str, &'static str, Vec<Value>)> {
    vec![
        ("/v1/health", "get", "200", healths().iter().map(to_json).collect()),
        ("/v1/health", "get", "503", healths().iter().map(to_json).collect()),
        ("/v1/turns", "post", "201", create_turn_responses().iter().map(to_json).collect()),
        ("/v1/turns", "get", "200", turn_lists().iter().map(to_json).collect()),
        ("/v1/reaper", "get", "200", reaper_statuses().iter().map(to_json).collect()),
        ("/v1/turns/{id}", "get", "200", turn_details().iter().map(to_json).collect()),
        ("/v1/turns/{id}/keep", "post", "200", keep_responses().iter().map(to_json).collect()),
        ("/v1/turns/{id}/checkpoint", "get", "200", checkpoint_views().iter().map(to_json).collect()),
        ("/v1/turns/{id}/checkpoint", "post", "200", checkpoint_views().iter().map(to_json).collect()),
        ("/v1/tokens", "post", "200", token_responses().iter().map(to_json).collect()),
    ]
}

pub(super) fn sample_errors() -> Vec<Value> {
    let codes = enum_names::<ErrorCode>();
    codes.iter().map(|code| to_json(&ApiError::new(error_code(code), "what went wrong").into_body())).collect()
}
