//! The reaper's bodies: the leases `GET /v1/reaper` shows and what the providers' sweep found, as
//! the deployment records it and as one tenant is shown it.

use serde::{Deserialize, Serialize};

use crate::wire::event::{ReapState, Resource};

/// A lease as the reaper dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    pub turn_id: String,
    pub resource: Resource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub reap: ReapState,
    pub deadline_unix_ms: u64,
}

/// What one sweep of the providers found and did, across every tenant: the deployment's own
/// record. A tenant is shown only its [`SweepView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub at_unix_ms: u64,
    pub sandboxes_seen: u64,
    pub sandboxes_reaped: u64,
    pub databases_seen: u64,
    pub databases_reaped: u64,
    /// Every resource the sweep tried to reap, with the turn it belonged to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<SweepFinding>,
    /// Failures that belong to no turn: a provider's listing that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One resource a sweep tried to reap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepFinding {
    pub turn_id: String,
    pub resource: Resource,
    /// The sandbox id, or the database's name.
    pub id: String,
    /// Why the reap failed; absent when it worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last sweep as one tenant sees it: what it did to that tenant's turns, and the providers'
/// own failures; nothing of another tenant's resources, not even how many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepView {
    pub at_unix_ms: u64,
    /// The tenant's resources the sweep reaped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaped: Vec<SweepFinding>,
    /// The tenant's resources it could not reap, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<SweepFinding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl SweepReport {
    /// The turns the sweep touched (each once), to ask which of them a tenant owns.
    pub fn turn_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.findings.iter().map(|f| f.turn_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The report as the tenant owning the turns `owns` accepts sees it.
    pub fn view_for(&self, owns: impl Fn(&str) -> bool) -> SweepView {
        let (failed, reaped) =
            self.findings.iter().filter(|f| owns(&f.turn_id)).cloned().partition(|f| f.error.is_some());
        SweepView { at_unix_ms: self.at_unix_ms, reaped, failed, errors: self.errors.clone() }
    }
}

/// `GET /v1/reaper`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaperStatus {
    pub alive: u64,
    pub overdue: Vec<LeaseView>,
    pub failed: Vec<LeaseView>,
    /// Databases kept as checkpoints, each until its `deadline_unix_ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<LeaseView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sweep: Option<SweepView>,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::wire::api::check;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn reaper() {
        check(
            &ReaperStatus {
                alive: 1,
                overdue: vec![LeaseView {
                    turn_id: "t_2".into(),
                    resource: Resource::Sandbox,
                    id: Some("sbx2".into()),
                    reap: ReapState::Failed,
                    deadline_unix_ms: 9,
                }],
                failed: vec![],
                checkpoints: vec![],
                last_sweep: Some(SweepView {
                    at_unix_ms: 10,
                    reaped: vec![SweepFinding {
                        turn_id: "t_1".into(),
                        resource: Resource::Database,
                        id: "mayfly-9-t_1".into(),
                        error: None,
                    }],
                    failed: vec![],
                    errors: vec!["listing sandboxes: e2b answered 502".into()],
                }),
            },
            expect![[
                r#"{"alive":1,"overdue":[{"turn_id":"t_2","resource":"sandbox","id":"sbx2","reap":"failed","deadline_unix_ms":9}],"failed":[],"last_sweep":{"at_unix_ms":10,"reaped":[{"turn_id":"t_1","resource":"database","id":"mayfly-9-t_1"}],"errors":["listing sandboxes: e2b answered 502"]}}"#
            ]],
        );
    }

    #[test]
    fn a_tenant_sees_only_its_own_part_of_a_sweep() {
        let finding = |turn: &str, error: Option<&str>| SweepFinding {
            turn_id: turn.into(),
            resource: Resource::Sandbox,
            id: format!("sbx-{turn}"),
            error: error.map(Into::into),
        };
        let report = SweepReport {
            at_unix_ms: 10,
            sandboxes_seen: 9,
            sandboxes_reaped: 2,
            findings: vec![
                finding("t_mine", None),
                finding("t_theirs", None),
                finding("t_mine2", Some("e2b answered 503")),
            ],
            errors: vec!["listing databases: instanode answered 502".into()],
            ..SweepReport::default()
        };
        assert_eq!(report.turn_ids(), ["t_mine", "t_mine2", "t_theirs"]);
        let view = report.view_for(|turn| turn.starts_with("t_mine"));
        assert_eq!(view.reaped, [finding("t_mine", None)]);
        assert_eq!(view.failed, [finding("t_mine2", Some("e2b answered 503"))]);
        assert_eq!(view.errors, report.errors);
        assert!(!serde_json::to_string(&view).unwrap().contains("theirs"));
    }
}
