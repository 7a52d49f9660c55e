//! Paging of `GET /v1/turns`: `?limit=` (1 to [`MAX_PAGE`], [`MAX_PAGE`] by default) and
//! `?cursor=`, the `next_cursor` of the page before.
//!
//! A cursor is a place in the tenant's own history: the creation time and id of the last turn the
//! page before showed, encoded so that clients pass it back rather than build one. Only the caller's
//! own ledger reads it, as "older than this place", so whatever a client puts in one, it lists
//! nothing but the caller's own turns.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mayfly_core::turn::TurnId;
use mayfly_core::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

/// The most turns one page shows, and how many it shows unless asked for fewer.
pub(crate) const MAX_PAGE: usize = 50;

/// Where a page ends: `<created ms, 13 digits>:<turn id>`, the order of the ledger's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Cursor(String);

impl Cursor {
    /// The place of a turn the ledger listed, as its key (without the prefix) spells it.
    pub(crate) fn at(place: &str) -> Cursor {
        Cursor(place.to_owned())
    }

    pub(crate) fn place(&self) -> &str {
        &self.0
    }

    /// What a client is given as `next_cursor`.
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// A cursor as a client sent it back; anything this API did not give out is refused.
    pub(crate) fn parse(text: &str) -> Result<Cursor, ApiError> {
        let refuse = || {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "cursor is not one this API gave out: pass back a page's next_cursor as it came",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| refuse())?;
        let place = String::from_utf8(bytes).map_err(|_| refuse())?;
        let (created, turn_id) = place.split_once(':').ok_or_else(refuse)?;
        let created_ok = created.len() == 13 && created.bytes().all(|b| b.is_ascii_digit());
        if !created_ok || TurnId::new(turn_id).is_err() {
            return Err(refuse());
        }
        Ok(Cursor(place))
    }
}

/// What `GET /v1/turns` asks for: how many turns, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) limit: usize,
    /// Turns older than this place; the newest when absent.
    pub(crate) before: Option<Cursor>,
}

impl PageQuery {
    /// The query of `url`; other parameters are ignored, and a bad or repeated `limit` or `cursor`
    /// is a `400` that says which.
    pub(crate) fn from_url(url: &worker::Url) -> Result<PageQuery, ApiError> {
        let mut limit = None;
        let mut cursor = None;
        for (name, value) in url.query_pairs() {
            let slot = match name.as_ref() {
                "limit" => &mut limit,
                "cursor" => &mut cursor,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(ApiError::new(ErrorCode::InvalidRequest, format!("{name} is given more than once")));
            }
        }
        let limit = match limit {
            None => MAX_PAGE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    let shown: String = text.chars().take(32).collect();
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("limit must be a whole number from 1 to {MAX_PAGE}, got {shown:?}"),
                    ));
                }
            },
        };
        let before = cursor.as_deref().map(Cursor::parse).transpose()?;
        Ok(PageQuery { limit, before })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<PageQuery, String> {
        let url = worker::Url::parse(&format!("https://mayfly.test/v1/turns{q}")).unwrap();
        PageQuery::from_url(&url).map_err(|err| format!("{} {}", err.status(), err.message))
    }

    #[test]
    fn a_cursor_goes_out_opaque_and_comes_back_as_the_same_place() {
        let cursor = Cursor::at("1700000000000:t_0123456789abcdef");
        let text = cursor.encode();
        assert!(!text.contains("t_0123"), "{text}");
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {text}");
        assert_eq!(Cursor::parse(&text).unwrap(), cursor);
        assert_eq!(query(&format!("?cursor={text}&limit=2")).unwrap(), PageQuery { limit: 2, before: Some(cursor) });
    }

    #[test]
    fn the_limit_defaults_to_a_full_page_and_stays_within_it() {
        assert_eq!(query("").unwrap(), PageQuery { limit: MAX_PAGE, before: None });
        assert_eq!(query("?limit=1&other=x").unwrap().limit, 1);
        assert_eq!(query("?limit=50").unwrap().limit, 50);
        for bad in ["0", "51", "-1", "", "two", "1.5", "99999999999999999999999"] {
            let refused = query(&format!("?limit={bad}")).unwrap_err();
            assert_eq!(refused, format!("400 limit must be a whole number from 1 to 50, got {bad:?}"));
        }
        assert_eq!(query("?limit=1&limit=2").unwrap_err(), "400 limit is given more than once");
    }

    #[test]
    fn a_cursor_this_api_did_not_give_out_is_refused() {
        let encode = |place: &str| URL_SAFE_NO_PAD.encode(place);
        let bad = [
            String::new(),
            "not base64!".into(),
            encode("1700000000000"),
            encode("17:t_1"),
            encode("170000000000x:t_1"),
            encode("1700000000000:a/b"),
            encode("1700000000000:"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ];
        for cursor in bad {
            let refused = query(&format!("?cursor={cursor}")).unwrap_err();
            assert!(refused.starts_with("400 cursor is not one this API gave out"), "{cursor}: {refused}");
        }
        assert_eq!(query("?cursor=a&cursor=b").unwrap_err(), "400 cursor is given more than once");
    }
}
