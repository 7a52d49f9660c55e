//! A tenant cannot pin scratchdb's admin connections. A session of a resource's role can hold its
//! role's `pg_authid` row by leaving an `ALTER ROLE CURRENT_USER` uncommitted, and every
//! `ALTER ROLE` of scratchdb's on that role (rotate, delete, freeze) would wait on it; the role's
//! sessions are ended first, and every admin statement has a lock timeout besides.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::*;

/// A session of the resource's role that holds the role's row: its own `ALTER ROLE`, uncommitted.
async fn hold_role_row(url: &str) -> tokio_postgres::Client {
    let c = connect(url).await.unwrap();
    c.batch_execute("BEGIN; ALTER ROLE CURRENT_USER PASSWORD 'mine'").await.unwrap();
    c
}

/// `f`'s answer, or a panic naming `what` when it takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| panic!("{what} did not answer within {limit:?}"))
}

const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_delete_and_freeze_end_the_session_that_holds_the_roles_row() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let mut tokens = Vec::new();
    let mut holders = Vec::new();
    for name in ["rotated", "deleted", "frozen"] {
        let v = srv.create(Some(TOKEN_A), name).await;
        holders.push(hold_role_row(&s(&v, "connection_url")).await);
        tokens.push(s(&v, "token"));
    }
    let path = |i: usize| format!("/api/v1/resources/{}", tokens[i]);
    let rotate = format!("{}/rotate-credentials", path(0));
    let rotated = within(PROMPTLY, "a rotate", srv.call("POST", &rotate, Some(TOKEN_A), None)).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.json);
    connect(&s(&rotated.json, "connection_url")).await.expect("the rotated password logs in");
    let deleted = within(PROMPTLY, "a delete", srv.call("DELETE", &path(1), Some(TOKEN_A), None)).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.json);
    assert!(!db_exists(&admin, &tokens[1]).await && !role_exists(&admin, &tokens[1]).await, "the delete failed");
    let freeze = format!("{}/freeze", path(2));
    let frozen = within(PROMPTLY, "a freeze", srv.call("POST", &freeze, Some(TOKEN_A), None)).await;
    assert_eq!(frozen.status, 200, "{:?}", frozen.json);
    for holder in holders {
        holder.batch_execute("COMMIT").await.expect_err("the session holding its role's row survived");
    }
    srv.stop().await;
}

/// Only the role's own sessions are ended: a lock held by someone else (here a superuser) is
/// waited on for the lock timeout, and then answered with a `503` to retry, never a hang or a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_someone_else_is_a_503_to_retry() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let v = srv.create(Some(TOKEN_A), "held").await;
    let token = s(&v, "token");
    let path = format!("/api/v1/resources/{token}");
    admin.batch_execute(&format!("BEGIN; ALTER ROLE \"db_{token}\" VALID UNTIL 'infinity'")).await.unwrap();
    let started = Instant::now();
    let (rotate, freeze) = (format!("{path}/rotate-credentials"), format!("{path}/freeze"));
    let rotated = within(PROMPTLY, "a rotate", srv.call("POST", &rotate, Some(TOKEN_A), None)).await;
    assert_envelope(&rotated, 503, "rotate_failed");
    let frozen = within(PROMPTLY, "a freeze", srv.call("POST", &freeze, Some(TOKEN_A), None)).await;
    assert_envelope(&frozen, 503, "freeze_failed");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    admin.batch_execute("ROLLBACK").await.unwrap();
    // Retried once the lock is gone, it goes through.
    let frozen = srv.call("POST", &freeze, Some(TOKEN_A), None).await;
    assert_eq!(frozen.status, 200, "{:?}", frozen.json);
    connect(&s(&v, "connection_url")).await.expect_err("the retried freeze left a way in");
    srv.stop().await;
}

/// More stalls at once than scratchdb has admin connections (8), and a stranger's create still
/// answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answers_while_tenants_try_to_stall_every_admin_connection() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let mut tokens = Vec::new();
    let mut holders = Vec::new();
    for i in 0..12 {
        let v = srv.create(Some(TOKEN_A), &format!("stall {i}")).await;
        holders.push(hold_role_row(&s(&v, "connection_url")).await);
        tokens.push(s(&v, "token"));
    }
    let stalls = tokens.iter().enumerate().map(|(i, token)| {
        let (method, path) = match i % 3 {
            0 => ("POST", format!("/api/v1/resources/{token}/rotate-credentials")),
            1 => ("DELETE", format!("/api/v1/resources/{token}")),
            _ => ("POST", format!("/api/v1/resources/{token}/freeze")),
        };
        let srv = &srv;
        async move { (method, srv.call(method, &path, Some(TOKEN_A), None).await) }
    });
    let stalls = futures_join(stalls.collect());
    let create = async {
        // Once the stalls have taken their connections.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let r =
            within(Duration::from_secs(5), "a create among the stalls", srv.create(Some(TOKEN_B), "bystander")).await;
        (r, started.elapsed())
    };
    let (answers, (created, took)) =
        within(Duration::from_secs(30), "the stalls", async { tokio::join!(stalls, create) }).await;
    assert!(created["connection_url"].is_string(), "{created}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    for (method, r) in &answers {
        assert_eq!(r.status, 200, "{method}: {:?}", r.json);
    }
    for (i, token) in tokens.iter().enumerate() {
        if i % 3 == 1 {
            assert!(!db_exists(&admin, token).await, "a delete among the stalls did not delete");
        }
    }
    drop(holders);
    srv.stop().await;
}
