//! `/api/v1/resources…`: an owner's resources, listed, read, rotated and deleted. Every route here
//! needs a token, and a resource that is not the caller's is `404` like one that does not exist. A
//! frozen one (`crate::freeze`) is listed and read as before, but its credentials and rotation
//! answer `409 frozen`.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mayfly_core::wire::instanode::{
    Credentials, DeleteAnswer, Envelope, ResourceAnswer, ResourceItem, ResourceList, RotateAnswer,
};

use super::auth::owner;
use super::error::{from_service, ApiError};
use super::request::EnvQuery;
use crate::limits::SUSPENDED;
use crate::registry::Row;
use crate::service::{Service, ServiceError};

pub(super) fn check_token(token: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(token).map(|_| ()).map_err(|_| ApiError::bad("invalid_id", "the id is not a uuid"))
}

pub(super) fn item(row: &Row, storage_bytes: i64) -> ResourceItem {
    let limit = i64::from(row.storage_mb) * 1024 * 1024;
    ResourceItem {
        id: Some(row.id.clone()),
        token: row.token.clone(),
        resource_type: Some("postgres".to_string()),
        env: Some(row.env.clone()),
        tier: Some(row.tier.clone()),
        status: Some(row.status.clone()),
        created_at: Some(row.created_at.clone()),
        name: Some(row.name.clone()),
        storage_bytes: Some(storage_bytes),
        connections_limit: Some(i64::from(row.connections)),
        storage_limit_bytes: u64::try_from(limit).ok(),
        // A stopped database was over its limit when stopped, whatever its size reads now.
        storage_exceeded: row.status == SUSPENDED || storage_bytes > limit,
        expires_at: row.expires_at.clone(),
    }
}

pub(super) async fn list(
    State(svc): State<Service>,
    Query(q): Query<EnvQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    let rows = svc.list(&owner, q.env.as_deref()).await.map_err(|e| from_service(e, "fetch_failed"))?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(item(r, svc.storage_bytes(&r.token).await));
    }
    let list = ResourceList { total: Some(items.len() as u64), items, next_cursor: None };
    Ok(Json(Envelope::success(list)).into_response())
}

/// The caller's resource `token`, after checking who the caller is and what the token looks like.
async fn owned_resource(svc: &Service, headers: &HeaderMap, token: &str) -> Result<Row, ApiError> {
    let owner = owner(svc, headers).await?;
    check_token(token)?;
    svc.get(&owner, token).await.map_err(|e| from_service(e, "fetch_failed"))
}

pub(super) async fn get_resource(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = owned_resource(&svc, &headers, &token).await?;
    let size = svc.storage_bytes(&row.token).await;
    Ok(Json(Envelope::success(ResourceAnswer { item: item(&row, size) })).into_response())
}

pub(super) async fn credentials(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = owned_resource(&svc, &headers, &token).await?;
    if row.frozen {
        return Err(from_service(ServiceError::Frozen, "fetch_failed"));
    }
    let credentials = Credentials {
        connection_url: svc.connection_url(&row),
        id: row.id,
        token: row.token,
        resource_type: "postgres".to_string(),
        env: row.env,
    };
    Ok(Json(Envelope::success(credentials)).into_response())
}

pub(super) async fn rotate(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    check_token(&token)?;
    let row = svc.rotate(&owner, &token).await.map_err(|e| from_service(e, "rotate_failed"))?;
    Ok(Json(Envelope::success(RotateAnswer { connection_url: svc.connection_url(&row) })).into_response())
}

pub(super) async fn delete_resource(
    State(svc): State<Service>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner(&svc, &headers).await?;
    check_token(&token)?;
    let fresh = svc.delete(&owner, &token).await.map_err(|e| from_service(e, "delete_failed"))?;
    let message = if fresh { "Resource deleted" } else { "Resource already deleted" };
    let answer = DeleteAnswer { message: Some(message.to_string()), status: None };
    Ok(Json(Envelope::success(answer)).into_response())
}
