//! The TypeScript declarations against core's serialized types: every event type is declared with
//! exactly the fields it has on the wire (optional where core leaves them out), and so is every
//! body the package's methods take or answer.

use std::collections::{BTreeMap, BTreeSet};

use mayfly_core::*;
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::DEFINITIONS;

/// A declared field: its name, whether it may be absent, its type.
type Field = (String, bool, String);

fn parse_fields(object: &str) -> Vec<Field> {
    let inner = object.trim().trim_start_matches('{').trim_end_matches('}');
    inner
        .split(';')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, ty) = f.split_once(':').unwrap_or_else(|| panic!("a field without a type: {f}"));
            let optional = name.ends_with('?');
            (name.trim_end_matches('?').trim().to_owned(), optional, ty.trim().to_owned())
        })
        .collect()
}

fn interface(name: &str) -> Option<Vec<Field>> {
    let prefix = format!("export interface {name} ");
    DEFINITIONS.lines().find_map(|line| line.strip_prefix(&prefix)).map(parse_fields)
}

/// `export type X = "a" | "b";` as its strings.
fn literal_union(name: &str) -> Option<Vec<String>> {
    let prefix = format!("export type {name} = \"");
    let line = DEFINITIONS.lines().find(|line| line.starts_with(&prefix))?;
    let body = line.split_once(" = ")?.1.trim_end_matches(';');
    Some(body.split('|').map(|s| s.trim().trim_matches('"').to_owned()).collect())
}

/// The event union's members by `type`, with their other fields.
fn event_variants() -> BTreeMap<String, Vec<Field>> {
    DEFINITIONS
        .lines()
        .filter_map(|line| line.trim().strip_prefix("| "))
        .filter(|member| member.starts_with("{ type: \""))
        .map(|member| {
            let mut fields = parse_fields(member.trim_end_matches(';'));
            let (_, _, kind) = fields.remove(0);
            (kind.trim_matches('"').to_owned(), fields)
        })
        .collect()
}

fn check_value(ty: &str, value: &Value, at: &str) -> Result<(), String> {
    let ok = match ty {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ if ty.ends_with("[]") => {
            let items = value.as_array().ok_or_else(|| format!("{at}: {value} is not an array"))?;
            for (i, item) in items.iter().enumerate() {
                check_value(&ty[..ty.len() - 2], item, &format!("{at}[{i}]"))?;
            }
            true
        }
        "Record<string, string>" => value.as_object().is_some_and(|o| o.values().all(Value::is_string)),
        // A union of types (not of literals): the value is one of them.
        _ if ty.contains(" | ") && !ty.contains('"') => {
            let errors: Vec<String> =
                ty.split(" | ").filter_map(|one| check_value(one.trim(), value, at).err()).collect();
            return if errors.len() < ty.split(" | ").count() { Ok(()) } else { Err(errors.join("; ")) };
        }
        _ => match (literal_union(ty), interface(ty)) {
            (Some(names), _) => value.as_str().is_some_and(|s| names.iter().any(|n| n == s)),
            (None, Some(fields)) => return check_object(&fields, value, at),
            (None, None) => return Err(format!("{at}: the type {ty} is not declared")),
        },
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {value} is not a {ty}"))
    }
}

fn check_object(fields: &[Field], value: &Value, at: &str) -> Result<(), String> {
    let object = value.as_object().ok_or_else(|| format!("{at}: {value} is not an object"))?;
    if let Some(key) = object.keys().find(|key| !fields.iter().any(|(name, _, _)| name == *key)) {
        return Err(format!("{at}: `{key}` is on the wire but not declared"));
    }
    for (name, optional, ty) in fields {
        match object.get(name) {
            Some(field) => check_value(ty, field, &format!("{at}.{name}"))?,
            None if *optional => {}
            None => return Err(format!("{at}: `{name}` is declared required but absent from {value}")),
        }
    }
    Ok(())
}

/// Fails to compile when core gains an event that [`bodies`] has no sample of.
fn sampled(body: &EventBody) {
    match body {
        EventBody::TurnAccepted { .. }
        | EventBody::SandboxCreating { .. }
        | EventBody::SandboxReady { .. }
        | EventBody::DatabaseCreating { .. }
        | EventBody::DatabaseReady { .. }
        | EventBody::DatabaseCopying { .. }
        | EventBody::DatabaseCopied { .. }
        | EventBody::DatabaseSeeding { .. }
        | EventBody::DatabaseSeeded { .. }
        | EventBody::DatabaseSummarized { .. }
        | EventBody::DatabaseCheckpointed { .. }
        | EventBody::CodeUploaded { .. }
        | EventBody::ProcessStarted { .. }
        | EventBody::Stdout { .. }
        | EventBody::Stderr { .. }
        | EventBody::OutputTruncated { .. }
        | EventBody::ProcessExited { .. }
        | EventBody::SandboxReaped { .. }
        | EventBody::DatabaseReaped { .. }
        | EventBody::DatabaseKept { .. }
        | EventBody::ReapFailed { .. }
        | EventBody::TurnFinished { .. } => {}
    }
}

fn claim(full: bool) -> ClaimInfo {
    ClaimInfo {
        claim_url: "https://claim".into(),
        upgrade_jwt: full.then(|| "jwt".into()),
        expires_at: full.then(|| "2030-01-01T00:00:00Z".into()),
        instructions: "claim it".into(),
    }
}

fn timings(full: bool) -> Timings {
    let ms = full.then_some(5);
    Timings {
        sandbox_ms: ms,
        database_ms: ms,
        provision_ms: ms,
        upload_ms: ms,
        copy_ms: ms,
        seed_ms: ms,
        run_ms: ms,
        reap_ms: ms,
        total_ms: 9,
    }
}

fn summary(full: bool) -> mayfly_core::wire::database::DatabaseSummary {
    use mayfly_core::wire::database::{DatabaseSummary, TableSummary};
    DatabaseSummary {
        tables: vec![TableSummary { name: "public.a".into(), rows: 1, columns: vec!["id integer".into()] }],
        bytes: 1,
        truncated: full,
    }
}

fn diff() -> mayfly_core::wire::database::SummaryDiff {
    use mayfly_core::wire::database::{RowDelta, SummaryDiff};
    SummaryDiff {
        parent_turn_id: "t0".into(),
        added: vec!["public.b".into()],
        dropped: vec![],
        altered: vec![],
        rows: vec![RowDelta { table: "public.a".into(), before: 1, after: 2 }],
        bytes_before: 1,
        bytes_after: 2,
    }
}

/// One body of every event type, with its optional fields set (`full`) or left out.
fn bodies(full: bool) -> Vec<EventBody> {
    let bodies = vec![
        EventBody::TurnAccepted { turn_id: "t".into(), deadline_ms: 1 },
        EventBody::SandboxCreating { template: "base".into() },
        EventBody::SandboxReady { sandbox_id: "s".into(), ms: 1 },
        EventBody::DatabaseCreating { from: full.then(|| "t0".into()) },
        EventBody::DatabaseReady { ms: 1, host: "h".into(), database: "d".into() },
        EventBody::DatabaseCopying { from: "t0".into() },
        EventBody::DatabaseCopied { ms: 1, bytes: 1 },
        EventBody::DatabaseSeeding { bytes: 1 },
        EventBody::DatabaseSeeded { ms: 1 },
        EventBody::DatabaseSummarized {
            summary: full.then(|| Box::new(summary(full))),
            diff: full.then(|| Box::new(diff())),
            error: full.then(|| "why".into()),
        },
        EventBody::DatabaseCheckpointed { keep_until_unix_ms: 1 },
        EventBody::CodeUploaded { path: "/p".into(), bytes: 1 },
        EventBody::ProcessStarted { pid: 1 },
        EventBody::Stdout { data: "o".into() },
        EventBody::Stderr { data: "e".into() },
        EventBody::OutputTruncated { kept_bytes: 1 },
        EventBody::ProcessExited { exit_code: -1, ms: 1 },
        EventBody::SandboxReaped { ms: 1 },
        EventBody::DatabaseReaped { ms: 1 },
        EventBody::DatabaseKept { claim: claim(full) },
        EventBody::ReapFailed { resource: Resource::Database, error: "x".into(), retry_at: 1 },
        EventBody::TurnFinished {
            outcome: Outcome::TimedOut,
            timings: timings(full),
            error: full.then(|| "why".into()),
        },
    ];
    bodies.iter().for_each(sampled);
    bodies
}

#[test]
fn every_event_is_declared_with_exactly_its_fields() {
    let declared = event_variants();
    let kinds: BTreeSet<&str> = bodies(true).iter().map(EventBody::kind).collect();
    assert_eq!(declared.keys().map(String::as_str).collect::<BTreeSet<_>>(), kinds, "declared event types");
    for full in [true, false] {
        for body in bodies(full) {
            let mut json = serde_json::to_value(Event { seq: 3, at_ms: 40, body: body.clone() }).unwrap();
            let object = json.as_object_mut().unwrap();
            assert!(object.remove("seq").unwrap().is_number() && object.remove("at_ms").unwrap().is_number());
            assert_eq!(object.remove("type"), Some(Value::from(body.kind())));
            check_object(&declared[body.kind()], &json, body.kind()).unwrap();
        }
    }
}

#[test]
fn every_body_of_the_packages_methods_is_declared_as_core_sends_it() {
    let mut request = CreateTurnRequest::new("print(1)", Language::Bash);
    request.files.insert("a.txt".into(), "a".into());
    request.env.insert("MODE".into(), "x".into());
    request.template = Some("base".into());
    request.timeout_s = Some(30);
    request.checkpoint = Some(CheckpointRequest { keep_s: Some(60) });
    let mut forked = request.clone();
    forked.database = DatabaseField::With(DatabaseOptions { from: Some("t0".into()), seed_sql: Some("select".into()) });
    let resource = |full: bool| ResourceView {
        resource: Resource::Sandbox,
        id: full.then(|| "s".into()),
        reap: ReapState::Reaped,
        deadline_unix_ms: 1,
        error: full.then(|| "x".into()),
    };
    let detail = |full: bool| TurnDetail {
        turn_id: "t".into(),
        created_unix_ms: 1,
        state: TurnState::Finished,
        outcome: full.then_some(Outcome::Failed),
        error: full.then(|| "why".into()),
        exit_code: full.then_some(3),
        spec: SpecView {
            language: Language::Node,
            template: "base".into(),
            timeout_s: 30,
            database: true,
            code: "x".into(),
            code_bytes: 1,
            code_elided: false,
            files: vec!["a".into()],
            env: vec!["MODE".into()],
            from: full.then(|| "t0".into()),
            seed_sql_bytes: full.then_some(3),
            checkpoint_keep_s: full.then_some(900),
        },
        timings: timings(full),
        resources: vec![resource(full)],
        events: 9,
        checkpoint: full.then(|| CheckpointView {
            turn_id: "t".into(),
            live: true,
            keep_until_unix_ms: 2,
            limit_unix_ms: 3,
            summary: Some(summary(false)),
        }),
    };
    let response = CreateTurnResponse { turn_id: "t".into(), events_url: "/e".into(), status_url: "/s".into() };
    let keep = KeepResponse { claim: claim(true), connection_url: "postgres://".into() };
    let samples = [
        ("CreateTurnRequest", serde_json::to_value(&request).unwrap()),
        ("CreateTurnRequest", serde_json::to_value(&forked).unwrap()),
        ("CreateTurnRequest", serde_json::to_value(CreateTurnRequest::new("x", Language::Python)).unwrap()),
        ("CreateTurnResponse", serde_json::to_value(&response).unwrap()),
        ("TurnDetail", serde_json::to_value(detail(true)).unwrap()),
        ("TurnDetail", serde_json::to_value(detail(false)).unwrap()),
        ("KeepResponse", serde_json::to_value(&keep).unwrap()),
    ];
    for (name, json) in samples {
        check_value(name, &json, name).unwrap();
    }
    // Every literal union holds exactly core's wire names.
    let names = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(literal_union("Outcome"), Some(names(&outcomes)));
    let languages = Language::ALL.map(Language::as_str);
    assert_eq!(literal_union("Language"), Some(names(&languages)));
    let reaps: Vec<&str> = ReapState::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(literal_union("ReapState"), Some(names(&reaps)));
}

#[test]
fn a_wrong_declaration_is_caught() {
    let declared = parse_fields("{ a: number; b?: Outcome }");
    assert_eq!(check_object(&declared, &serde_json::json!({"a": 1, "b": "timed_out"}), "ok"), Ok(()));
    let missing = check_object(&declared, &serde_json::json!({"b": "failed"}), "x").unwrap_err();
    assert!(missing.contains("`a` is declared required"), "{missing}");
    let extra = check_object(&declared, &serde_json::json!({"a": 1, "c": 2}), "x").unwrap_err();
    assert!(extra.contains("`c` is on the wire"), "{extra}");
    let wrong = check_object(&declared, &serde_json::json!({"a": 1, "b": "lost"}), "x").unwrap_err();
    assert!(wrong.contains("is not a Outcome"), "{wrong}");
}
