//! What one resource may take from the server: temporary files and storage.

mod common;

use common::*;

/// A sort of 5 million rows with 64 kB of work_mem spills well over 100 MB of temporary files.
const SPILL: &str = "SELECT count(*) FROM (SELECT g FROM generate_series(1, 5000000) g ORDER BY random() OFFSET 0) s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_files_are_capped_for_pooled_and_fresh_pairs() {
    for pool in [0, 1] {
        let srv = Server::start(config(&fresh_schema(), pool)).await;
        eventually("the pool to fill", || async { srv.service.pool_ready().await.unwrap() == pool }).await;
        let v = srv.create(None, "spill").await;
        let c = connect(&s(&v, "connection_url")).await.unwrap();
        c.batch_execute("SET work_mem = '64kB'").await.unwrap();
        let err = c.query(SPILL, &[]).await.expect_err("a sort far past the limit filled the disk unchecked");
        let msg = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_else(|| err.to_string());
        assert!(msg.contains("temporary file size exceeds temp_file_limit"), "pool {pool}: {msg}");
        // The role cannot lift its own limit.
        let err = c.batch_execute("SET temp_file_limit = -1").await.expect_err("the role raised temp_file_limit");
        assert!(err.as_db_error().is_some_and(|e| e.message().contains("permission denied")), "{err:?}");
        c.batch_execute("SELECT 1").await.expect("the session survives a refused query");
        srv.stop().await;
    }
}

/// An anonymous resource (10 MB) written past its limit is stopped; an owned one beside it is not.
/// Anonymous resources are read through their claim preview; claiming it gives an owner who can
/// see it in the Bearer API and delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_over_its_storage_limit_is_stopped_until_deleted() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let anon = srv.create(None, "filler").await;
    let other = srv.create(Some(TOKEN_A), "bystander").await;
    let (token, url, jwt) = (s(&anon, "token"), s(&anon, "connection_url"), s(&anon, "upgrade_jwt"));
    let c = connect(&url).await.unwrap();
    // About 20 MB that does not compress: rows of random hex, each below the TOAST threshold. The
    // stop may cut this short; what was written by then stays on disk.
    let wrote = c
        .batch_execute(
            "CREATE TABLE fill (pad text); \
             INSERT INTO fill SELECT (SELECT string_agg(md5(random()::text || g || i), '') \
             FROM generate_series(1, 30) i) FROM generate_series(1, 20000) g",
        )
        .await;
    let preview = format!("/claim/preview?t={jwt}");
    eventually(&format!("the database over its limit to be stopped (the write: {wrote:?})"), || async {
        srv.call("GET", &preview, None, None).await.json["items"][0]["status"] == "suspended"
    })
    .await;
    let item = srv.call("GET", &preview, None, None).await.json["items"][0].clone();
    assert_eq!(item["storage_exceeded"], true, "{item}");
    assert!(c.batch_execute("SELECT 1").await.is_err(), "the open session survived the stop");
    let refused = connect(&url).await.expect_err("a stopped database accepted a new connection");
    assert!(refused.contains("not permitted to log in"), "{refused}");

    // The one beside it is untouched.
    let bystander = format!("/api/v1/resources/{}", s(&other, "token"));
    let got = srv.call("GET", &bystander, Some(TOKEN_A), None).await;
    assert_eq!(
        (got.json["item"]["status"].clone(), got.json["item"]["storage_exceeded"].clone()),
        ("active".into(), false.into())
    );
    connect(&s(&other, "connection_url"))
        .await
        .expect("the bystander still opens")
        .batch_execute("SELECT 1")
        .await
        .unwrap();

    let body = format!(r#"{{"token":"{jwt}","email":"dev@example.com"}}"#);
    let claimed = srv.call("POST", "/claim", None, Some(&body)).await;
    assert_eq!(claimed.status, 201, "{:?}", claimed.json);
    let session = s(&claimed.json, "session_token");
    let got = srv.call("GET", &format!("/api/v1/resources/{token}"), Some(&session), None).await;
    assert_eq!(got.status, 200, "{:?}", got.json);
    assert_eq!(
        (got.json["item"]["status"].clone(), got.json["item"]["storage_exceeded"].clone()),
        ("suspended".into(), true.into())
    );
    let list = srv.call("GET", "/api/v1/resources", Some(&session), None).await;
    assert_eq!(list.json["items"][0]["status"], "suspended", "{:?}", list.json);
    assert!(connect(&url).await.is_err(), "claiming restarted a stopped database");

    let d = srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(&session), None).await;
    assert_eq!(d.status, 200, "{:?}", d.json);
    assert!(
        !db_exists(&admin, &token).await && !role_exists(&admin, &token).await,
        "the stopped database survived its delete"
    );
    srv.stop().await;
}

/// Stopped is not forever for an anonymous database: it still expires like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_still_expires() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let token = s(&srv.create(None, "stopped").await, "token");
    let q = format!(
        "UPDATE {}.resources SET status = 'suspended', expires_at = now() - interval '1 second' WHERE token = $1",
        srv.schema
    );
    admin.execute(&q, &[&token]).await.unwrap();
    assert_eq!(srv.service.sweep_once().await.unwrap(), 1);
    assert!(!db_exists(&admin, &token).await && !role_exists(&admin, &token).await);
    let status: String = admin
        .query_one(&format!("SELECT status FROM {}.resources WHERE token = $1", srv.schema), &[&token])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "expired");
    srv.stop().await;
}

/// A connection holds one of the server's slots from its first packet, whatever its role's own
/// limit, until it has logged in: one that never finishes must let the slot go soon, not after
/// Postgres's default minute, or a few sandboxes' worth of stalled logins would lock every
/// resource out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_never_finishes_holds_its_server_slot_briefly() {
    let admin = admin().await;
    let timeout: String = admin.query_one("SHOW authentication_timeout", &[]).await.unwrap().get(0);
    assert_eq!(timeout, "5s");
}
