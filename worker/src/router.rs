//! The route table of the edge API. The platform serves the web app's assets itself; only
//! `/v1/*` reaches the worker (`run_worker_first` in `wrangler.toml`).

use worker::{Env, Request, Response, Result, Router};

use crate::{health, reply};

pub(crate) async fn handle(req: Request, env: Env) -> Result<Response> {
    Router::new()
        .get("/v1/health", |_, ctx| health::get(&ctx.env))
        .or_else_any_method("/v1/*rest", |req, _| reply::no_route(&req))
        .run(req, env)
        .await
}
