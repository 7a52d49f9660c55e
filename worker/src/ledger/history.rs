//! The tenant's history: which turns it created, and when. Each turn is `turn:<created ms, 13
//! digits>:<turn id>` (value: the turn id), listed newest first, with `id:<turn id>` saying the
//! tenant owns it; `count:turns` says how many there are.
//!
//! The newest are kept (`MAX_TURN_HISTORY`, 1,000 by default): each admission drops what falls off
//! the end, so a tenant's history takes bounded storage however many turns it runs. A turn that dropped off is no longer
//! listed (nor shown in the reaper's sweep), but its own object still answers
//! `GET /v1/turns/{id}`.

use worker::{ListOptions, Result, Storage};

use super::{string_entries, Entry};
use crate::gated;
use crate::paging::{Cursor, PageQuery};

const PREFIX: &str = "turn:";
const COUNT: &str = "count:turns";

/// The most entries one admission drops: two keys each, and one delete takes at most 128 keys. A
/// ledger from before the bound shrinks by this much per admission until it is within it.
const DROP_BATCH: u64 = 64;

/// Records a turn the tenant just created and drops the oldest past the newest `kept`.
pub(super) async fn record(storage: &Storage, entry: &Entry, kept: u64) -> Result<()> {
    let count = count(storage).await? + 1;
    gated::put(storage, &format!("id:{}", entry.turn_id), "1");
    gated::put(storage, &format!("{PREFIX}{:013}:{}", entry.created_unix_ms, entry.turn_id), &entry.turn_id);
    let left = drop_oldest(storage, count, kept).await?;
    gated::put(storage, COUNT, &left.to_string());
    Ok(())
}

/// One page of turn ids, newest first, and where the next page starts when there is one.
pub(super) async fn page(storage: &Storage, query: &PageQuery) -> Result<(Vec<String>, Option<Cursor>)> {
    let end = query.before.as_ref().map(|cursor| format!("{PREFIX}{}", cursor.place()));
    // One more than asked for says whether another page follows.
    let mut options = ListOptions::new().prefix(PREFIX).reverse(true).limit(query.limit + 1);
    if let Some(end) = end.as_deref() {
        options = options.end(end);
    }
    let mut entries = string_entries(&storage.list_with_options(options).await?)?;
    let more = entries.len() > query.limit;
    entries.truncate(query.limit);
    let next = entries.last().filter(|_| more).map(|(key, _)| Cursor::at(&key[PREFIX.len()..]));
    Ok((entries.into_iter().map(|(_, turn_id)| turn_id).collect(), next))
}

/// How many turns the history holds. A ledger written before the count was kept is counted once,
/// a thousand keys at a time.
async fn count(storage: &Storage) -> Result<u64> {
    if let Some(count) = storage.get::<String>(COUNT).await?.and_then(|text| text.parse().ok()) {
        return Ok(count);
    }
    let mut count = 0;
    let mut after: Option<String> = None;
    loop {
        let mut options = ListOptions::new().prefix(PREFIX).limit(1000);
        if let Some(after) = after.as_deref() {
            options = options.start(after);
        }
        let entries = string_entries(&storage.list_with_options(options).await?)?;
        count += entries.len() as u64;
        match entries.last() {
            // The smallest key after the last one seen.
            Some((key, _)) if entries.len() == 1000 => after = Some(format!("{key}\0")),
            _ => return Ok(count),
        }
    }
}

/// Drops the oldest entries past the newest `kept` (at most [`DROP_BATCH`]); how many are left.
async fn drop_oldest(storage: &Storage, count: u64, kept: u64) -> Result<u64> {
    let excess = count.saturating_sub(kept).min(DROP_BATCH);
    if excess == 0 {
        return Ok(count);
    }
    let oldest = storage.list_with_options(ListOptions::new().prefix(PREFIX).limit(excess as usize)).await?;
    let mut keys = Vec::new();
    for (key, turn_id) in string_entries(&oldest)? {
        keys.push(format!("id:{turn_id}"));
        keys.push(key);
    }
    let dropped = (keys.len() / 2) as u64;
    gated::delete(storage, &keys);
    Ok(count - dropped)
}
