//! The registry of live sandboxes, their lifetimes and their processes.
//!
//! A sandbox leaves the registry *before* it is torn down, so from the first moment of a kill
//! (by `DELETE`, by its `endAt`, or by shutdown) every request sees it as gone. Teardown kills each
//! process (one `SIGKILL` to its bwrap ends the whole pid namespace, see `jail`), waits until every
//! one has been reaped, and only then unmounts and removes the directory.
//!
//! A process's output is fanned out by its `Proc` (`process.rs`); an exited process stays listed
//! for 30 s so a late `Connect` still learns how it ended.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mayfly_core::wire::e2b::{DataEvent, EndEvent, ProcessConfig, ProcessEvent, StringMap, B64};
use tokio::sync::mpsc;

use crate::error::SandboxError;
use crate::jail::{Jail, JailHost, JailSpec, JailUser, Template};

use crate::process::{end_event, pump, Proc};
use crate::Config;

/// How long an exited process stays listed for `Connect`.
const RETAIN_ENDED: Duration = Duration::from_secs(30);

/// One live sandbox.
#[derive(Debug)]
pub(crate) struct Sandbox {
    pub(crate) id: String,
    pub(crate) template: Template,
    pub(crate) metadata: StringMap,
    pub(crate) access_token: Option<String>,
    pub(crate) started_at: SystemTime,
    end_at: Mutex<SystemTime>,
    /// Wakes the timer when `end_at` moves.
    end_moved: tokio::sync::Notify,
    jail: tokio::sync::Mutex<Jail>,
    pub(crate) procs: Mutex<Vec<Arc<Proc>>>,
    next_pid: AtomicU32,
    /// Set before a kill reaches the processes, so their streams know the end is the sandbox's.
    gone: AtomicBool,
}

impl Sandbox {
    /// Whether the sandbox is being (or has been) torn down.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    pub(crate) fn end_at(&self) -> SystemTime {
        *self.end_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_end_at(&self, at: SystemTime) {
        *self.end_at.lock().unwrap_or_else(|e| e.into_inner()) = at;
        self.end_moved.notify_one();
    }

    /// A jailed command (a file-API helper), not registered as a process.
    pub(crate) async fn helper(
        &self,
        user: JailUser,
        argv: &[String],
    ) -> Result<tokio::process::Command, SandboxError> {
        self.jail.lock().await.command(user, user.home(), argv, &[])
    }

    /// Where the sandbox's files are on the host, and the host uid they belong to (as root).
    pub(crate) async fn file_root(&self) -> crate::jail::FileRoot {
        self.jail.lock().await.file_root()
    }

    /// The process matching a selector, ended ones included while retained.
    pub(crate) fn find(&self, sel: &mayfly_core::wire::e2b::ProcessSelector) -> Option<Arc<Proc>> {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs
            .iter()
            .find(|p| match sel {
                mayfly_core::wire::e2b::ProcessSelector::Pid(pid) => p.pid == *pid,
                mayfly_core::wire::e2b::ProcessSelector::Tag(t) => p.tag.as_deref() == Some(t.as_str()),
            })
            .cloned()
    }

    /// Starts a process in the jail. The subscriber is attached before any output is read.
    pub(crate) async fn start(
        self: &Arc<Self>,
        user: JailUser,
        config: ProcessConfig,
        tag: Option<String>,
        stdin: bool,
    ) -> Result<(Arc<Proc>, mpsc::Receiver<ProcessEvent>), SandboxError> {
        let cwd = match config.cwd.as_deref() {
            None | Some("") => user.home().to_owned(),
            Some(c) if c.starts_with('/') => c.to_owned(),
            Some(c) => format!("{}/{}", user.home(), c.trim_start_matches("~/").trim_start_matches('~')),
        };
        let mut argv = vec![config.cmd.clone()];
        argv.extend(config.args.iter().cloned());
        let envs: Vec<(String, String)> = config.envs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (mut cmd, init_report) = self.jail.lock().await.command_with_init_pid(user, &cwd, &argv, &envs)?;
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| SandboxError::Spawn(e.to_string()))?;
        // The only writer now is bwrap's; drop the copy `cmd` holds, or the pipe never ends.
        drop(cmd);
        let init_pid = tokio::spawn(crate::jail::read_init_pid(init_report));

        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let (proc, sub_rx, kill_rx) = Proc::new(pid, tag, config, child.stdin.take());
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).push(proc.clone());

        let (out_tx, mut out_rx) = mpsc::channel::<DataEvent>(16);
        if let Some(mut out) = child.stdout.take() {
            let tx = out_tx.clone();
            tokio::spawn(async move { pump(&mut out, tx, |b| DataEvent::Stdout(B64(b))).await });
        }
        if let Some(mut err) = child.stderr.take() {
            let tx = out_tx.clone();
            tokio::spawn(async move { pump(&mut err, tx, |b| DataEvent::Stderr(B64(b))).await });
        }
        drop(out_tx);

        let waiter = tokio::spawn(crate::jail::wait_signalled(child, kill_rx, init_pid));

        let p = proc.clone();
        let sandbox = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(data) = out_rx.recv().await {
                p.publish(ProcessEvent::Data(data)).await;
            }
            let end = match waiter.await {
                Ok(Ok(status)) => end_event(status),
                Ok(Err(e)) => EndEvent {
                    exit_code: -1,
                    status: "unknown".into(),
                    error: Some(e.to_string()),
                    ..Default::default()
                },
                Err(e) => EndEvent {
                    exit_code: -1,
                    status: "unknown".into(),
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            };
            p.finish(end).await;
            tokio::time::sleep(RETAIN_ENDED).await;
            if let Some(sb) = sandbox.upgrade() {
                sb.procs.lock().unwrap_or_else(|e| e.into_inner()).retain(|q| !Arc::ptr_eq(q, &p));
            }
        });
        Ok((proc, sub_rx))
    }
}

/// Why a sandbox could not be created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    #[error("you have reached the maximum number of concurrent E2B sandboxes ({0}). If you need more, please visit 'https://e2b.dev/docs/billing'")]
    Capacity(usize),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// All live sandboxes.
#[derive(Debug)]
pub struct Sandboxes {
    config: Arc<Config>,
    host: Arc<JailHost>,
    /// What the `mayfly` template mounts at `/opt/venv`.
    python_venv: Option<std::path::PathBuf>,
    etc: std::path::PathBuf,
    map: Mutex<HashMap<String, Arc<Sandbox>>>,
    /// Reserved slots, so concurrent creates cannot overshoot `max_sandboxes`.
    reserved: Mutex<usize>,
    next_uid: AtomicU32,
}

/// What create needs besides the config.
#[derive(Debug)]
pub(crate) struct CreateSpec {
    pub(crate) template: Template,
    pub(crate) timeout: Duration,
    pub(crate) env_vars: StringMap,
    pub(crate) metadata: StringMap,
    pub(crate) secure: bool,
}

fn random_id(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

impl Sandboxes {
    pub(crate) fn new(config: Arc<Config>, host: Arc<JailHost>, templates: &crate::jail::Templates) -> Sandboxes {
        Sandboxes {
            config,
            host,
            python_venv: templates.python_venv.clone(),
            etc: templates.etc.clone(),
            map: Mutex::new(HashMap::new()),
            reserved: Mutex::new(0),
            next_uid: AtomicU32::new(0),
        }
    }

    /// A live sandbox's CPU limit and how often it was held to it; `None` without cgroups (not
    /// root) or when there is no such sandbox.
    pub fn cpu_stats(&self, sandbox_id: &str) -> Option<crate::CpuStats> {
        self.get(sandbox_id)?;
        self.host.cpu_stats(sandbox_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Sandbox>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Sandbox>> {
        self.lock().get(id).cloned()
    }

    /// Live sandboxes, newest first.
    pub(crate) fn all(&self) -> Vec<Arc<Sandbox>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| a.id.cmp(&b.id)));
        v
    }

    /// How many sandboxes are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no sandbox is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) async fn create(self: &Arc<Self>, spec: CreateSpec) -> Result<Arc<Sandbox>, CreateError> {
        {
            let mut r = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
            if *r >= self.config.max_sandboxes {
                return Err(CreateError::Capacity(self.config.max_sandboxes));
            }
            *r += 1;
        }
        let res = self.create_reserved(spec).await;
        if res.is_err() {
            *self.reserved.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        }
        res
    }

    async fn create_reserved(self: &Arc<Self>, spec: CreateSpec) -> Result<Arc<Sandbox>, CreateError> {
        let id = format!("i{}", random_id(19));
        let host_uid = self
            .host
            .root
            .then(|| self.config.jail_uid_base + self.next_uid.fetch_add(1, Ordering::Relaxed) % 1_000_000);
        let venv = match spec.template {
            Template::Mayfly => self.python_venv.clone(),
            Template::Base => None,
        };
        let env: Vec<(String, String)> = spec.env_vars.into_iter().collect();
        let jail_spec = JailSpec {
            dir: self.config.state_dir.join(&id),
            hostname: &id,
            host_uid,
            venv,
            etc: self.etc.clone(),
            limits: self.config.limits,
            network: &self.config.network,
            env_vars: &env,
        };
        let jail = Jail::create(jail_spec, self.host.clone()).await?;
        let now = SystemTime::now();
        let sandbox = Arc::new(Sandbox {
            id: id.clone(),
            template: spec.template,
            metadata: spec.metadata,
            access_token: spec.secure.then(|| random_id(32)),
            started_at: now,
            end_at: Mutex::new(now + spec.timeout),
            end_moved: tokio::sync::Notify::new(),
            jail: tokio::sync::Mutex::new(jail),
            procs: Mutex::new(Vec::new()),
            next_pid: AtomicU32::new(1),
            gone: AtomicBool::new(false),
        });
        self.lock().insert(id.clone(), sandbox.clone());
        tracing::info!(sandbox = %id, template = spec.template.name(), "sandbox created");
        let this = Arc::downgrade(self);
        let sb = Arc::downgrade(&sandbox);
        tokio::spawn(async move { expire(this, sb).await });
        Ok(sandbox)
    }

    /// Removes and tears down a sandbox; `false` if it was not live.
    pub(crate) async fn kill(&self, id: &str, why: &str) -> bool {
        let Some(sandbox) = self.lock().remove(id) else {
            return false;
        };
        *self.reserved.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        sandbox.gone.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let procs: Vec<_> = sandbox.procs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for p in &procs {
            p.kill();
        }
        for p in &procs {
            p.wait_ended().await;
        }
        sandbox.jail.lock().await.destroy().await;
        sandbox.end_moved.notify_one();
        tracing::info!(sandbox = %id, reason = why, ms = started.elapsed().as_millis() as u64, "sandbox killed");
        true
    }

    /// Kills every live sandbox (shutdown).
    pub async fn kill_all(&self) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        futures_util::future::join_all(ids.iter().map(|id| self.kill(id, "shutdown"))).await;
    }
}

/// Kills the sandbox at its `endAt`, re-arming whenever the timeout moves.
async fn expire(this: std::sync::Weak<Sandboxes>, sb: std::sync::Weak<Sandbox>) {
    loop {
        let Some(sandbox) = sb.upgrade() else { return };
        let end = sandbox.end_at();
        let wait = end.duration_since(SystemTime::now()).unwrap_or_default();
        if wait.is_zero() {
            let id = sandbox.id.clone();
            drop(sandbox);
            if let Some(all) = this.upgrade() {
                all.kill(&id, "timeout").await;
            }
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = sandbox.end_moved.notified() => {}
        }
        // A killed sandbox is no longer in the registry; stop watching it.
        match this.upgrade() {
            Some(all) if all.get(&sandbox.id).is_some() => {}
            _ => return,
        }
    }
}
