//! The edge API's routes as data: where each call goes, with which headers and body, and how its
//! answer reads. Every backend sends these [`Call`]s as they are, so the routes, the key's
//! headers and the reading of answers exist once for the native and the wasm client alike.

use mayfly_core::url::percent_encode;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, Result};

/// The header that makes a create safe to retry: the same key gives back the same turn where
/// the API supports it, and is ignored where it does not.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The WebSocket subprotocol the API answers with; a browser cannot send `Authorization` on a
/// WebSocket, so the key rides as a second subprotocol, `bearer.<key>`.
pub const SOCKET_PROTOCOL: &str = "mayfly";

/// Where the API is: its base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
}

impl Endpoint {
    /// The API at `base_url` (`https://mayfly.example`); a path prefix is kept.
    pub fn new(base_url: &str) -> Endpoint {
        Endpoint { base: base_url.trim().trim_end_matches('/').to_owned() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn turns(&self) -> String {
        format!("{}/v1/turns", self.base)
    }

    /// A turn's own URL; the id is encoded, so no id can reach another route.
    pub fn turn(&self, turn_id: &str) -> String {
        format!("{}/v1/turns/{}", self.base, percent_encode(turn_id))
    }

    pub fn keep(&self, turn_id: &str) -> String {
        format!("{}/keep", self.turn(turn_id))
    }

    /// The event stream after `after`, over HTTP (Server-Sent Events).
    pub fn events(&self, turn_id: &str, after: u64) -> String {
        format!("{}/events?after={after}", self.turn(turn_id))
    }

    /// The event stream after `after`, as a WebSocket URL (`ws:` for `http:`, `wss:` for `https:`).
    pub fn events_socket(&self, turn_id: &str, after: u64) -> String {
        let url = self.events(turn_id, after);
        match url.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some(("http", rest)) => format!("ws://{rest}"),
            _ => url,
        }
    }
}

/// An HTTP method the API's turn routes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One request to send: everything a backend needs and nothing it must decide. Its `Debug` leaves
/// the credential out, so a call can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body, sent with `Content-Type: application/json`.
    pub body: Option<String>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (*name, if name.eq_ignore_ascii_case("authorization") { "<hidden>" } else { value }))
            .collect();
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

impl Call {
    fn new(method: Method, url: String, key: &str) -> Call {
        Call { method, url, headers: vec![("Authorization", format!("Bearer {key}"))], body: None }
    }

    /// `POST /v1/turns`, with an `Idempotency-Key` when one is given.
    pub fn create(
        endpoint: &Endpoint,
        key: &str,
        request: &mayfly_core::CreateTurnRequest,
        idempotency_key: Option<&str>,
    ) -> Call {
        let mut call = Call::new(Method::Post, endpoint.turns(), key);
        if let Some(idempotency_key) = idempotency_key {
            call.headers.push((IDEMPOTENCY_KEY, idempotency_key.to_owned()));
        }
        // A request of core's type always serializes.
        call.body = Some(serde_json::to_string(request).unwrap_or_default());
        call
    }

    /// `GET /v1/turns/{id}`.
    pub fn detail(endpoint: &Endpoint, key: &str, turn_id: &str) -> Call {
        Call::new(Method::Get, endpoint.turn(turn_id), key)
    }

    /// `DELETE /v1/turns/{id}`.
    pub fn cancel(endpoint: &Endpoint, key: &str, turn_id: &str) -> Call {
        Call::new(Method::Delete, endpoint.turn(turn_id), key)
    }

    /// `POST /v1/turns/{id}/keep`.
    pub fn keep(endpoint: &Endpoint, key: &str, turn_id: &str) -> Call {
        Call::new(Method::Post, endpoint.keep(turn_id), key)
    }

    /// `GET /v1/turns/{id}/events` as Server-Sent Events from `after` (`Last-Event-ID` too, which
    /// the API counts like `after`, so a proxy that strips the query cannot restart the log).
    pub fn events(endpoint: &Endpoint, key: &str, turn_id: &str, after: u64) -> Call {
        let mut call = Call::new(Method::Get, endpoint.events(turn_id, after), key);
        call.headers.push(("Accept", "text/event-stream".to_owned()));
        call.headers.push(("Last-Event-ID", after.to_string()));
        call
    }
}

/// The subprotocols a WebSocket of the event stream offers, the key among them.
pub fn socket_protocols(key: &str) -> [String; 2] {
    [SOCKET_PROTOCOL.to_owned(), format!("bearer.{key}")]
}

/// An answer as a backend received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    fn checked(self) -> Result<Answer> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(ClientError::from_answer(self.status, &self.body))
        }
    }

    /// The JSON body of a successful answer, or the error the answer is.
    pub fn json<T: DeserializeOwned>(self) -> Result<T> {
        let answer = self.checked()?;
        serde_json::from_str(&answer.body).map_err(|err| ClientError::Decode(err.to_string()))
    }

    /// A successful answer whose body does not matter, or the error the answer is.
    pub fn empty(self) -> Result<()> {
        self.checked().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use mayfly_core::{CreateTurnRequest, CreateTurnResponse, Language};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn a_call_printed_for_debugging_never_shows_the_credential() {
        let call = Call::detail(&Endpoint::new("https://api.example"), "mk_secret-key", "t_1");
        let printed = format!("{call:?}");
        assert!(!printed.contains("mk_secret-key"), "{printed}");
        assert!(printed.contains("Authorization") && printed.contains("/v1/turns/t_1"), "{printed}");
        assert!(call.headers.contains(&("Authorization", "Bearer mk_secret-key".to_owned())));
    }

    #[test]
    fn urls_keep_a_prefix_encode_ids_and_switch_schemes_for_sockets() {
        let api = Endpoint::new("https://api.example/mayfly/");
        assert_eq!(api.turns(), "https://api.example/mayfly/v1/turns");
        assert_eq!(api.turn("t_1/../x"), "https://api.example/mayfly/v1/turns/t_1%2F..%2Fx");
        assert_eq!(api.keep("t_1"), "https://api.example/mayfly/v1/turns/t_1/keep");
        assert_eq!(api.events("t_1", 7), "https://api.example/mayfly/v1/turns/t_1/events?after=7");
        assert_eq!(api.events_socket("t_1", 7), "wss://api.example/mayfly/v1/turns/t_1/events?after=7");
        assert_eq!(
            Endpoint::new("http://127.0.0.1:8787").events_socket("t", 0),
            "ws://127.0.0.1:8787/v1/turns/t/events?after=0"
        );
    }

    #[test]
    fn a_create_carries_the_key_the_body_and_an_idempotency_key_when_given() {
        let api = Endpoint::new("http://h");
        let request = CreateTurnRequest::new("print(1)", Language::Python);
        let call = Call::create(&api, "k", &request, Some("retry-1"));
        assert_eq!((call.method, call.url.as_str()), (Method::Post, "http://h/v1/turns"));
        assert_eq!(call.headers, [("Authorization", "Bearer k".to_owned()), (IDEMPOTENCY_KEY, "retry-1".to_owned())]);
        let sent: CreateTurnRequest = serde_json::from_str(call.body.as_deref().unwrap()).unwrap();
        assert_eq!(sent, request);
        let plain = Call::create(&api, "k", &request, None);
        assert!(plain.headers.iter().all(|(name, _)| *name != IDEMPOTENCY_KEY));
    }

    #[test]
    fn the_event_stream_asks_for_server_sent_events_after_the_last_seq() {
        let call = Call::events(&Endpoint::new("http://h"), "k", "t", 12);
        assert_eq!(call.url, "http://h/v1/turns/t/events?after=12");
        assert!(call.headers.contains(&("Accept", "text/event-stream".to_owned())));
        assert!(call.headers.contains(&("Last-Event-ID", "12".to_owned())));
        assert_eq!(socket_protocols("k"), ["mayfly".to_owned(), "bearer.k".to_owned()]);
    }

    #[test]
    fn answers_read_as_their_type_or_their_error() {
        let ok = Answer { status: 201, body: r#"{"turn_id":"t","events_url":"/e","status_url":"/s"}"#.into() };
        assert_eq!(ok.json::<CreateTurnResponse>().unwrap().turn_id, "t");
        let refused = Answer { status: 401, body: r#"{"error":{"code":"unauthorized","message":"no key"}}"#.into() };
        assert_eq!(refused.json::<CreateTurnResponse>().unwrap_err().status(), Some(401));
        let garbled = Answer { status: 200, body: "{".into() };
        assert!(matches!(garbled.json::<CreateTurnResponse>(), Err(ClientError::Decode(_))));
        assert_eq!(Answer { status: 202, body: String::new() }.empty(), Ok(()));
    }
}
