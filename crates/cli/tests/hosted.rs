//! Real turns against a scratchdb that answers as hosted instanode does (`--like-hosted`): a
//! database that is not the one the turn asked for is refused before any code runs, and the turn
//! says what happened and what to do.

use mayfly_cli::clock::SystemClock;
use mayfly_cli::http::ReqwestHttpClient;
use mayfly_cli::providers::{local_e2b, local_templates, NativeProviders};
use mayfly_cli::stack::{LocalStack, StackOptions};
use mayfly_core::providers::e2b::E2bClient;
use mayfly_core::providers::instanode::{InstanodeClient, InstanodeConfig};
use mayfly_core::providers::Providers;
use mayfly_core::turn::{run_turn, TurnControl, TurnId, TurnOptions, TurnReport};
use mayfly_core::{CreateTurnRequest, Language, Limits, Outcome, TurnSpec};
use mayfly_scratchdb::LikeHosted;
use recorder::Recorder as Events;

mod recorder;

async fn stack(daily_cap: u32) -> LocalStack {
    let options =
        StackOptions { like_hosted: Some(LikeHosted { anonymous_daily_cap: daily_cap }), ..StackOptions::default() };
    LocalStack::start(options).await.expect("the local stack starts")
}

/// The local sandboxd, and scratchdb with `token` (anonymous mode without one).
fn providers(stack: &LocalStack, token: Option<&str>) -> NativeProviders {
    let instanode =
        InstanodeConfig { base_url: stack.endpoints.scratchdb_url.clone(), token: token.map(str::to_owned) };
    Providers {
        sandboxes: E2bClient::new(ReqwestHttpClient::default(), SystemClock, local_e2b(&stack.endpoints)),
        databases: InstanodeClient::new(ReqwestHttpClient::default(), SystemClock, instanode),
    }
}

async fn turn(providers: &NativeProviders, name: &str) -> (TurnReport, Events) {
    let code = "import os, psycopg\nprint(psycopg.connect(os.environ['PG_URL']).execute('SELECT 1').fetchone())";
    let spec =
        TurnSpec::from_request(CreateTurnRequest::new(code, Language::Python), &Limits::default(), &local_templates())
            .unwrap();
    let events = Events::default();
    let id = TurnId::new(format!("t_{name}")).unwrap();
    let report =
        run_turn(id, spec, TurnOptions::default(), providers, &SystemClock, &events, &TurnControl::default()).await;
    (report, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_daily_share_an_earlier_database_is_refused_not_run_on() {
    let stack = stack(1).await;
    let anonymous = providers(&stack, None);
    let (first, events) = turn(&anonymous, "first").await;
    assert_eq!(first.outcome, Outcome::Succeeded, "{}", events.json());
    // Hosted answers the second create with the first database (200): the turn must not use it.
    let (second, events) = turn(&anonymous, "second").await;
    assert_eq!(second.outcome, Outcome::Failed);
    let error = second.error.unwrap_or_default();
    assert!(error.contains("mayfly-") && error.contains("t_first") && error.contains("INSTANODE_TOKEN"), "{error}");
    assert!(!events.ran_code(), "code ran against another turn's database");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_instanode_does_not_accept_makes_no_turn_run_on_an_anonymous_database() {
    let stack = stack(5).await;
    let (report, events) = turn(&providers(&stack, Some("ink_revoked")), "token").await;
    assert_eq!(report.outcome, Outcome::Failed);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("did not accept INSTANODE_TOKEN") && error.contains("claim"), "{error}");
    assert!(!events.ran_code(), "code ran against a database the token cannot delete");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recycle_gate_fails_the_turn_with_what_to_do() {
    let stack = stack(5).await;
    let anonymous = providers(&stack, None);
    let (first, _) = turn(&anonymous, "first").await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    // The caller's database expires, as hosted's do after 24 h.
    let (client, connection) =
        tokio_postgres::connect(stack.postgres_admin_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("UPDATE scratchdb.resources SET status = 'expired' WHERE owner IS NULL").await.unwrap();
    let (second, events) = turn(&anonymous, "second").await;
    assert_eq!(second.outcome, Outcome::Failed);
    let error = second.error.unwrap_or_default();
    assert!(error.contains("free_tier_recycle_requires_claim") && error.contains("/claim"), "{error}");
    assert!(error.contains("INSTANODE_TOKEN"), "{error}");
    assert!(!events.ran_code());
    stack.shutdown().await;
}
