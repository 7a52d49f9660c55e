//! Tests of the E2B client against [`MemoryHttpClient`] and the virtual clock: request shapes as
//! snapshots, answers from the examples in `docs/protocols/e2b.md`, uploads, pagination, kill and
//! retry behaviour, the status table and the kinds of failure; the process stream is
//! `process.rs`.

use std::cell::Cell;
use std::rc::Rc;

use expect_test::{expect, Expect};

use super::*;
use crate::providers::fakes::{run_virtual, VirtualClock};
use crate::providers::http::{HttpError, HttpResponse};
use crate::providers::memory::MemoryHttpClient;
use crate::providers::{sandbox_metadata, ProviderErrorKind};
use crate::wire::connect;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod process;

const CREATED: &str = r#"{"templateID":"base","sandboxID":"isbx1","alias":"base","clientID":"6532622b","envdVersion":"0.6.13","envdAccessToken":"envd-tok","trafficAccessToken":null,"domain":null}"#;

fn config() -> E2bConfig {
    E2bConfig {
        api_url: "https://api.e2b.test".into(),
        domain: "e2b.test".into(),
        api_key: "e2b_k3y".into(),
        envd_url: None,
        user: "user".into(),
        keepalive_interval_s: 30,
        create_timeout_ms: 60_000,
    }
}

fn e2b(http: &MemoryHttpClient) -> (E2bClient<&MemoryHttpClient, VirtualClock>, VirtualClock) {
    let clock = VirtualClock::new();
    let policy = RetryPolicy { max_attempts: 3, base_delay_ms: 100, max_delay_ms: 1_000, ..RetryPolicy::default() };
    (E2bClient::new(http, clock.clone(), config()).with_retry(policy), clock)
}

fn handle() -> SandboxHandle {
    SandboxHandle { sandbox_id: "isbx1".into(), envd_access_token: Some("envd-tok".into()), domain: None }
}

fn json(status: u16, body: &str) -> HttpResponse {
    HttpResponse::from_bytes(StatusCode::from_u16(status).unwrap(), body.to_owned())
        .with_header(header_name("content-type"), HeaderValue::from_static("application/json"))
}

fn render(request: &HttpRequest) -> String {
    let mut headers: Vec<String> =
        request.headers.iter().map(|(name, value)| format!("{name}: {}", value.to_str().unwrap())).collect();
    headers.sort();
    let body = match request.body.first() {
        Some(0) if request.body.len() >= 5 => {
            format!("{:02x?} {}", &request.body[..5], String::from_utf8_lossy(&request.body[5..]))
        }
        _ => String::from_utf8_lossy(&request.body).into_owned(),
    };
    format!("{} {}\n{}\n\n{}", request.method, request.url, headers.join("\n"), body)
}

fn check(request: &HttpRequest, expected: Expect) {
    expected.assert_eq(&render(request));
}

#[test]
fn create_sends_a_secure_tagged_sandbox_and_keeps_the_envd_token() {
    let http = MemoryHttpClient::new(|_| Ok(json(201, CREATED)));
    let (client, clock) = e2b(&http);
    let request = SandboxRequest {
        template: "base".into(),
        timeout_s: 330,
        env: vec![("MAYFLY".into(), "1".into())],
        metadata: sandbox_metadata("t_1", 1_700_000_300),
    };
    let sandbox = run_virtual(&clock, client.create(request)).unwrap();
    assert_eq!(sandbox, handle());
    check(
        &http.requests()[0],
        expect![[r#"
            POST https://api.e2b.test/sandboxes
            accept: application/json
            content-type: application/json
            x-api-key: e2b_k3y

            {"templateID":"base","timeout":330,"envVars":{"MAYFLY":"1"},"metadata":{"deadline":"1700000300","mayfly":"1","turn":"t_1"},"secure":true,"allow_internet_access":true}"#]],
    );
}

#[test]
fn create_takes_the_sandbox_domain_and_envd_then_uses_it() {
    let http = MemoryHttpClient::new(|request| {
        Ok(match request.url.as_str() {
            "https://api.e2b.test/sandboxes" => {
                json(201, r#"{"sandboxID":"isbx2","envdAccessToken":"t","domain":"eu.e2b.test"}"#)
            }
            _ => json(200, r#"[{"path":"/tmp/agent.py","name":"agent.py","type":"file"}]"#),
        })
    });
    let (client, clock) = e2b(&http);
    let request = SandboxRequest { template: "base".into(), timeout_s: 5, env: vec![], metadata: Default::default() };
    run_virtual(&clock, async {
        let sandbox = client.create(request).await.unwrap();
        assert_eq!(sandbox.domain.as_deref(), Some("eu.e2b.test"));
        client.upload(&sandbox, "/tmp/agent.py", Bytes::from_static(b"x")).await.unwrap();
    });
    assert!(http.requests()[1].url.starts_with("https://49983-isbx2.eu.e2b.test/files?"), "{}", http.requests()[1].url);
}

#[test]
fn upload_is_multipart_with_the_access_token_and_user() {
    let http =
        MemoryHttpClient::new(|_| Ok(json(200, r#"[{"path":"/tmp/agent.py","name":"agent.py","type":"file"}]"#)));
    let (client, clock) = e2b(&http);
    let sandbox = handle();
    run_virtual(&clock, client.upload(&sandbox, "/tmp/agent.py", Bytes::from_static(b"print(1)\n"))).unwrap();
    let rendered = render(&http.requests()[0]).replace("\r\n", "⏎\n");
    expect![[r#"
        POST https://49983-isbx1.e2b.test/files?path=%2Ftmp%2Fagent.py&username=user
        content-type: multipart/form-data; boundary=mayfly-boundary-0
        e2b-sandbox-id: isbx1
        e2b-sandbox-port: 49983
        x-access-token: envd-tok

        --mayfly-boundary-0⏎
        Content-Disposition: form-data; name="file"; filename="/tmp/agent.py"⏎
        Content-Type: application/octet-stream⏎
        ⏎
        print(1)
        ⏎
        --mayfly-boundary-0--⏎
    "#]]
    .assert_eq(&rendered);
}

#[test]
fn multipart_boundary_avoids_the_content() {
    assert_eq!(boundary_for(b"abc"), "mayfly-boundary-0");
    assert_eq!(boundary_for(b"x--mayfly-boundary-0 mayfly-boundary-1"), "mayfly-boundary-2");
}

fn listed(id: &str, metadata: &str) -> String {
    format!(
        r#"{{"templateID":"base","sandboxID":"{id}","clientID":"6532622b","startedAt":"2023-11-14T22:13:20Z","endAt":"2023-11-14T22:18:20Z","cpuCount":2,"memoryMB":512,"diskSizeMB":1024,"metadata":{metadata},"state":"running","envdVersion":"0.6.13"}}"#
    )
}

#[test]
fn listing_follows_next_tokens_and_rechecks_metadata() {
    let http = MemoryHttpClient::new(|request| {
        let page = if request.url.contains("nextToken=c%2F2") {
            (format!("[{}]", listed("isbx4", r#"{"mayfly":"1","deadline":"9"}"#)), None)
        } else if request.url.contains("nextToken=c1") {
            // A provider that ignores the filter: a stranger's sandbox and one without metadata.
            let items = [listed("istranger", r#"{"mayfly":"2"}"#), listed("inometa", "null")];
            (format!("[{}]", items.join(",")), Some("c/2"))
        } else {
            let items = [
                listed("isbx1", r#"{"mayfly":"1","turn":"t_1","deadline":"5"}"#),
                listed("isbx2", r#"{"mayfly":"1"}"#),
            ];
            (format!("[{}]", items.join(",")), Some("c1"))
        };
        let mut response = json(200, &page.0);
        if let Some(token) = page.1 {
            response = response.with_header(header_name("x-next-token"), HeaderValue::from_static(token));
        }
        Ok(response)
    });
    let (client, clock) = e2b(&http);
    let found = run_virtual(&clock, client.list_tagged()).unwrap();
    let ids: Vec<&str> = found.iter().map(|sandbox| sandbox.sandbox_id.as_str()).collect();
    assert_eq!(ids, vec!["isbx1", "isbx2", "isbx4"]);
    assert_eq!(found[0].metadata.get("turn").map(String::as_str), Some("t_1"));
    let urls: Vec<String> = http.requests().iter().map(|request| request.url.clone()).collect();
    expect![[r#"
        [
            "https://api.e2b.test/v2/sandboxes?metadata=mayfly%3D1&state=running,paused&limit=100",
            "https://api.e2b.test/v2/sandboxes?metadata=mayfly%3D1&state=running,paused&limit=100&nextToken=c1",
            "https://api.e2b.test/v2/sandboxes?metadata=mayfly%3D1&state=running,paused&limit=100&nextToken=c%2F2",
        ]
    "#]]
    .assert_debug_eq(&urls);
    assert_eq!(http.requests()[0].headers.get("x-api-key").unwrap(), "e2b_k3y");
}

#[test]
fn metadata_filter_matches_the_sdk_encoding() {
    let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // The example of `docs/protocols/e2b.md` §1.6.
    assert_eq!(metadata_filter(&tags(&[("owner", "turnbot"), ("turn", "t-42")])), "owner%3Dturnbot%26turn%3Dt-42");
    // Outside the safe set every level of the server's unescaping is accounted for.
    assert_eq!(metadata_filter(&tags(&[("k", "a b&c")])), "k%3Da%252520b%252526c");
}

#[test]
fn kill_treats_204_and_404_as_gone_and_retries_500() {
    let seen = Rc::new(Cell::new(0u32));
    let http = MemoryHttpClient::new(move |request| {
        seen.set(seen.get() + 1);
        Ok(match request.url.rsplit('/').next().unwrap() {
            "alive" => HttpResponse::from_bytes(StatusCode::NO_CONTENT, ""),
            "gone" => {
                json(404, r#"{"code":404,"message":"Sandbox \"gone\" doesn't exist or you don't have access to it"}"#)
            }
            "flaky" if seen.get() == 3 => json(500, r#"{"code":500,"message":"Error killing sandbox"}"#),
            "flaky" => HttpResponse::from_bytes(StatusCode::NO_CONTENT, ""),
            _ => json(500, r#"{"code":500,"message":"Error killing sandbox: boom"}"#),
        })
    });
    let (client, clock) = e2b(&http);
    assert_eq!(run_virtual(&clock, client.kill("alive")), Ok(true));
    assert_eq!(run_virtual(&clock, client.kill("gone")), Ok(false));
    check(
        &http.requests()[0],
        expect![[r#"
            DELETE https://api.e2b.test/sandboxes/alive
            accept: application/json
            x-api-key: e2b_k3y

        "#]],
    );
    // Retry, then success: one backoff of 100 ms.
    assert_eq!(run_virtual(&clock, client.kill("flaky")), Ok(true));
    assert_eq!(clock.elapsed_ms(), 100);
    // Exhaustion: three attempts, backoffs of 100 and 200 ms, then the typed error.
    let error = run_virtual(&clock, client.kill("broken")).unwrap_err();
    assert_eq!(error.to_string(), "e2b answered 500: internal error: Error killing sandbox: boom");
    assert_eq!(clock.elapsed_ms(), 400);
    assert_eq!(http.requests().len(), 7);
}

#[test]
fn create_retries_rate_limits_honouring_retry_after_but_not_timeouts() {
    let seen = Rc::new(Cell::new(0u32));
    let http = MemoryHttpClient::new(move |_| {
        seen.set(seen.get() + 1);
        Ok(if seen.get() < 3 {
            json(429, r#"{"code":429,"message":"Rate limit exceeded"}"#)
                .with_header(header_name("retry-after"), HeaderValue::from_static("1"))
        } else {
            json(201, CREATED)
        })
    });
    let (client, clock) = e2b(&http);
    let request = SandboxRequest { template: "base".into(), timeout_s: 5, env: vec![], metadata: Default::default() };
    let sandbox = run_virtual(&clock, client.create(request.clone())).unwrap();
    assert_eq!(sandbox.sandbox_id, "isbx1");
    // Two waits of Retry-After's 1 s, which is longer than the backoff and within the cap.
    assert_eq!(clock.elapsed_ms(), 2_000);

    let http = MemoryHttpClient::new(|_| Err(HttpError::Timeout));
    let (client, clock) = e2b(&http);
    let error = run_virtual(&clock, client.create(request)).unwrap_err();
    assert_eq!(error, ProviderError::Http { provider: "e2b", source: HttpError::Timeout });
    assert_eq!(http.requests().len(), 1, "a create whose answer was lost may have made a sandbox");
}

#[test]
fn set_timeout_posts_the_seconds() {
    let http = MemoryHttpClient::new(|_| Ok(HttpResponse::from_bytes(StatusCode::NO_CONTENT, "")));
    let (client, clock) = e2b(&http);
    run_virtual(&clock, client.set_timeout("isbx1", 90)).unwrap();
    check(
        &http.requests()[0],
        expect![[r#"
            POST https://api.e2b.test/sandboxes/isbx1/timeout
            accept: application/json
            content-type: application/json
            x-api-key: e2b_k3y

            {"timeout":90}"#]],
    );
    let http = MemoryHttpClient::new(|_| Ok(json(409, r#"{"code":409,"message":"sandbox is being killed"}"#)));
    let (client, clock) = e2b(&http);
    let error = run_virtual(&clock, client.set_timeout("isbx1", 90)).unwrap_err();
    assert_eq!(error.to_string(), "e2b answered 409: conflict: sandbox is being killed");
}

#[test]
fn every_status_maps_to_one_typed_error() {
    use E2bErrorKind::*;
    let table: [(u16, Option<E2bErrorKind>); 25] = [
        (101, Some(Unexpected)),
        (200, None),
        (201, None),
        (204, None),
        (302, Some(Unexpected)),
        (400, Some(InvalidArgument)),
        (401, Some(Unauthenticated)),
        (403, Some(PermissionDenied)),
        (404, Some(NotFound)),
        (405, Some(Client)),
        (409, Some(Conflict)),
        (413, Some(ResourceExhausted)),
        (415, Some(Client)),
        (429, Some(RateLimited)),
        (499, Some(Canceled)),
        (500, Some(Internal)),
        (501, Some(Unimplemented)),
        (502, Some(SandboxGone)),
        (503, Some(Unavailable)),
        (504, Some(DeadlineExceeded)),
        (505, Some(Unimplemented)),
        (507, Some(InsufficientStorage)),
        (508, Some(Server)),
        (599, Some(Server)),
        (600, Some(Unexpected)),
    ];
    for (code, kind) in table {
        let status = StatusCode::from_u16(code).unwrap();
        let error = error_for_status(status, b"");
        assert_eq!(error.as_ref().map(|error| error.kind), kind, "{code}");
        if let Some(error) = error {
            assert_eq!(error.status, code);
        }
    }
    let message = |body: &str| error_for_status(StatusCode::BAD_GATEWAY, body.as_bytes()).unwrap().message;
    assert_eq!(
        message(r#"{"sandboxId":"i1","message":"The sandbox was not found","code":502}"#),
        "The sandbox was not found"
    );
    assert_eq!(message("  Invalid sandbox port\n"), "Invalid sandbox port");
    assert_eq!(message(""), "bad gateway");
    assert_eq!(message(&"x".repeat(500)).len(), 200);
    let error: ProviderError =
        error_for_status(StatusCode::TOO_MANY_REQUESTS, br#"{"code":429,"message":"Rate limit exceeded"}"#)
            .unwrap()
            .into();
    assert_eq!(error.to_string(), "e2b answered 429: rate limited: Rate limit exceeded");
}

#[test]
fn debug_output_hides_the_api_key() {
    let http = MemoryHttpClient::new(|_| Ok(json(200, "{}")));
    let (client, _clock) = e2b(&http);
    let debug = format!("{client:?}");
    assert!(!debug.contains("e2b_k3y"), "{debug}");
}

/// A provider that never answers: every request waits for ever.
struct Silent(std::cell::Cell<u32>);

impl HttpClient for Silent {
    fn send(&self, _request: HttpRequest) -> futures::future::LocalBoxFuture<'_, Result<HttpResponse, HttpError>> {
        self.0.set(self.0.get() + 1);
        Box::pin(futures::future::pending())
    }
}

/// A create is given the official SDK's 60 s, not the 10 s other calls get, and is sent once: a
/// create that may have reached E2B is never repeated.
#[test]
fn a_create_waits_as_long_as_the_sdk_and_is_sent_once() {
    let http = Silent(std::cell::Cell::new(0));
    let clock = VirtualClock::new();
    let client = E2bClient::new(&http, clock.clone(), config());
    let request = SandboxRequest { template: "base".into(), timeout_s: 5, env: vec![], metadata: Default::default() };
    let error = run_virtual(&clock, client.create(request)).unwrap_err();
    assert_eq!(error, ProviderError::Http { provider: "e2b", source: HttpError::Timeout });
    assert_eq!(clock.elapsed_ms(), 60_000);
    assert_eq!(http.0.get(), 1);
}

/// E2B's answers for a template that does not exist (404) or is another team's (403) become a
/// message that names the template and how to build mayfly's; other refusals keep E2B's words.
#[test]
fn a_missing_template_is_named_with_how_to_build_one() {
    let request = SandboxRequest { template: "mayfly".into(), timeout_s: 5, env: vec![], metadata: Default::default() };
    for (status, body) in [
        (404, r#"{"code":404,"message":"template 'mayfly' not found"}"#),
        (403, r#"{"code":403,"message":"Team 'x' does not have access to the template 'mayfly'"}"#),
    ] {
        let http = MemoryHttpClient::new(move |_| Ok(json(status, body)));
        let (client, clock) = e2b(&http);
        let message = run_virtual(&clock, client.create(request.clone())).unwrap_err().to_string();
        assert!(message.starts_with(&format!("e2b answered {status}: E2B has no template \"mayfly\"")), "{message}");
        assert!(message.contains("templates/mayfly/build.py"), "{message}");
    }
    let http = MemoryHttpClient::new(|_| Ok(json(403, r#"{"code":403,"message":"Team is blocked"}"#)));
    let (client, clock) = e2b(&http);
    let message = run_virtual(&clock, client.create(request)).unwrap_err().to_string();
    assert_eq!(message, "e2b answered 403: permission denied: Team is blocked");
}

#[test]
fn failures_say_what_kind_they_are() {
    let http = MemoryHttpClient::new(|request| {
        Ok(match request.url.rsplit('/').nth(1).unwrap_or_default() {
            "gone" => json(404, r#"{"code":404,"message":"Sandbox \"gone\" doesn't exist"}"#),
            "busy" => json(429, r#"{"code":429,"message":"Rate limit exceeded"}"#),
            _ => json(502, r#"{"sandboxId":"isbx1","message":"The sandbox was not found","code":502}"#),
        })
    });
    let (client, clock) = e2b(&http);
    let not_found = run_virtual(&clock, client.set_timeout("gone", 60)).unwrap_err();
    assert_eq!(not_found.kind(), ProviderErrorKind::NotFound);
    assert_eq!(not_found.to_string(), r#"e2b answered 404: not found: Sandbox "gone" doesn't exist"#);
    // A rate limit is retried until attempts run out, and is still a rate limit then.
    let limited = run_virtual(&clock, client.set_timeout("busy", 60)).unwrap_err();
    assert_eq!(limited.kind(), ProviderErrorKind::RateLimited);
    assert_eq!(limited.to_string(), "e2b answered 429: rate limited: Rate limit exceeded");
    // Through the proxy, a 502 means the sandbox is gone: not a fault worth waiting out.
    let gone = run_virtual(&clock, client.upload(&handle(), "/home/user/main.py", Bytes::new())).unwrap_err();
    assert_eq!(gone.kind(), ProviderErrorKind::SandboxGone);

    let http = MemoryHttpClient::new(|_| Err(HttpError::Connect("connection refused".into())));
    let (client, clock) = e2b(&http);
    let unreachable = run_virtual(&clock, client.kill("isbx1")).unwrap_err();
    assert_eq!(unreachable.kind(), ProviderErrorKind::Network);
    assert_eq!(unreachable.to_string(), "e2b could not be reached: could not connect: connection refused");
}
