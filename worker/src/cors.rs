//! Cross-origin calls from browsers: pages of the origins the deployment names in `CORS_ORIGINS`
//! may call the API under `/v1/`; pages of any other origin may not (their browser withholds the
//! answer). Nobody may by default.
//!
//! The answer names the caller's own origin, never `*`, and never allows credentials: the API's
//! credential is the `Authorization` header (a key, or better a turn token from
//! `POST /v1/tokens`), which a page sends on purpose, never a cookie a browser would add on its
//! own. A preflight (`OPTIONS`) from an allowed origin is `204` with what may be sent; from any
//! other origin it is `403` with no `Access-Control-*` header, so the browser stops there;
//! without an `Origin` it is no preflight, and `OPTIONS` is the `405` it always was.

use mayfly_core::{ApiError, ErrorCode};
use worker::{Headers, Method, Request, Response, Result};

use crate::reply;

/// What a page may call with. `PUT`/`PATCH` are not routes of the API.
pub(crate) const ALLOW_METHODS: &str = "GET, POST, DELETE";
/// What a page may send: its credential, a JSON body, and the headers the API reads.
pub(crate) const ALLOW_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID";
/// What a page may read besides the headers every browser shows: when to try again after a `429`.
pub(crate) const EXPOSE_HEADERS: &str = "Retry-After";
/// How long a browser may keep a preflight's answer: short, so an origin taken off the list loses
/// its access within minutes.
pub(crate) const MAX_AGE_S: u32 = 600;

/// The page's origin, which a browser sends with every cross-origin request (and some others).
pub(crate) fn origin_of(req: &Request) -> Option<String> {
    req.headers().get("Origin").ok().flatten()
}

/// `origin` as the list names it, when the list names it. Browsers send an origin in lower case
/// without a default port; a list written otherwise still matches by case.
pub(crate) fn allowed<'a>(origin: Option<&'a str>, allowed: &[String]) -> Option<&'a str> {
    let origin = origin?;
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)).then_some(origin)
}

/// The headers of an ordinary answer to a page of `origin` (`None`: not an allowed one).
/// `Vary: Origin` goes on every answer, so that a cache never serves one origin's answer to another.
pub(crate) fn answer_headers(origin: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![("Vary", "Origin".to_owned())];
    if let Some(origin) = origin {
        headers.push(("Access-Control-Allow-Origin", origin.to_owned()));
        headers.push(("Access-Control-Expose-Headers", EXPOSE_HEADERS.to_owned()));
    }
    headers
}

/// The headers of a preflight's `204` to a page of the allowed `origin`.
pub(crate) fn preflight_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Vary", "Origin".to_owned()),
        ("Access-Control-Allow-Origin", origin.to_owned()),
        ("Access-Control-Allow-Methods", ALLOW_METHODS.to_owned()),
        ("Access-Control-Allow-Headers", ALLOW_HEADERS.to_owned()),
        ("Access-Control-Max-Age", MAX_AGE_S.to_string()),
    ]
}

/// The answer to `OPTIONS` on a path under `/v1/`, from a page of `origin` (as sent) that the
/// list allows or not.
pub(crate) fn preflight(path: &str, origin: Option<&str>, allowed_origin: Option<&str>) -> Result<Response> {
    if let Some(origin) = allowed_origin {
        let headers = Headers::new();
        for (name, value) in preflight_headers(origin) {
            headers.set(name, &value)?;
        }
        return Ok(Response::empty()?.with_status(204).with_headers(headers));
    }
    let response = match origin {
        None => reply::method_not_allowed(&Method::Options, path)?,
        // The page learns nothing from this answer (its browser withholds it); whoever reads it
        // otherwise is told why, without the origin echoed back.
        Some(_) => reply::error(&ApiError::new(
            ErrorCode::Forbidden,
            "pages of this origin may not call this API: the deployment's CORS_ORIGINS does not name it",
        ))?,
    };
    with_headers(response, &answer_headers(None))
}

/// `response` with `headers` added. A fetched answer's headers may be immutable; a copy is not.
/// A WebSocket's `101` is left as it is: browsers do not apply CORS to WebSockets.
pub(crate) fn with_headers(response: Response, headers: &[(&'static str, String)]) -> Result<Response> {
    if response.status_code() == 101 {
        return Ok(response);
    }
    let copy: Headers = response.headers().clone();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Vary") {
            copy.append(name, value)?;
        } else {
            copy.set(name, value)?;
        }
    }
    Ok(response.with_headers(copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<String> {
        vec!["https://ide.example".to_owned(), "http://127.0.0.1:5173".to_owned()]
    }

    fn names(headers: &[(&'static str, String)]) -> Vec<&'static str> {
        headers.iter().map(|(name, _)| *name).collect()
    }

    #[test]
    fn only_a_listed_origin_is_allowed_and_it_is_echoed_exactly() {
        assert_eq!(allowed(Some("https://ide.example"), &list()), Some("https://ide.example"));
        assert_eq!(allowed(Some("http://127.0.0.1:5173"), &list()), Some("http://127.0.0.1:5173"));
        assert_eq!(allowed(Some("https://IDE.example"), &list()), Some("https://IDE.example"));
        for other in [
            "https://evil.example",
            "http://ide.example",
            "https://ide.example:8443",
            "https://ide.example.evil.example",
            "https://sub.ide.example",
            "http://127.0.0.1:5174",
            "null",
            "*",
            "",
        ] {
            assert_eq!(allowed(Some(other), &list()), None, "{other}");
        }
        assert_eq!(allowed(None, &list()), None);
        assert_eq!(allowed(Some("https://ide.example"), &[]), None, "nobody by default");
    }

    #[test]
    fn an_allowed_origin_gets_its_own_name_and_the_headers_it_may_read() {
        let headers = answer_headers(Some("https://ide.example"));
        assert_eq!(
            headers,
            [
                ("Vary", "Origin".to_owned()),
                ("Access-Control-Allow-Origin", "https://ide.example".to_owned()),
                ("Access-Control-Expose-Headers", "Retry-After".to_owned()),
            ]
        );
        assert!(!names(&headers).contains(&"Access-Control-Allow-Credentials"));
        assert_eq!(answer_headers(None), [("Vary", "Origin".to_owned())], "no CORS header for anyone else");
    }

    #[test]
    fn a_preflight_allows_the_apis_methods_and_headers_for_a_while() {
        let headers = preflight_headers("https://ide.example");
        let value = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(value("Access-Control-Allow-Origin"), Some("https://ide.example"));
        assert_eq!(value("Access-Control-Allow-Methods"), Some("GET, POST, DELETE"));
        for header in ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"] {
            assert!(value("Access-Control-Allow-Headers").unwrap().contains(header), "{header}");
        }
        assert_eq!(value("Access-Control-Max-Age"), Some("600"));
        assert_eq!(value("Vary"), Some("Origin"));
        assert!(headers.iter().all(|(_, v)| v != "*"), "never a wildcard: {headers:?}");
        assert!(!names(&headers).contains(&"Access-Control-Allow-Credentials"));
    }
}
