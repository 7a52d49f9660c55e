//! The document against core's types, so that the two cannot drift apart: what core serializes
//! validates against the document's schemas and has exactly the fields they list, required where
//! serde always writes them; every enum has core's wire names; every limit is `Limits::default()`'s
//! and refuses what core refuses; every error status is `ErrorCode::status()`'s.
//!
//! Core's own serde is the source of truth for names: the error of an unknown variant lists every
//! variant's wire name, so a variant added to core is noticed here without anyone listing it.

use std::collections::{BTreeMap, BTreeSet};

use mayfly_core::turn::spec::RESERVED_ENV;
use mayfly_core::{
    ApiError, ClaimInfo, CreateTurnRequest, CreateTurnResponse, ErrorCode, Event, EventBody, Health, KeepResponse,
    Language, LeaseView, Limits, Outcome, ProviderCheck, ProvidersView, ReapState, ReaperStatus, Resource,
    ResourceView, SecretState, SpecView, SweepFinding, SweepView, TemplateMap, Timings, TurnDetail, TurnList, TurnSpec,
    TurnState, TurnSummary, Verdict,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::DOCUMENT;

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

fn at<'a>(document: &'a Value, pointer: &str) -> &'a Value {
    document.pointer(pointer).unwrap_or_else(|| panic!("openapi.json has nothing at {pointer}"))
}

/// `#/components/schemas/X` → `/components/schemas/X`.
fn pointer_of(reference: &str) -> &str {
    reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} is not a reference inside the document"))
}

/// The schema at `pointer` as a validator, with the document's components beside it so that its
/// `#/components/...` references resolve.
fn validator(document: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = at(document, pointer).clone();
    root.as_object_mut()
        .unwrap_or_else(|| panic!("{pointer} is not a schema object"))
        .insert("components".to_owned(), document["components"].clone());
    jsonschema::draft202012::new(&root).unwrap_or_else(|err| panic!("{pointer} is not a valid schema: {err}"))
}

/// The document with `additionalProperties: false` on every object schema that lists its
/// properties and says nothing of others. The served document leaves responses open, for clients
/// that meet a newer server; the tests close them, so that a field core writes and the document
/// does not list fails.
fn closed(mut document: Value) -> Value {
    fn close(value: &mut Value) {
        match value {
            Value::Object(object) => {
                if object.contains_key("properties") && !object.contains_key("additionalProperties") {
                    object.insert("additionalProperties".to_owned(), Value::Bool(false));
                }
                object.values_mut().for_each(close);
            }
            Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    close(&mut document["components"]);
    close(&mut document["paths"]);
    document
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|err| format!("{err} (at {})", err.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not validate:\n{}\n{instance:#}", errors.join("\n"));
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("core's bodies serialize")
}

/// The wire names of `T`'s variants, in declaration order, as serde itself lists them when it
/// refuses an unknown one.
fn wire_names<T: DeserializeOwned>(unknown: Value) -> Vec<String> {
    let err = match serde_json::from_value::<T>(unknown) {
        Ok(_) => panic!("the probe is a variant"),
        Err(err) => err.to_string(),
    };
    let (_, expected) =
        err.split_once("expected").unwrap_or_else(|| panic!("serde's refusal lists no variants: {err}"));
    let names: Vec<String> = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    assert!(!names.is_empty(), "no variant names in {err:?}");
    names
}

fn enum_names<T: DeserializeOwned>() -> Vec<String> {
    wire_names::<T>(json!("?"))
}

fn error_code(name: &str) -> ErrorCode {
    serde_json::from_value(json!(name)).unwrap_or_else(|err| panic!("{name} is not an error code: {err}"))
}

/// `body` with everything serde may leave out left out. The match has no wildcard: a variant
/// added to `EventBody` fails to compile here until it is listed, and so gets its samples.
fn without_optionals(body: &EventBody) -> EventBody {
    match body.clone() {
        EventBody::TurnFinished { outcome, .. } => {
            EventBody::TurnFinished { outcome, timings: Timings { total_ms: 1, ..Timings::default() }, error: None }
        }
        EventBody::DatabaseKept { claim } => {
            EventBody::DatabaseKept { claim: ClaimInfo { upgrade_jwt: None, expires_at: None, ..claim } }
        }
        body @ (EventBody::TurnAccepted { .. }
        | EventBody::SandboxCreating { .. }
        | EventBody::SandboxReady { .. }
        | EventBody::DatabaseCreating {}
        | EventBody::DatabaseReady { .. }
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

fn full_timings() -> Timings {
    Timings {
        sandbox_ms: Some(80),
        database_ms: Some(12),
        provision_ms: Some(81),
        upload_ms: Some(2),
        run_ms: Some(1000),
        reap_ms: Some(7),
        total_ms: 1100,
    }
}

fn full_claim() -> ClaimInfo {
    ClaimInfo {
        claim_url: "https://instanode.dev/claim?t=j".into(),
        upgrade_jwt: Some("j".into()),
        expires_at: Some("2026-11-30T12:00:00Z".into()),
        instructions: "open the claim URL and sign in".into(),
    }
}

/// One event of each kind with every optional field set, then each without them.
fn sample_events() -> Vec<Event> {
    let full = [
        EventBody::TurnAccepted { turn_id: "t_1".into(), deadline_ms: 30_000 },
        EventBody::SandboxCreating { template: "mayfly".into() },
        EventBody::SandboxReady { sandbox_id: "sbx1".into(), ms: 80 },
        EventBody::DatabaseCreating {},
        EventBody::DatabaseReady { ms: 12, host: "db.example:5432".into(), database: "db_t_1".into() },
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

fn resource_views() -> Vec<ResourceView> {
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

fn turn_details() -> Vec<TurnDetail> {
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
    };
    let accepted = TurnDetail {
        turn_id: "t_2".into(),
        created_unix_ms: 1_700_000_000_000,
        state: TurnState::Accepted,
        outcome: None,
        error: None,
        exit_code: None,
        spec: SpecView { files: vec![], env: vec![], ..spec },
        timings: Timings::default(),
        resources: vec![],
        events: 1,
    };
    vec![finished, accepted]
}

fn turn_lists() -> Vec<TurnList> {
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
        },
        TurnList::default(),
    ]
}

fn reaper_statuses() -> Vec<ReaperStatus> {
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
            last_sweep: Some(SweepView {
                at_unix_ms: 10,
                reaped: vec![finding(None)],
                failed: vec![finding(Some("instanode answered 503"))],
                errors: vec!["listing sandboxes: e2b answered 502".into()],
            }),
        },
        ReaperStatus { alive: 0, overdue: vec![], failed: vec![], last_sweep: Some(SweepView::default()) },
        ReaperStatus::default(),
    ]
}

fn healths() -> Vec<Health> {
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

fn create_turn_responses() -> Vec<CreateTurnResponse> {
    vec![CreateTurnResponse {
        turn_id: "t_1".into(),
        events_url: "/v1/turns/t_1/events".into(),
        status_url: "/v1/turns/t_1".into(),
    }]
}

fn keep_responses() -> Vec<KeepResponse> {
    let claim = full_claim();
    vec![
        KeepResponse { claim: claim.clone(), connection_url: "postgres://u:p@h:5432/d".into() },
        KeepResponse {
            claim: ClaimInfo { upgrade_jwt: None, expires_at: None, ..claim },
            connection_url: "postgres://u:p@h:5432/d".into(),
        },
    ]
}

/// The pointer of an operation's answer, its reference to `#/components/responses/...` followed.
fn response(document: &Value, path: &str, method: &str, status: &str) -> String {
    let pointer = format!("/paths/{}/{method}/responses/{status}", path.replace('/', "~1"));
    match at(document, &pointer).get("$ref").and_then(Value::as_str) {
        Some(reference) => pointer_of(reference).to_owned(),
        None => pointer,
    }
}

/// The pointer of the JSON schema of an operation's answer.
fn response_schema(document: &Value, path: &str, method: &str, status: &str) -> String {
    let pointer = format!("{}/content/application~1json/schema", response(document, path, method, status));
    at(document, &pointer);
    pointer
}

/// What the samples showed of each object schema they went through: the keys seen in any sample
/// and the keys seen in every one.
#[derive(Debug, Default)]
struct Seen {
    objects: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

impl Seen {
    /// Walks `instance` along the schema at `pointer` (references and the event discriminator
    /// followed) and records the keys of every object whose schema lists properties. It also
    /// fails on a key the schema does not list, wherever the schema is.
    fn walk(&mut self, document: &Value, pointer: &str, instance: &Value) {
        let schema = at(document, pointer);
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return self.walk(document, pointer_of(reference), instance);
        }
        if let Some(discriminator) = schema.get("discriminator") {
            let property = discriminator["propertyName"].as_str().expect("the discriminator's property");
            let tag = instance[property].as_str().unwrap_or_else(|| panic!("{instance} has no {property}"));
            let target = discriminator["mapping"][tag]
                .as_str()
                .unwrap_or_else(|| panic!("{pointer}: the discriminator maps no {tag:?}"));
            return self.walk(document, pointer_of(target), instance);
        }
        match instance {
            Value::Object(object) => {
                if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                    let keys: BTreeSet<String> = object.keys().cloned().collect();
                    let unlisted: Vec<_> = keys.iter().filter(|k| !properties.contains_key(*k)).collect();
                    assert!(unlisted.is_empty(), "{pointer} does not list {unlisted:?}, which core writes: {instance}");
                    let (any, every) =
                        self.objects.entry(pointer.to_owned()).or_insert_with(|| (BTreeSet::new(), keys.clone()));
                    any.extend(keys.iter().cloned());
                    every.retain(|k| keys.contains(k));
                    for (key, value) in object {
                        self.walk(document, &format!("{pointer}/properties/{key}"), value);
                    }
                } else if schema.get("additionalProperties").is_some_and(Value::is_object) {
                    for value in object.values() {
                        self.walk(document, &format!("{pointer}/additionalProperties"), value);
                    }
                }
            }
            Value::Array(items) if schema.get("items").is_some() => {
                for item in items {
                    self.walk(document, &format!("{pointer}/items"), item);
                }
            }
            _ => {}
        }
    }
}

/// Every sample body, by the operation answer whose schema it must meet.
fn sample_answers() -> Vec<(&'static str, &'static str, &'static str, Vec<Value>)> {
    vec![
        ("/v1/health", "get", "200", healths().iter().map(to_json).collect()),
        ("/v1/health", "get", "503", healths().iter().map(to_json).collect()),
        ("/v1/turns", "post", "201", create_turn_responses().iter().map(to_json).collect()),
        ("/v1/turns", "get", "200", turn_lists().iter().map(to_json).collect()),
        ("/v1/reaper", "get", "200", reaper_statuses().iter().map(to_json).collect()),
        ("/v1/turns/{id}", "get", "200", turn_details().iter().map(to_json).collect()),
        ("/v1/turns/{id}/keep", "post", "200", keep_responses().iter().map(to_json).collect()),
    ]
}

/// An answer of an operation whose body is an `ErrorBody`.
#[derive(Debug)]
struct ErrorAnswer {
    what: String,
    /// The response object, its reference followed.
    pointer: String,
    status: u16,
    /// The codes its description names.
    codes: Vec<ErrorCode>,
}

/// Every answer of the document whose body is an `ErrorBody`.
fn error_answers(document: &Value) -> Vec<ErrorAnswer> {
    let mut answers = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else { continue };
            for status in responses.keys() {
                let pointer = response(document, path, method, status);
                let schema = at(document, &pointer).pointer("/content/application~1json/schema/$ref");
                if schema.and_then(Value::as_str) != Some("#/components/schemas/ErrorBody") {
                    continue;
                }
                let description = at(document, &pointer)["description"].as_str().unwrap_or_default();
                let codes = named_codes(description);
                let what = format!("{method} {path} {status}");
                let status = status.parse().unwrap_or_else(|_| panic!("{what}: not a status"));
                answers.push(ErrorAnswer { what, pointer, status, codes });
            }
        }
    }
    answers
}

/// The error codes a description names in backticks.
fn named_codes(description: &str) -> Vec<ErrorCode> {
    let codes = enum_names::<ErrorCode>();
    description.split('`').skip(1).step_by(2).filter(|word| codes.iter().any(|c| c == word)).map(error_code).collect()
}

fn sample_errors() -> Vec<Value> {
    let codes = enum_names::<ErrorCode>();
    codes.iter().map(|code| to_json(&ApiError::new(error_code(code), "what went wrong").into_body())).collect()
}

#[test]
fn every_event_of_core_validates_and_the_event_types_are_core_s() {
    let document = document();
    let closed = closed(document.clone());
    let event = validator(&closed, "/components/schemas/Event");
    let samples = sample_events();
    for sample in &samples {
        assert_valid(&event, &to_json(sample), &format!("core's {} event", sample.body.kind()));
    }

    let core: BTreeSet<String> = wire_names::<EventBody>(json!({"type": "?"})).into_iter().collect();
    let sampled: BTreeSet<String> = samples.iter().map(|s| s.body.kind().to_owned()).collect();
    assert_eq!(sampled, core, "the samples leave out a kind of event");

    let one_of = at(&document, "/components/schemas/Event/oneOf").as_array().expect("Event is a oneOf");
    let mut documented = BTreeMap::new();
    for branch in one_of {
        let reference = branch["$ref"].as_str().expect("each branch of Event is a reference");
        let kind = at(&document, &format!("{}/properties/type/const", pointer_of(reference)))
            .as_str()
            .unwrap_or_else(|| panic!("{reference} has no `type` const"));
        assert!(documented.insert(kind.to_owned(), reference.to_owned()).is_none(), "two branches are {kind}");
    }
    assert_eq!(documented.keys().cloned().collect::<BTreeSet<_>>(), core, "Event's oneOf against EventBody");
    let discriminator = at(&document, "/components/schemas/Event/discriminator");
    assert_eq!(discriminator["propertyName"], "type");
    let mapping: BTreeMap<String, String> =
        serde_json::from_value(discriminator["mapping"].clone()).expect("a mapping of names to references");
    assert_eq!(mapping, documented, "the discriminator maps each type to its branch");

    // An event of one kind with another's fields is no event at all.
    let mut wrong = to_json(&samples[0]);
    wrong["type"] = json!("stdout");
    assert!(!event.is_valid(&wrong), "{wrong} validated");
}

#[test]
fn every_field_core_writes_is_listed_and_required_exactly_when_always_written() {
    let document = document();
    let closed = closed(document.clone());
    let mut seen = Seen::default();
    let event_pointer = "/components/schemas/Event";
    for sample in sample_events() {
        seen.walk(&document, event_pointer, &to_json(&sample));
    }
    for (path, method, status, samples) in sample_answers() {
        let pointer = response_schema(&document, path, method, status);
        let validator = validator(&closed, &pointer);
        for sample in &samples {
            assert_valid(&validator, sample, &format!("core's answer to {method} {path} ({status})"));
            seen.walk(&document, &pointer, sample);
        }
    }
    for sample in sample_errors() {
        seen.walk(&document, "/components/schemas/ErrorBody", &sample);
    }

    for (pointer, (any, every)) in &seen.objects {
        let schema = at(&document, pointer);
        let listed: BTreeSet<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        let required: BTreeSet<String> = serde_json::from_value(schema["required"].clone()).unwrap_or_default();
        assert_eq!(any, &listed, "{pointer}: the properties against the fields core wrote in some sample");
        assert_eq!(every, &required, "{pointer}: `required` against the fields core wrote in every sample");
    }
    // Every object schema of an answer was met by a sample, or the two checks above prove nothing
    // of it.
    let requests = ["CreateTurnRequest"];
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        if schema.get("properties").is_some() && !requests.contains(&name.as_str()) {
            let pointer = format!("/components/schemas/{name}");
            assert!(seen.objects.contains_key(&pointer), "no sample went through {pointer}");
        }
    }
}

#[test]
fn every_answer_core_writes_validates_against_its_operation() {
    let document = document();
    for (path, method, status, samples) in sample_answers() {
        let pointer = response_schema(&document, path, method, status);
        let validator = validator(&document, &pointer);
        for sample in &samples {
            assert_valid(&validator, sample, &format!("core's answer to {method} {path} ({status})"));
        }
    }
    let errors = error_answers(&document);
    assert!(errors.len() >= 20, "the error answers were not found: {errors:?}");
    for answer in errors {
        let validator = validator(&document, &format!("{}/content/application~1json/schema", answer.pointer));
        for code in answer.codes {
            let body = to_json(&ApiError::new(code, "what went wrong").into_body());
            assert_valid(&validator, &body, &format!("{}: {code:?}", answer.what));
        }
    }
    // What the document does not hold, it refuses.
    let turn = validator(&document, "/components/schemas/TurnDetail");
    let mut detail = to_json(&turn_details()[0]);
    detail["state"] = json!("exploded");
    assert!(!turn.is_valid(&detail));
}

#[test]
fn every_enum_has_core_s_wire_names() {
    let document = document();
    let core = [
        ("TurnState", enum_names::<TurnState>()),
        ("Outcome", enum_names::<Outcome>()),
        ("Resource", enum_names::<Resource>()),
        ("ReapState", enum_names::<ReapState>()),
        ("Language", enum_names::<Language>()),
        ("ErrorCode", enum_names::<ErrorCode>()),
        ("Verdict", enum_names::<Verdict>()),
        ("SecretState", enum_names::<SecretState>()),
    ];
    for (name, names) in &core {
        let documented = at(&document, &format!("/components/schemas/{name}/enum"));
        assert_eq!(documented, &json!(names), "{name}'s enum against core's");
    }
    assert_eq!(at(&document, "/components/schemas/Language/default"), &json!(Language::default()));
    assert_eq!(
        at(&document, "/components/schemas/CreateTurnRequest/properties/database/default"),
        &json!(CreateTurnRequest::new("x", Language::default()).database)
    );
    // Any other enum is not one of core's types written out again, where it would go stale.
    let known: Vec<Value> = vec![json!(["providers"]), json!(RESERVED_ENV), json!(["mayfly"])];
    let mut inline = Vec::new();
    find_enums(&document, "", &mut inline);
    for (pointer, values) in inline {
        let named = core.iter().any(|(name, _)| pointer == format!("/components/schemas/{name}/enum"));
        assert!(named || known.contains(&values), "{pointer} is an enum of its own: {values}; refer to core's");
    }
}

fn find_enums(value: &Value, pointer: &str, found: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                let pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                if key == "enum" {
                    found.push((pointer.clone(), value.clone()));
                }
                find_enums(value, &pointer, found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_enums(item, &format!("{pointer}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// How core judges a request: serde first, then the spec's checks at the default limits.
fn core_accepts(request: &Value) -> bool {
    serde_json::from_value::<CreateTurnRequest>(request.clone())
        .is_ok_and(|request| TurnSpec::from_request(request, &Limits::default(), &TemplateMap::default()).is_ok())
}

#[test]
fn every_limit_is_core_s() {
    let document = document();
    let limits = Limits::default();
    let request = at(&document, "/components/schemas/CreateTurnRequest");
    let property = |name: &str| &request["properties"][name];
    let constraints = [
        ("code maxLength", &property("code")["maxLength"], json!(limits.max_code_bytes)),
        ("files maxProperties", &property("files")["maxProperties"], json!(limits.max_files)),
        ("a file's maxLength", &property("files")["additionalProperties"]["maxLength"], json!(limits.max_file_bytes)),
        ("x-max-total-bytes", &request["x-max-total-bytes"], json!(limits.max_total_bytes)),
        ("env maxProperties", &property("env")["maxProperties"], json!(limits.max_env)),
        (
            "an env value's maxLength",
            &property("env")["additionalProperties"]["maxLength"],
            json!(limits.max_env_value_bytes),
        ),
        ("the reserved env names", &property("env")["propertyNames"]["not"]["enum"], json!(RESERVED_ENV)),
        ("timeout_s minimum", &property("timeout_s")["minimum"], json!(limits.min_timeout_s)),
        ("timeout_s maximum", &property("timeout_s")["maximum"], json!(limits.max_timeout_s)),
        ("timeout_s default", &property("timeout_s")["default"], json!(limits.default_timeout_s)),
        (
            "kept_bytes maximum",
            at(&document, "/components/schemas/OutputTruncatedEvent/properties/kept_bytes/maximum"),
            json!(limits.max_output_bytes),
        ),
    ];
    for (what, documented, core) in constraints {
        assert_eq!(documented, &core, "{what} against Limits::default()");
    }
    // The prose says the same numbers, and the names mayfly keeps for itself.
    let says = |text: &Value, what: &[String]| {
        let text = text.as_str().unwrap_or_default();
        for word in what {
            assert!(text.contains(word.as_str()), "{text:?} does not say {word}");
        }
    };
    says(&property("code")["description"], &[limits.max_code_bytes.to_string()]);
    says(&property("files")["description"], &[limits.max_files.to_string(), limits.max_file_bytes.to_string()]);
    says(&request["description"], &[limits.max_total_bytes.to_string()]);
    let env_words = [limits.max_env.to_string(), limits.max_env_value_bytes.to_string()];
    says(&property("env")["description"], &[&env_words[..], &RESERVED_ENV.map(String::from)[..]].concat());
}

#[test]
fn the_request_schema_refuses_what_core_refuses() {
    let document = document();
    let schema = validator(&document, "/components/schemas/CreateTurnRequest");
    let limits = Limits::default();
    let many = |count: usize, prefix: &str, value: &str| -> serde_json::Map<String, Value> {
        (0..count).map(|i| (format!("{prefix}{i}"), json!(value))).collect()
    };
    let same = vec![
        json!({"code": "x"}),
        json!({
            "code": "print(1)", "language": "node", "files": {"a/b.txt": "x"}, "template": "base", "timeout_s": 5,
            "database": false, "env": {"K": "v"}
        }),
        json!({"code": "x", "template": null, "timeout_s": null}),
        json!({}),
        json!({"code": null}),
        json!({"code": 1}),
        json!({"code": ""}),
        json!({"code": " \t\n\u{3000}"}),
        json!({"code": "x".repeat(limits.max_code_bytes)}),
        json!({"code": "x".repeat(limits.max_code_bytes + 1)}),
        json!({"code": "x", "timeout": 5}),
        json!({"code": "x", "language": "ruby"}),
        json!({"code": "x", "language": null}),
        json!({"code": "x", "database": null}),
        json!({"code": "x", "files": null}),
        json!({"code": "x", "env": null}),
        json!({"code": "x", "files": ["a"]}),
        json!({"code": "x", "files": {"a": 1}}),
        json!({"code": "x", "files": many(limits.max_files, "f", "x")}),
        json!({"code": "x", "files": many(limits.max_files + 1, "f", "x")}),
        json!({"code": "x", "files": {"a": "x".repeat(limits.max_file_bytes)}}),
        json!({"code": "x", "files": {"a": "x".repeat(limits.max_file_bytes + 1)}}),
        json!({"code": "x", "files": {"a".repeat(255): "x"}}),
        json!({"code": "x", "files": {"a".repeat(256): "x"}}),
        json!({"code": "x", "env": many(limits.max_env, "E", "v")}),
        json!({"code": "x", "env": many(limits.max_env + 1, "E", "v")}),
        json!({"code": "x", "env": {"A": "x".repeat(limits.max_env_value_bytes)}}),
        json!({"code": "x", "env": {"A": "x".repeat(limits.max_env_value_bytes + 1)}}),
        json!({"code": "x", "env": {"A": "a\u{0}b"}}),
        json!({"code": "x", "env": {"A": 1}}),
        json!({"code": "x", "env": {"_".repeat(128): "v"}}),
        json!({"code": "x", "env": {"_".repeat(129): "v"}}),
        json!({"code": "x", "template": "a".repeat(64)}),
        json!({"code": "x", "template": "a".repeat(65)}),
        json!({"code": "x", "template": {}}),
        json!({"code": "x", "timeout_s": limits.min_timeout_s - 1}),
        json!({"code": "x", "timeout_s": limits.min_timeout_s}),
        json!({"code": "x", "timeout_s": limits.max_timeout_s}),
        json!({"code": "x", "timeout_s": limits.max_timeout_s + 1}),
        json!({"code": "x", "timeout_s": -1}),
        json!({"code": "x", "timeout_s": "10"}),
        json!({"code": "x", "database": "yes"}),
    ];
    for request in &same {
        let core = core_accepts(request);
        assert_eq!(schema.is_valid(request), core, "the schema and core disagree on {}", brief(request));
    }
    for name in RESERVED_ENV {
        let request = json!({"code": "x", "env": {name: "v"}});
        assert!(!core_accepts(&request) && !schema.is_valid(&request), "{name}");
    }
    // Where the schema cannot say all core checks, it accepts more, never less: what it refuses,
    // core refuses too (a client that keeps to the schema is never refused a request core takes,
    // and a request made to break it never starts a turn).
    let half = limits.max_code_bytes / 2 + 1;
    let looser = vec![
        // Bytes, not characters: a two-byte character counts twice.
        json!({"code": "é".repeat(half)}),
        json!({"code": "x", "files": {"é".repeat(128): "x"}}),
        // The code's own path, by language.
        json!({"code": "x", "files": {"main.py": "x"}}),
        // The code and the files together.
        json!({"code": "x", "files": many(5, "f", &"x".repeat(limits.max_file_bytes))}),
        // An integer as JSON Schema counts them, which serde does not take for a `u32`.
        json!({"code": "x", "timeout_s": 5.0}),
    ];
    for request in &looser {
        assert!(schema.is_valid(request) && !core_accepts(request), "{} is no longer looser", brief(request));
    }
}

fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

/// Every string of up to `max_len` characters from `alphabet`.
fn strings(alphabet: &[char], max_len: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..max_len {
        last = last.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
        all.extend(last.iter().cloned());
    }
    all
}

#[test]
fn the_name_patterns_are_core_s_rules() {
    let document = document();
    let schema = validator(&document, "/components/schemas/CreateTurnRequest");
    let judge = |what: &str, request: Value| {
        let (by_schema, by_core) = (schema.is_valid(&request), core_accepts(&request));
        assert_eq!(by_schema, by_core, "{what}: the schema says {by_schema}, core {by_core}: {}", brief(&request));
    };
    for name in strings(&['A', 'z', '_', '0', '-', '=', 'é', ' ', '\0'], 3) {
        judge("env name", json!({"code": "x", "env": {name: "v"}}));
    }
    let path_alphabet = ['a', '.', '/', '\\', '\0', '\n', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}', 'é', ' '];
    for path in strings(&path_alphabet, 4) {
        judge("file path", json!({"code": "x", "files": {path: "x"}}));
    }
    for template in strings(&['a', 'Z', '0', '_', '.', '-', '/', ' ', 'é'], 3) {
        judge("template", json!({"code": "x", "template": template}));
    }
    // Blank is what Rust's `trim` takes away, to the character.
    for c in (0..=0xffff).filter_map(char::from_u32) {
        judge("code", json!({"code": c.to_string()}));
    }
}

#[test]
fn the_request_schema_lists_every_field_and_requires_what_serde_requires() {
    let document = document();
    let closed = closed(document.clone());
    let schema = validator(&closed, "/components/schemas/CreateTurnRequest");
    let mut request = CreateTurnRequest::new("print(1)", Language::Bash);
    request.files.insert("data/a.csv".into(), "a,b".into());
    request.template = Some("base".into());
    request.timeout_s = Some(5);
    request.env.insert("MODE".into(), "test".into());
    let full = to_json(&request);
    assert_valid(&schema, &full, "core's fullest request");
    let written: BTreeSet<&String> = full.as_object().unwrap().keys().collect();
    let listed: BTreeSet<&String> =
        at(&document, "/components/schemas/CreateTurnRequest/properties").as_object().unwrap().keys().collect();
    assert_eq!(written, listed, "CreateTurnRequest's properties against core's fields");
    // Required is what serde cannot do without.
    let required: Vec<String> = full
        .as_object()
        .unwrap()
        .keys()
        .filter(|field| {
            let mut without = full.clone();
            without.as_object_mut().unwrap().remove(*field);
            serde_json::from_value::<CreateTurnRequest>(without).is_err()
        })
        .cloned()
        .collect();
    assert_eq!(at(&document, "/components/schemas/CreateTurnRequest/required"), &json!(required));
    assert_eq!(at(&document, "/components/schemas/CreateTurnRequest/additionalProperties"), &json!(false));
    assert!(serde_json::from_value::<CreateTurnRequest>(json!({"code": "x", "unknown": 1})).is_err());
}

/// The rows of a Markdown table whose first cell is an error code in backticks: (code, status).
fn status_table(markdown: &str) -> Vec<(String, u16)> {
    let codes = enum_names::<ErrorCode>();
    markdown
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').map(str::trim).collect();
            let code = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            codes.iter().any(|c| c == code).then(|| {
                let status = cells.get(1).and_then(|s| s.parse().ok());
                (code.to_owned(), status.unwrap_or_else(|| panic!("{line}: no status")))
            })
        })
        .collect()
}

fn assert_statuses_are_core_s(table: &[(String, u16)], what: &str) {
    let mut listed = BTreeSet::new();
    for (code, status) in table {
        assert_eq!(*status, error_code(code).status(), "{what}: `{code}`'s status against ErrorCode::status()");
        assert!(listed.insert(code.clone()), "{what}: `{code}` twice");
    }
    let codes: BTreeSet<String> = enum_names::<ErrorCode>().into_iter().collect();
    assert_eq!(listed, codes, "{what}: the table's codes against core's");
}

#[test]
fn every_error_status_is_core_s() {
    let document = document();
    let description = at(&document, "/components/schemas/ErrorCode/description").as_str().unwrap();
    assert_statuses_are_core_s(&status_table(description), "ErrorCode's description in openapi.json");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
    let guide = std::fs::read_to_string(root.join("docs").join("api.md")).expect("docs/api.md");
    let errors = guide.split("\n## Errors\n").nth(1).expect("docs/api.md has an Errors section");
    let errors = errors.split("\n## ").next().unwrap();
    assert_statuses_are_core_s(&status_table(errors), "the Errors table of docs/api.md");
    // Each error answer an operation lists names its codes, and they go with its status.
    for answer in error_answers(&document) {
        assert!(!answer.codes.is_empty(), "{}: the description names no error code", answer.what);
        for code in answer.codes {
            assert_eq!(code.status(), answer.status, "{}: {code:?} goes with {}", answer.what, code.status());
        }
    }
}
