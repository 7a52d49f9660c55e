//! The process stream: `process.Process/Start` sent once with envd's headers, its frames read at
//! every split point, and every way it can end — exit, error frame, malformed frame, cut off (with
//! the health probe that tells a gone sandbox from a cut connection), refused.

use std::rc::Rc;

use expect_test::expect;
use futures::StreamExt;

use super::*;
use crate::providers::ProcessEvent;
// The worked example's response (`docs/protocols/e2b.md` §2.6), frame by frame.
use crate::wire::connect::golden::WORKED_EXAMPLE_RESPONSE as FRAMES;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn frames(frames: &[(u8, &str)]) -> Vec<u8> {
    frames.iter().flat_map(|(flags, payload)| connect::encode(*flags, payload.as_bytes()).to_vec()).collect()
}

fn stream(chunks: Vec<Result<Bytes, HttpError>>) -> HttpResponse {
    HttpResponse::from_chunks(StatusCode::OK, chunks)
        .with_header(header_name("content-type"), HeaderValue::from_static("application/connect+json"))
}

/// A request as text: method, URL, headers sorted by name, then the body (an envelope shown as its
/// prefix and payload).
fn process() -> ProcessRequest {
    ProcessRequest {
        command: "python3 /tmp/agent.py".into(),
        env: vec![("TURN_ID".into(), "t1".into())],
        cwd: "/tmp".into(),
        timeout_ms: 600_000,
    }
}

fn run_process(http: &MemoryHttpClient) -> Vec<Result<ProcessEvent, ProviderError>> {
    let (client, clock) = e2b(http);
    let sandbox = handle();
    run_virtual(&clock, async {
        match client.start(&sandbox, process()).await {
            Ok(events) => events.collect().await,
            Err(error) => vec![Err(error)],
        }
    })
}

fn golden_events() -> Vec<Result<ProcessEvent, ProviderError>> {
    vec![
        Ok(ProcessEvent::Started { pid: 412 }),
        Ok(ProcessEvent::Stdout(Bytes::from_static(b"hello\n"))),
        Ok(ProcessEvent::Stderr(Bytes::from_static(b"warn: x\n"))),
        Ok(ProcessEvent::Exited { exit_code: 3 }),
    ]
}

#[test]
fn local_stand_in_mode_routes_envd_by_headers_on_the_api_host() {
    let http = MemoryHttpClient::new(|_| Ok(stream(vec![Ok(Bytes::from(frames(&FRAMES)))])));
    let clock = VirtualClock::new();
    let config = E2bConfig { envd_url: Some("http://127.0.0.1:3000/".into()), ..config() };
    let client = E2bClient::new(&http, clock.clone(), config);
    let sandbox = handle();
    let events: Vec<_> =
        run_virtual(&clock, async { client.start(&sandbox, process()).await.unwrap().collect().await });
    assert_eq!(events, golden_events());
    check(
        &http.requests()[0],
        expect![[r#"
            POST http://127.0.0.1:3000/process.Process/Start
            authorization: Basic dXNlcjo=
            connect-protocol-version: 1
            connect-timeout-ms: 600000
            content-type: application/connect+json
            e2b-sandbox-id: isbx1
            e2b-sandbox-port: 49983
            keepalive-ping-interval: 30
            x-access-token: envd-tok

            [00, 00, 00, 00, 7d] {"process":{"cmd":"/bin/bash","args":["-l","-c","python3 /tmp/agent.py"],"envs":{"TURN_ID":"t1"},"cwd":"/tmp"},"stdin":false}"#]],
    );
}

#[test]
fn start_omits_the_deadline_header_for_no_deadline() {
    let http = MemoryHttpClient::new(|_| Ok(stream(vec![Ok(Bytes::from(frames(&FRAMES)))])));
    let (client, clock) = e2b(&http);
    let sandbox = handle();
    let request = ProcessRequest { timeout_ms: 0, cwd: String::new(), ..process() };
    run_virtual(&clock, async { client.start(&sandbox, request).await.unwrap().collect::<Vec<_>>().await });
    let sent = &http.requests()[0];
    assert!(sent.headers.get("connect-timeout-ms").is_none());
    assert!(!String::from_utf8_lossy(&sent.body).contains("cwd"));
}

#[test]
fn the_stream_split_at_every_byte_gives_the_same_events() {
    let bytes = frames(&FRAMES);
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        let chunks = [Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)];
        let http = MemoryHttpClient::new(move |_| Ok(stream(chunks.iter().cloned().map(Ok).collect())));
        assert_eq!(run_process(&http), golden_events(), "split at {cut}");
    }
    let singles: Vec<Bytes> = bytes.iter().map(|byte| Bytes::copy_from_slice(&[*byte])).collect();
    let http = MemoryHttpClient::new(move |_| Ok(stream(singles.iter().cloned().map(Ok).collect())));
    assert_eq!(run_process(&http), golden_events());
}

#[test]
fn an_absent_exit_code_is_zero() {
    let body = frames(&[
        (0, r#"{"event":{"start":{"pid":7}}}"#),
        (0, r#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#),
        (2, "{}"),
    ]);
    let http = MemoryHttpClient::new(move |_| Ok(stream(vec![Ok(Bytes::from(body.clone()))])));
    assert_eq!(
        run_process(&http),
        vec![Ok(ProcessEvent::Started { pid: 7 }), Ok(ProcessEvent::Exited { exit_code: 0 })]
    );
}

#[test]
fn an_error_frame_is_a_typed_error() {
    let body = frames(&[
        (0, r#"{"event":{"start":{"pid":7}}}"#),
        (0, r#"{"event":{"data":{"stdout":"aGk="}}}"#),
        (2, r#"{"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}}"#),
    ]);
    let http = MemoryHttpClient::new(move |_| Ok(stream(vec![Ok(Bytes::from(body.clone()))])));
    let events = run_process(&http);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2].as_ref().unwrap_err().to_string(),
        "e2b answered 504: deadline exceeded: deadline_exceeded: context deadline exceeded"
    );
    // A start-time failure comes as the error frame alone.
    let body = frames(&[(2, r#"{"error":{"code":"invalid_argument","message":"cwd '/nope' does not exist"}}"#)]);
    let http = MemoryHttpClient::new(move |_| Ok(stream(vec![Ok(Bytes::from(body.clone()))])));
    assert!(matches!(run_process(&http)[..], [Err(ProviderError::Status { status: 400, .. })]));
}

#[test]
fn malformed_streams_are_protocol_errors() {
    let cases: [(&str, Vec<(u8, &str)>); 4] = [
        ("no start first", vec![(0, r#"{"event":{"data":{"stdout":"aGk="}}}"#), (2, "{}")]),
        ("no end event", vec![(0, r#"{"event":{"start":{"pid":1}}}"#), (2, "{}")]),
        ("not json", vec![(0, "nope")]),
        ("two starts", vec![(0, r#"{"event":{"start":{"pid":1}}}"#), (0, r#"{"event":{"start":{"pid":2}}}"#)]),
    ];
    for (name, case) in cases {
        let body = frames(&case);
        let http = MemoryHttpClient::new(move |_| Ok(stream(vec![Ok(Bytes::from(body.clone()))])));
        let last = run_process(&http).pop().unwrap();
        assert!(matches!(last, Err(ProviderError::Protocol { .. })), "{name}: {last:?}");
    }
    let compressed = connect::encode(connect::FLAG_COMPRESSED, b"xx");
    let http = MemoryHttpClient::new(move |_| Ok(stream(vec![Ok(compressed.clone())])));
    assert!(matches!(run_process(&http)[..], [Err(ProviderError::Protocol { .. })]));
    let http = MemoryHttpClient::new(|_| Ok(json(200, "<html>")));
    assert_eq!(
        run_process(&http)[0].as_ref().unwrap_err().to_string(),
        "e2b sent an answer mayfly does not understand: process stream has content type \"application/json\""
    );
}

/// A stream cut after the start event, with `/health` answering `health`.
fn truncated_run(
    health: u16,
    cut: Result<Bytes, HttpError>,
) -> (Vec<Result<ProcessEvent, ProviderError>>, Vec<String>) {
    let start = Bytes::from(frames(&FRAMES[..2]));
    let cut = Rc::new(cut);
    let http = MemoryHttpClient::new(move |request| {
        Ok(if request.url.ends_with("/health") {
            json(health, r#"{"sandboxId":"isbx1","message":"The sandbox was not found","code":502}"#)
        } else {
            stream(vec![Ok(start.clone()), (*cut).clone()])
        })
    });
    let events = run_process(&http);
    (events, http.requests().iter().map(|request| format!("{} {}", request.method, request.url)).collect())
}

#[test]
fn a_truncated_stream_is_an_error_and_the_health_probe_tells_why() {
    let (events, requests) = truncated_run(502, Err(HttpError::Body("connection reset".into())));
    assert_eq!(events[..2], golden_events()[..2]);
    assert_eq!(
        events[2].as_ref().unwrap_err().to_string(),
        "e2b answered 502: sandbox gone: the sandbox was killed or expired while the process ran"
    );
    assert_eq!(requests[1], "GET https://49983-isbx1.e2b.test/health");

    // The sandbox is fine, so the connection was cut; also when the body just ends mid-frame.
    let (events, _) = truncated_run(204, Err(HttpError::Body("connection reset".into())));
    assert_eq!(events[2], Err(ProviderError::StreamTruncated));
    let (events, requests) = truncated_run(204, Ok(Bytes::from_static(&[0, 0, 0, 0, 9, b'{'])));
    assert_eq!(events[2], Err(ProviderError::StreamTruncated));
    assert_eq!(requests.len(), 2);
}

#[test]
fn a_refused_start_is_a_typed_error_and_is_not_retried() {
    let http = MemoryHttpClient::new(|_| {
        Ok(json(401, r#"{"code":401,"message":"unauthorized access, please provide a valid access token"}"#))
    });
    let events = run_process(&http);
    assert_eq!(
        events[0].as_ref().unwrap_err().to_string(),
        "e2b answered 401: unauthenticated: unauthorized access, please provide a valid access token"
    );
    let http = MemoryHttpClient::new(|_| Ok(json(503, "{}")));
    run_process(&http);
    assert_eq!(http.requests().len(), 1, "a retried Start could run the code twice");
}
