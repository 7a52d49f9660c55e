//! The little of HTTP/1.1 the fault proxy reads: a message's head, a request's method, path and
//! length, and whether an answer has a body at all.

use std::io::Read;
use std::net::TcpStream;

/// The longest head the proxy reads before it gives up on the request.
const MAX_HEAD: usize = 64 * 1024;

/// Whether an answer's head says that no body follows it.
pub(super) fn head_says_no_body(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.starts_with("http/1.1 204") || text.starts_with("http/1.1 304") || text.contains("\r\ncontent-length: 0\r\n")
}

/// Reads until the end of an HTTP head; returns the head (with its blank line) and what followed.
pub(super) fn read_head(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads (and drops) the rest of a request body of `length` bytes, `have` of which were read.
pub(super) fn read_body(stream: &mut TcpStream, have: usize, length: Option<usize>) -> std::io::Result<()> {
    let mut left = length.unwrap_or(0).saturating_sub(have);
    let mut chunk = [0u8; 8192];
    while left > 0 {
        let n = stream.read(&mut chunk[..left.min(8192)])?;
        if n == 0 {
            break;
        }
        left -= n;
    }
    Ok(())
}

/// The parts of a request head the proxy looks at.
#[derive(Debug)]
pub(super) struct RequestHead {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) content_length: Option<usize>,
}

impl RequestHead {
    pub(super) fn parse(head: &[u8]) -> Option<RequestHead> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_owned();
        let target = first.next()?;
        let path = target.split('?').next().unwrap_or(target).to_owned();
        let content_length = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok());
        Some(RequestHead { method, path, content_length })
    }

    /// The head with `Connection: close` in place of whatever the client asked for.
    pub(super) fn rewritten(&self, head: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(head);
        let mut out = String::with_capacity(text.len() + 20);
        for line in text.trim_end_matches("\r\n").split("\r\n") {
            let name = line.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("connection: close\r\n\r\n");
        out.into_bytes()
    }
}
