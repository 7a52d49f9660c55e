//! mayfly's Cloudflare Worker: the edge API under `/v1/` and the web app's assets.
//!
//! The entry point is deliberately tiny: it hands every request to the route table in
//! [`router`]. Each feature lives in a module of its own; only this crate knows `worker::*`.

mod auth;
mod clock;
mod config;
mod fetch_client;
mod health;
mod reply;
mod router;
mod turn_object;
mod turns;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    router::handle(req, env).await
}
