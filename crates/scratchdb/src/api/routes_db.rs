//! `POST /db/new`: a database for anyone, with instanode's answer for each kind of caller (an
//! anonymous one gets limits, an expiry and a claim link; an owner gets its tier's limits), and the
//! `--like-hosted` gates in front of anonymous creates.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mayfly_core::wire::instanode::{DatabaseLimits, Envelope, NewDatabaseAnswer};

use super::auth::{caller_with, Peer};
use super::error::{from_service, ApiError};
use super::request::{self, EnvQuery, NewDatabaseBody};
use crate::config::{ANON_CONNECTIONS, ANON_STORAGE_MB};
use crate::hosted::Gate;
use crate::service::{Caller, Created, NewResource, Service, ServiceError};

/// `24h`, `90m`, `45s`: the shape instanode uses for `expires_in`.
fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

pub(super) async fn db_new(
    State(svc): State<Service>,
    Query(q): Query<EnvQuery>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let like_hosted = svc.config().like_hosted.is_some();
    let who = caller_with(&svc, &headers, peer.map(|Extension(ConnectInfo(a))| a.ip()), like_hosted).await?;
    let NewDatabaseBody { value, name, env, env_override_reason, wants_dedicated, wants_parent, ignored } =
        request::new_database_body(q.env.as_deref(), &body)?;
    match who {
        Caller::Anonymous(_) if wants_dedicated || wants_parent => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "auth_required",
                "dedicated and parent_resource_id need a bearer token",
            ))
        }
        Caller::Owner(_) if wants_dedicated => return Err(no_dedicated()),
        _ => {}
    }
    let idempotency = request::idempotency(&headers, &value, &env, None)?;
    let gate = match &who {
        Caller::Anonymous(address) => {
            svc.hosted_gate(*address).await.map_err(|e| from_service(e, "provision_failed"))?
        }
        Caller::Owner(_) => Gate::Proceed,
    };
    let earlier = matches!(gate, Gate::Earlier(_));
    let created = match gate {
        Gate::Proceed => {
            let req = NewResource { name, env, idempotency, fork_of: None };
            svc.create(&who, req).await.map_err(|e| match e {
                ServiceError::NotFound => ApiError::unavailable("provision_failed"),
                other => from_service(other, "provision_failed"),
            })?
        }
        // Hosted's answer past the daily share: `200` and an earlier database, with its data.
        Gate::Earlier(row) => Created { row: *row, idempotent: false, replay: false },
        Gate::CapReached => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "provision_limit_reached",
                "this caller has made its anonymous databases for today",
            ))
        }
        Gate::ClaimFirst => {
            let claim_url = format!("{}/claim", public_base(&svc, &headers));
            return Err(ApiError {
                claim_url: Some(claim_url),
                ..ApiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "free_tier_recycle_requires_claim",
                    "Your previous free resource expired. Free tier resources require a one-time email claim \
                     before provisioning a replacement.",
                )
            });
        }
    };
    Ok(answer(&svc, &headers, created, earlier, env_override_reason, ignored))
}

/// An owner's refused `dedicated: true`: this server has no dedicated databases to offer.
pub(super) fn no_dedicated() -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        "upgrade_required",
        "dedicated databases are not offered by this server",
    )
}

/// The answer to a create that made (or replayed, or past the daily share found) `created`. A fork
/// answers with it too, so that a client reads a fork's answer with the code it reads a create's.
pub(super) fn answer(
    svc: &Service,
    headers: &HeaderMap,
    created: Created,
    earlier: bool,
    env_override_reason: bool,
    ignored: Vec<String>,
) -> Response {
    let (row, explicit) = (created.row, created.idempotent);
    let mut body = NewDatabaseAnswer {
        id: Some(row.id.clone()),
        token: row.token.clone(),
        name: Some(row.name.clone()),
        connection_url: svc.connection_url(&row),
        tier: Some(row.tier.clone()),
        env: Some(row.env.clone()),
        dedicated: None,
        limits: None,
        note: None,
        upgrade: None,
        upgrade_jwt: None,
        claim_url: None,
        expires_at: None,
        env_override_reason: env_override_reason.then(|| "default_no_env_specified".to_string()),
        ignored_fields: (!ignored.is_empty()).then_some(ignored),
    };
    let mut upgrade_header = None;
    if row.owner.is_none() {
        let base = public_base(svc, headers);
        let claim_token = row.claim_token.clone().unwrap_or_default();
        let claim_url = format!("{base}/claim/preview?t={claim_token}");
        let expires_in = short_duration(svc.config().anonymous_ttl);
        body.note = Some(format!(
            "Works for {expires_in}. Claim to keep: POST {base}/claim with {{\"token\": upgrade_jwt, \"email\": ...}}"
        ));
        body.limits = Some(DatabaseLimits {
            storage_mb: i64::from(ANON_STORAGE_MB),
            connections: i64::from(ANON_CONNECTIONS),
            expires_in: Some(expires_in),
        });
        body.upgrade = Some(claim_url.clone());
        body.upgrade_jwt = Some(claim_token);
        body.claim_url = Some(claim_url.clone());
        body.expires_at = row.expires_at;
        upgrade_header = Some(claim_url);
    } else {
        body.dedicated = Some(false);
        body.limits = Some(DatabaseLimits {
            storage_mb: i64::from(row.storage_mb),
            connections: i64::from(row.connections),
            expires_in: None,
        });
    }
    let status = if earlier { StatusCode::OK } else { StatusCode::CREATED };
    let mut resp = (status, Json(Envelope::success(body))).into_response();
    let h = resp.headers_mut();
    h.insert("x-idempotency-source", HeaderValue::from_static(if explicit { "explicit" } else { "miss" }));
    if created.replay {
        h.insert("x-idempotent-replay", HeaderValue::from_static("true"));
    }
    if let Some(u) = upgrade_header.and_then(|u| HeaderValue::from_str(&u).ok()) {
        h.insert("x-instant-upgrade", u);
    }
    resp
}

/// Where this server is reached, for the links it hands out.
fn public_base(svc: &Service, headers: &HeaderMap) -> String {
    match &svc.config().public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1")),
    }
}
