//! E2B's sandbox list: v1 (every running sandbox, newest first) and v2 (metadata, `state`,
//! `template` and `startedAfter` filters, either order, pages). The rules are E2B's API's
//! (docs/protocols/envd-rules.md, "Listing sandboxes").

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mayfly_core::wire::e2b::{ListedSandbox, StringMap};

use super::{error, listed};
use crate::jail::Template;
use crate::sandbox::Sandbox;
use crate::AppState;

/// Undoes one level of URL encoding; `None` on a malformed escape.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// E2B's metadata filter: the (already query-decoded) value is unescaped again, split on `&`
/// and `=`, and each key and value unescaped once more.
fn parse_metadata_filter(raw: &str) -> Option<StringMap> {
    let whole = percent_decode(raw)?;
    let mut map = StringMap::new();
    for pair in whole.split('&').filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let (Some(k), Some(v), None) = (parts.next(), parts.next(), parts.next()) else { return None };
        map.insert(percent_decode(k)?, percent_decode(v)?);
    }
    Some(map)
}

fn matches(sb: &Sandbox, filter: &StringMap) -> bool {
    filter.iter().all(|(k, v)| sb.metadata.get(k) == Some(v))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ListQuery {
    metadata: Option<String>,
    state: Option<String>,
    limit: Option<String>,
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
    order: Option<String>,
    #[serde(rename = "startedAfter")]
    started_after: Option<String>,
    template: Option<String>,
}

/// The key E2B pages and filters on: the start time at microsecond precision, which is also the
/// precision `startedAt` is listed with, so a listed time given back as `startedAfter` is exact.
fn stamp(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_micros()
}

/// A timestamp as RFC 3339 at the list's precision.
pub(super) fn rfc3339_micros(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// RFC 3339 with `Z` or a numeric offset (Python's `isoformat()` writes `+00:00`).
fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if let Some(utc) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return humantime::parse_rfc3339_weak(utc).ok();
    }
    let (local, sign, offset) = match s.len().checked_sub(6).and_then(|i| s.get(i..).map(|o| (i, o))) {
        Some((i, o)) if o.starts_with('+') || o.starts_with('-') => (&s[..i], &o[..1], &o[1..]),
        _ => return None,
    };
    let (h, m) = offset.split_once(':')?;
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    let shift = Duration::from_secs(h * 3600 + m * 60);
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    // A local time east of UTC (`+hh:mm`) is that much earlier in UTC.
    if sign == "+" {
        t.checked_sub(shift)
    } else {
        t.checked_add(shift)
    }
}

pub(super) async fn list_v1(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let filter = match q.metadata.as_deref().map(parse_metadata_filter) {
        None => StringMap::new(),
        Some(Some(f)) => f,
        Some(None) => return error(StatusCode::BAD_REQUEST, "invalid metadata filter"),
    };
    let items: Vec<ListedSandbox> = ordered(state.sandboxes.all(), false)
        .iter()
        .filter(|s| matches(s, &filter))
        .map(|s| listed(&state, s, false))
        .collect();
    Json(items).into_response()
}

/// E2B's order: newest first with ties by id ascending, or exactly the reverse.
fn ordered(mut all: Vec<Arc<Sandbox>>, asc: bool) -> Vec<Arc<Sandbox>> {
    all.sort_by(|a, b| {
        let by_time = stamp(b.started_at).cmp(&stamp(a.started_at)).then_with(|| a.id.cmp(&b.id));
        if asc {
            by_time.reverse()
        } else {
            by_time
        }
    });
    all
}

/// The cursor names the last item returned; the next page starts after it in list order.
fn cursor(sb: &Sandbox) -> String {
    format!("{}.{}", stamp(sb.started_at), sb.id)
}

fn after_cursor(sb: &Sandbox, (at, id): (u128, &str), asc: bool) -> bool {
    let t = stamp(sb.started_at);
    if asc {
        t > at || (t == at && sb.id.as_str() < id)
    } else {
        t < at || (t == at && sb.id.as_str() > id)
    }
}

pub(super) async fn list_v2(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let filter = match q.metadata.as_deref().map(parse_metadata_filter) {
        None => StringMap::new(),
        Some(Some(f)) => f,
        Some(None) => return error(StatusCode::BAD_REQUEST, "Error parsing metadata"),
    };
    let want_running = match q.state.as_deref() {
        None | Some("") => true,
        Some(s) => {
            let states: Vec<&str> = s.split(',').collect();
            if states.iter().any(|s| *s != "running" && *s != "paused") {
                return error(StatusCode::BAD_REQUEST, format!("invalid state '{s}'"));
            }
            states.contains(&"running")
        }
    };
    let asc = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(o) => return error(StatusCode::BAD_REQUEST, format!("Invalid order parameter: unknown order \"{o}\"")),
    };
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 100"),
    };
    let started_after = match q.started_after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match parse_time(s) {
            Some(t) => Some(stamp(t)),
            None => {
                return error(StatusCode::BAD_REQUEST, format!("Invalid startedAfter: '{s}' is not an RFC 3339 time"))
            }
        },
    };
    let template = match q.template.as_deref() {
        None => None,
        Some(t) if t.contains(':') => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid template: tags are not supported here because sandboxes are not tag-scoped",
            )
        }
        Some(t) => match Template::parse(t) {
            Some(t) => Some(t),
            None => {
                let mut headers = HeaderMap::new();
                if want_running {
                    headers.insert("x-total-running", 0.into());
                }
                return (headers, Json(Vec::<ListedSandbox>::new())).into_response();
            }
        },
    };
    let cursor_at = match q.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(tok) => match tok.split_once('.').and_then(|(at, id)| Some((at.parse::<u128>().ok()?, id))) {
            Some(c) => Some(c),
            None => return error(StatusCode::BAD_REQUEST, "Invalid next token"),
        },
    };
    let kept: Vec<Arc<Sandbox>> = if want_running {
        state
            .sandboxes
            .all()
            .into_iter()
            .filter(|s| matches(s, &filter))
            .filter(|s| started_after.is_none_or(|after| stamp(s.started_at) >= after))
            .filter(|s| template.is_none_or(|t| s.template == t))
            .collect()
    } else {
        vec![]
    };
    let total = kept.len();
    let rest: Vec<Arc<Sandbox>> =
        ordered(kept, asc).into_iter().filter(|s| cursor_at.is_none_or(|c| after_cursor(s, c, asc))).collect();
    let page = &rest[..rest.len().min(limit)];
    let mut headers = HeaderMap::new();
    if rest.len() > page.len() {
        if let Some(v) = page.last().and_then(|last| cursor(last).parse().ok()) {
            headers.insert("x-next-token", v);
        }
    }
    if want_running {
        headers.insert("x-total-running", total.into());
    }
    let items: Vec<ListedSandbox> = page.iter().map(|s| listed(&state, s, false)).collect();
    (headers, Json(items)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filter_encodings() {
        // What the query extractor leaves of `?metadata=owner%3Dturnbot%26turn%3Dt-42`.
        let f = parse_metadata_filter("owner=turnbot&turn=t-42").unwrap();
        assert_eq!(f.get("owner").map(String::as_str), Some("turnbot"));
        assert_eq!(f.get("turn").map(String::as_str), Some("t-42"));
        // The JS SDK's triple encoding of a value with `=` and space in it.
        let f = parse_metadata_filter("k%3Da%253Db%2520c").unwrap();
        assert_eq!(f.get("k").map(String::as_str), Some("a=b c"));
        assert!(parse_metadata_filter("novalue").is_none());
        assert!(parse_metadata_filter("a=b=c").is_none());
        assert!(parse_metadata_filter("%zz").is_none());
    }

    #[test]
    fn times_with_offsets() {
        let z = parse_time("2026-11-30T09:40:00.123456Z").unwrap();
        assert_eq!(parse_time("2026-11-30T09:40:00.123456+00:00"), Some(z));
        assert_eq!(parse_time("2026-11-30T10:40:00.123456+01:00"), Some(z));
        assert_eq!(parse_time("2026-11-30T08:10:00.123456-01:30"), Some(z));
        assert_eq!(rfc3339_micros(z), "2026-11-30T09:40:00.123456Z");
        for bad in ["yesterday", "2026-11-30T09:40:00+25:00", "2026-11-30T09:40:00+0100", ""] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }
}
