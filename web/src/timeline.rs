//! Where a turn's phases sit on its timeline. The phases themselves come from core's
//! [`TurnProgress`], the fold every viewer of a turn shares.

use mayfly_core::turn::progress::Phase;
use mayfly_core::TurnProgress;

/// Where `phase`'s bar sits on a timeline `0..=now_ms`, as (left %, width %); a phase still
/// going reaches the right edge. `None` for a phase that has not started.
pub(crate) fn bar(progress: &TurnProgress, phase: Phase) -> Option<(f64, f64)> {
    let span = progress.span(phase);
    let start = span.start?;
    let total = progress.now_ms.max(1) as f64;
    let end = span.end.unwrap_or(progress.now_ms).max(start);
    let left = start as f64 / total * 100.0;
    // A phase of 0 ms still shows as a sliver.
    let width = ((end - start) as f64 / total * 100.0).max(0.5);
    Some((left.min(99.5), width.min(100.0 - left.min(99.5))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mayfly_core::{Event, EventBody};

    fn events(exited: bool) -> Vec<Event> {
        let mut bodies = vec![
            (0, EventBody::TurnAccepted { turn_id: "t".into(), deadline_ms: 60_000 }),
            (1, EventBody::SandboxCreating { template: "mayfly".into() }),
            (40, EventBody::SandboxReady { sandbox_id: "s".into(), ms: 39 }),
            (45, EventBody::CodeUploaded { path: "/home/user/main.py".into(), bytes: 10 }),
            (50, EventBody::ProcessStarted { pid: 2 }),
            (60, EventBody::Stdout { data: "1\n".into() }),
        ];
        if exited {
            bodies.push((150, EventBody::ProcessExited { exit_code: 0, ms: 100 }));
            bodies.push((171, EventBody::SandboxReaped { ms: 21 }));
        }
        bodies.into_iter().zip(1..).map(|((at_ms, body), seq)| Event { seq, at_ms, body }).collect()
    }

    fn close(got: (f64, f64), want: (f64, f64)) -> bool {
        (got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-9
    }

    #[test]
    fn a_phase_is_placed_by_its_share_of_the_turn() {
        let progress = TurnProgress::of(&events(true));
        let run = bar(&progress, Phase::Run).unwrap();
        assert!(close(run, (50.0 / 171.0 * 100.0, 100.0 / 171.0 * 100.0)), "{run:?}");
    }

    #[test]
    fn a_running_phase_reaches_the_right_edge() {
        let progress = TurnProgress::of(&events(false));
        let run = bar(&progress, Phase::Run).unwrap();
        assert!(close(run, (50.0 / 60.0 * 100.0, 10.0 / 60.0 * 100.0)), "{run:?}");
        assert_eq!(bar(&progress, Phase::Reap), None);
    }
}
