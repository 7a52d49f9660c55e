//! The request's schema against core's checks: the limits, what it refuses, the name patterns.

use super::*;
use mayfly_core::{CheckpointRequest, DatabaseField, DatabaseOptions};

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
    request.database =
        DatabaseField::With(DatabaseOptions { from: Some("t_1".into()), seed_sql: Some("select".into()) });
    request.checkpoint = Some(CheckpointRequest { keep_s: Some(60) });
    let full = to_json(&request);
    assert_valid(&schema, &full, "core's fullest request");
    // The database's options as an object, and as the flag it may also be.
    for database in [json!(false), json!({}), json!({"seed_sql": "select 1"})] {
        assert_valid(&schema, &json!({"code": "x", "database": database}), "a database setting");
    }
    let options = validator(&closed, "/components/schemas/DatabaseOptions");
    assert!(!options.is_valid(&json!({"from": "t_1", "seed": "x"})), "DatabaseOptions is closed");
    assert!(serde_json::from_value::<CreateTurnRequest>(json!({"code": "x", "database": {"seed": "x"}})).is_err());
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
