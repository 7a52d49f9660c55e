//! The turn routes of the edge API: create a turn (once per `Idempotency-Key`), list them a page at
//! a time, read one, follow its events, cancel it, keep its database. Each turn lives in a `Turn`
//! Durable Object ([`crate::turn_object`]); these handlers authenticate, validate and forward.

use mayfly_core::turn::{checkpoint_limit_unix_ms, TurnId};
use mayfly_core::{
    ApiError, CreateTurnRequest, CreateTurnResponse, ErrorCode, Limits, TurnDetail, TurnList, TurnSpec, TurnState,
    TurnSummary,
};
use worker::{Date, Env, Headers, Method, Request, RequestInit, Response, Result};

use crate::auth::{self, Tenant};
use crate::config::Config;
use crate::ledger::{self, Admission, Admitted, Entry, Fingerprint};
use crate::paging::{PageQuery, MAX_PAGE};
use crate::turn_object::{stub, TurnRecord, START_TOO_LATE, START_WINDOW_MS, TENANT_HEADER};
use crate::{idempotency, reply};

/// The largest request body taken: the code and files at their limit plus room for the env and
/// the JSON around them. Bigger bodies are refused before they are parsed.
fn max_body_bytes(limits: &Limits) -> usize {
    limits.max_total_bytes + limits.max_env * limits.max_env_value_bytes + limits.max_seed_sql_bytes + 64 * 1024
}

/// `POST /v1/turns`. With an `Idempotency-Key` the tenant's ledger is asked first: a key it knows
/// with the same body answers the turn that key started (started here should the first request
/// have been cut off before it did, within [`START_WINDOW_MS`]), with another body a `409`.
pub(crate) async fn create(mut req: Request, env: &Env) -> Result<Response> {
    let tenant = match auth::turn_tenant(&req, env) {
        Ok(tenant) => tenant,
        Err(err) => return reply::error(&err),
    };
    let key = match idempotency::key_of(&req) {
        Ok(key) => key,
        Err(err) => return reply::error(&err),
    };
    let limits = Limits::default();
    let body = match crate::body::read_limited(&mut req, max_body_bytes(&limits)).await {
        Ok(body) => body,
        Err(err) => return reply::error(&err),
    };
    let request: CreateTurnRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return reply::error(&ApiError::new(ErrorCode::InvalidJson, format!("invalid turn request: {err}")))
        }
    };
    let config = Config::from_env(env);
    let templates = match &config.templates {
        Ok(templates) => templates,
        Err(err) => {
            worker::console_error!("config: {err}");
            return reply::error(&ApiError::new(
                ErrorCode::Internal,
                format!("this deployment is misconfigured: {err}"),
            ));
        }
    };
    let spec = match TurnSpec::from_request(request, &limits, templates) {
        Ok(spec) => spec,
        Err(err) => return reply::error(&err.to_api_error()),
    };
    // A fork's checkpoint is looked up before the fork is admitted: one that is not there, or not
    // the tenant's, is the caller's mistake and takes no place under the tenant's cap.
    if spec.from.is_some() {
        if let Err(err) = crate::checkpoints::fork_allowed(&req, env) {
            return reply::error(&err);
        }
    }
    let fork = match &spec.from {
        Some(parent) => match crate::checkpoints::fork_source(env, &tenant, parent, spec.timeout_s).await? {
            Ok(source) => Some(source),
            Err(err) => return reply::error(&err),
        },
        None => None,
    };
    let namespace = env.durable_object(crate::turn_object::BINDING)?;
    let turn_id = new_turn_id(&namespace)?;
    let created_unix_ms = Date::now().as_millis();
    // The checked spec is what the object stores and runs: its template is settled now, so the turn
    // runs in, and its record shows, the one this configuration chose even if it changes meanwhile.
    let record = TurnRecord { tenant: tenant.0.clone(), turn_id, created_unix_ms, spec, fork };
    // In the ledger before it starts: a turn that runs is always listed, and counted.
    let max_running = config.max_turns_per_tenant;
    let admission = Admission {
        entry: Entry { turn_id: record.turn_id.as_str().to_owned(), created_unix_ms },
        running_until_unix_ms: record.counted_until_unix_ms(),
        max_running,
        history_kept: config.max_turn_history,
        keys_kept: config.max_idempotency_keys,
        idempotency: key.map(|key| Fingerprint { key, body_sha256: idempotency::body_sha256(&body) }),
        checkpoint_until_unix_ms: record
            .spec
            .checkpoint_keep_s
            .map(|_| checkpoint_limit_unix_ms(record.counted_until_unix_ms(), limits.max_checkpoint_keep_s)),
        max_checkpoints: config.max_checkpoints_per_tenant,
    };
    let keyed = admission.idempotency.is_some();
    let admitting = Date::now().as_millis();
    let admitted = ledger::admit(env, &tenant.0, &admission).await;
    let starting = Date::now().as_millis();
    let record = match admitted {
        Ok(Admitted::Yes) => record,
        // A retry's body is the first request's to the byte, so it makes the same record.
        Ok(Admitted::Again { turn_id, created_unix_ms }) => match TurnId::new(turn_id) {
            Ok(turn_id) => TurnRecord { turn_id, created_unix_ms, ..record },
            Err(err) => {
                worker::console_error!("turns: ledger: {err}");
                return reply::error(&ApiError::new(ErrorCode::Internal, "the turn could not be recorded"));
            }
        },
        Ok(Admitted::KeyReused) => {
            let message = format!(
                "this {} was sent before with another request body; send the same body to get the turn it \
                 started, or a new key for a new turn",
                idempotency::HEADER
            );
            return reply::error(&ApiError::new(ErrorCode::Conflict, message));
        }
        Ok(Admitted::No { retry_after_s }) => {
            let message = format!("{max_running} turns of this tenant are running, the most it may run at once");
            return reply::too_many(&ApiError::new(ErrorCode::TooManyRequests, message), retry_after_s);
        }
        Ok(Admitted::TooManyCheckpoints { retry_after_s }) => {
            let message = format!(
                "this tenant keeps {} checkpoints, the most it may keep at once: release one \
                 (DELETE /v1/turns/{{id}}/checkpoint) or wait for one to run out",
                config.max_checkpoints_per_tenant
            );
            return reply::too_many(&ApiError::new(ErrorCode::TooManyRequests, message), retry_after_s);
        }
        Err(err) => {
            worker::console_error!("turns: ledger: {err}");
            return reply::error(&ApiError::new(ErrorCode::Internal, "the turn could not be recorded"));
        }
    };
    let turn_id = record.turn_id.clone();
    let mut init = RequestInit::new();
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    init.with_method(Method::Post).with_headers(headers).with_body(Some(serde_json::to_string(&record)?.into()));
    let answer =
        stub(env, turn_id.as_str())?.fetch_with_request(Request::new_with_init("https://turn/start", &init)?).await?;
    // With a key, whichever of a request and its retries reaches the object first starts the turn;
    // the others find it started (`409`). Without one the turn id is new, and a `409` a fault.
    let started = answer.status_code() == 201 || (keyed && answer.status_code() == 409);
    if keyed && answer.status_code() == START_TOO_LATE {
        let message = format!(
            "the turn this {} names never started: its request was cut off, and a retry may start it \
             only within {} s; send a new key for a new turn",
            idempotency::HEADER,
            START_WINDOW_MS / 1000
        );
        return reply::error(&ApiError::new(ErrorCode::Conflict, message));
    }
    if !started {
        // It never ran. Without a key its place under the tenant's cap is free again; with one, a
        // retry of the request starts this very turn, so it keeps its place.
        if !keyed {
            if let Err(err) = ledger::finished(env, &tenant.0, turn_id.as_str(), false).await {
                worker::console_error!("turns: ledger: {err}");
            }
        }
        return Ok(answer);
    }
    let created = CreateTurnResponse {
        events_url: format!("/v1/turns/{turn_id}/events"),
        status_url: format!("/v1/turns/{turn_id}"),
        turn_id: turn_id.as_str().to_owned(),
    };
    let timing = server_timing(&[("admit", starting - admitting), ("start", Date::now().as_millis() - starting)]);
    let mut response = Response::from_json(&created)?.with_status(201);
    response.headers_mut().set("Server-Timing", &timing)?;
    Ok(response)
}

/// A `Server-Timing` header's value: how long each step of the request took, which a browser's
/// developer tools show and the bench reads.
fn server_timing(steps: &[(&str, u64)]) -> String {
    steps.iter().map(|(name, ms)| format!("{name};dur={ms}")).collect::<Vec<_>>().join(", ")
}

/// `GET /v1/turns/{id}`, `GET /v1/turns/{id}/events`, `DELETE /v1/turns/{id}`,
/// `POST /v1/turns/{id}/keep`: checked and handed
/// to the turn's object as `operation`, with the tenant it is for.
pub(crate) async fn forward(req: Request, env: &Env, id: Option<&String>, operation: &str) -> Result<Response> {
    // Keeping hands out the database's connection URL: the key's to ask for, never a token's.
    let authenticated = if operation == "keep" { auth::tenant(&req, env) } else { auth::turn_tenant(&req, env) };
    let tenant = match authenticated {
        Ok(tenant) => tenant,
        Err(err) => return reply::error(&err),
    };
    // An id that cannot be a turn's is answered like an unknown one, without waking an object.
    let Some(turn_id) = id.and_then(|id| TurnId::new(id.clone()).ok()) else {
        return reply::error(&ApiError::new(ErrorCode::NotFound, "no such turn"));
    };
    let inner = internal_request(&req, operation, &tenant)?;
    stub(env, turn_id.as_str())?.fetch_with_request(inner).await
}

/// The request the object sees: the client's headers (for `Upgrade`) and query, the operation as
/// the path, and the tenant set by us — a client's own `x-mayfly-tenant` is overwritten.
fn internal_request(req: &Request, operation: &str, tenant: &Tenant) -> Result<Request> {
    let url = req.url()?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            // The offer may hold the key: the object only learns whether `mayfly` was offered.
            if auth::offers_ws_protocol(&value) {
                headers.set(&name, auth::WS_PROTOCOL)?;
            }
        } else if !name.eq_ignore_ascii_case("authorization") {
            headers.append(&name, &value)?;
        }
    }
    headers.set(TENANT_HEADER, &tenant.0)?;
    let (path, method) = match operation {
        "cancel" => ("/cancel", Method::Post),
        "events" => ("/events", Method::Get),
        "keep" => ("/keep", Method::Post),
        _ => ("/detail", Method::Get),
    };
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    Request::new_with_init(&format!("https://turn{path}{query}"), &init)
}

/// `GET /v1/turns`: a page of the tenant's turns, newest first, as their objects describe them now.
pub(crate) async fn list(req: Request, env: &Env) -> Result<Response> {
    let tenant = match auth::tenant(&req, env) {
        Ok(tenant) => tenant,
        Err(err) => return reply::error(&err),
    };
    let query = match PageQuery::from_url(&req.url()?) {
        Ok(query) => query,
        Err(err) => return reply::error(&err),
    };
    let page = ledger::page(env, &tenant.0, &query).await?;
    let turns = details(env, &tenant, &page.turn_ids)
        .await
        .into_iter()
        .map(|detail| TurnSummary {
            duration_ms: (detail.state == TurnState::Finished).then_some(detail.timings.total_ms),
            turn_id: detail.turn_id,
            created_unix_ms: detail.created_unix_ms,
            language: detail.spec.language,
            state: detail.state,
            outcome: detail.outcome,
            resources: detail.resources,
        })
        .collect();
    Response::from_json(&TurnList { turns, next_cursor: page.next.map(|cursor| cursor.encode()) })
}

/// The details of the tenant's newest turns (a full page), newest first.
pub(crate) async fn recent_details(env: &Env, tenant: &Tenant) -> Result<Vec<TurnDetail>> {
    let page = ledger::page(env, &tenant.0, &PageQuery { limit: MAX_PAGE, before: None }).await?;
    Ok(details(env, tenant, &page.turn_ids).await)
}

/// The details of `turn_ids`, in their order, read from their objects concurrently. A turn whose
/// object does not answer is left out rather than failing the whole list.
async fn details(env: &Env, tenant: &Tenant, turn_ids: &[String]) -> Vec<TurnDetail> {
    let details = futures::future::join_all(turn_ids.iter().map(|id| async move {
        let headers = Headers::new();
        headers.set(TENANT_HEADER, &tenant.0)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        let mut answer =
            stub(env, id)?.fetch_with_request(Request::new_with_init("https://turn/detail", &init)?).await?;
        if answer.status_code() != 200 {
            return Ok(None);
        }
        answer.json::<TurnDetail>().await.map(Some)
    }))
    .await;
    details.into_iter().filter_map(|detail: Result<Option<TurnDetail>>| detail.ok().flatten()).collect()
}

/// A fresh turn id, `t_` and 32 hex digits taken from a new unique object id (the runtime's
/// source of randomness that needs no extra binding).
fn new_turn_id(namespace: &worker::ObjectNamespace) -> Result<TurnId> {
    let unique = namespace.unique_id()?.to_string();
    TurnId::new(format!("t_{}", &unique[..32.min(unique.len())]))
        .map_err(|err| worker::Error::RustError(err.to_string()))
}
