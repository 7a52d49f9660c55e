//! The edge API's request and response bodies (`worker/openapi.json`), shared by the worker that
//! serves them, the web app and the CLI that read them: a turn's own, the reaper's, the health
//! check's and the turn tokens', one file each.

mod health;
mod reaper;
mod session;
mod tokens;
mod turns;

pub use health::{Health, ProviderCheck, ProvidersView, SecretState, Verdict};
pub use reaper::{LeaseView, ReaperStatus, SweepFinding, SweepReport, SweepView};
pub use session::{CheckpointRequest, CheckpointView, DatabaseField, DatabaseOptions};
pub use tokens::{CreateTokenRequest, TokenResponse, TokenScope};
pub use turns::{
    CreateTurnRequest, CreateTurnResponse, KeepResponse, Language, ResourceView, SpecView, TurnDetail, TurnList,
    TurnSummary,
};

/// Pins `value`'s JSON as a snapshot and checks that it reads back as the same value.
#[cfg(test)]
fn check<T>(value: &T, expect: expect_test::Expect)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).unwrap();
    expect.assert_eq(&json);
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "round trip changed the value");
}
