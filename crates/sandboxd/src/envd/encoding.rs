//! `/files`' content codings, as envd negotiates them (docs/protocols/envd-rules.md, "gzip"):
//! uploads may be gzip (`Content-Encoding`), downloads are gzip when `Accept-Encoding` prefers it.
//!
//! Neither side is ever whole in sandboxd's memory: an upload is decoded as it streams into the
//! jail, and a download is compressed inside the jail, by `gzip` under the sandbox's own CPU limit.

use async_compression::tokio::bufread::GzipDecoder;
use axum::http::{header, HeaderMap};
use tokio::io::{AsyncRead, BufReader};

/// A coding `/files` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Identity,
    Gzip,
}

/// `name;q=x` → (lowercased name, quality); a missing or unparsable `q` is 1.
fn with_quality(value: &str) -> (String, f64) {
    let mut parts = value.split(';');
    let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let q = parts
        .filter_map(|p| {
            let p = p.trim();
            p.get(..2).filter(|k| k.eq_ignore_ascii_case("q=")).and_then(|_| p[2..].trim().parse::<f64>().ok())
        })
        // The last `q` wins, as envd reads them.
        .next_back()
        .unwrap_or(1.0);
    (name, q)
}

/// The request body's coding; `Err` names what is not supported.
pub(super) fn content_encoding(headers: &HeaderMap) -> Result<Coding, String> {
    let Some(raw) = headers.get(header::CONTENT_ENCODING) else { return Ok(Coding::Identity) };
    let value = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    match with_quality(&value).0.as_str() {
        "" | "identity" => Ok(Coding::Identity),
        "gzip" => Ok(Coding::Gzip),
        _ => Err(format!("unsupported Content-Encoding: {value}, supported: [gzip]")),
    }
}

/// The coding a download is sent in: the supported one of highest quality, identity unless it
/// (or `*`, with no word on identity) is refused with `q=0`; `Err` when nothing is acceptable.
pub(super) fn accept_encoding(headers: &HeaderMap) -> Result<Coding, String> {
    let header = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    if header.trim().is_empty() {
        return Ok(Coding::Identity);
    }
    let mut codings: Vec<(String, f64)> = header.split(',').map(with_quality).collect();
    let identity_accepted = codings.iter().any(|(n, q)| n == "identity" && *q > 0.0);
    let identity_rejected = codings.iter().any(|(n, q)| n == "identity" && *q == 0.0)
        || (codings.iter().any(|(n, q)| n == "*" && *q == 0.0) && !identity_accepted);
    // Stable, so equal qualities keep the client's order.
    codings.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (name, q) in &codings {
        if *q == 0.0 {
            continue;
        }
        match name.as_str() {
            "identity" => return Ok(Coding::Identity),
            "*" if identity_rejected => return Ok(Coding::Gzip),
            "*" => return Ok(Coding::Identity),
            "gzip" => return Ok(Coding::Gzip),
            _ => {}
        }
    }
    if identity_rejected {
        Err("no acceptable encoding found, supported: [gzip]".into())
    } else {
        Ok(Coding::Identity)
    }
}

/// An upload's bytes as the file will hold them. A gzip body may be several members, as Go's
/// reader (and so envd) accepts.
pub(super) fn decoded<'a>(
    body: impl AsyncRead + Unpin + Send + 'a,
    coding: Coding,
) -> Box<dyn AsyncRead + Unpin + Send + 'a> {
    match coding {
        Coding::Identity => Box::new(body),
        Coding::Gzip => {
            let mut decoder = GzipDecoder::new(BufReader::new(body));
            decoder.multiple_members(true);
            Box::new(decoder)
        }
    }
}

/// The program that writes a download to its stdout, inside the jail.
pub(super) fn download_program(coding: Coding) -> &'static str {
    match coding {
        Coding::Identity => "cat",
        // `-n`: the answer carries no name or time of the sandbox's file.
        Coding::Gzip => "gzip -c -n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Result<Coding, String> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        accept_encoding(&h)
    }

    #[test]
    fn negotiation_follows_envd() {
        assert_eq!(accept_encoding(&HeaderMap::new()), Ok(Coding::Identity));
        assert_eq!(accept("gzip"), Ok(Coding::Gzip));
        assert_eq!(accept("gzip, deflate, br"), Ok(Coding::Gzip));
        assert_eq!(accept("GZIP;q=0.5, identity;q=0.9"), Ok(Coding::Identity));
        assert_eq!(accept("br"), Ok(Coding::Identity));
        assert_eq!(accept("*"), Ok(Coding::Identity));
        assert_eq!(accept("*, identity;q=0"), Ok(Coding::Gzip));
        assert_eq!(accept("*;q=0, identity"), Ok(Coding::Identity));
        assert!(accept("br, identity;q=0").is_err());
        assert!(accept("*;q=0").is_err());
    }

    #[test]
    fn content_codings() {
        let mut h = HeaderMap::new();
        assert_eq!(content_encoding(&h), Ok(Coding::Identity));
        h.insert(header::CONTENT_ENCODING, "GZip".parse().unwrap());
        assert_eq!(content_encoding(&h), Ok(Coding::Gzip));
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(content_encoding(&h).unwrap_err().contains("unsupported Content-Encoding: br"));
    }

    async fn decode(body: &[u8], coding: Coding) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut decoded(body, coding), &mut out).await?;
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[tokio::test]
    async fn uploads_are_decoded_as_they_stream_every_member_of_them() {
        assert_eq!(decode(b"plain", Coding::Identity).await.unwrap(), b"plain");
        assert_eq!(decode(&gzip(b"hello"), Coding::Gzip).await.unwrap(), b"hello");
        let two = [gzip(b"hel"), gzip(b"lo")].concat();
        assert_eq!(decode(&two, Coding::Gzip).await.unwrap(), b"hello");
        assert!(decode(b"not gzip", Coding::Gzip).await.is_err());
    }
}
