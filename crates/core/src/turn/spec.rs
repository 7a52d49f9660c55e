//! A validated turn request: what the orchestrator runs. Every limit of the edge API is checked
//! here, once, so the worker and the CLI refuse the same inputs with the same words.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::providers::e2b::templates::{check_template_name, BadTemplateName, TemplateMap};
use crate::providers::retry::RetryPolicy;
use crate::turn::reap::ReapPolicy;
use crate::turn::wall_time::longest_timeout_s;
use crate::wire::api::{CreateTurnRequest, Language, SpecView};
use crate::wire::error::{ApiError, ErrorCode};

/// The bounds a turn request must stay within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_code_bytes: usize,
    pub max_files: usize,
    pub max_file_bytes: usize,
    pub max_total_bytes: usize,
    pub max_env: usize,
    pub max_env_value_bytes: usize,
    pub min_timeout_s: u32,
    /// The longest timeout whose turn, provisioning and reap included, still fits the one alarm
    /// the worker runs it in (`wall_time.rs`); longer turns would be cut off and end lost.
    pub max_timeout_s: u32,
    pub default_timeout_s: u32,
    /// Output (stdout and stderr together, as UTF-8) a turn keeps; past it, output is dropped and
    /// one `output.truncated` event says so, while the process runs on. Every viewer's replay and
    /// the edge's durable log are bounded by it.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_code_bytes: 256 * 1024,
            max_files: 32,
            max_file_bytes: 1024 * 1024,
            max_total_bytes: 4 * 1024 * 1024,
            max_env: 64,
            max_env_value_bytes: 4096,
            min_timeout_s: 1,
            max_timeout_s: longest_timeout_s(&RetryPolicy::default(), &ReapPolicy::default()),
            default_timeout_s: 30,
            max_output_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Environment names mayfly sets itself; a request may not override them.
pub const RESERVED_ENV: [&str; 3] = ["PG_URL", "DATABASE_URL", "E2B_SANDBOX"];

/// Code longer than this is cut in [`TurnSpec::view`].
const VIEW_CODE_BYTES: usize = 4096;

/// Why a turn request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    #[error("code is empty")]
    EmptyCode,
    #[error("code is {bytes} bytes; the limit is {max}")]
    CodeTooLarge { bytes: usize, max: usize },
    #[error("{count} files; the limit is {max}")]
    TooManyFiles { count: usize, max: usize },
    #[error("file {path:?} is {bytes} bytes; the limit is {max}")]
    FileTooLarge { path: String, bytes: usize, max: usize },
    #[error("code and files are {bytes} bytes in all; the limit is {max}")]
    TooLargeInAll { bytes: usize, max: usize },
    #[error("file path {path:?} is not allowed: {reason}")]
    BadFilePath { path: String, reason: &'static str },
    #[error("{count} environment variables; the limit is {max}")]
    TooManyEnv { count: usize, max: usize },
    #[error("environment variable name {name:?} is not allowed: {reason}")]
    BadEnvName { name: String, reason: &'static str },
    #[error("environment variable {name:?} is {bytes} bytes; the limit is {max}")]
    EnvValueTooLarge { name: String, bytes: usize, max: usize },
    #[error("environment variable {name:?} contains a NUL character, which no environment can hold")]
    NulInEnvValue { name: String },
    #[error("timeout_s must be between {min} and {max}, got {got}")]
    TimeoutOutOfRange { got: u32, min: u32, max: u32 },
    #[error(transparent)]
    BadTemplate(#[from] BadTemplateName),
}

impl SpecError {
    /// The API error for this refusal: size limits are 413, everything else 400.
    pub fn to_api_error(&self) -> ApiError {
        let code = match self {
            SpecError::CodeTooLarge { .. }
            | SpecError::FileTooLarge { .. }
            | SpecError::TooLargeInAll { .. }
            | SpecError::EnvValueTooLarge { .. } => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::InvalidRequest,
        };
        ApiError::new(code, self.to_string())
    }
}

/// A file to put in the sandbox, at a path already checked to stay inside `/home/user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxFile {
    relative_path: String,
    pub content: String,
}

impl SandboxFile {
    pub fn relative_path(&self) -> &str {
        &self.relative_path
    }

    /// The absolute path inside the sandbox.
    pub fn sandbox_path(&self) -> String {
        format!("/home/user/{}", self.relative_path)
    }
}

/// A turn request that passed every check of [`Limits`].
///
/// It serializes so that whoever checked it can store it and run it later without checking it
/// again (the worker's turn object). Deserializing one skips the checks: input from outside comes
/// in as a [`CreateTurnRequest`] through [`TurnSpec::from_request`], never as a `TurnSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnSpec {
    pub code: String,
    pub language: Language,
    pub files: Vec<SandboxFile>,
    pub template: String,
    pub timeout_s: u32,
    pub database: bool,
    /// The caller's environment, without the names mayfly reserves.
    pub env: Vec<(String, String)>,
}

impl TurnSpec {
    /// Checks `request` against `limits`; a request that names no template gets its language's
    /// from `templates`.
    pub fn from_request(
        request: CreateTurnRequest,
        limits: &Limits,
        templates: &TemplateMap,
    ) -> Result<TurnSpec, SpecError> {
        let CreateTurnRequest { code, language, files, template, timeout_s, database, env } = request;
        if code.trim().is_empty() {
            return Err(SpecError::EmptyCode);
        }
        if code.len() > limits.max_code_bytes {
            return Err(SpecError::CodeTooLarge { bytes: code.len(), max: limits.max_code_bytes });
        }
        if files.len() > limits.max_files {
            return Err(SpecError::TooManyFiles { count: files.len(), max: limits.max_files });
        }
        let mut total = code.len();
        let mut checked = Vec::with_capacity(files.len());
        for (path, content) in files {
            check_file_path(&path)?;
            if path == language.code_path().trim_start_matches("/home/user/") {
                return Err(SpecError::BadFilePath { path, reason: "it is where the turn's code goes" });
            }
            if content.len() > limits.max_file_bytes {
                return Err(SpecError::FileTooLarge { path, bytes: content.len(), max: limits.max_file_bytes });
            }
            total += content.len();
            checked.push(SandboxFile { relative_path: path, content });
        }
        if total > limits.max_total_bytes {
            return Err(SpecError::TooLargeInAll { bytes: total, max: limits.max_total_bytes });
        }
        if env.len() > limits.max_env {
            return Err(SpecError::TooManyEnv { count: env.len(), max: limits.max_env });
        }
        for (name, value) in &env {
            check_env_name(name)?;
            if value.contains('\0') {
                return Err(SpecError::NulInEnvValue { name: name.clone() });
            }
            if value.len() > limits.max_env_value_bytes {
                return Err(SpecError::EnvValueTooLarge {
                    name: name.clone(),
                    bytes: value.len(),
                    max: limits.max_env_value_bytes,
                });
            }
        }
        let timeout_s = timeout_s.unwrap_or(limits.default_timeout_s);
        if !(limits.min_timeout_s..=limits.max_timeout_s).contains(&timeout_s) {
            return Err(SpecError::TimeoutOutOfRange {
                got: timeout_s,
                min: limits.min_timeout_s,
                max: limits.max_timeout_s,
            });
        }
        let template = template.unwrap_or_else(|| templates.for_language(language).to_owned());
        check_template_name(&template)?;
        Ok(TurnSpec { code, language, files: checked, template, timeout_s, database, env: env.into_iter().collect() })
    }

    /// How `GET /v1/turns/{id}` shows this spec: long code cut, env values hidden.
    pub fn view(&self) -> SpecView {
        let code_elided = self.code.len() > VIEW_CODE_BYTES;
        let code = if code_elided {
            let mut cut = VIEW_CODE_BYTES;
            while !self.code.is_char_boundary(cut) {
                cut -= 1;
            }
            self.code[..cut].to_owned()
        } else {
            self.code.clone()
        };
        SpecView {
            language: self.language,
            template: self.template.clone(),
            timeout_s: self.timeout_s,
            database: self.database,
            code,
            code_bytes: self.code.len() as u64,
            code_elided,
            files: self.files.iter().map(|f| f.relative_path.clone()).collect(),
            env: self.env.iter().map(|(name, _)| name.clone()).collect(),
        }
    }
}

fn check_file_path(path: &str) -> Result<(), SpecError> {
    let refuse = |reason| Err(SpecError::BadFilePath { path: path.to_owned(), reason });
    if path.is_empty() {
        return refuse("it is empty");
    }
    if path.len() > 255 {
        return refuse("it is longer than 255 bytes");
    }
    if path.starts_with('/') {
        return refuse("it must be relative to /home/user");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return refuse("it contains a control character or a backslash");
    }
    if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return refuse("every part must be a plain name (no `..`, `.` or empty parts)");
    }
    Ok(())
}

fn check_env_name(name: &str) -> Result<(), SpecError> {
    let refuse = |reason| Err(SpecError::BadEnvName { name: name.to_owned(), reason });
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || name.len() > 128 || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return refuse("use a letter or _ then letters, digits or _ (at most 128)");
    }
    if RESERVED_ENV.contains(&name) {
        return refuse("mayfly sets it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn check(json: &str, expect: Expect) {
        let request: CreateTurnRequest = serde_json::from_str(json).unwrap();
        let limits =
            Limits { max_code_bytes: 16, max_files: 2, max_file_bytes: 8, max_total_bytes: 20, ..Limits::default() };
        let templates =
            TemplateMap::from_lookup(|v| (v == "E2B_TEMPLATE_PYTHON").then(|| "mayfly".to_owned())).unwrap();
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
}
