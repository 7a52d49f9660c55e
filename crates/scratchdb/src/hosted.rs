//! `--like-hosted`: anonymous creates answered as hosted instanode answers them, for the callers
//! that expect a database of their own per request and must notice when they do not get one (the
//! edge's turns: see `docs/security.md`). Hosted instanode, per anonymous caller (a /24 and ASN
//! there, the caller's address here):
//!
//! - past its daily share of creates, answers `200` with the caller's newest live database — an
//!   earlier one, with its data — or `429 provision_limit_reached` when it has none;
//! - once a caller's databases have all expired or gone, answers `402
//!   free_tier_recycle_requires_claim` until one is claimed;
//! - takes a Bearer token it does not accept as no token at all: the create is anonymous.
//!
//! Nor does it have scratchdb's extensions: in this mode their routes answer a plain `404`
//! (`api/mod.rs`), so that a caller's fallback for hosted instanode is what runs.
//!
//! Off by default: everywhere else scratchdb gives each request a database of its own.

use std::net::IpAddr;

use crate::registry::{self, Row};
use crate::service::{Service, ServiceError};

/// What an anonymous create gets in the hosted-like mode.
#[derive(Debug)]
pub(crate) enum Gate {
    /// A database of its own, as always.
    Proceed,
    /// Past the daily share: this earlier database.
    Earlier(Box<Row>),
    /// Past the daily share, with no live database to answer with.
    CapReached,
    /// Every database the caller had is gone: a claim is wanted first.
    ClaimFirst,
}

impl Service {
    /// Which of hosted instanode's answers an anonymous create from `address` gets.
    pub(crate) async fn hosted_gate(&self, address: Option<IpAddr>) -> Result<Gate, ServiceError> {
        let Some(like) = self.config().like_hosted else { return Ok(Gate::Proceed) };
        let Some(address) = address.map(|ip| ip.to_string()) else { return Ok(Gate::Proceed) };
        let s = self.s().to_string();
        let c = self.admin().get().await?;
        let counts = c
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE created_at > now() - interval '1 day'), \
                     count(*) FILTER (WHERE status = 'active'), count(*) \
                     FROM {s}.resources WHERE owner IS NULL AND caller = $1"
                ),
                &[&address],
            )
            .await?;
        let (today, live, ever): (i64, i64, i64) = (counts.get(0), counts.get(1), counts.get(2));
        if ever > 0 && live == 0 {
            return Ok(Gate::ClaimFirst);
        }
        if today < i64::from(like.anonymous_daily_cap) {
            return Ok(Gate::Proceed);
        }
        let newest = c
            .query_opt(
                &format!(
                    "SELECT {} FROM {s}.resources WHERE owner IS NULL AND caller = $1 AND status = 'active' \
                     ORDER BY created_at DESC LIMIT 1",
                    registry::columns()
                ),
                &[&address],
            )
            .await?;
        Ok(newest.map_or(Gate::CapReached, |row| Gate::Earlier(Box::new(Row::from_pg(&row)))))
    }
}
