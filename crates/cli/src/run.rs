//! `mayfly run FILE`: one turn from the terminal. Steps and their times go to stderr; the code's
//! stdout and stderr go to ours, as they are produced.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use mayfly_core::providers::{database_turn, parse_database_name, Clock, DatabaseProvider};
use mayfly_core::turn::{
    run_turn, ForkSource, Lease, LeasedResource, SinkError, TurnControl, TurnId, TurnOptions, TurnReport, TurnSink,
};
use mayfly_core::{
    CheckpointRequest, CreateTurnRequest, DatabaseField, DatabaseOptions, Event, EventBody, Language, Limits, Outcome,
    ReapState, TemplateMap, TurnSpec,
};

use crate::clock::SystemClock;
use crate::providers::NativeProviders;

/// What `mayfly run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub file: PathBuf,
    pub language: Option<Language>,
    pub database: bool,
    pub keep_database: bool,
    pub timeout_s: Option<u32>,
    /// Keep the database as a checkpoint for this long after the code exits.
    pub checkpoint: Option<Duration>,
    /// The turn whose checkpoint the database starts from.
    pub from: Option<String>,
    /// SQL to run against the database before the code.
    pub seed_sql: Option<PathBuf>,
}

/// The language of `file`, from its extension.
pub fn language_of(file: &Path) -> Option<Language> {
    match file.extension()?.to_str()? {
        "py" => Some(Language::Python),
        "sh" | "bash" => Some(Language::Bash),
        "js" | "mjs" | "cjs" => Some(Language::Node),
        _ => None,
    }
}

/// Reads and validates the turn `args` describe, with the same limits as the edge API; its
/// template is its language's in `templates`.
pub fn spec_for(args: &RunArgs, templates: &TemplateMap) -> anyhow::Result<TurnSpec> {
    let code = std::fs::read_to_string(&args.file)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", args.file.display()))?;
    let Some(language) = args.language.or_else(|| language_of(&args.file)) else {
        anyhow::bail!("cannot tell the language of {}: pass --language python|bash|node", args.file.display());
    };
    let mut request = CreateTurnRequest::new(code, language);
    request.database = DatabaseField::Enabled(args.database);
    let seed_sql = match &args.seed_sql {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?,
        ),
        None => None,
    };
    if args.from.is_some() || seed_sql.is_some() {
        request.database = DatabaseField::With(DatabaseOptions { from: args.from.clone(), seed_sql });
    }
    if let Some(keep) = args.checkpoint {
        let keep_s = u32::try_from(keep.as_secs()).unwrap_or(u32::MAX);
        request.checkpoint = Some(CheckpointRequest { keep_s: Some(keep_s) });
    }
    request.timeout_s = args.timeout_s;
    Ok(TurnSpec::from_request(request, &Limits::default(), templates)?)
}

/// The checkpoint `parent` left at the database provider, found by its name, which carries the
/// turn's id and the latest it is kept to (`docs/checkpoints.md`). The CLI keeps no summary of it,
/// so a fork made here shows its own summary without a diff.
pub async fn fork_source(providers: &NativeProviders, parent: &TurnId) -> anyhow::Result<ForkSource> {
    let now_s = SystemClock.now_ms() / 1000;
    let databases = providers.databases.list().await?;
    let checkpoint = databases.into_iter().find(|database| {
        database_turn(&database.name) == Some(parent.as_str())
            && parse_database_name(&database.name).is_some_and(|until_s| until_s > now_s)
    });
    match checkpoint {
        Some(database) => Ok(ForkSource { token: database.token, summary: None }),
        None => anyhow::bail!(
            "turn {parent} has no live checkpoint at the database provider (it ran out, was reaped, or the \
             `mayfly stack` it was made on has stopped)"
        ),
    }
}

/// Runs one turn, printing as it goes; Ctrl-C cancels it (and it still reaps).
pub async fn run(
    spec: TurnSpec,
    keep_database: bool,
    fork: Option<ForkSource>,
    providers: &NativeProviders,
) -> TurnReport {
    let turn_id = TurnId::new(format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]))
        .expect("a generated id is valid");
    eprintln!(
        "mayfly: turn {turn_id}: {} code, timeout {} s, {}",
        spec.language.as_str(),
        spec.timeout_s,
        if spec.database { "with a scratch database" } else { "no database" }
    );
    // The CLI holds no lease to reap a checkpoint by: its database's name carries the time it is
    // kept to, the run's deadline plus the checkpoint's time, and the providers' sweep
    // (`mayfly reap`) reaps it then.
    let max_checkpoint_keep_s = spec.checkpoint_keep_s.unwrap_or(TurnOptions::default().max_checkpoint_keep_s);
    let options = TurnOptions { keep_database, fork, max_checkpoint_keep_s, ..TurnOptions::default() };
    let control = TurnControl::default();
    let sink = TerminalSink::default();
    let turn = run_turn(turn_id, spec, options, providers, &SystemClock, &sink, &control);
    let cancel_on_signal = async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("mayfly: cancelling (the turn still reaps)…");
            control.cancel();
        }
        std::future::pending::<()>().await;
    };
    let report = tokio::select! {
        report = turn => report,
        () = cancel_on_signal => unreachable!("the signal future never ends"),
    };
    sink.print_summary(&report);
    report
}

/// The exit status `mayfly run` ends with: the code's own, or 1 when the turn failed otherwise.
pub fn exit_status(report: &TurnReport) -> i32 {
    match (report.outcome, report.exit_code) {
        (Outcome::Succeeded, _) => 0,
        (_, Some(code)) if code != 0 => code.clamp(1, 255),
        _ => 1,
    }
}

/// Prints events as steps; remembers leases to say how to claim a kept database.
#[derive(Debug, Default)]
struct TerminalSink {
    database_token: RefCell<Option<String>>,
}

impl TurnSink for TerminalSink {
    fn emit(&self, event: Event) -> Result<(), SinkError> {
        let at = event.at_ms;
        let step = |text: String| eprintln!("[{at:>6} ms] {text}");
        match event.body {
            EventBody::Stdout { data } => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(data.as_bytes()).and_then(|()| out.flush());
            }
            EventBody::Stderr { data } => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(data.as_bytes()).and_then(|()| err.flush());
            }
            EventBody::OutputTruncated { kept_bytes } => {
                step(format!("output truncated: the first {kept_bytes} bytes are kept, the rest is dropped"));
            }
            EventBody::TurnAccepted { .. } => step("turn accepted".into()),
            EventBody::SandboxCreating { template } => step(format!("sandbox creating (template {template})")),
            EventBody::SandboxReady { sandbox_id, ms } => step(format!("sandbox ready: {sandbox_id} in {ms} ms")),
            EventBody::DatabaseCreating { from: None } => step("database creating".into()),
            EventBody::DatabaseCreating { from: Some(parent) } => {
                step(format!("database creating as a copy of turn {parent}'s checkpoint"));
            }
            EventBody::DatabaseCopying { from } => {
                step(format!("database copying turn {from}'s checkpoint (the provider cannot fork)"));
            }
            EventBody::DatabaseCopied { ms, bytes } => step(format!("database copied in {ms} ms ({bytes} bytes)")),
            EventBody::DatabaseSeeding { bytes } => step(format!("database seeding ({bytes} bytes of SQL)")),
            EventBody::DatabaseSeeded { ms } => step(format!("database seeded in {ms} ms")),
            EventBody::DatabaseSummarized { summary, diff, error } => {
                if let Some(summary) = summary {
                    let tables: Vec<String> =
                        summary.tables.iter().map(|t| format!("{} ({})", t.name, t.rows)).collect();
                    step(format!("database holds {} bytes: {}", summary.bytes, tables.join(", ")));
                }
                if let Some(diff) = diff {
                    step(format!(
                        "since turn {}: added {:?}, dropped {:?}, altered {:?}, rows changed in {}",
                        diff.parent_turn_id,
                        diff.added,
                        diff.dropped,
                        diff.altered,
                        diff.rows.len()
                    ));
                }
                if let Some(error) = error {
                    step(error);
                }
            }
            EventBody::DatabaseCheckpointed { .. } => {
                // Its time is the run's deadline plus the checkpoint's (the name the sweep reads),
                // which the event does not tell.
                step("database checkpointed: frozen and kept; fork it with --from and this turn's id".into());
            }
            EventBody::DatabaseReady { ms, host, database } => {
                step(format!("database ready: {database} on {host} in {ms} ms (PG_URL and DATABASE_URL set)"));
            }
            EventBody::CodeUploaded { path, bytes } => step(format!("code uploaded: {path} ({bytes} bytes)")),
            EventBody::ProcessStarted { pid } => step(format!("process started (pid {pid})")),
            EventBody::ProcessExited { exit_code, ms } => {
                step(format!("process exited with {exit_code} after {ms} ms"));
            }
            EventBody::SandboxReaped { ms } => step(format!("sandbox reaped in {ms} ms")),
            EventBody::DatabaseReaped { ms } => step(format!("database reaped in {ms} ms")),
            EventBody::DatabaseKept { claim } => {
                step("database kept: it is not deleted with the turn".into());
                eprintln!("             {}", claim.instructions);
                eprintln!("             claim: {}", claim.claim_url);
                if let Some(expires) = claim.expires_at {
                    eprintln!("             expires: {expires} unless claimed");
                }
            }
            EventBody::ReapFailed { resource, error, retry_at } => {
                step(format!("reap of the {resource:?} failed: {error} (retry at {retry_at} ms)").to_lowercase());
            }
            EventBody::TurnFinished { outcome, error, .. } => {
                let outcome = serde_json::to_value(outcome).unwrap_or_default();
                let outcome = outcome.as_str().unwrap_or("finished");
                match error {
                    Some(error) => step(format!("turn finished: {outcome}: {error}")),
                    None => step(format!("turn finished: {outcome}")),
                }
            }
        }
        Ok(())
    }

    fn record_lease(&self, lease: Lease) -> LocalBoxFuture<'_, Result<(), SinkError>> {
        // The CLI keeps no durable ledger: the providers' tags let `mayfly reap` find anything a
        // killed `mayfly run` left behind.
        if let LeasedResource::Database { token, .. } = lease.resource {
            *self.database_token.borrow_mut() = Some(token);
        }
        async { Ok(()) }.boxed_local()
    }
}

impl TerminalSink {
    fn print_summary(&self, report: &TurnReport) {
        let t = &report.timings;
        let part = |name: &str, ms: Option<u64>| ms.map(|ms| format!("{name} {ms} ms")).unwrap_or_default();
        let parts: Vec<String> = [
            part("provision", t.provision_ms),
            part("upload", t.upload_ms),
            part("run", t.run_ms),
            part("reap", t.reap_ms),
        ]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
        eprintln!("mayfly: {} ms in all ({})", t.total_ms, parts.join(", "));
        let state = |reap: &Option<mayfly_core::turn::ResourceReap>| match reap {
            None => "none".to_owned(),
            Some(r) => match (&r.state, &r.error) {
                (ReapState::Failed, Some(error)) => format!("failed ({error}); `mayfly reap` retries it"),
                (state, _) => {
                    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                }
            },
        };
        eprintln!("mayfly: sandbox {}, database {}", state(&report.sandbox), state(&report.database));
        if report.database.as_ref().is_some_and(|d| d.state == ReapState::Kept) {
            if let Some(token) = self.database_token.borrow().as_ref() {
                eprintln!(
                    "mayfly: database token {token} (use it with the provider's API to get credentials or delete it)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mayfly_core::providers::Clock;

    use super::*;

    #[test]
    fn language_from_extension() {
        assert_eq!(language_of(Path::new("a/seed_turn.py")), Some(Language::Python));
        assert_eq!(language_of(Path::new("x.sh")), Some(Language::Bash));
        assert_eq!(language_of(Path::new("x.mjs")), Some(Language::Node));
        assert_eq!(language_of(Path::new("x.rb")), None);
        assert_eq!(language_of(Path::new("noext")), None);
    }

    #[test]
    fn clock_is_wall_time() {
        let now = SystemClock.now_ms();
        assert!(now > 1_700_000_000_000, "{now}");
    }
}
