//! Error answers in the edge API's one shape, `{"error": {"code", "message"}}`.

use mayfly_core::{ApiError, ErrorCode};
use worker::{Method, Request, Response, Result};

/// The answer for an error the client can act on.
pub(crate) fn error(err: &ApiError) -> Result<Response> {
    Ok(Response::from_json(&err.clone().into_body())?.with_status(err.status()))
}

/// The answer for a limit the caller is at (`429`), with when to try again.
pub(crate) fn too_many(err: &ApiError, retry_after_s: u64) -> Result<Response> {
    let response = error(err)?;
    let headers = response.headers().clone();
    headers.set("Retry-After", &retry_after_s.to_string())?;
    Ok(response.with_headers(headers))
}

/// The answer for a path under `/v1/` that has no route.
pub(crate) fn no_route(req: &Request) -> Result<Response> {
    let path = req.path();
    error(&ApiError::new(ErrorCode::NotFound, format!("no route for {} {path}", req.method())))
}

/// The answer for a path that has routes, but none for this method.
pub(crate) fn method_not_allowed(method: &Method, path: &str) -> Result<Response> {
    error(&ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {path}")))
}
