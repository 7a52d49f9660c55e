//! What a turn's object keeps in its storage, and under which keys. Values are JSON text.
//!
//! - `turn`: the [`TurnRecord`] — tenant, id, creation time and the checked spec, written once.
//! - `started`: present once the alarm began running the turn.
//! - `summary`: the [`TurnProgress`] of the log so far, written with every event.
//! - `lease:sandbox`, `lease:database`: a [`LeaseRecord`] per resource.
//! - `ev:<seq, 12 digits>`: the events.
//! - `keep:database`: a kept database's [`KeepResponse`](mayfly_core::KeepResponse), only once
//!   keeping was asked for (the connection URL is at rest nowhere else).

use mayfly_core::turn::{ForkSource, LeaseRecord, TurnId};
use mayfly_core::{Event, Resource, TurnProgress, TurnSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{ListOptions, Result};

use crate::config::DEADLINE_SLACK_MS;

use super::Turn;

/// The turn as `POST /v1/turns` hands it over: checked there, stored here once, run as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TurnRecord {
    pub(crate) tenant: String,
    pub(crate) turn_id: TurnId,
    pub(crate) created_unix_ms: u64,
    pub(crate) spec: TurnSpec,
    /// For a fork: the checkpoint its database is copied from, as its parent's object gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fork: Option<ForkSource>,
}

/// How long after its admission a turn may still be started. A request with an `Idempotency-Key`
/// cut off between its admission and its start leaves a turn that a retry starts — within this
/// window only: the tenant's ledger counts the turn for the window plus its run and reap
/// ([`TurnRecord::counted_until_unix_ms`]), so a replay of an old key can never start a turn that
/// nothing counts against the tenant's cap.
pub(crate) const START_WINDOW_MS: u64 = 60_000;

/// Time for the reap after a turn's deadline and slack, before the ledger stops counting a turn
/// whose object never said it finished.
const REAP_ALLOWANCE_MS: u64 = 60_000;

impl TurnRecord {
    /// Whether the turn may still be started at `now_unix_ms` ([`START_WINDOW_MS`]).
    pub(crate) fn may_start_at(&self, now_unix_ms: u64) -> bool {
        now_unix_ms <= self.created_unix_ms + START_WINDOW_MS
    }

    /// Until when the tenant's ledger counts the turn as running should its object never say it
    /// finished: the latest start, the run with its safety slack, and the reap.
    pub(crate) fn counted_until_unix_ms(&self) -> u64 {
        self.created_unix_ms
            + START_WINDOW_MS
            + u64::from(self.spec.timeout_s) * 1000
            + DEADLINE_SLACK_MS
            + REAP_ALLOWANCE_MS
    }
}

const TURN_KEY: &str = "turn";
const STARTED_KEY: &str = "started";
const SUMMARY_KEY: &str = "summary";
pub(super) const KEPT_KEY: &str = "keep:database";

fn lease_key(resource: Resource) -> &'static str {
    match resource {
        Resource::Sandbox => "lease:sandbox",
        Resource::Database => "lease:database",
    }
}

fn event_key(seq: u64) -> String {
    format!("ev:{seq:012}")
}

impl Turn {
    pub(super) async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.state.storage().get::<String>(key).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Issued, not waited for: the output gate holds whatever follows until it is durable
    /// (`crate::gated`).
    pub(super) fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        crate::gated::put(&self.state.storage(), key, &serde_json::to_string(value)?);
        Ok(())
    }

    pub(super) async fn record(&self) -> Result<Option<TurnRecord>> {
        self.get(TURN_KEY).await
    }

    pub(super) fn put_record(&self, record: &TurnRecord) -> Result<()> {
        self.put(TURN_KEY, record)
    }

    /// Whether the alarm began the turn; marks it begun. `true` only the first time.
    pub(super) async fn begin(&self) -> Result<bool> {
        if self.get::<String>(STARTED_KEY).await?.is_some() {
            return Ok(false);
        }
        self.put(STARTED_KEY, &"1")?;
        Ok(true)
    }

    /// What the log says so far: this instance's if it holds the turn (its writes may be in
    /// flight), else the stored summary.
    pub(super) async fn progress(&self) -> Result<TurnProgress> {
        if let Some(live) = self.live.borrow().as_ref() {
            return Ok(live.progress.clone());
        }
        Ok(self.get(SUMMARY_KEY).await?.unwrap_or_default())
    }

    pub(super) async fn lease(&self, resource: Resource) -> Result<Option<LeaseRecord>> {
        self.get(lease_key(resource)).await
    }

    pub(super) async fn leases(&self) -> Result<Vec<LeaseRecord>> {
        let mut leases = Vec::new();
        for resource in [Resource::Sandbox, Resource::Database] {
            leases.extend(self.lease(resource).await?);
        }
        Ok(leases)
    }

    pub(super) fn put_lease(&self, record: &LeaseRecord) -> Result<()> {
        self.put(lease_key(record.resource()), record)
    }

    /// Writes `event` and the summary that includes it. Both are issued synchronously, without an
    /// await between them, so they land together and in `seq` order; the runtime's output gate
    /// holds anything sent after them until they are durable.
    pub(super) fn write_event(&self, event_json: &str, seq: u64, progress: &TurnProgress) {
        let storage = self.state.storage();
        crate::gated::put(&storage, &event_key(seq), event_json);
        if let Ok(summary) = serde_json::to_string(progress) {
            crate::gated::put(&storage, SUMMARY_KEY, &summary);
        }
    }

    /// Events with `seq > after` from storage, in order.
    pub(super) async fn stored_events(&self, after: u64) -> Result<Vec<Event>> {
        let start = event_key(after + 1);
        let map = self.state.storage().list_with_options(ListOptions::new().prefix("ev:").start(&start)).await?;
        let mut events = Vec::new();
        for value in map.values() {
            if let Some(json) = value?.as_string() {
                events.push(serde_json::from_str::<Event>(&json)?);
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use mayfly_core::{CreateTurnRequest, Language, Limits, TemplateMap};

    use super::*;

    fn record(created_unix_ms: u64, timeout_s: u32) -> TurnRecord {
        let mut request = CreateTurnRequest::new("print(1)", Language::Python);
        request.timeout_s = Some(timeout_s);
        let spec = TurnSpec::from_request(request, &Limits::default(), &TemplateMap::default()).unwrap();
        TurnRecord { tenant: "alice".into(), turn_id: TurnId::new("t_1").unwrap(), created_unix_ms, spec, fork: None }
    }

    #[test]
    fn a_turn_starts_only_within_its_window_and_counts_past_its_latest_end() {
        let record = record(1_000_000, 30);
        assert!(record.may_start_at(1_000_000));
        assert!(record.may_start_at(1_000_000 + START_WINDOW_MS));
        // A retry of a create cut off long ago (its key kept for a day) starts nothing.
        assert!(!record.may_start_at(1_000_000 + START_WINDOW_MS + 1));
        assert!(!record.may_start_at(1_000_000 + 24 * 3_600_000));
        // Started at the last moment, the turn runs, with its slack and reap, within its count.
        let latest_end = 1_000_000 + START_WINDOW_MS + 30_000 + DEADLINE_SLACK_MS + REAP_ALLOWANCE_MS;
        assert!(record.counted_until_unix_ms() >= latest_end);
    }
}
