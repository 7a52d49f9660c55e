//! A validated turn request: what the orchestrator runs. Every limit of the edge API is checked
//! here, once, so the worker and the CLI refuse the same inputs with the same words.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::providers::e2b::templates::{check_template_name, BadTemplateName, TemplateMap};
use crate::providers::retry::RetryPolicy;
use crate::turn::id::{TurnId, TurnIdError};
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
    /// The largest `database.seed_sql`, in bytes.
    pub max_seed_sql_bytes: usize,
    /// How long a checkpoint is kept when the request names no `keep_s`.
    pub default_checkpoint_keep_s: u32,
    /// The longest a checkpoint is kept, extensions included (`docs/checkpoints.md`).
    pub max_checkpoint_keep_s: u32,
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
            max_seed_sql_bytes: 1024 * 1024,
            default_checkpoint_keep_s: 15 * 60,
            max_checkpoint_keep_s: 24 * 60 * 60,
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
    #[error("database.seed_sql is empty")]
    EmptySeed,
    #[error("database.seed_sql is {bytes} bytes; the limit is {max}")]
    SeedTooLarge { bytes: usize, max: usize },
    #[error("database.from: {0}")]
    BadParent(#[from] TurnIdError),
    #[error("checkpoint keeps the turn's database, and this turn has none (database: false)")]
    CheckpointWithoutDatabase,
    #[error("checkpoint.keep_s must be between 1 and {max}, got {got}")]
    KeepOutOfRange { got: u32, max: u32 },
}

impl SpecError {
    /// The API error for this refusal: size limits are 413, everything else 400.
    pub fn to_api_error(&self) -> ApiError {
        let code = match self {
            SpecError::CodeTooLarge { .. }
            | SpecError::FileTooLarge { .. }
            | SpecError::TooLargeInAll { .. }
            | SpecError::EnvValueTooLarge { .. }
            | SpecError::SeedTooLarge { .. } => ErrorCode::PayloadTooLarge,
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
    /// The turn whose checkpoint the database starts as a copy of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TurnId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_sql: Option<String>,
    /// Keep the database as a checkpoint for this long after the process exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_keep_s: Option<u32>,
}

impl TurnSpec {
    /// Checks `request` against `limits`; a request that names no template gets its language's
    /// from `templates`.
    pub fn from_request(
        request: CreateTurnRequest,
        limits: &Limits,
        templates: &TemplateMap,
    ) -> Result<TurnSpec, SpecError> {
        let CreateTurnRequest { code, language, files, template, timeout_s, database, checkpoint, env } = request;
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
        let options = database.options().cloned().unwrap_or_default();
        let from = options.from.map(TurnId::new).transpose()?;
        if let Some(seed) = &options.seed_sql {
            if seed.trim().is_empty() {
                return Err(SpecError::EmptySeed);
            }
            if seed.len() > limits.max_seed_sql_bytes {
                return Err(SpecError::SeedTooLarge { bytes: seed.len(), max: limits.max_seed_sql_bytes });
            }
        }
        let checkpoint_keep_s = match checkpoint {
            None => None,
            Some(_) if !database.enabled() => return Err(SpecError::CheckpointWithoutDatabase),
            Some(checkpoint) => Some(limits.checkpoint_keep_s(checkpoint.keep_s)?),
        };
        Ok(TurnSpec {
            code,
            language,
            files: checked,
            template,
            timeout_s,
            database: database.enabled(),
            env: env.into_iter().collect(),
            from,
            seed_sql: options.seed_sql,
            checkpoint_keep_s,
        })
    }

    /// Whether the turn records what its database holds after the process exits: a turn that
    /// takes part in a session of turns (seeded, forked or checkpointed) does; others spend nothing
    /// on it.
    pub fn summarizes_database(&self) -> bool {
        self.database && (self.from.is_some() || self.seed_sql.is_some() || self.checkpoint_keep_s.is_some())
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
            from: self.from.as_ref().map(TurnId::to_string),
            seed_sql_bytes: self.seed_sql.as_ref().map(|seed| seed.len() as u64),
            checkpoint_keep_s: self.checkpoint_keep_s,
        }
    }
}

impl Limits {
    /// A checkpoint's `keep_s`, checked, or the default when none is named.
    pub fn checkpoint_keep_s(&self, keep_s: Option<u32>) -> Result<u32, SpecError> {
        match keep_s {
            None => Ok(self.default_checkpoint_keep_s),
            Some(got) if (1..=self.max_checkpoint_keep_s).contains(&got) => Ok(got),
            Some(got) => Err(SpecError::KeepOutOfRange { got, max: self.max_checkpoint_keep_s }),
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
mod tests;
