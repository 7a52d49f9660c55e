//! The error envelope and how a service failure becomes one. Every client mistake is a 4xx with
//! instanode's stable `error` code; a 503 (with `retry_after_seconds`) means Postgres itself failed.
//! It is a module of its own so that every route module can answer with it without importing the
//! router that imports them.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mayfly_core::wire::instanode::{Envelope, ErrorAnswer};

use crate::service::ServiceError;

/// The envelope every error answer uses.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) error_code: Option<&'static str>,
    pub(super) agent_action: Option<&'static str>,
    pub(super) claim_url: Option<String>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), error_code: None, agent_action: None, claim_url: None }
    }
    pub(super) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub(super) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Resource not found")
    }
    pub(super) fn unauthorized(error_code: &'static str) -> Self {
        Self {
            error_code: Some(error_code),
            agent_action: Some("send Authorization: Bearer <token> with a token this server was started with"),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
        }
    }
    pub(super) fn unavailable(code: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, "the postgres server is unavailable; retry shortly")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = (self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(30);
        let body = ErrorAnswer {
            error: Some(self.code.to_string()),
            message: Some(self.message),
            retry_after_seconds: retry,
            error_code: self.error_code.map(str::to_string),
            agent_action: self.agent_action.map(str::to_string),
            claim_url: self.claim_url,
        };
        let mut resp = (self.status, Json(Envelope::failure(body))).into_response();
        if let Some(r) = retry {
            resp.headers_mut().insert("retry-after", HeaderValue::from(r));
        }
        resp
    }
}

pub(super) fn from_service(e: ServiceError, unavailable_code: &'static str) -> ApiError {
    match e {
        ServiceError::NotFound => ApiError::not_found(),
        ServiceError::IdempotencyConflict => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_conflict",
            "this Idempotency-Key was used with a different body",
        ),
        ServiceError::InvalidClaim => ApiError::bad("invalid_token", "the claim token is unknown or expired"),
        ServiceError::AlreadyClaimed => ApiError::new(StatusCode::CONFLICT, "already_claimed", "already claimed"),
        ServiceError::SourceInUse => ApiError::new(
            StatusCode::CONFLICT,
            "source_in_use",
            "the source database has open sessions, and Postgres copies a database only while nobody is \
             connected to it; close them and retry",
        ),
        ServiceError::SourceSuspended => ApiError::new(
            StatusCode::CONFLICT,
            "source_suspended",
            "the source database is stopped for being over its storage limit; a copy would be over it too",
        ),
        ServiceError::SourceTooLarge { bytes, limit } => ApiError::new(
            StatusCode::CONFLICT,
            "source_too_large",
            format!(
                "the source database is {} MiB, and this server forks databases of at most {} MiB: a copy \
                 holds the shared Postgres for as long as it takes; make the source smaller, or copy it \
                 another way",
                mib(bytes),
                mib(limit)
            ),
        ),
        ServiceError::Frozen => ApiError::new(
            StatusCode::CONFLICT,
            "frozen",
            "the database is frozen: nobody may log in to it, so it hands out no credentials; fork it for a \
             database that does",
        ),
        ServiceError::Provisioning => ApiError::new(
            StatusCode::CONFLICT,
            "resource_provisioning",
            "the database is still being created; retry once its create has answered",
        ),
        ServiceError::Unfinished => ApiError::unavailable(unavailable_code),
        ServiceError::Admin(err) if err.is_busy() => {
            tracing::warn!(error = %err, "postgres operation gave up waiting");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                unavailable_code,
                "the database is busy: a lock on it, or its sessions, did not let go in time; retry shortly",
            )
        }
        ServiceError::Admin(err) => {
            tracing::error!(error = %err, "postgres operation failed");
            ApiError::unavailable(unavailable_code)
        }
        ServiceError::BadSchema => ApiError::unavailable(unavailable_code),
    }
}

/// Bytes as MiB with one decimal, as a message shows a size.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}
