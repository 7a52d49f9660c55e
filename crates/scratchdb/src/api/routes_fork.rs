//! `POST /api/v1/resources/{token}/fork`: scratchdb's own extension, which hosted instanode does not
//! have (docs/protocols/instanode.md §12). It takes `POST /db/new`'s body and checks it the same
//! way, and answers with an owner's create answer, so a client needs nothing new to read it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::auth::owner;
use super::error::{from_service, ApiError};
use super::request::{self, EnvQuery, NewDatabaseBody};
use super::routes_db::{answer, no_dedicated};
use super::routes_resources::check_token;
use crate::service::Service;

/// Set on every answer of this route (and, naming itself, of `routes_freeze`'s), errors included:
/// a `404` with it is an unknown source, one without it a server with no fork route, which is how
/// a client knows to fall back.
pub(super) const EXTENSION_HEADER: &str = "x-scratchdb-extension";

pub(super) async fn fork(
    State(svc): State<Service>,
    Path(token): Path<String>,
    Query(q): Query<EnvQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut resp = match fork_database(&svc, &token, q, &headers, &body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(EXTENSION_HEADER, HeaderValue::from_static("fork"));
    resp
}

/// The checks of an owner route, then of a create (in `/db/new`'s order), then the copy.
async fn fork_database(
    svc: &Service,
    token: &str,
    q: EnvQuery,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let owner = owner(svc, headers).await?;
    check_token(token)?;
    let NewDatabaseBody { value, name, env, env_override_reason, wants_dedicated, ignored, .. } =
        request::new_database_body(q.env.as_deref(), body)?;
    if wants_dedicated {
        return Err(no_dedicated());
    }
    let idempotency = request::idempotency(headers, &value, &env, Some(token))?;
    let created =
        svc.fork(&owner, token, name, env, idempotency).await.map_err(|e| from_service(e, "provision_failed"))?;
    Ok(answer(svc, headers, created, false, env_override_reason, ignored))
}
