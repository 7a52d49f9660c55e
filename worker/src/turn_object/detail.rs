//! `GET /detail`: the turn as it is now, from its record, its summary and its leases — three
//! reads, however long the log.

use mayfly_core::turn::progress::ResourceProgress;
use mayfly_core::turn::LeaseRecord;
use mayfly_core::{ApiError, ReapState, ResourceView, TurnDetail, TurnProgress};
use worker::{Request, Response};

use super::checkpoint::checkpoint_view;
use super::{internal, Turn, TurnRecord};
use crate::clock::WorkerClock;
use mayfly_core::providers::Clock;
use mayfly_core::Resource;

impl Turn {
    pub(super) async fn detail(&self, req: &Request) -> Result<Response, ApiError> {
        let record = self.owned(req).await?;
        let progress = self.progress().await.map_err(|err| internal(&err))?;
        let leases = self.leases().await.map_err(|err| internal(&err))?;
        Response::from_json(&detail(&record, &progress, &leases)).map_err(|err| internal(&err))
    }
}

fn detail(record: &TurnRecord, progress: &TurnProgress, leases: &[LeaseRecord]) -> TurnDetail {
    TurnDetail {
        turn_id: record.turn_id.as_str().to_owned(),
        created_unix_ms: record.created_unix_ms,
        state: progress.state,
        outcome: progress.outcome,
        error: progress.error.clone(),
        exit_code: progress.exit_code,
        spec: record.spec.view(),
        timings: progress.timings.clone(),
        resources: leases.iter().map(|lease| resource_view(lease, progress.resource(lease.resource()))).collect(),
        events: progress.last_seq,
        checkpoint: leases
            .iter()
            .filter(|lease| lease.resource() == Resource::Database)
            .find_map(|lease| checkpoint_view(record, progress, lease, WorkerClock.now_ms())),
    }
}

/// A resource as the detail shows it. Its lease record is written when the resource appears and
/// again when the turn's run ends (and by every later reap); in between, while the run goes on,
/// the events are the newer word on its reap.
fn resource_view(lease: &LeaseRecord, told: Option<&ResourceProgress>) -> ResourceView {
    let mut view = lease.view();
    if let (ReapState::Live, Some(told)) = (lease.reap, told) {
        view.reap = told.reap;
        view.error = told.error.clone();
    }
    view
}

#[cfg(test)]
mod tests {
    use mayfly_core::turn::{Lease, LeasedResource, TurnId};

    use super::*;

    fn lease(reap: ReapState) -> LeaseRecord {
        let resource = LeasedResource::Sandbox { sandbox_id: "sbx-1".into() };
        let lease = Lease { turn_id: TurnId::new("t1").unwrap(), deadline_unix_ms: 10, reap_by_unix_ms: 70, resource };
        LeaseRecord { reap, ..LeaseRecord::live(lease) }
    }

    #[test]
    fn while_the_run_goes_on_the_events_say_how_far_a_reap_got() {
        let told = ResourceProgress { reap: ReapState::Failed, error: Some("e2b answered 503".into()) };
        let view = resource_view(&lease(ReapState::Live), Some(&told));
        assert_eq!((view.resource, view.id.as_deref()), (Resource::Sandbox, Some("sbx-1")));
        assert_eq!(
            (view.reap, view.error.as_deref(), view.deadline_unix_ms),
            (ReapState::Failed, Some("e2b answered 503"), 70)
        );
    }

    #[test]
    fn once_the_run_ended_the_lease_record_is_the_word() {
        let told = ResourceProgress { reap: ReapState::Failed, error: Some("e2b answered 503".into()) };
        let view = resource_view(&lease(ReapState::Reaped), Some(&told));
        assert_eq!((view.reap, view.error), (ReapState::Reaped, None));
    }
}
