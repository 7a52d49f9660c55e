//! Every limit and refusal of a turn request, with the words each refusal says.

use expect_test::{expect, Expect};

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn check(json: &str, expect: Expect) {
    let request: CreateTurnRequest = serde_json::from_str(json).unwrap();
    let limits =
        Limits { max_code_bytes: 16, max_files: 2, max_file_bytes: 8, max_total_bytes: 20, ..Limits::default() };
    let templates = TemplateMap::from_lookup(|v| (v == "E2B_TEMPLATE_PYTHON").then(|| "mayfly".to_owned())).unwrap();
    let got = match TurnSpec::from_request(request, &limits, &templates) {
        Ok(spec) => format!("ok {:?} {} {} {:?}", spec.language, spec.template, spec.timeout_s, spec.files),
        Err(err) => {
            let api = err.to_api_error();
            format!("{} {}", api.status(), api.message)
        }
    };
    expect.assert_eq(&got);
}

#[test]
fn defaults() {
    check(r#"{"code":"print(1)"}"#, expect![[r#"ok Python mayfly 30 []"#]]);
    check(r#"{"code":"echo","language":"bash"}"#, expect![[r#"ok Bash base 30 []"#]]);
}

#[test]
fn files() {
    check(
        r#"{"code":"x","files":{"a/b.txt":"12"}}"#,
        expect![[r#"ok Python mayfly 30 [SandboxFile { relative_path: "a/b.txt", content: "12" }]"#]],
    );
    check(
        r#"{"code":"x","files":{"../etc/passwd":""}}"#,
        expect![[
            r#"400 file path "../etc/passwd" is not allowed: every part must be a plain name (no `..`, `.` or empty parts)"#
        ]],
    );
    check(
        r#"{"code":"x","files":{"a/../../b":""}}"#,
        expect![[
            r#"400 file path "a/../../b" is not allowed: every part must be a plain name (no `..`, `.` or empty parts)"#
        ]],
    );
    check(
        r#"{"code":"x","files":{"/etc/shadow":""}}"#,
        expect![[r#"400 file path "/etc/shadow" is not allowed: it must be relative to /home/user"#]],
    );
    check(r#"{"code":"x","files":{"":""}}"#, expect![[r#"400 file path "" is not allowed: it is empty"#]]);
    check(
        r#"{"code":"x","files":{"a\u0000b":""}}"#,
        expect![[r#"400 file path "a\0b" is not allowed: it contains a control character or a backslash"#]],
    );
    check(
        r#"{"code":"x","files":{"main.py":""}}"#,
        expect![[r#"400 file path "main.py" is not allowed: it is where the turn's code goes"#]],
    );
    check(r#"{"code":"x","files":{"a":"123456789"}}"#, expect![[r#"413 file "a" is 9 bytes; the limit is 8"#]]);
    check(r#"{"code":"x","files":{"a":"1","b":"2","c":"3"}}"#, expect![[r#"400 3 files; the limit is 2"#]]);
    check(
        r#"{"code":"0123456789abcd","files":{"a":"12345678"}}"#,
        expect![[r#"413 code and files are 22 bytes in all; the limit is 20"#]],
    );
}

#[test]
fn code() {
    check(r#"{"code":"   "}"#, expect![[r#"400 code is empty"#]]);
    check(r#"{"code":"0123456789abcdefX"}"#, expect![[r#"413 code is 17 bytes; the limit is 16"#]]);
}

#[test]
fn env() {
    check(r#"{"code":"x","env":{"OK_1":"v"}}"#, expect!["ok Python mayfly 30 []"]);
    // No environment can hold a NUL; passed on, it would end the value early.
    check(
        r#"{"code":"x","env":{"ZZ":"x\u0000--ro-bind"}}"#,
        expect![[r#"400 environment variable "ZZ" contains a NUL character, which no environment can hold"#]],
    );
    check(r#"{"code":"x","env":{"TABS":"a\tb\nc"}}"#, expect!["ok Python mayfly 30 []"]);
    check(
        r#"{"code":"x","env":{"PG_URL":"v"}}"#,
        expect![[r#"400 environment variable name "PG_URL" is not allowed: mayfly sets it"#]],
    );
    check(
        r#"{"code":"x","env":{"1A":"v"}}"#,
        expect![[
            r#"400 environment variable name "1A" is not allowed: use a letter or _ then letters, digits or _ (at most 128)"#
        ]],
    );
    check(
        r#"{"code":"x","env":{"A=B":"v"}}"#,
        expect![[
            r#"400 environment variable name "A=B" is not allowed: use a letter or _ then letters, digits or _ (at most 128)"#
        ]],
    );
}

#[test]
fn timeout_and_template() {
    check(r#"{"code":"x","timeout_s":0}"#, expect![[r#"400 timeout_s must be between 1 and 540, got 0"#]]);
    // The longest turn the alarm holds (`wall_time.rs`), and one second more.
    assert_eq!(Limits::default().max_timeout_s, longest_timeout_s(&RetryPolicy::default(), &ReapPolicy::default()));
    check(r#"{"code":"x","timeout_s":540,"template":"base"}"#, expect![[r#"ok Python base 540 []"#]]);
    check(r#"{"code":"x","timeout_s":541}"#, expect![[r#"400 timeout_s must be between 1 and 540, got 541"#]]);
    check(r#"{"code":"x","timeout_s":900}"#, expect![[r#"400 timeout_s must be between 1 and 540, got 900"#]]);
    check(
        r#"{"code":"x","template":"../x y"}"#,
        expect![[r#"400 template "../x y" is not allowed: use 1-64 of A-Z a-z 0-9 _ . -"#]],
    );
}

#[test]
fn database_options_and_checkpoints() {
    let spec = |json: &str| {
        let request: CreateTurnRequest = serde_json::from_str(json).unwrap();
        TurnSpec::from_request(request, &Limits::default(), &TemplateMap::default())
            .map_err(|err| format!("{} {}", err.to_api_error().status(), err))
    };
    let forked =
        spec(r#"{"code":"x","database":{"from":"t_1","seed_sql":"create table a()"},"checkpoint":{}}"#).unwrap();
    assert_eq!(forked.from, Some(TurnId::new("t_1").unwrap()));
    assert_eq!(forked.seed_sql.as_deref(), Some("create table a()"));
    assert_eq!(forked.checkpoint_keep_s, Some(900));
    assert!(forked.database && forked.summarizes_database());
    let view = forked.view();
    assert_eq!((view.from.as_deref(), view.seed_sql_bytes, view.checkpoint_keep_s), (Some("t_1"), Some(16), Some(900)));
    assert!(!spec(r#"{"code":"x"}"#).unwrap().summarizes_database());
    assert_eq!(spec(r#"{"code":"x","checkpoint":{"keep_s":86400}}"#).unwrap().checkpoint_keep_s, Some(86_400));
    let refused = [
        (
            r#"{"code":"x","checkpoint":{"keep_s":86401}}"#,
            "400 checkpoint.keep_s must be between 1 and 86400, got 86401",
        ),
        (r#"{"code":"x","checkpoint":{"keep_s":0}}"#, "400 checkpoint.keep_s must be between 1 and 86400, got 0"),
        (
            r#"{"code":"x","database":false,"checkpoint":{}}"#,
            "400 checkpoint keeps the turn's database, and this turn has none (database: false)",
        ),
        (r#"{"code":"x","database":{"seed_sql":" "}}"#, "400 database.seed_sql is empty"),
        (
            r#"{"code":"x","database":{"from":"../t"}}"#,
            r#"400 database.from: turn id "../t" is not allowed: use 1-40 of A-Z a-z 0-9 _ -"#,
        ),
    ];
    for (json, want) in refused {
        assert_eq!(spec(json).unwrap_err(), want, "{json}");
    }
    let big = format!(r#"{{"code":"x","database":{{"seed_sql":"{}"}}}}"#, "a".repeat(1024 * 1024 + 1));
    assert!(spec(&big).unwrap_err().starts_with("413 database.seed_sql is 1048577 bytes"));
}

#[test]
fn view_cuts_long_code_on_a_char_boundary_and_hides_env_values() {
    let mut request = CreateTurnRequest::new("é".repeat(3000), Language::Python);
    request.env.insert("SECRET".into(), "hunter2".into());
    let view = TurnSpec::from_request(request, &Limits::default(), &TemplateMap::default()).unwrap().view();
    assert!(view.code_elided);
    assert_eq!(view.code.len(), 4096);
    assert_eq!(view.code_bytes, 6000);
    assert_eq!(view.env, vec!["SECRET".to_owned()]);
    assert!(!serde_json::to_string(&view).unwrap().contains("hunter2"));
}
