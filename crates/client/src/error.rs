//! How a call to the edge API fails, typed: the API's own refusal (`{"error": {code, message}}`
//! with its status), a status without that body (a proxy's page, say), no answer at all, or an
//! answer that is not what the route promises.

use mayfly_core::{ErrorBody, ErrorCode};

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The API refused, with its error body. `code` is the body's code as sent, so a code newer
    /// than this client still arrives; [`ClientError::code`] reads it as core's [`ErrorCode`].
    #[error("{message} ({status})")]
    Api { status: u16, code: String, message: String },
    /// An error status whose body is not the API's (a proxy or a gateway answered).
    #[error("the API answered {status}")]
    Status { status: u16, body: String },
    /// No answer: the network, a refused connection, a dropped stream.
    #[error("the API is unreachable: {0}")]
    Transport(String),
    /// An answer that is not the JSON the route promises.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// The error for an answer of `status` (not a success) with `body`.
    pub fn from_answer(status: u16, body: &str) -> ClientError {
        #[derive(serde::Deserialize)]
        struct Loose {
            error: LooseError,
        }
        #[derive(serde::Deserialize)]
        struct LooseError {
            code: String,
            message: String,
        }
        match serde_json::from_str::<Loose>(body) {
            Ok(Loose { error }) => ClientError::Api { status, code: error.code, message: error.message },
            Err(_) => ClientError::Status { status, body: body.chars().take(512).collect() },
        }
    }

    /// The HTTP status, when the API (or something in front of it) answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Status { status, .. } => Some(*status),
            ClientError::Transport(_) | ClientError::Decode(_) => None,
        }
    }

    /// The API's error code, when it sent one this client knows.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => serde_json::from_value(serde_json::Value::String(code.clone())).ok(),
            _ => None,
        }
    }

    /// Whether asking again may succeed: no answer, a limit (`429`) or a fault on the server's
    /// side. A refused key, a turn that does not exist or a bad request stay as they are.
    pub fn is_transient(&self) -> bool {
        match self.status() {
            None => matches!(self, ClientError::Transport(_)),
            Some(status) => status == 429 || status >= 500,
        }
    }

    /// The API's error as core types it, when the code is one core knows.
    pub fn api_error(&self) -> Option<mayfly_core::ApiError> {
        match self {
            ClientError::Api { message, .. } => Some(mayfly_core::ApiError::new(self.code()?, message.clone())),
            _ => None,
        }
    }
}

impl From<ErrorBody> for ClientError {
    fn from(body: ErrorBody) -> ClientError {
        let code = body.error.code;
        ClientError::Api {
            status: code.status(),
            code: serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            message: body.error.message,
        }
    }
}

/// What a call answers: its value, or why not.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use mayfly_core::ApiError;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn the_apis_refusal_is_typed_with_its_status_code_and_message() {
        let body = r#"{"error":{"code":"not_found","message":"no such turn"}}"#;
        let err = ClientError::from_answer(404, body);
        assert_eq!(err, ClientError::Api { status: 404, code: "not_found".into(), message: "no such turn".into() });
        assert_eq!(err.code(), Some(ErrorCode::NotFound));
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.to_string(), "no such turn (404)");
        assert_eq!(err.api_error(), Some(ApiError::new(ErrorCode::NotFound, "no such turn")));
        assert!(!err.is_transient());
    }

    #[test]
    fn a_code_newer_than_the_client_still_arrives() {
        let err = ClientError::from_answer(409, r#"{"error":{"code":"idempotency_mismatch","message":"m"}}"#);
        assert_eq!(err.code(), None);
        assert!(matches!(&err, ClientError::Api { code, .. } if code == "idempotency_mismatch"));
    }

    #[test]
    fn a_body_that_is_not_the_apis_keeps_its_status() {
        let err = ClientError::from_answer(502, "<html>bad gateway</html>");
        assert_eq!(err, ClientError::Status { status: 502, body: "<html>bad gateway</html>".into() });
        assert_eq!(err.to_string(), "the API answered 502");
        assert!(err.is_transient());
    }

    #[test]
    fn transient_failures_are_no_answer_limits_and_server_faults() {
        assert!(ClientError::Transport("reset".into()).is_transient());
        assert!(ClientError::from_answer(429, r#"{"error":{"code":"too_many_requests","message":"m"}}"#).is_transient());
        assert!(!ClientError::from_answer(401, r#"{"error":{"code":"unauthorized","message":"m"}}"#).is_transient());
        assert!(!ClientError::Decode("x".into()).is_transient());
    }

    #[test]
    fn cores_error_body_converts_with_its_status() {
        let err = ClientError::from(ApiError::new(ErrorCode::Conflict, "too late").into_body());
        assert_eq!(err, ClientError::Api { status: 409, code: "conflict".into(), message: "too late".into() });
    }
}
