//! URLs as core handles them: built by hand (core has no `url` crate) and shown only with their
//! credentials removed.
//!
//! The provider clients build their request URLs with [`join_url`] and [`percent_encode`]; anything
//! that shows a URL or a provider's words to a person passes them through [`redact_url`] or
//! [`redact_credentials_in_text`] first.

/// Percent-encodes everything but RFC 3986's unreserved characters, like `encodeURIComponent`
/// (which also keeps `!'()*`; encoding those too is always safe).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Joins a base URL and a path without doubling or losing the slash between them.
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Removes credentials from a URL before it is shown: the user-info part (`user:password@`) and
/// the query string, which some providers use for tokens.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = match tail.find(['?', '#']) {
        Some(cut) => format!("{}?***", &tail[..cut]),
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// Hides the user-info part (`user:password@`) of every URL in a free text, such as a provider's
/// error message that echoes what it was given.
pub fn redact_credentials_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let authority_start = found + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len =
            after.find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'')).unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn percent_encoding_and_joining() {
        assert_eq!(percent_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(percent_encode("/tmp/a b&c=d%é"), "%2Ftmp%2Fa%20b%26c%3Dd%25%C3%A9");
        assert_eq!(join_url("http://h:1/", "/x"), "http://h:1/x");
        assert_eq!(join_url("http://h:1", "x"), "http://h:1/x");
    }

    #[test]
    fn redact_url_removes_credentials() {
        let cases = [
            ("https://api.e2b.app", "https://api.e2b.app"),
            ("http://127.0.0.1:7001/", "http://127.0.0.1:7001/"),
            ("postgres://user:hunter2@db:5432/x", "postgres://***@db:5432/x"),
            ("https://a:b@c@host/p?token=hunter2#frag", "https://***@host/p?***"),
            ("https://host?key=hunter2", "https://host?***"),
            ("host:1/p", "host:1/p"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
            assert!(!redact_url(input).contains("hunter2"));
        }
    }

    #[test]
    fn credentials_in_text_are_redacted() {
        let cases = [
            ("could not drop postgres://u:hunter2@h:5432/d now", "could not drop postgres://***@h:5432/d now"),
            ("a http://h/x and b://u:p@c", "a http://h/x and b://***@c"),
            ("no url here", "no url here"),
            ("trailing ://", "trailing ://"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_credentials_in_text(input), want);
        }
    }
}
