//! What forks may cost the shared Postgres: a source bigger than the configured limit is refused,
//! and no more than two copies run at once, so forks never hold every admin connection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

async fn fork(srv: &Server, source: &str, name: &str) -> Resp {
    let body = format!(r#"{{"name":"{name}"}}"#);
    srv.call("POST", &format!("/api/v1/resources/{source}/fork"), Some(TOKEN_A), Some(&body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_the_size_limit_is_refused_with_409() {
    let admin = admin().await;
    // An empty database is template1's size; the limit leaves room for a little more.
    let empty: i64 = admin.query_one("SELECT pg_database_size('template1')", &[]).await.unwrap().get(0);
    let limit = empty as u64 + 4 * 1024 * 1024;
    let srv = Server::start(Config { fork_source_max_bytes: limit, ..config(&fresh_schema(), 0) }).await;
    let small = s(&srv.create(Some(TOKEN_A), "small").await, "token");
    let big = srv.create(Some(TOKEN_A), "big").await;
    let c = connect(&s(&big, "connection_url")).await.unwrap();
    c.batch_execute("CREATE TABLE pad AS SELECT repeat(md5(g::text), 32) AS s FROM generate_series(1, 8000) g")
        .await
        .unwrap();
    drop(c);
    let r = fork(&srv, &s(&big, "token"), "too big").await;
    assert_envelope(&r, 409, "source_too_large");
    assert!(r.head.contains("x-scratchdb-extension: fork"), "{}", r.head);
    let message = r.json["message"].as_str().unwrap();
    assert!(message.contains("MiB") && message.contains(&format!("{}", limit / (1024 * 1024))), "{message}");
    assert_eq!(r.json["retry_after_seconds"], json!(null), "{:?}", r.json);
    let listed = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    assert_eq!(listed.json["total"], 2, "a refused fork made something: {:?}", listed.json);
    assert_eq!(fork(&srv, &small, "fits").await.status, 201);
    srv.stop().await;
}

/// Four forks of four sources at once, with three admin connections: the copies wait for the
/// sessions left on their sources (Postgres waits up to 5 s for them), long enough to count them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_two_forks_copy_at_once_and_a_create_still_answers() {
    let srv = Server::start(Config { admin_connections: 3, ..config(&fresh_schema(), 0) }).await;
    let admin = admin().await;
    let mut sources = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..4 {
        let v = srv.create(Some(TOKEN_A), &format!("source {i}")).await;
        sessions.push(connect(&s(&v, "connection_url")).await.unwrap());
        sources.push(s(&v, "token"));
    }
    let patterns: Vec<String> = sources.iter().map(|t| format!("%TEMPLATE \"db_{t}\"%")).collect();
    let forks = futures_join(sources.iter().map(|source| fork(&srv, source, "copy")).collect());
    let watch = async {
        let (mut most, mut create) = (0, None);
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            let copying: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE ANY($1)",
                    &[&patterns],
                )
                .await
                .unwrap()
                .get(0);
            most = most.max(copying);
            if copying >= 2 && create.is_none() {
                let started = Instant::now();
                let made = tokio::time::timeout(Duration::from_secs(2), srv.create(Some(TOKEN_B), "bystander")).await;
                create = Some((made.is_ok(), started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the waiting copies through.
        drop(sessions);
        (most, create)
    };
    let (answers, (most, create)) = tokio::join!(forks, watch);
    assert_eq!(most, 2, "forks copying at once");
    let (made, took) = create.expect("two copies were seen");
    assert!(made, "a create waited {took:?} behind the forks");
    for r in &answers {
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    srv.stop().await;
}
