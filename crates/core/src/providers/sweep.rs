//! The reaper sweep: find mayfly's resources at the providers by their tags and reap those whose
//! turn is over, whoever lost track of them.
//!
//! The worker's cron and `mayfly reap` both call [`sweep`]. It is the backstop for a turn whose
//! orchestrator died between creating a resource and reaping it, so it trusts only what the
//! providers say: sandbox metadata `{mayfly: "1", deadline}` and database names
//! `mayfly-<deadline>-<turn>`. It is idempotent (a resource already gone counts as reaped) and a
//! provider error is reported in the [`SweepReport`], never fatal: one broken provider must not stop
//! the other from being swept.

use crate::providers::{
    database_turn, parse_database_name, parse_sandbox_metadata, sandbox_turn, DatabaseProvider, ProviderError,
    Providers, SandboxProvider,
};
use crate::url::redact_credentials_in_text;
use crate::wire::api::{SweepFinding, SweepReport};
use crate::wire::event::Resource;

/// Reaps every mayfly sandbox and database whose deadline plus `grace_ms` is before `now_unix_ms`.
///
/// The grace leaves a live turn the time to reap its own resources after its deadline, so a sweep
/// never races a turn that is still finishing.
pub async fn sweep<S, D>(providers: &Providers<S, D>, now_unix_ms: u64, grace_ms: u64) -> SweepReport
where
    S: SandboxProvider,
    D: DatabaseProvider,
{
    let mut report = SweepReport { at_unix_ms: now_unix_ms, ..SweepReport::default() };
    let expired = |deadline_unix_s: u64| deadline_unix_s.saturating_mul(1000).saturating_add(grace_ms) < now_unix_ms;

    match providers.sandboxes.list_tagged().await {
        Ok(sandboxes) => {
            for sandbox in sandboxes {
                // The provider filtered by tag already; checking again costs nothing and keeps a
                // provider that ignores the filter from getting a stranger's sandbox killed.
                let Some(deadline) = parse_sandbox_metadata(&sandbox.metadata) else { continue };
                report.sandboxes_seen += 1;
                if !expired(deadline) {
                    continue;
                }
                let result = providers.sandboxes.kill(&sandbox.sandbox_id).await;
                report.sandboxes_reaped += u64::from(result.is_ok());
                let turn_id = sandbox_turn(&sandbox.metadata).unwrap_or_default();
                report.findings.push(finding(turn_id, Resource::Sandbox, &sandbox.sandbox_id, result));
            }
        }
        Err(error) => report.errors.push(format!("listing sandboxes: {error}")),
    }

    match providers.databases.list().await {
        Ok(databases) => {
            for database in databases {
                let Some(deadline) = parse_database_name(&database.name) else { continue };
                report.databases_seen += 1;
                if !expired(deadline) {
                    continue;
                }
                let result = providers.databases.delete(&database.token).await;
                report.databases_reaped += u64::from(result.is_ok());
                let turn_id = database_turn(&database.name).unwrap_or_default();
                report.findings.push(finding(turn_id, Resource::Database, &database.name, result));
            }
        }
        Err(error) => report.errors.push(format!("listing databases: {error}")),
    }
    report.errors = report.errors.iter().map(|error| redact_credentials_in_text(error)).collect();
    report
}

/// What the sweep did to one resource. The report is shown on the reaper dashboard, and a
/// provider's error may echo a connection URL: it is redacted.
fn finding(turn_id: &str, resource: Resource, id: &str, result: Result<bool, ProviderError>) -> SweepFinding {
    let error = result.err().map(|error| redact_credentials_in_text(&error.to_string()));
    SweepFinding { turn_id: turn_id.to_owned(), resource, id: id.to_owned(), error }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use expect_test::expect;

    use super::*;
    use crate::providers::fakes::{
        run_virtual, FakeDatabases, FakeSandbox, FakeSandboxes, Trace, VirtualClock, EPOCH_MS,
    };
    use crate::providers::{database_name, sandbox_metadata};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW_S: u64 = EPOCH_MS / 1000;
    const GRACE_MS: u64 = 60_000;

    fn providers() -> (VirtualClock, Providers<FakeSandboxes, FakeDatabases>) {
        let clock = VirtualClock::new();
        let trace = Trace::default();
        let providers =
            Providers { sandboxes: FakeSandboxes::new(&clock, &trace), databases: FakeDatabases::new(&clock, &trace) };
        let sandboxes = [
            ("expired", sandbox_metadata("t1", NOW_S - 61)),
            ("in-grace", sandbox_metadata("t2", NOW_S - 59)),
            ("running", sandbox_metadata("t3", NOW_S + 30)),
            ("stranger", BTreeMap::from([("deadline".to_owned(), "1".to_owned())])),
            ("bad-deadline", BTreeMap::from([("mayfly".to_owned(), "1".to_owned()), ("deadline".into(), "x".into())])),
        ];
        for (id, metadata) in sandboxes {
            providers.sandboxes.live.borrow_mut().insert(id.into(), FakeSandbox { metadata, ..FakeSandbox::default() });
        }
        let databases = [
            ("tok-expired", database_name("t1", NOW_S - 61)),
            ("tok-running", database_name("t3", NOW_S + 30)),
            ("tok-stranger", "customer-db".to_owned()),
        ];
        for (token, name) in databases {
            providers.databases.live.borrow_mut().insert(token.into(), name);
        }
        (clock, providers)
    }

    #[test]
    fn sweep_reaps_only_expired_mayfly_resources_and_is_idempotent() {
        let (clock, providers) = providers();
        let report = run_virtual(&clock, sweep(&providers, EPOCH_MS, GRACE_MS));
        expect![[r#"
            SweepReport {
                at_unix_ms: 1700000000000,
                sandboxes_seen: 3,
                sandboxes_reaped: 1,
                databases_seen: 2,
                databases_reaped: 1,
                findings: [
                    SweepFinding {
                        turn_id: "t1",
                        resource: Sandbox,
                        id: "expired",
                        error: None,
                    },
                    SweepFinding {
                        turn_id: "t1",
                        resource: Database,
                        id: "mayfly-1699999939-t1",
                        error: None,
                    },
                ],
                errors: [],
            }
        "#]]
        .assert_debug_eq(&report);
        assert_eq!(providers.sandboxes.live_ids(), ["bad-deadline", "in-grace", "running", "stranger"]);
        assert_eq!(providers.databases.live_names(), ["mayfly-1700000030-t3", "customer-db"]);

        let again = run_virtual(&clock, sweep(&providers, EPOCH_MS, GRACE_MS));
        assert_eq!((again.sandboxes_reaped, again.databases_reaped), (0, 0));
        assert!(again.errors.is_empty());
    }

    #[test]
    fn sweep_reports_provider_errors_and_goes_on() {
        let (clock, providers) = providers();
        providers.sandboxes.fail_on("list");
        providers.databases.delete_failures.set(1);
        let report = run_virtual(&clock, sweep(&providers, EPOCH_MS, GRACE_MS));
        expect![[r#"
            [
                "listing sandboxes: e2b answered 500: list broke",
            ]
        "#]]
        .assert_debug_eq(&report.errors);
        // A resource's failure belongs to its turn, and is redacted like any error.
        let failed: Vec<_> = report.findings.iter().filter(|f| f.error.is_some()).collect();
        assert_eq!(failed.len(), 1, "{report:?}");
        assert_eq!((failed[0].turn_id.as_str(), failed[0].id.as_str()), ("t1", "mayfly-1699999939-t1"));
        assert_eq!(
            failed[0].error.as_deref(),
            Some("instanode answered 503: could not drop postgres://***@db.test:5432/db_tok-expired")
        );
        assert_eq!(report.databases_seen, 2);
        assert_eq!(providers.sandboxes.live_ids().len(), 5);

        let (clock, providers) = providers_with_failing_database_list();
        let report = run_virtual(&clock, sweep(&providers, EPOCH_MS, GRACE_MS));
        assert_eq!(report.sandboxes_reaped, 1);
        assert_eq!(report.errors, ["listing databases: instanode answered 502: bad gateway"]);
    }

    fn providers_with_failing_database_list() -> (VirtualClock, Providers<FakeSandboxes, FakeDatabases>) {
        let (clock, providers) = providers();
        providers.databases.fail_on("list");
        (clock, providers)
    }
}
