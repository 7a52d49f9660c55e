//! The turn's checkpoint (`docs/checkpoints.md`): its frozen database, kept under the database's
//! lease until `reap_by`, which the alarm honours (`lifecycle.rs`). Shown, extended and released
//! for its tenant; read for a fork by the router, for the same tenant only.

use mayfly_core::turn::{checkpoint_limit_unix_ms, ForkSource, LeaseRecord, LeasedResource};
use mayfly_core::{ApiError, CheckpointRequest, CheckpointView, ErrorCode, Limits, ReapState, Resource, TurnProgress};
use worker::{Request, Response};

use super::{internal, Turn, TurnRecord};
use crate::clock::WorkerClock;
use mayfly_core::providers::Clock;

/// A checkpoint read for a fork is kept at least this long after, and at least for the fork's
/// timeout (`hold_s`, within the longest a turn may run), so that it is still there while the fork
/// copies it: at once through scratchdb's fork, or, where the provider cannot fork, from inside
/// the fork's sandbox at any time before its deadline (`docs/checkpoints.md`). A reap that comes
/// anyway (the checkpoint's limit) fails the fork with the provider's answer, and the fork's own
/// database is reaped: nothing is left half made.
pub(crate) const FORK_HOLD_MS: u64 = 30_000;

impl Turn {
    /// `GET /checkpoint`.
    pub(super) async fn checkpoint(&self, req: &Request) -> Result<Response, ApiError> {
        let record = self.owned(req).await?;
        let (view, _) = self.checkpoint_now(&record).await?;
        Response::from_json(&view).map_err(|err| internal(&err))
    }

    /// `POST /checkpoint {keep_s}`: keeps a live checkpoint until `keep_s` from now, within its
    /// limit.
    pub(super) async fn extend_checkpoint(&self, mut req: Request) -> Result<Response, ApiError> {
        let record = self.owned(&req).await?;
        let asked: CheckpointRequest = req
            .json()
            .await
            .map_err(|err| ApiError::new(ErrorCode::InvalidJson, format!("invalid checkpoint request: {err}")))?;
        let keep_s = Limits::default().checkpoint_keep_s(asked.keep_s).map_err(|err| err.to_api_error())?;
        let (mut view, lease) = self.checkpoint_now(&record).await?;
        let mut lease = live(&record, &view, lease)?;
        lease.lease.reap_by_unix_ms = (WorkerClock.now_ms() + u64::from(keep_s) * 1000).min(view.limit_unix_ms);
        self.save_checkpoint(&lease)?;
        // The lease just written is all that changed: no second read of the object's storage.
        view.keep_until_unix_ms = lease.lease.reap_by_unix_ms;
        Response::from_json(&view).map_err(|err| internal(&err))
    }

    /// `DELETE /checkpoint`: the checkpoint is reaped now; forks made from it stay.
    pub(super) async fn release_checkpoint(&self, req: &Request) -> Result<Response, ApiError> {
        let record = self.owned(req).await?;
        let (view, lease) = self.checkpoint_now(&record).await?;
        let mut lease = live(&record, &view, lease)?;
        lease.lease.reap_by_unix_ms = WorkerClock.now_ms();
        self.save_checkpoint(&lease)?;
        Response::empty().map(|r| r.with_status(202)).map_err(|err| internal(&err))
    }

    /// `POST /fork-source`: what a fork of this checkpoint needs — the provider's handle of the
    /// database and its summary — for the router of the same tenant only. The checkpoint is held
    /// for [`FORK_HOLD_MS`] more at least, within its limit.
    pub(super) async fn fork_source(&self, req: &Request) -> Result<Response, ApiError> {
        let record = self.owned(req).await?;
        let (view, lease) = self.checkpoint_now(&record).await?;
        let mut lease = live(&record, &view, lease)?;
        let LeasedResource::Database { token, .. } = &lease.lease.resource else {
            return Err(internal(&worker::Error::RustError("a database lease for a sandbox".into())));
        };
        let source = ForkSource { token: token.clone(), summary: view.summary.clone() };
        let hold_s = req.url().ok().and_then(|url| {
            url.query_pairs().find(|(name, _)| name == "hold_s").and_then(|(_, value)| value.parse::<u64>().ok())
        });
        let longest_ms = u64::from(Limits::default().max_timeout_s) * 1000;
        let hold_ms = hold_s.unwrap_or(0).saturating_mul(1000).clamp(FORK_HOLD_MS, longest_ms.max(FORK_HOLD_MS));
        let hold_until = (WorkerClock.now_ms() + hold_ms).min(view.limit_unix_ms);
        if lease.lease.reap_by_unix_ms < hold_until {
            lease.lease.reap_by_unix_ms = hold_until;
            self.put_lease(&lease).map_err(|err| internal(&err))?;
        }
        Response::from_json(&source).map_err(|err| internal(&err))
    }

    /// The checkpoint as it is now, with the lease that holds it; a `404` when the turn never
    /// made one.
    async fn checkpoint_now(&self, record: &TurnRecord) -> Result<(CheckpointView, LeaseRecord), ApiError> {
        let none = || ApiError::new(ErrorCode::NotFound, format!("turn {} has no checkpoint", record.turn_id));
        let progress = self.progress().await.map_err(|err| internal(&err))?;
        let lease = self.lease(Resource::Database).await.map_err(|err| internal(&err))?.ok_or_else(none)?;
        let view = checkpoint_view(record, &progress, &lease, WorkerClock.now_ms()).ok_or_else(none)?;
        Ok((view, lease))
    }

    /// Writes the checkpoint's lease and wakes the alarm at once, which reaps it if it is due and
    /// otherwise sleeps until it is.
    fn save_checkpoint(&self, lease: &LeaseRecord) -> Result<(), ApiError> {
        self.put_lease(lease).map_err(|err| internal(&err))?;
        crate::gated::set_alarm(&self.state.storage(), WorkerClock.now_ms());
        Ok(())
    }
}

/// The turn's checkpoint as the API shows it at `now_unix_ms`, if the turn made one.
pub(super) fn checkpoint_view(
    record: &TurnRecord,
    progress: &TurnProgress,
    lease: &LeaseRecord,
    now_unix_ms: u64,
) -> Option<CheckpointView> {
    let made_until = progress.checkpointed_until_unix_ms?;
    let checkpointed = lease.reap == ReapState::Checkpointed;
    Some(CheckpointView {
        turn_id: record.turn_id.to_string(),
        live: checkpointed && now_unix_ms < lease.lease.reap_by_unix_ms,
        keep_until_unix_ms: if checkpointed { lease.lease.reap_by_unix_ms } else { made_until },
        limit_unix_ms: checkpoint_limit_unix_ms(lease.lease.deadline_unix_ms, Limits::default().max_checkpoint_keep_s),
        summary: progress.summary.clone(),
    })
}

/// The lease, if the checkpoint can still be forked, extended or released; else the `409`.
fn live(record: &TurnRecord, view: &CheckpointView, lease: LeaseRecord) -> Result<LeaseRecord, ApiError> {
    if view.live {
        return Ok(lease);
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!("turn {}'s checkpoint is no longer live: it was released or ran out", record.turn_id),
    ))
}
