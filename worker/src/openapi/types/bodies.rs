//! What core writes against the document: events, answers, their fields and enums, and the
//! status each error code goes with.

use super::*;

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
    let requests = ["CreateTurnRequest", "CreateTokenRequest", "DatabaseOptions", "CheckpointRequest"];
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
        ("TokenScope", enum_names::<TokenScope>()),
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
