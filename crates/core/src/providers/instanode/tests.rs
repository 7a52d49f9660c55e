//! Tests of the instanode client against [`MemoryHttpClient`] and the virtual clock: request shapes
//! as snapshots, both `/db/new` answer shapes (`docs/protocols/instanode.md` §2), idempotent
//! delete, anonymous mode, listing, rotation, retries and the error-envelope mapping.

use std::cell::Cell;
use std::rc::Rc;

use expect_test::{expect, Expect};

use super::*;
use crate::providers::fakes::{run_virtual, VirtualClock};
use crate::providers::http::{HttpError, HttpRequest, HttpResponse};
use crate::providers::memory::MemoryHttpClient;
use crate::providers::ProviderErrorKind;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const ANONYMOUS: &str = r#"{"ok":true,"id":"8b1c","token":"3f2a-tok","name":"mayfly-1700000030-t_1","connection_url":"postgres://usr_3f2a:s3cretPw@pg.instanode.test:5432/db_3f2a?sslmode=disable","tier":"anonymous","env":"development","limits":{"storage_mb":10,"connections":2,"expires_in":"24h"},"note":"Works for 24h free.","upgrade":"https://api.instanode.test/start?t=jwt1","upgrade_jwt":"jwt1","claim_url":"https://api.instanode.test/start?t=jwt1","expires_at":"2023-11-15T22:13:50Z","env_override_reason":"default_no_env_specified"}"#;
pub(super) const AUTHENTICATED: &str = r#"{"ok":true,"id":"8b1c","token":"3f2a-tok","name":"mayfly-1700000030-t_1","connection_url":"postgres://usr_3f2a:s3cretPw@10.0.0.7/db_3f2a?sslmode=disable","tier":"hobby","env":"development","dedicated":false,"limits":{"storage_mb":1024,"connections":8}}"#;

pub(super) fn instanode<'a>(
    http: &'a MemoryHttpClient,
    token: Option<&str>,
) -> (InstanodeClient<&'a MemoryHttpClient, VirtualClock>, VirtualClock) {
    let clock = VirtualClock::new();
    let config = InstanodeConfig { base_url: "https://api.instanode.test/".into(), token: token.map(str::to_owned) };
    let policy = RetryPolicy { max_attempts: 3, base_delay_ms: 100, max_delay_ms: 5_000, ..RetryPolicy::default() };
    (InstanodeClient::new(http, clock.clone(), config).with_retry(policy), clock)
}

pub(super) fn json(status: u16, body: &str) -> HttpResponse {
    HttpResponse::from_bytes(StatusCode::from_u16(status).unwrap(), body.to_owned())
        .with_header(header_name("content-type"), HeaderValue::from_static("application/json"))
}

pub(super) fn check(request: &HttpRequest, expected: Expect) {
    let mut headers: Vec<String> =
        request.headers.iter().map(|(name, value)| format!("{name}: {}", value.to_str().unwrap())).collect();
    headers.sort();
    let rendered = format!(
        "{} {}\n{}\n\n{}",
        request.method,
        request.url,
        headers.join("\n"),
        String::from_utf8_lossy(&request.body)
    );
    expected.assert_eq(&rendered);
}

pub(super) fn request() -> DatabaseRequest {
    DatabaseRequest { name: "mayfly-1700000030-t_1".into(), idempotency_key: "turn-t_1-db".into() }
}

#[test]
fn anonymous_create_parses_the_claim_and_hides_the_password() {
    let http = MemoryHttpClient::new(|_| Ok(json(201, ANONYMOUS)));
    let (client, clock) = instanode(&http, None);
    let database = run_virtual(&clock, client.create(request())).unwrap();
    check(
        &http.requests()[0],
        expect![[r#"
            POST https://api.instanode.test/db/new
            accept: application/json
            content-type: application/json
            idempotency-key: turn-t_1-db

            {"name":"mayfly-1700000030-t_1"}"#]],
    );
    expect![[r#"
        Database {
            token: "3f2a-tok",
            name: "mayfly-1700000030-t_1",
            connection_url: "postgres://***@pg.instanode.test:5432/db_3f2a?***",
            host: "pg.instanode.test:5432",
            database: "db_3f2a",
            mode: Anonymous,
        }
    "#]]
    .assert_debug_eq(&database);
    assert_eq!(database.connection_url, "postgres://usr_3f2a:s3cretPw@pg.instanode.test:5432/db_3f2a?sslmode=disable");
    assert_eq!(
        database.claim,
        ClaimInfo {
            claim_url: "https://api.instanode.test/start?t=jwt1".into(),
            upgrade_jwt: Some("jwt1".into()),
            expires_at: Some("2023-11-15T22:13:50Z".into()),
            instructions: "open the claim URL to attach the database to an instanode account; unclaimed, it expires \
                           at the time shown"
                .into(),
        }
    );
    // Older answers have only `upgrade`, no `claim_url`.
    let older = ANONYMOUS.replace(r#""claim_url":"https://api.instanode.test/start?t=jwt1","#, "");
    let http = MemoryHttpClient::new(move |_| Ok(json(201, &older)));
    let (client, clock) = instanode(&http, None);
    let database = run_virtual(&clock, client.create(request())).unwrap();
    assert_eq!(database.claim.claim_url, "https://api.instanode.test/start?t=jwt1");
}

#[test]
fn token_create_sends_the_bearer_and_has_no_expiry() {
    let http = MemoryHttpClient::new(|_| Ok(json(201, AUTHENTICATED)));
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let database = run_virtual(&clock, client.create(request())).unwrap();
    check(
        &http.requests()[0],
        expect![[r#"
            POST https://api.instanode.test/db/new
            accept: application/json
            authorization: Bearer ink_pat
            content-type: application/json
            idempotency-key: turn-t_1-db

            {"name":"mayfly-1700000030-t_1"}"#]],
    );
    assert_eq!(database.mode, DatabaseMode::Token);
    assert_eq!((database.host.as_str(), database.database.as_str()), ("10.0.0.7:5432", "db_3f2a"));
    assert_eq!(database.claim.claim_url, "https://api.instanode.test/api/v1/resources/3f2a-tok");
    assert_eq!((database.claim.expires_at, database.claim.upgrade_jwt), (None, None));
}

#[test]
fn a_bad_answer_never_quotes_the_password() {
    for body in [
        r#"{"token":"t","connection_url":"postgres://u:s3cretPw@/"}"#,
        r#"{"connection_url":"postgres://u:s3cretPw@h/d"}"#,
    ] {
        let body = body.to_owned();
        let http = MemoryHttpClient::new(move |_| Ok(json(201, &body)));
        let (client, clock) = instanode(&http, None);
        let error = run_virtual(&clock, client.create(request())).unwrap_err();
        assert!(matches!(error, ProviderError::Protocol { .. }), "{error}");
        assert!(!error.to_string().contains("s3cretPw"), "{error}");
    }
}

#[test]
fn connection_parts_take_host_port_and_database_only() {
    let cases = [
        ("postgres://u:p@h:5433/d?sslmode=disable", Some(("h:5433", "d"))),
        ("postgresql://u:p@h/d", Some(("h:5432", "d"))),
        ("postgres://u:p@[::1]/d#x", Some(("[::1]:5432", "d"))),
        ("postgres://u:p@[::1]:6000/d", Some(("[::1]:6000", "d"))),
        ("postgres://u:p@h:5432/", None),
        ("postgres://u:p@/d", None),
        ("not a url", None),
    ];
    for (url, want) in cases {
        let got = connection_parts(url);
        assert_eq!(got.as_ref().map(|(h, d)| (h.as_str(), d.as_str())), want, "{url}");
    }
}

#[test]
fn delete_is_idempotent_in_token_mode() {
    let http = MemoryHttpClient::new(|request| {
        Ok(match request.url.rsplit('/').next().unwrap() {
            "live" => json(200, r#"{"ok":true,"message":"Resource deleted"}"#),
            "again" => json(200, r#"{"ok":true,"message":"already_deleted"}"#),
            _ => json(404, r#"{"ok":false,"error":"not_found","message":"Resource not found"}"#),
        })
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    assert_eq!(run_virtual(&clock, client.delete("live")), Ok(true));
    assert_eq!(run_virtual(&clock, client.delete("again")), Ok(false));
    assert_eq!(run_virtual(&clock, client.delete("gone")), Ok(false));
    check(
        &http.requests()[0],
        expect![[r#"
            DELETE https://api.instanode.test/api/v1/resources/live
            accept: application/json
            authorization: Bearer ink_pat

        "#]],
    );
}

#[test]
fn anonymous_mode_cannot_delete_list_or_rotate() {
    let http = MemoryHttpClient::new(|_| Ok(json(500, "{}")));
    let (client, clock) = instanode(&http, None);
    assert_eq!(client.mode(), DatabaseMode::Anonymous);
    let error = run_virtual(&clock, client.delete("3f2a-tok")).unwrap_err();
    assert_eq!(error.to_string(), "instanode cannot delete an anonymous database");
    assert_eq!(run_virtual(&clock, client.list()), Ok(vec![]));
    let error = run_virtual(&clock, client.rotate_credentials("3f2a-tok")).unwrap_err();
    assert_eq!(error, ProviderError::Unsupported { provider: "instanode", operation: "rotate credentials" });
    assert!(http.requests().is_empty(), "anonymous mode sends nothing it cannot do");
}

#[test]
fn listing_keeps_live_postgres_resources_across_pages() {
    let http = MemoryHttpClient::new(|request| {
        Ok(if request.url.ends_with("cursor=p%3D2") {
            json(
                200,
                r#"{"ok":true,"items":[{"token":"t4","name":"mayfly-9-t_4","resource_type":"postgres","status":"active"}],"total":5}"#,
            )
        } else {
            json(
                200,
                r#"{"ok":true,"items":[
                    {"id":"1","token":"t1","name":"mayfly-5-t_1","resource_type":"postgres","status":"active","storage_bytes":0},
                    {"token":"t2","name":"cache","resource_type":"redis","status":"active"},
                    {"token":"t3","name":"mayfly-5-t_3","resource_type":"postgres","status":"deleted"},
                    {"token":"t5","resource_type":"postgres","status":"paused"}
                ],"total":5,"next_cursor":"p=2"}"#,
            )
        })
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let found = run_virtual(&clock, client.list()).unwrap();
    expect![[r#"
        [
            DatabaseInfo {
                token: "t1",
                name: "mayfly-5-t_1",
            },
            DatabaseInfo {
                token: "t5",
                name: "",
            },
            DatabaseInfo {
                token: "t4",
                name: "mayfly-9-t_4",
            },
        ]
    "#]]
    .assert_debug_eq(&found);
    let urls: Vec<String> = http.requests().iter().map(|request| request.url.clone()).collect();
    assert_eq!(
        urls,
        vec!["https://api.instanode.test/api/v1/resources", "https://api.instanode.test/api/v1/resources?cursor=p%3D2"]
    );
}

#[test]
fn rotate_returns_the_new_url_and_is_sent_once() {
    let http = MemoryHttpClient::new(|_| {
        Ok(json(200, r#"{"ok":true,"connection_url":"postgres://usr_3f2a:n3wPw@h:5432/db_3f2a"}"#))
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let url = run_virtual(&clock, client.rotate_credentials("3f2a-tok")).unwrap();
    assert_eq!(url, "postgres://usr_3f2a:n3wPw@h:5432/db_3f2a");
    check(
        &http.requests()[0],
        expect![[r#"
            POST https://api.instanode.test/api/v1/resources/3f2a-tok/rotate-credentials
            accept: application/json
            authorization: Bearer ink_pat

        "#]],
    );
    let http = MemoryHttpClient::new(|_| Err(HttpError::Timeout));
    let (client, clock) = instanode(&http, Some("ink_pat"));
    run_virtual(&clock, client.rotate_credentials("3f2a-tok")).unwrap_err();
    assert_eq!(http.requests().len(), 1);
}

#[test]
fn create_retries_rate_limits_then_succeeds_and_gives_up_when_exhausted() {
    let seen = Rc::new(Cell::new(0u32));
    let http = MemoryHttpClient::new(move |_| {
        seen.set(seen.get() + 1);
        Ok(if seen.get() == 1 {
            json(429, r#"{"ok":false,"error":"rate_limited","message":"slow down","retry_after_seconds":60}"#)
                .with_header(header_name("retry-after"), HeaderValue::from_static("2"))
        } else {
            json(201, AUTHENTICATED)
        })
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    run_virtual(&clock, client.create(request())).unwrap();
    assert_eq!(clock.elapsed_ms(), 2_000);
    // Every attempt carries the same key, so instanode hands back one database however many land.
    let keys: Vec<_> = http.requests().iter().map(|request| request.headers["idempotency-key"].clone()).collect();
    assert_eq!(keys, vec!["turn-t_1-db", "turn-t_1-db"]);

    let http = MemoryHttpClient::new(|_| {
        Ok(json(
            503,
            r#"{"ok":false,"error":"provisioner_unavailable","message":"could not reach postgres://u:pw@10.0.0.1/x","retry_after_seconds":30}"#,
        ))
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let error = run_virtual(&clock, client.create(request())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "instanode answered 503: provisioner_unavailable: could not reach postgres://***@10.0.0.1/x"
    );
    assert_eq!((http.requests().len(), clock.elapsed_ms()), (3, 300));
}

#[test]
fn error_envelopes_map_to_typed_errors() {
    let cases: [(u16, &str, &str, Option<u64>, bool); 9] = [
        (
            400,
            r#"{"ok":false,"error":"name_required","message":"name is required","retry_after_seconds":null}"#,
            "name_required (400): name is required",
            None,
            false,
        ),
        (
            401,
            r#"{"ok":false,"error":"unauthorized","message":"bad token","error_code":"expired_token"}"#,
            "unauthorized (401): bad token",
            None,
            false,
        ),
        (
            402,
            r#"{"ok":false,"error":"free_tier_recycle_requires_claim","message":"claim first","claim_url":"https://instanode.dev/claim"}"#,
            "free_tier_recycle_requires_claim (402): claim first",
            None,
            false,
        ),
        (
            404,
            r#"{"ok":false,"error":"not_found","message":"Resource not found"}"#,
            "not_found (404): Resource not found",
            None,
            false,
        ),
        (
            409,
            r#"{"ok":false,"error":"idempotency_key_conflict","message":"key reused"}"#,
            "idempotency_key_conflict (409): key reused",
            None,
            false,
        ),
        (429, r#"{"error":"rate_limited"}"#, "rate_limited (429): too many requests", None, true),
        (502, "<html>bad gateway</html>", "http_502 (502): <html>bad gateway</html>", None, true),
        (
            503,
            r#"{"ok":false,"error":"service_disabled","message":"down","retry_after_seconds":30}"#,
            "service_disabled (503): down",
            Some(30),
            true,
        ),
        (504, "", "http_504 (504): gateway timeout", None, true),
    ];
    for (status, body, want, retry_after, retryable) in cases {
        let error = error_from_response(StatusCode::from_u16(status).unwrap(), body.as_bytes()).unwrap();
        assert_eq!(error.to_string(), want);
        assert_eq!(error.retry_after_seconds, retry_after, "{status}");
        assert_eq!(error.is_retryable(), retryable, "{status}");
    }
    assert_eq!(error_from_response(StatusCode::CREATED, b"{}"), None);
    let error: ProviderError =
        error_from_response(StatusCode::NOT_FOUND, br#"{"error":"not_found","message":"gone"}"#).unwrap().into();
    assert_eq!(error.to_string(), "instanode answered 404: not_found: gone");
}

#[test]
fn debug_output_hides_the_token() {
    let config = InstanodeConfig { base_url: "b".into(), token: Some("ink_secret".into()) };
    assert!(!format!("{config:?}").contains("ink_secret"));
}

#[test]
fn status_reads_whether_the_provider_stopped_the_database() {
    let http = MemoryHttpClient::new(|request| {
        Ok(if request.url.ends_with("/full") {
            json(
                200,
                r#"{"ok":true,"item":{"token":"full","status":"suspended","storage_bytes":11534336,"storage_limit_bytes":10485760,"storage_exceeded":true}}"#,
            )
        } else {
            json(200, r#"{"ok":true,"item":{"token":"fine","status":"active","storage_bytes":0}}"#)
        })
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let full = run_virtual(&clock, client.status("full")).unwrap().unwrap();
    assert_eq!(full, DatabaseStatus { storage_exceeded: true, storage_limit_bytes: Some(10 << 20) });
    let fine = run_virtual(&clock, client.status("fine")).unwrap().unwrap();
    assert!(!fine.storage_exceeded);
    check(
        &http.requests()[0],
        expect![[r#"
            GET https://api.instanode.test/api/v1/resources/full
            accept: application/json
            authorization: Bearer ink_pat

        "#]],
    );
    // Anonymous databases cannot be read: nothing is asked, nothing known.
    let (anonymous, clock) = instanode(&http, None);
    assert_eq!(run_virtual(&clock, anonymous.status("full")), Ok(None));
    assert_eq!(http.requests().len(), 2);
}

/// Past its daily cap per caller, anonymous instanode answers `200` with an *earlier* database:
/// taken, the turn would run on another turn's data. The answer must be the database this turn
/// asked for, by name.
#[test]
fn an_answer_naming_another_database_is_refused_not_run_on() {
    let earlier = ANONYMOUS.replace("mayfly-1700000030-t_1", "mayfly-1699990000-t_0");
    let http = MemoryHttpClient::new(move |_| Ok(json(200, &earlier)));
    let (client, clock) = instanode(&http, None);
    let error = run_virtual(&clock, client.create(request())).unwrap_err().to_string();
    assert!(error.contains("mayfly-1699990000-t_0") && error.contains("mayfly-1700000030-t_1"), "{error}");
    assert!(error.contains("INSTANODE_TOKEN"), "says what to do: {error}");
    assert!(!error.contains("s3cretPw"), "{error}");
    assert_eq!(http.requests().len(), 1, "not sent again");
}

/// With a token that instanode did not accept (invalid, revoked, slow to verify), it makes an
/// anonymous database instead, which the token cannot delete: refused, and said so.
#[test]
fn an_anonymous_database_in_token_mode_is_refused() {
    let http = MemoryHttpClient::new(|_| Ok(json(201, ANONYMOUS)));
    let (client, clock) = instanode(&http, Some("ink_revoked"));
    let error = run_virtual(&clock, client.create(request())).unwrap_err().to_string();
    assert!(error.contains("anonymous") && error.contains("INSTANODE_TOKEN"), "{error}");
    assert!(error.contains("https://api.instanode.test/start?t=jwt1"), "says how to claim what was made: {error}");
}

/// The free tier's recycle gate (`402`) is said in words a person can act on.
#[test]
fn the_recycle_gate_says_what_to_do() {
    let http = MemoryHttpClient::new(|_| {
        Ok(json(
            402,
            r#"{"ok":false,"error":"free_tier_recycle_requires_claim","message":"Your previous free resource expired. Free tier resources require a one-time email claim before provisioning a replacement.","claim_url":"https://instanode.dev/claim"}"#,
        ))
    });
    let (client, clock) = instanode(&http, None);
    let error = run_virtual(&clock, client.create(request())).unwrap_err().to_string();
    assert!(error.contains("402") && error.contains("free_tier_recycle_requires_claim"), "{error}");
    assert!(error.contains("https://instanode.dev/claim") && error.contains("INSTANODE_TOKEN"), "{error}");
}

#[test]
fn failures_say_what_kind_they_are() {
    let http = MemoryHttpClient::new(|request| {
        Ok(match (request.method.as_str(), request.url.rsplit('/').next().unwrap_or_default()) {
            ("GET", "3f2a-tok") => json(404, r#"{"ok":false,"error":"not_found","message":"Resource not found"}"#),
            ("POST", "new") => json(429, r#"{"ok":false,"error":"rate_limited","message":"slow down"}"#),
            _ => json(502, r#"{"ok":false,"error":"bad_gateway","message":"upstream","retry_after_seconds":10}"#),
        })
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let not_found = run_virtual(&clock, client.status("3f2a-tok")).unwrap_err();
    assert_eq!(not_found.kind(), ProviderErrorKind::NotFound);
    assert_eq!(not_found.to_string(), "instanode answered 404: not_found: Resource not found");
    let limited = run_virtual(&clock, client.create(request())).unwrap_err();
    assert_eq!(limited.kind(), ProviderErrorKind::RateLimited);
    assert_eq!(limited.to_string(), "instanode answered 429: rate_limited: slow down");
    // instanode's 502 is a passing fault at the provider, whatever E2B's means.
    let bad_gateway = run_virtual(&clock, client.list()).unwrap_err();
    assert_eq!(bad_gateway.kind(), ProviderErrorKind::Unavailable);

    let http = MemoryHttpClient::new(|_| Err(HttpError::Connect("connection refused".into())));
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let unreachable = run_virtual(&clock, client.delete("3f2a-tok")).unwrap_err();
    assert_eq!(unreachable.kind(), ProviderErrorKind::Network);
    assert_eq!(unreachable.to_string(), "instanode could not be reached: could not connect: connection refused");
    let (anonymous, clock) = instanode(&http, None);
    let unsupported = run_virtual(&clock, anonymous.delete("3f2a-tok")).unwrap_err();
    assert_eq!(unsupported.kind(), ProviderErrorKind::Unsupported);
}
