//! The `Ledger` Durable Object: one per tenant (named `tenant:<name>`), listing the tenant's turns
//! newest first, and one named `sweeper` holding the cron's last sweep report.
//!
//! The ledger holds only which turns exist and when they were created; their state, outcome and
//! per-resource reap state are read from each turn's own object when listed, so there is one
//! source of truth and nothing to keep in step. It is also where a tenant's turns are admitted:
//! a tenant may have at most `MAX_TURNS_PER_TENANT` turns running at once, counted here, so that
//! one tenant cannot take every sandbox and database the providers will give. A turn counts as
//! running from its admission until its object says it finished, or — should the object never
//! say so — until its deadline and slack have passed.
//!
//! Storage keys: `turn:<created ms, 13 digits>:<turn id>` (value: the turn id), `id:<turn id>` (the
//! tenant owns the turn), `active:<turn id>` (an [`Active`] turn) and `sweep` (the last
//! [`SweepReport`] as JSON).

use mayfly_core::SweepReport;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, Date, DurableObject, Env, Headers, ListOptions, Method, Request, RequestInit, Response, Result,
    State, Stub,
};

/// The Durable Object binding of the ledgers (`wrangler.toml`).
const LEDGER_BINDING: &str = "LEDGER";
/// How many of a tenant's turns `GET /v1/turns` and `GET /v1/reaper` look at.
pub(crate) const RECENT_TURNS: usize = 50;

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
}

/// The ledger's answer to an [`Admission`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Admitted {
    Yes,
    /// The tenant is at its cap; the soonest a running turn stops counting, in seconds.
    No {
        retry_after_s: u64,
    },
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
                let turn_id: String = req.json().await?;
                storage.delete(&format!("active:{turn_id}")).await?;
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
            (Method::Get, "/turns") => {
                let options = ListOptions::new().prefix("turn:").reverse(true).limit(RECENT_TURNS);
                let map = storage.list_with_options(options).await?;
                let mut ids = Vec::new();
                for value in map.values() {
                    if let Some(id) = value?.as_string() {
                        ids.push(id);
                    }
                }
                Response::from_json(&ids)
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
    /// Counts the tenant's running turns (forgetting those past their time) and, below the cap,
    /// records and counts the new one. The object handles one request at a time, so two
    /// admissions cannot both take the last place.
    async fn admit(&self, admission: Admission) -> Result<Admitted> {
        let storage = self.state.storage();
        let now = Date::now().as_millis();
        let running = storage.list_with_options(ListOptions::new().prefix("active:")).await?;
        let mut soonest = u64::MAX;
        let mut count = 0;
        for value in running.values() {
            let Some(json) = value?.as_string() else { continue };
            let active: Active = serde_json::from_str(&json)?;
            if active.until_unix_ms <= now {
                storage.delete(&format!("active:{}", active.turn_id)).await?;
            } else {
                count += 1;
                soonest = soonest.min(active.until_unix_ms);
            }
        }
        if count >= admission.max_running {
            return Ok(Admitted::No { retry_after_s: soonest.saturating_sub(now).div_ceil(1000).max(1) });
        }
        let entry = &admission.entry;
        let active = Active { turn_id: entry.turn_id.clone(), until_unix_ms: admission.running_until_unix_ms };
        storage.put(&format!("active:{}", entry.turn_id), serde_json::to_string(&active)?).await?;
        storage.put(&format!("id:{}", entry.turn_id), "1").await?;
        storage.put(&format!("turn:{:013}:{}", entry.created_unix_ms, entry.turn_id), entry.turn_id.clone()).await?;
        Ok(Admitted::Yes)
    }
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

/// The turn no longer counts against its tenant's cap.
pub(crate) async fn finished(env: &Env, tenant: &str, turn_id: &str) -> Result<()> {
    call(tenant_ledger(env, tenant)?, Method::Post, "/finished", Some(serde_json::to_string(turn_id)?)).await?;
    Ok(())
}

/// Which of `turn_ids` are the tenant's.
pub(crate) async fn owned(env: &Env, tenant: &str, turn_ids: &[String]) -> Result<Vec<String>> {
    call(tenant_ledger(env, tenant)?, Method::Post, "/owned", Some(serde_json::to_string(turn_ids)?))
        .await?
        .json()
        .await
}

/// The tenant's most recent turn ids, newest first.
pub(crate) async fn recent(env: &Env, tenant: &str) -> Result<Vec<String>> {
    call(tenant_ledger(env, tenant)?, Method::Get, "/turns", None).await?.json().await
}

pub(crate) async fn store_sweep(env: &Env, report: &SweepReport) -> Result<()> {
    call(stub(env, "sweeper")?, Method::Post, "/sweep", Some(serde_json::to_string(report)?)).await?;
    Ok(())
}

pub(crate) async fn last_sweep(env: &Env) -> Result<Option<SweepReport>> {
    call(stub(env, "sweeper")?, Method::Get, "/sweep", None).await?.json().await
}
