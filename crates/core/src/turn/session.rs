//! A turn's part in a session of turns (`docs/checkpoints.md`): a fork's copy of its checkpoint
//! where the provider cannot fork, the seed SQL run before the code, the summary of the database
//! after it, and the checkpoint that keeps the database, frozen, for later turns to fork.
//!
//! Copy, seed and summary run inside the turn's own sandbox, through a small helper
//! (`db_helper.py`), so they work the same against scratchdb and hosted instanode. Seed and
//! summary use the turn's own credentials and reach nothing the turn's code could not; the copy
//! also reads the checkpoint, with the URL the provider gives for it, before the code starts. The sandbox is the tenant's: what runs there may
//! be the tenant's rather than the helper, so what it prints is read back as untrusted, within
//! bounds.

use std::pin::pin;

use bytes::Bytes;
use futures::future::{self, Either};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Ending, ResourceReap, Turn, TurnSink};
use crate::providers::{
    Clock, Database, DatabaseProvider, ProcessEvent, ProcessRequest, SandboxHandle, SandboxProvider,
};
use crate::wire::database::DatabaseSummary;
use crate::wire::event::{EventBody, ReapState};

const HELPER: &str = include_str!("db_helper.py");
const HELPER_PATH: &str = "/tmp/.mayfly/db_helper.py";
const SEED_PATH: &str = "/tmp/.mayfly/seed.sql";
/// The most a helper may print on stdout: a few times the largest summary core keeps
/// (`SUMMARY_MAX_BYTES`), which the helper's own bounds stay within, so that what is parsed
/// before core bounds it is small too.
const HELPER_STDOUT_BYTES: usize = 256 * 1024;
/// The helper's variable for the URL of the checkpoint a copy reads.
const SOURCE_URL_ENV: &str = "MAYFLY_SOURCE_URL";
/// How much of a helper's stderr is kept for its error message.
const HELPER_STDERR_BYTES: usize = 2048;
/// The longest a summary may take; it also ends at the turn's deadline.
const SUMMARY_TIMEOUT_MS: u64 = 10_000;

/// Where a forked turn's database comes from. The caller resolves it from `spec.from` (the
/// worker, from the parent turn's object, for the same tenant only) and hands it in with
/// [`super::TurnOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkSource {
    /// The checkpoint's handle at the database provider; not a credential for the database.
    pub token: String,
    /// What the checkpoint held, for the fork's diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DatabaseSummary>,
}

/// What `db_helper.py` is run for.
enum Helper<'a> {
    /// The seed SQL, run in one transaction.
    Seed(&'a str),
    Summary,
    /// A fork's copy of the checkpoint at `source_url`, where the provider cannot fork.
    Copy {
        source_url: String,
    },
}

/// What the copy helper prints: how much SQL went from the checkpoint into the fork.
#[derive(Deserialize)]
struct Copied {
    bytes: u64,
}

/// The latest a checkpoint of a turn with this deadline may be kept to, extensions included. The
/// database's name carries it, so that the providers' sweep leaves the checkpoint alone until then,
/// and no later: past it the sweep reaps the checkpoint whatever became of its turn's object.
pub fn checkpoint_limit_unix_ms(deadline_unix_ms: u64, max_keep_s: u32) -> u64 {
    deadline_unix_ms + u64::from(max_keep_s) * 1000
}

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Whether the code and files go up only after provisioning: a fork's, which may first have to
    /// copy its checkpoint into the sandbox with nothing of the caller's in it yet.
    pub(super) fn uploads_after_provisioning(&self) -> bool {
        self.spec.from.is_some()
    }

    /// What comes between provisioning and the code: a fork's copy of its checkpoint where the
    /// provider could not fork, then its upload, then the seed. `None` once all of it is done,
    /// else how the turn ends.
    pub(super) async fn prepare_until_interrupted(
        &self,
        sandbox: &SandboxHandle,
        database: Option<&Database>,
        fork_by_copy: bool,
    ) -> Option<Ending> {
        if let (Some(database), true) = (database, fork_by_copy) {
            if let Some(ending) = self.copy_until_interrupted(sandbox, database).await {
                return Some(ending);
            }
        }
        if self.uploads_after_provisioning() {
            if let Some(ending) = self.upload_until_interrupted(sandbox).await {
                return Some(ending);
            }
        }
        self.seed_until_interrupted(sandbox, database).await
    }

    /// Runs the seed SQL, if the turn has one, before the code: `None` once it succeeded, else how
    /// the turn ends.
    async fn seed_until_interrupted(&self, sandbox: &SandboxHandle, database: Option<&Database>) -> Option<Ending> {
        let (Some(seed), Some(database)) = (self.spec.seed_sql.as_deref(), database) else { return None };
        let started = self.clock.now_ms();
        self.emitter.emit(EventBody::DatabaseSeeding { bytes: seed.len() as u64 });
        let timeout_ms = self.deadline_unix_ms.saturating_sub(started);
        let seeding = pin!(self.run_helper(sandbox, database, Helper::Seed(seed), timeout_ms));
        // The deadline first: a seed still running when it passes timed out, it did not fail.
        let result = match future::select(pin!(self.interrupted()), seeding).await {
            Either::Left((ending, _)) => return Some(ending),
            Either::Right((result, _)) => result,
        };
        match result {
            Ok(_) => {
                let ms = self.clock.now_ms() - started;
                self.timings.borrow_mut().seed_ms = Some(ms);
                self.emitter.emit(EventBody::DatabaseSeeded { ms });
                None
            }
            Err(error) if error.starts_with("the seed SQL failed") => Some(Ending::Failed(error)),
            Err(error) => Some(Ending::Failed(format!("the seed SQL could not be run: {error}"))),
        }
    }

    /// Copies the fork's checkpoint into its fresh database, where the provider cannot fork
    /// (hosted instanode): `pg_dump | psql` inside the turn's own sandbox, before the seed and the
    /// code, as its own phase. `None` once it succeeded, else how the turn ends.
    async fn copy_until_interrupted(&self, sandbox: &SandboxHandle, database: &Database) -> Option<Ending> {
        let (Some(source), Some(parent)) = (&self.options.fork, &self.spec.from) else { return None };
        let started = self.clock.now_ms();
        self.emitter.emit(EventBody::DatabaseCopying { from: parent.to_string() });
        let copying = async {
            // The checkpoint's URL as it is since its freeze rotated it. It goes to the helper's
            // environment and nowhere else, and is scrubbed from whatever is said of the copy.
            let source_url = self.databases.connection_url(&source.token).await.map_err(|e| e.to_string())?;
            self.emitter.add_secret(&source_url);
            let timeout_ms = self.deadline_unix_ms.saturating_sub(self.clock.now_ms());
            self.run_helper(sandbox, database, Helper::Copy { source_url }, timeout_ms).await
        };
        let result = match future::select(pin!(self.interrupted()), pin!(copying)).await {
            Either::Left((ending, _)) => return Some(ending),
            Either::Right((result, _)) => result,
        };
        let why = match result {
            Ok(stdout) => match serde_json::from_str::<Copied>(stdout.trim()) {
                Ok(copied) => {
                    let ms = self.clock.now_ms() - started;
                    self.timings.borrow_mut().copy_ms = Some(ms);
                    self.emitter.emit(EventBody::DatabaseCopied { ms, bytes: copied.bytes });
                    return None;
                }
                Err(_) => "the copy helper printed something that is not a copy's size".to_owned(),
            },
            Err(error) => error,
        };
        let why = self.emitter.scrub(&why);
        Some(Ending::Failed(format!("turn {parent}'s checkpoint could not be copied into the database: {why}")))
    }

    /// Records what the database holds now that the process exited, and for a fork how that
    /// differs from its checkpoint, as one `database.summary`. A summary that cannot be made is
    /// said in the event; the turn goes on.
    pub(super) async fn summarize(&self, sandbox: &SandboxHandle, database: &Database) -> Option<DatabaseSummary> {
        let timeout_ms = self.deadline_unix_ms.saturating_sub(self.clock.now_ms()).min(SUMMARY_TIMEOUT_MS);
        let summary = match self.run_helper(sandbox, database, Helper::Summary, timeout_ms).await {
            Ok(stdout) => serde_json::from_str::<DatabaseSummary>(stdout.trim())
                .map(DatabaseSummary::bounded)
                .map_err(|_| "the summary helper printed something that is not a summary".to_owned()),
            Err(error) => Err(error),
        };
        let (summary, error) = match summary {
            Ok(summary) => (Some(summary), None),
            Err(error) => (None, Some(self.emitter.scrub(&format!("the database summary failed: {error}")))),
        };
        let diff = match (&summary, &self.options.fork, &self.spec.from) {
            (Some(summary), Some(source), Some(parent)) => {
                source.summary.as_ref().map(|before| summary.diff_from(before, parent.as_str()))
            }
            _ => None,
        };
        self.emitter.emit(EventBody::DatabaseSummarized {
            summary: summary.clone().map(Box::new),
            diff: diff.map(Box::new),
            error,
        });
        summary
    }

    /// Freezes the database and keeps it as the turn's checkpoint: its credentials stop working
    /// and their sessions end, and it is kept until `keep_s` from now. `Err` says why it could not
    /// be.
    pub(super) async fn checkpoint(&self, database: &Database, keep_s: u32) -> Result<ResourceReap, String> {
        self.databases.freeze(&database.token).await.map_err(|error| self.emitter.scrub(&error.to_string()))?;
        let keep_until_unix_ms = (self.clock.now_ms() + u64::from(keep_s) * 1000).min(self.checkpoint_limit_unix_ms());
        self.emitter.emit(EventBody::DatabaseCheckpointed { keep_until_unix_ms });
        Ok(ResourceReap {
            id: database.name.clone(),
            state: ReapState::Checkpointed,
            error: None,
            retry_at_ms: None,
            keep_until_unix_ms: Some(keep_until_unix_ms),
        })
    }

    pub(super) fn checkpoint_limit_unix_ms(&self) -> u64 {
        checkpoint_limit_unix_ms(self.deadline_unix_ms, self.options.max_checkpoint_keep_s)
    }

    /// Uploads the helper (again, so that nothing the code left in its place runs) and a seed's
    /// SQL, runs `python3 db_helper.py …` with the database's URL, and answers its stdout, or its
    /// last words on stderr when it fails.
    async fn run_helper(
        &self,
        sandbox: &SandboxHandle,
        database: &Database,
        helper: Helper<'_>,
        timeout_ms: u64,
    ) -> Result<String, String> {
        let mut env = vec![("PG_URL".to_owned(), database.connection_url.clone())];
        // Seed and summary are not isolated (`-I`): the local template finds psycopg through
        // `PYTHONPATH`. The sandbox is the tenant's to arrange in any case (its shell profile, its
        // files), which is why what they print is not trusted. The copy needs no psycopg, and
        // runs before anything of the caller's is in the sandbox (`provision.rs`).
        let (seed, command) = match helper {
            Helper::Seed(seed) => (Some(seed), format!("python3 {HELPER_PATH} seed {SEED_PATH}")),
            Helper::Summary => (None, format!("python3 {HELPER_PATH} summary")),
            Helper::Copy { source_url } => {
                env.push((SOURCE_URL_ENV.to_owned(), source_url));
                (None, format!("python3 -I {HELPER_PATH} copy"))
            }
        };
        let work = async move {
            let mut uploads = vec![(HELPER_PATH, HELPER)];
            uploads.extend(seed.map(|seed| (SEED_PATH, seed)));
            let uploads = uploads.into_iter().map(|(path, content)| async move {
                let bytes = Bytes::copy_from_slice(content.as_bytes());
                self.sandboxes.upload(sandbox, path, bytes).await.map_err(|e| format!("{path}: {e}"))
            });
            future::try_join_all(uploads).await?;
            let process = ProcessRequest { command, env, cwd: "/tmp".to_owned(), timeout_ms };
            let mut events = self.sandboxes.start(sandbox, process).await.map_err(|e| e.to_string())?;
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            while let Some(event) = events.next().await {
                match event.map_err(|e| e.to_string())? {
                    ProcessEvent::Started { .. } => {}
                    ProcessEvent::Stdout(bytes) => {
                        stdout.extend_from_slice(&bytes);
                        if stdout.len() > HELPER_STDOUT_BYTES {
                            return Err(format!("it printed more than {HELPER_STDOUT_BYTES} bytes"));
                        }
                    }
                    ProcessEvent::Stderr(bytes) => {
                        stderr.extend_from_slice(&bytes);
                        let excess = stderr.len().saturating_sub(HELPER_STDERR_BYTES);
                        stderr.drain(..excess);
                    }
                    ProcessEvent::Exited { exit_code: 0 } => return Ok(String::from_utf8_lossy(&stdout).into_owned()),
                    ProcessEvent::Exited { exit_code } => {
                        let said = String::from_utf8_lossy(&stderr);
                        let last = said.trim().lines().last().unwrap_or_default().trim().to_owned();
                        return Err(if last.is_empty() { format!("it exited with status {exit_code}") } else { last });
                    }
                }
            }
            Err("its output broke off".to_owned())
        };
        match future::select(pin!(work), self.clock.sleep(timeout_ms)).await {
            Either::Left((result, _)) => result.map_err(|error| self.emitter.scrub(&error)),
            Either::Right(_) => Err(format!("it took longer than {} s", timeout_ms.div_ceil(1000))),
        }
    }
}
