//! Idempotency keys: which turn each of the tenant's keys started, so that a retry of the same
//! request gets that turn again (`crate::idempotency` checks the key and fingerprints the body).
//!
//! `idem:<key>` holds the [`Remembered`] turn as JSON; `idem-seq:<20 digits>` (value: the key)
//! orders the keys by when they were first used, and `idem-next` is the next number. A key is
//! remembered for [`KEY_TTL_MS`] and only among the tenant's newest (`MAX_IDEMPOTENCY_KEYS`, 1,000
//! by default): every admission that remembers a key forgets the oldest ones past either bound, so
//! a tenant's keys take bounded storage however many it sends.

use serde::{Deserialize, Serialize};
use worker::{ListOptions, Result, Storage};

use super::{string_entries, Entry, Fingerprint};
use crate::gated;

/// How long a key is remembered after the turn it started was created.
pub(crate) const KEY_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The most keys one admission forgets; one is remembered per admission, so the bound holds.
const FORGET_BATCH: usize = 16;

const RECORD: &str = "idem:";
const ORDER: &str = "idem-seq:";
const NEXT: &str = "idem-next";

/// The turn a key started, and the fingerprint of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Remembered {
    pub(crate) body_sha256: String,
    pub(crate) turn_id: String,
    pub(crate) created_unix_ms: u64,
    seq: u64,
}

/// Which keys are forgotten: those past their time, and those older than the newest `kept`.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    now: u64,
    /// The number the next key gets.
    next_seq: u64,
    kept: u64,
}

impl Bounds {
    /// Whether the key remembered as number `seq` for a turn created at `created_unix_ms` goes.
    fn is_stale(&self, seq: u64, created_unix_ms: u64) -> bool {
        seq.saturating_add(self.kept) < self.next_seq || created_unix_ms.saturating_add(KEY_TTL_MS) <= self.now
    }
}

fn order_key(seq: u64) -> String {
    format!("{ORDER}{seq:020}")
}

/// The turn `key` started, unless the key is unknown or past its time (then it is forgotten).
pub(super) async fn recall(storage: &Storage, key: &str, now: u64) -> Result<Option<Remembered>> {
    let Some(json) = storage.get::<String>(&format!("{RECORD}{key}")).await? else { return Ok(None) };
    let remembered: Remembered = serde_json::from_str(&json)?;
    if remembered.created_unix_ms.saturating_add(KEY_TTL_MS) <= now {
        gated::delete(storage, &[format!("{RECORD}{key}"), order_key(remembered.seq)]);
        return Ok(None);
    }
    Ok(Some(remembered))
}

/// Remembers that the key of `fingerprint` started the turn of `entry`, and forgets the oldest keys
/// past their time or past the newest `kept`.
pub(super) async fn remember(
    storage: &Storage,
    fingerprint: &Fingerprint,
    entry: &Entry,
    kept: u64,
    now: u64,
) -> Result<()> {
    let seq = storage.get::<String>(NEXT).await?.and_then(|text| text.parse::<u64>().ok()).unwrap_or(0);
    let remembered = Remembered {
        body_sha256: fingerprint.body_sha256.clone(),
        turn_id: entry.turn_id.clone(),
        created_unix_ms: entry.created_unix_ms,
        seq,
    };
    gated::put(storage, &format!("{RECORD}{}", fingerprint.key), &serde_json::to_string(&remembered)?);
    gated::put(storage, &order_key(seq), &fingerprint.key);
    gated::put(storage, NEXT, &(seq + 1).to_string());
    forget_stale(storage, Bounds { now, next_seq: seq + 1, kept }).await
}

/// Forgets keys from the oldest on while they are stale, up to [`FORGET_BATCH`] of them.
async fn forget_stale(storage: &Storage, bounds: Bounds) -> Result<()> {
    let oldest =
        string_entries(&storage.list_with_options(ListOptions::new().prefix(ORDER).limit(FORGET_BATCH)).await?)?;
    let records: Vec<String> = oldest.iter().map(|(_, key)| format!("{RECORD}{key}")).collect();
    let found = string_entries(&storage.get_multiple(records).await?)?;
    let mut gone = Vec::new();
    for (order, key) in &oldest {
        let seq = order[ORDER.len()..].parse::<u64>().unwrap_or(0);
        let record = format!("{RECORD}{key}");
        let remembered = found
            .iter()
            .find(|(name, _)| *name == record)
            .and_then(|(_, json)| serde_json::from_str::<Remembered>(json).ok());
        match remembered {
            // The key was remembered again since (or its record is gone): only the old place goes.
            Some(remembered) if remembered.seq != seq => gone.push(order.clone()),
            None => gone.push(order.clone()),
            Some(remembered) if bounds.is_stale(seq, remembered.created_unix_ms) => {
                gone.push(record);
                gone.push(order.clone());
            }
            Some(_) => break,
        }
    }
    gated::delete(storage, &gone);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_forgotten_after_a_day_or_behind_the_newest_kept() {
        let day = KEY_TTL_MS;
        let bounds = |now, next_seq| Bounds { now, next_seq, kept: 1000 };
        assert!(!bounds(day - 1, 1).is_stale(0, 0));
        assert!(bounds(day, 1).is_stale(0, 0));
        // Keys 0..=999 are the newest thousand while the next is 1000; then key 0 goes.
        assert!(!bounds(1, 1000).is_stale(0, 0));
        assert!(bounds(1, 1001).is_stale(0, 0));
        assert!(!bounds(1, 1001).is_stale(1, 0));
        assert_eq!(order_key(7), "idem-seq:00000000000000000007");
    }
}
