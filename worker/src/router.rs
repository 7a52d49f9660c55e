//! The route table of the edge API. Every request reaches the worker first (`run_worker_first` in
//! `wrangler.toml`): `/v1/*` is the API, anything else the web app, served from the assets with
//! its security headers by [`pages`]. Every answer under `/v1/` passes through [`cors`] on its
//! way out.

use mayfly_core::{ApiError, ErrorCode};
use worker::{Env, Method, Request, Response, Result, Router};

use crate::{checkpoints, config, cors, health, mint, openapi, pages, reaper, reply, turns};

pub(crate) async fn handle(req: Request, env: Env) -> Result<Response> {
    let (method, path) = (req.method(), req.path());
    if !path.starts_with("/v1/") && path != "/v1" && path != "/__scheduled" {
        return pages::serve(req, &env).await;
    }
    // Browsers on the allowed origins (`CORS_ORIGINS`) may call every route; see [`cors`].
    let origin = cors::origin_of(&req);
    let cors_origins = config::cors_origins(&env);
    let allowed_origin = cors::allowed(origin.as_deref(), &cors_origins).map(str::to_owned);
    if method == Method::Options {
        return cors::preflight(&path, origin.as_deref(), allowed_origin.as_deref());
    }
    let response = Router::new()
        .get_async("/v1/health", |req, ctx| async move { health::get(req, &ctx.env).await })
        .get("/v1/openapi.json", |_, _| openapi::get())
        .post_async("/v1/turns", |req, ctx| async move { turns::create(req, &ctx.env).await })
        .get_async("/v1/turns", |req, ctx| async move { turns::list(req, &ctx.env).await })
        .get_async("/v1/reaper", |req, ctx| async move { reaper::get(req, &ctx.env).await })
        .get_async(
            "/v1/turns/:id",
            |req, ctx| async move { turns::forward(req, &ctx.env, ctx.param("id"), "detail").await },
        )
        .delete_async("/v1/turns/:id", |req, ctx| async move {
            turns::forward(req, &ctx.env, ctx.param("id"), "cancel").await
        })
        .get_async("/v1/turns/:id/events", |req, ctx| async move {
            turns::forward(req, &ctx.env, ctx.param("id"), "events").await
        })
        .post_async("/v1/turns/:id/keep", |req, ctx| async move {
            turns::forward(req, &ctx.env, ctx.param("id"), "keep").await
        })
        .get_async("/v1/turns/:id/checkpoint", |req, ctx| async move {
            checkpoints::route(req, &ctx.env, ctx.param("id")).await
        })
        .post_async("/v1/turns/:id/checkpoint", |req, ctx| async move {
            checkpoints::route(req, &ctx.env, ctx.param("id")).await
        })
        .delete_async("/v1/turns/:id/checkpoint", |req, ctx| async move {
            checkpoints::route(req, &ctx.env, ctx.param("id")).await
        })
        .post_async("/v1/tokens", |req, ctx| async move { mint::create(req, &ctx.env).await })
        .or_else_any_method("/v1/*rest", |req, _| reply::no_route(&req))
        .run(req, env)
        .await;
    // A handler's own failure (storage, a Durable Object that did not answer) would otherwise
    // reach the client as the runtime's plain-text 500; the API answers every error in one shape.
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            worker::console_error!("{method} {path}: {err}");
            reply::error(&ApiError::new(ErrorCode::Internal, "the request failed inside mayfly"))?
        }
    };
    // The router itself answers a known path asked with another method, in plain text.
    let response = if response.status_code() == 405 { reply::method_not_allowed(&method, &path)? } else { response };
    cors::with_headers(response, &cors::answer_headers(allowed_origin.as_deref()))
}
