//! The `Ledger` Durable Object: one per tenant (named `tenant:<name>`), listing the tenant's turns
//! newest first, and one named `sweeper` holding the cron's last sweep report.
//!
//! The ledger holds only which turns exist and when they were created; their state, outcome and
//! per-resource reap state are read from each turn's own object when listed, so there is one
//! source of truth and nothing to keep in step. It is also where a tenant's turns are admitted:
//! a tenant may have at most `MAX_TURNS_PER_TENANT` turns running at once, counted here, so that
//! one tenant cannot take every sandbox and database the providers will give. A turn counts as
//! running from its admission until its object says it finished, or — should the object never
//! say so — until its deadline and slack have passed. And it is where an `Idempotency-Key` is
//! looked up and remembered, in the same step as the admission: the object handles one request at
//! a time, so two requests with one key cannot both start a turn.
//!
//! The rooms: [`history`] (the turns, the newest kept, listed a page at a time) and [`keys`] (the
//! idempotency keys, bounded in time and number; how many of each, `MAX_TURN_HISTORY` and
//! `MAX_IDEMPOTENCY_KEYS`, 1,000 by default). Storage keys beyond
//! theirs: `active:<turn id>` (an [`Active`] turn), `checkpoint:<turn id>` (a checkpoint that
//! holds one of the tenant's `MAX_CHECKPOINTS_PER_TENANT` places, from the admission of the turn
//! that asks for it until it is reaped or its limit passes) and `sweep` (the last [`SweepReport`]
//! as JSON).

mod history;
mod keys;

use mayfly_core::SweepReport;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, js_sys, Date, DurableObject, Env, Headers, ListOptions, Method, Request, RequestInit, Response,
    Result, State, Stub,
};

use crate::paging::{Cursor, PageQuery};

/// The Durable Object binding of the ledgers (`wrangler.toml`).
const LEDGER_BINDING: &str = "LEDGER";

/// One turn as the ledger records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) turn_id: String,
    pub(crate) created_unix_ms: u64,
}

/// A turn asking to be admitted: recorded and counted as running unless the tenant is at its cap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Admission {
    pub(crate) entry: Entry,
    /// When the turn stops counting even if its object never says it finished.
    pub(crate) running_until_unix_ms: u64,
    pub(crate) max_running: usize,
    /// How many turns and keys the ledger keeps, its newest; it forgets the older ones here.
    pub(crate) history_kept: u64,
    pub(crate) keys_kept: u64,
    /// The request's `Idempotency-Key` and the fingerprint of its body, when it sent a key.
    #[serde(default)]
    pub(crate) idempotency: Option<Fingerprint>,
    /// For a turn that asks for a checkpoint: until when its checkpoint may hold a place among
    /// the tenant's, should its object never say it was reaped (its limit).
    #[serde(default)]
    pub(crate) checkpoint_until_unix_ms: Option<u64>,
    /// How many checkpoints the tenant may keep at once, those of running turns included.
    #[serde(default)]
    pub(crate) max_checkpoints: usize,
}

/// A turn's object telling its ledger that the turn no longer runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Finished {
    pub(crate) turn_id: String,
    /// Whether the turn still keeps a checkpoint, which goes on holding its place until reaped.
    pub(crate) keeps_checkpoint: bool,
}

/// An `Idempotency-Key` and the SHA-256 of the body it came with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub(crate) key: String,
    pub(crate) body_sha256: String,
}

/// The ledger's answer to an [`Admission`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Admitted {
    Yes,
    /// The tenant is at its cap; the soonest a running turn stops counting, in seconds.
    No {
        retry_after_s: u64,
    },
    /// The key started a turn before, with the same body: that turn, which may still be starting.
    Again {
        turn_id: String,
        created_unix_ms: u64,
    },
    /// The key started a turn before, with another body.
    KeyReused,
    /// The tenant keeps as many checkpoints as it may; the soonest one runs out, in seconds.
    TooManyCheckpoints {
        retry_after_s: u64,
    },
}

/// One page of the tenant's turns, as [`history`] lists them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Page {
    pub(crate) turn_ids: Vec<String>,
    pub(crate) next: Option<Cursor>,
}

/// A running turn as the ledger counts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Active {
    turn_id: String,
    until_unix_ms: u64,
}

// `#[durable_object]` exports the type to JavaScript, which needs it `pub`.
#[allow(unreachable_pub)]
#[durable_object]
#[derive(Debug)]
pub struct Ledger {
    state: State,
}

impl DurableObject for Ledger {
    fn new(state: State, _env: Env) -> Self {
        Ledger { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/admit") => {
                let admission: Admission = req.json().await?;
                Response::from_json(&self.admit(admission).await?)
            }
            (Method::Post, "/finished") => {
                let finished: Finished = req.json().await?;
                let turn_id = &finished.turn_id;
                let mut done = vec![format!("active:{turn_id}")];
                if !finished.keeps_checkpoint {
                    done.push(format!("checkpoint:{turn_id}"));
                }
                crate::gated::delete(&storage, &done);
                Response::empty()
            }
            (Method::Post, "/owned") => {
                let ids: Vec<String> = req.json().await?;
                let keys: Vec<String> = ids.iter().map(|id| format!("id:{id}")).collect();
                // One read for all of them; the map holds the keys that exist.
                let found = storage.get_multiple(keys.clone()).await?;
                let owned: Vec<&String> =
                    ids.iter().zip(&keys).filter(|(_, key)| found.has(&(*key).into())).map(|(id, _)| id).collect();
                Response::from_json(&owned)
            }
            (Method::Post, "/turns") => {
                let query: PageQuery = req.json().await?;
                let (turn_ids, next) = history::page(&storage, &query).await?;
                Response::from_json(&Page { turn_ids, next })
            }
            (Method::Post, "/sweep") => {
                let report: SweepReport = req.json().await?;
                storage.put("sweep", serde_json::to_string(&report)?).await?;
                Response::empty()
            }
            (Method::Get, "/sweep") => {
                let report = match storage.get::<String>("sweep").await? {
                    Some(json) => Some(serde_json::from_str::<SweepReport>(&json)?),
                    None => None,
                };
                Response::from_json(&report)
            }
            _ => Response::error("no such ledger operation", 404),
        }
    }
}

impl Ledger {
    /// Answers a key it knows with the turn the key started; otherwise counts the tenant's running
    /// turns (forgetting those past their time) and, below the cap, records and counts the new one
    /// and remembers its key. The object handles one request at a time, so two admissions cannot
    /// both take the last place, nor both start a turn for one key.
    async fn admit(&self, admission: Admission) -> Result<Admitted> {
        let storage = self.state.storage();
        let now = Date::now().as_millis();
        if let Some(fingerprint) = &admission.idempotency {
            match keys::recall(&storage, &fingerprint.key, now).await? {
                Some(known) if known.body_sha256 == fingerprint.body_sha256 => {
                    return Ok(Admitted::Again { turn_id: known.turn_id, created_unix_ms: known.created_unix_ms });
                }
                Some(_) => return Ok(Admitted::KeyReused),
                None => {}
            }
        }
        let (count, soonest) = count_current(&storage, "active:", now).await?;
        if count >= admission.max_running {
            return Ok(Admitted::No { retry_after_s: soonest.saturating_sub(now).div_ceil(1000).max(1) });
        }
        let entry = &admission.entry;
        if let Some(until_unix_ms) = admission.checkpoint_until_unix_ms {
            let (count, soonest) = count_current(&storage, "checkpoint:", now).await?;
            if count >= admission.max_checkpoints {
                return Ok(Admitted::TooManyCheckpoints {
                    retry_after_s: soonest.saturating_sub(now).div_ceil(1000).max(1),
                });
            }
            let held = Active { turn_id: entry.turn_id.clone(), until_unix_ms };
            crate::gated::put(&storage, &format!("checkpoint:{}", entry.turn_id), &serde_json::to_string(&held)?);
        }
        let active = Active { turn_id: entry.turn_id.clone(), until_unix_ms: admission.running_until_unix_ms };
        crate::gated::put(&storage, &format!("active:{}", entry.turn_id), &serde_json::to_string(&active)?);
        history::record(&storage, entry, admission.history_kept).await?;
        if let Some(fingerprint) = &admission.idempotency {
            keys::remember(&storage, fingerprint, entry, admission.keys_kept, now).await?;
        }
        Ok(Admitted::Yes)
    }
}

/// How many of the places under `prefix` (running turns, or kept checkpoints) are still held at
/// `now`, and when the soonest of them runs out; those past their time are forgotten here.
async fn count_current(storage: &worker::Storage, prefix: &str, now: u64) -> Result<(usize, u64)> {
    let held = storage.list_with_options(ListOptions::new().prefix(prefix)).await?;
    let mut soonest = u64::MAX;
    let mut count = 0;
    for value in held.values() {
        let Some(json) = value?.as_string() else { continue };
        let place: Active = serde_json::from_str(&json)?;
        if place.until_unix_ms <= now {
            crate::gated::delete(storage, &[format!("{prefix}{}", place.turn_id)]);
        } else {
            count += 1;
            soonest = soonest.min(place.until_unix_ms);
        }
    }
    Ok((count, soonest))
}

/// A listing's keys and values, for the values that are strings.
fn string_entries(map: &js_sys::Map) -> Result<Vec<(String, String)>> {
    let mut entries = Vec::new();
    for entry in map.entries() {
        let entry = js_sys::Array::from(&entry?);
        if let (Some(key), Some(value)) = (entry.get(0).as_string(), entry.get(1).as_string()) {
            entries.push((key, value));
        }
    }
    Ok(entries)
}

fn stub(env: &Env, name: &str) -> Result<Stub> {
    env.durable_object(LEDGER_BINDING)?.id_from_name(name)?.get_stub()
}

fn tenant_ledger(env: &Env, tenant: &str) -> Result<Stub> {
    stub(env, &format!("tenant:{tenant}"))
}

async fn call(stub: Stub, method: Method, path: &str, body: Option<String>) -> Result<Response> {
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    init.with_method(method).with_headers(headers).with_body(body.map(Into::into));
    let mut answer = stub.fetch_with_request(Request::new_with_init(&format!("https://ledger{path}"), &init)?).await?;
    if answer.status_code() >= 300 {
        let text = answer.text().await.unwrap_or_default();
        return Err(worker::Error::RustError(format!("ledger {path}: {} {text}", answer.status_code())));
    }
    Ok(answer)
}

/// Adds a turn to its tenant's ledger, counted as running, unless the tenant is at its cap.
pub(crate) async fn admit(env: &Env, tenant: &str, admission: &Admission) -> Result<Admitted> {
    call(tenant_ledger(env, tenant)?, Method::Post, "/admit", Some(serde_json::to_string(admission)?))
        .await?
        .json()
        .await
}

/// The turn no longer counts against its tenant's cap; nor, unless it still keeps one, does its
/// checkpoint.
pub(crate) async fn finished(env: &Env, tenant: &str, turn_id: &str, keeps_checkpoint: bool) -> Result<()> {
    let finished = Finished { turn_id: turn_id.to_owned(), keeps_checkpoint };
    call(tenant_ledger(env, tenant)?, Method::Post, "/finished", Some(serde_json::to_string(&finished)?)).await?;
    Ok(())
}

/// Which of `turn_ids` are the tenant's.
pub(crate) async fn owned(env: &Env, tenant: &str, turn_ids: &[String]) -> Result<Vec<String>> {
    call(tenant_ledger(env, tenant)?, Method::Post, "/owned", Some(serde_json::to_string(turn_ids)?))
        .await?
        .json()
        .await
}

/// One page of the tenant's turn ids, newest first.
pub(crate) async fn page(env: &Env, tenant: &str, query: &PageQuery) -> Result<Page> {
    call(tenant_ledger(env, tenant)?, Method::Post, "/turns", Some(serde_json::to_string(query)?)).await?.json().await
}

pub(crate) async fn store_sweep(env: &Env, report: &SweepReport) -> Result<()> {
    call(stub(env, "sweeper")?, Method::Post, "/sweep", Some(serde_json::to_string(report)?)).await?;
    Ok(())
}

pub(crate) async fn last_sweep(env: &Env) -> Result<Option<SweepReport>> {
    call(stub(env, "sweeper")?, Method::Get, "/sweep", None).await?.json().await
}
