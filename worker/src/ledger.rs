//! The `Ledger` Durable Object: one per tenant (named `tenant:<name>`), listing the tenant's turns
//! newest first, and one named `sweeper` holding the cron's last sweep report.
//!
//! The ledger holds only which turns exist and when they were created; their state, outcome and
//! per-resource reap state are read from each turn's own object when listed, so there is one
//! source of truth and nothing to keep in step.
//!
//! Storage keys: `turn:<created ms, 13 digits>:<turn id>` (value: the turn id) and `sweep` (the last
//! [`SweepReport`] as JSON).

use mayfly_core::SweepReport;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Headers, ListOptions, Method, Request, RequestInit, Response, Result, State,
    Stub,
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
            (Method::Post, "/turns") => {
                let entry: Entry = req.json().await?;
                let key = format!("turn:{:013}:{}", entry.created_unix_ms, entry.turn_id);
                storage.put(&key, entry.turn_id).await?;
                Response::empty()
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

/// Adds a turn to its tenant's ledger.
pub(crate) async fn record(env: &Env, tenant: &str, entry: &Entry) -> Result<()> {
    call(tenant_ledger(env, tenant)?, Method::Post, "/turns", Some(serde_json::to_string(entry)?)).await?;
    Ok(())
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
