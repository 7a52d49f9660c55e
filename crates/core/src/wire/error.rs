//! The edge API's error body, `{"error": {"code": "...", "message": "..."}}`, and its status codes.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Clients branch on the code, people read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON, or not the JSON the route takes.
    InvalidJson,
    /// The body parsed but a value is not allowed (path, env name, timeout, ...).
    InvalidRequest,
    /// The body, the code or a file is larger than the limits allow.
    PayloadTooLarge,
    /// No API key, or one that is not known; a turn token that is expired, forged or altered.
    Unauthorized,
    /// A credential that is valid but may not do this: a turn token on a route that needs the
    /// tenant's API key, or a browser's preflight from an origin the deployment does not allow.
    Forbidden,
    /// No such route, or no such turn for this tenant.
    NotFound,
    MethodNotAllowed,
    /// The request cannot be done in the turn's current state (keep after reap, say).
    Conflict,
    /// A limit on what one tenant may hold at once: running turns, viewers of one turn. The
    /// answer's `Retry-After` says when to try again.
    TooManyRequests,
    /// A provider refused or failed; the turn could not go on.
    ProviderUnavailable,
    /// A fault of mayfly's own; the details are in its log, not in the answer.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::ProviderUnavailable => 502,
        }
    }
}

/// The inner object of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The body to send, `{"error": {...}}`.
    pub fn into_body(self) -> ErrorBody {
        ErrorBody { error: self }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status())
    }
}

impl std::error::Error for ApiError {}

/// Every error answer of the edge API has this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn error_body_shape() {
        let body = ApiError::new(ErrorCode::PayloadTooLarge, "code is 300000 bytes; the limit is 262144").into_body();
        let json = serde_json::to_string(&body).unwrap();
        expect![[r#"{"error":{"code":"payload_too_large","message":"code is 300000 bytes; the limit is 262144"}}"#]]
            .assert_eq(&json);
        assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), body);
    }

    #[test]
    fn every_code_has_a_fitting_status() {
        let codes = [
            ErrorCode::InvalidJson,
            ErrorCode::InvalidRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::TooManyRequests,
            ErrorCode::ProviderUnavailable,
            ErrorCode::Internal,
        ];
        let table: Vec<String> =
            codes.iter().map(|c| format!("{} {}", serde_json::to_string(c).unwrap(), c.status())).collect();
        expect![[r#"
            [
                "\"invalid_json\" 400",
                "\"invalid_request\" 400",
                "\"payload_too_large\" 413",
                "\"unauthorized\" 401",
                "\"forbidden\" 403",
                "\"not_found\" 404",
                "\"method_not_allowed\" 405",
                "\"conflict\" 409",
                "\"too_many_requests\" 429",
                "\"provider_unavailable\" 502",
                "\"internal\" 500",
            ]
        "#]]
        .assert_debug_eq(&table);
    }
}
