//! The document against core's types, so that the two cannot drift apart: what core serializes
//! validates against the document's schemas and has exactly the fields they list, required where
//! serde always writes them; every enum has core's wire names; every limit is `Limits::default()`'s
//! and refuses what core refuses; every error status is `ErrorCode::status()`'s.
//!
//! Core's own serde is the source of truth for names: the error of an unknown variant lists every
//! variant's wire name, so a variant added to core is noticed here without anyone listing it.

use std::collections::{BTreeMap, BTreeSet};

use mayfly_core::turn::spec::RESERVED_ENV;
use mayfly_core::wire::database::{DatabaseSummary, RowDelta, SummaryDiff, TableSummary};
use mayfly_core::{
    ApiError, CheckpointView, ClaimInfo, CreateTurnRequest, CreateTurnResponse, ErrorCode, Event, EventBody, Health,
    KeepResponse, Language, LeaseView, Limits, Outcome, ProviderCheck, ProvidersView, ReapState, ReaperStatus,
    Resource, ResourceView, SecretState, SpecView, SweepFinding, SweepView, TemplateMap, Timings, TokenResponse,
    TokenScope, TurnDetail, TurnList, TurnSpec, TurnState, TurnSummary, Verdict,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::DOCUMENT;
use samples::*;

mod bodies;
mod request;
mod samples;

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
pub(super) struct Seen {
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

/// An answer of an operation whose body is an `ErrorBody`.
#[derive(Debug)]
pub(super) struct ErrorAnswer {
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
