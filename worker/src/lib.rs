//! mayfly's Cloudflare Worker: the edge API under `/v1/` and the web app's assets.
//!
//! The entry point is deliberately tiny: it hands every request to the route table in
//! [`router`]. Each feature lives in a module of its own; only this crate knows `worker::*`.

mod auth;
mod body;
mod checkpoints;
mod clock;
mod config;
mod cors;
mod fetch_client;
mod gated;
mod health;
mod idempotency;
mod ledger;
mod mint;
mod openapi;
mod pages;
mod paging;
mod reaper;
mod reply;
mod router;
mod tokens;
mod turn_object;
mod turns;

use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    router::handle(req, env).await
}

/// The cron trigger (`[triggers] crons` in `wrangler.toml`): the reaper's sweep. A failure is
/// logged; the next run sweeps again.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(err) = reaper::scheduled(&env).await {
        worker::console_error!("reaper: the sweep report was not stored: {err}");
    }
}
