//! Reading a request's body without ever holding more of it than a route accepts: a declared
//! `Content-Length` over the limit is refused before a byte is read, and a body without one
//! (chunked) is refused as soon as what arrived passes the limit.

use futures::StreamExt;
use mayfly_core::{ApiError, ErrorCode};
use worker::Request;

/// The body of `req`, if it is at most `max` bytes.
pub(crate) async fn read_limited(req: &mut Request, max: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("Content-Length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(declared) = declared.filter(|d| *d > max as u64) {
        let message = format!("the body is {declared} bytes; the limit is {max}");
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, message));
    }
    // No body at all (no Content-Length, no chunks) is an empty one.
    let Ok(mut stream) = req.stream() else { return Ok(Vec::new()) };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::new(ErrorCode::InvalidRequest, format!("reading the body: {err}")))?;
        if body.len() + chunk.len() > max {
            let message = format!("the body is over the limit of {max} bytes");
            return Err(ApiError::new(ErrorCode::PayloadTooLarge, message));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
