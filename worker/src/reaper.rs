//! The reaper: `GET /v1/reaper` (the tenant's leases that are alive, overdue or failed, and what
//! the last sweep did to the tenant's turns) and the cron trigger that runs core's [`sweep`] over
//! the providers. The sweep itself sees every tenant's resources; a tenant is shown only the part
//! of its report that concerns turns its ledger lists.

use mayfly_core::providers::sweep::sweep;
use mayfly_core::{LeaseView, ReapState, ReaperStatus};
use worker::{Date, Env, Request, Response, Result};

use crate::config::Config;
use crate::{auth, ledger, reply, turns};

/// `GET /v1/reaper`.
pub(crate) async fn get(req: Request, env: &Env) -> Result<Response> {
    let tenant = match auth::tenant(&req, env) {
        Ok(tenant) => tenant,
        Err(err) => return reply::error(&err),
    };
    let now = Date::now().as_millis();
    let mut status = ReaperStatus::default();
    for detail in turns::recent_details(env, &tenant).await? {
        for resource in detail.resources {
            let view = LeaseView {
                turn_id: detail.turn_id.clone(),
                resource: resource.resource,
                id: resource.id,
                reap: resource.reap,
                deadline_unix_ms: resource.deadline_unix_ms,
            };
            match view.reap {
                ReapState::Reaped | ReapState::Kept => {}
                ReapState::Failed => status.failed.push(view),
                ReapState::Live | ReapState::Reaping | ReapState::Checkpointed if view.deadline_unix_ms < now => {
                    status.overdue.push(view);
                }
                ReapState::Checkpointed => status.checkpoints.push(view),
                ReapState::Live | ReapState::Reaping => status.alive += 1,
            }
        }
    }
    if let Some(report) = ledger::last_sweep(env).await? {
        let owned = ledger::owned(env, &tenant.0, &report.turn_ids()).await?;
        status.last_sweep = Some(report.view_for(|turn_id| owned.iter().any(|own| own == turn_id)));
    }
    Response::from_json(&status)
}

/// The cron trigger: sweeps the providers and stores the report for `GET /v1/reaper`.
pub(crate) async fn scheduled(env: &Env) -> Result<()> {
    let config = Config::from_env(env);
    let providers = config.providers();
    let report = sweep(&providers, Date::now().as_millis(), config.sweep_grace_ms).await;
    ledger::store_sweep(env, &report).await
}
