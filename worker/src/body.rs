//! Reading a request's body without ever holding more of it than a route accepts.
//!
//! At most `max` bytes are kept. A body over that is refused with `413`; so that an ordinary
//! client (one that sends its whole body before it reads the answer) gets that answer rather than
//! a reset connection, the rest of a body is read and dropped — but never more than
//! [`DISCARD_BYTES`]: a body announced larger than the limit and that (`Content-Length`) is
//! refused before a byte is read, and one without a length (chunked) as soon as that much more has
//! come, however long it would go on.

use futures::StreamExt;
use mayfly_core::{ApiError, ErrorCode};
use worker::Request;

/// How much of a body past its limit is read and dropped before the refusal is sent anyway.
pub(crate) const DISCARD_BYTES: usize = 8 << 20;

/// The body of `req`, if it is at most `max` bytes.
pub(crate) async fn read_limited(req: &mut Request, max: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: String| {
        ApiError::new(ErrorCode::PayloadTooLarge, format!("the body is {size} bytes; the limit is {max}"))
    };
    let declared = req.headers().get("Content-Length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(declared) = declared.filter(|d| *d > (max + DISCARD_BYTES) as u64) {
        return Err(too_large(declared.to_string()));
    }
    // No body at all (no Content-Length, no chunks) is an empty one.
    let Ok(mut stream) = req.stream() else { return Ok(Vec::new()) };
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::new(ErrorCode::InvalidRequest, format!("reading the body: {err}")))?;
        seen += chunk.len();
        if seen > max + DISCARD_BYTES {
            return Err(too_large(format!("more than {seen}")));
        }
        if seen <= max {
            body.extend_from_slice(&chunk);
        } else if !body.is_empty() {
            // Past the limit: what was kept goes, and the rest is only counted.
            body = Vec::new();
        }
    }
    if seen > max {
        return Err(too_large(seen.to_string()));
    }
    Ok(body)
}
