//! The edge API's part in sessions of turns (`docs/checkpoints.md`): a fork's checkpoint looked up
//! in its parent's object before the fork is admitted, and `/v1/turns/{id}/checkpoint` shown,
//! extended and released through the turn's object.

use mayfly_core::turn::{ForkSource, TurnId};
use mayfly_core::{ApiError, ErrorBody, ErrorCode};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Result};

use crate::auth::{self, Tenant};
use crate::reply;
use crate::turn_object::{stub, TENANT_HEADER};

/// The largest body `POST /v1/turns/{id}/checkpoint` takes.
const MAX_BODY_BYTES: usize = 1024;

/// A fork copies a checkpoint, which may hold what any of the tenant's turns left: a turn token,
/// which a browser holds, may not read that, so a fork takes the key. `Err` is the `403` to answer.
pub(crate) fn fork_allowed(req: &Request, env: &Env) -> std::result::Result<(), ApiError> {
    auth::tenant(req, env).map(drop).map_err(|err| match err.code {
        ErrorCode::Forbidden => ApiError::new(
            ErrorCode::Forbidden,
            "database.from takes the tenant's API key: a turn token may not copy the tenant's checkpoints",
        ),
        _ => err,
    })
}

/// The checkpoint `parent` keeps for `tenant`, for a fork to start from: an `ApiError` to answer
/// when there is none — `404` for a turn that does not exist or is another tenant's (they look
/// the same), `409` for one whose checkpoint is not live. The checkpoint is then held for the
/// fork's `timeout_s` at least, the longest the fork may take to copy it.
pub(crate) async fn fork_source(
    env: &Env,
    tenant: &Tenant,
    parent: &TurnId,
    timeout_s: u32,
) -> Result<std::result::Result<ForkSource, ApiError>> {
    let path = format!("/fork-source?hold_s={timeout_s}");
    let mut answer = call(env, tenant, parent, Method::Post, &path, None).await?;
    if answer.status_code() == 200 {
        return Ok(Ok(answer.json().await?));
    }
    let status = answer.status_code();
    let said = answer.json::<ErrorBody>().await.ok();
    Ok(Err(match (status, said) {
        (404, _) => ApiError::new(
            ErrorCode::NotFound,
            format!("database.from: no turn {parent} with a checkpoint (turns of other tenants cannot be forked)"),
        ),
        (409, Some(body)) => ApiError::new(ErrorCode::Conflict, format!("database.from: {}", body.error.message)),
        (status, _) => {
            worker::console_error!("checkpoints: fork source of {parent}: {status}");
            ApiError::new(ErrorCode::Internal, "the checkpoint could not be read")
        }
    }))
}

/// `GET`, `POST` (extend) and `DELETE` (release) `/v1/turns/{id}/checkpoint`. Reading takes a
/// turn token too, as a turn's detail does; keeping a database longer or reaping it takes the key
/// (`docs/security.md`).
pub(crate) async fn route(mut req: Request, env: &Env, id: Option<&String>) -> Result<Response> {
    let authenticated =
        if req.method() == Method::Get { auth::turn_tenant(&req, env) } else { auth::tenant(&req, env) };
    let tenant = match authenticated {
        Ok(tenant) => tenant,
        Err(err) => return reply::error(&err),
    };
    let Some(turn_id) = id.and_then(|id| TurnId::new(id.clone()).ok()) else {
        return reply::error(&ApiError::new(ErrorCode::NotFound, "no such turn"));
    };
    let method = req.method();
    let body = match method {
        Method::Post => match crate::body::read_limited(&mut req, MAX_BODY_BYTES).await {
            Ok(body) => Some(body),
            Err(err) => return reply::error(&err),
        },
        _ => None,
    };
    call(env, &tenant, &turn_id, method, "/checkpoint", body).await
}

async fn call(
    env: &Env,
    tenant: &Tenant,
    turn_id: &TurnId,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Response> {
    let headers = Headers::new();
    headers.set(TENANT_HEADER, &tenant.0)?;
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers).with_body(body.map(|body| js_body(&body)));
    stub(env, turn_id.as_str())?
        .fetch_with_request(Request::new_with_init(&format!("https://turn{path}"), &init)?)
        .await
}

fn js_body(body: &[u8]) -> worker::wasm_bindgen::JsValue {
    worker::js_sys::Uint8Array::from(body).into()
}
