//! Isolation that does not rest on one grant being right: a role's reach is limited by pg_hba.conf
//! as well as by its database's ACL, and anonymous callers do not share idempotency keys.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;

/// Both paths a pair is made by: handed out from the warm pool, and made on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_reaches_only_its_own_database_even_when_public_may_connect() {
    let srv = Server::start(config(&fresh_schema(), 1)).await;
    let admin = admin().await;
    eventually("the pool to hold a pair", || async { srv.service.pool_ready().await.unwrap() == 1 }).await;
    let pooled = srv.create(Some(TOKEN_A), "alpha").await;
    let fresh = srv.create(None, "bravo").await;
    let resources = [&pooled, &fresh];
    for r in resources {
        // What the moment between CREATE DATABASE and its REVOKE looks like, or an operator's grant.
        let sql = format!("GRANT CONNECT ON DATABASE \"db_{}\" TO PUBLIC", s(r, "token"));
        admin.batch_execute(&sql).await.unwrap();
    }
    for (me, other) in [(&pooled, &fresh), (&fresh, &pooled)] {
        let url = with_database(&s(me, "connection_url"), &format!("db_{}", s(other, "token")));
        match connect(&url).await {
            Ok(_) => panic!("{}'s role opened {}'s database", s(me, "name"), s(other, "name")),
            Err(e) => assert!(e.contains("pg_hba.conf"), "refused, but not by pg_hba.conf: {e}"),
        }
        let own = connect(&s(me, "connection_url")).await.expect("a role opens its own database");
        own.batch_execute("CREATE TABLE mine (x int)").await.unwrap();
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_idempotency_keys_belong_to_each_caller() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let (x, y) = (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let key = [("Idempotency-Key", "turn-1")];
    let body = Some(r#"{"name":"same"}"#);
    let from_x = srv.call_from(x, "POST", "/db/new", &key, body).await;
    let from_y = srv.call_from(y, "POST", "/db/new", &key, body).await;
    assert_eq!((from_x.status, from_y.status), (201, 201), "{:?} {:?}", from_x.json, from_y.json);
    assert_ne!(from_y.json["token"], from_x.json["token"], "caller y was handed caller x's database");
    assert_ne!(from_y.json["connection_url"], from_x.json["connection_url"]);
    assert!(!from_y.head.contains("x-idempotent-replay"), "{}", from_y.head);
    // Each caller's own repeat is still a replay of its own database.
    for (ip, first) in [(x, &from_x), (y, &from_y)] {
        let again = srv.call_from(ip, "POST", "/db/new", &key, body).await;
        assert_eq!(again.status, 201, "{:?}", again.json);
        assert_eq!(again.json["token"], first.json["token"]);
        assert_eq!(again.json["connection_url"], first.json["connection_url"]);
        assert!(again.head.contains("x-idempotent-replay: true"), "{}", again.head);
    }
    srv.stop().await;
}

/// Without peer addresses (a router served by hand) anonymous callers cannot be told apart, so an
/// anonymous key is not honoured rather than shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_peer_addresses_an_anonymous_key_is_not_shared() {
    let service = mayfly_scratchdb::Service::start(config(&fresh_schema(), 0)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = mayfly_scratchdb::router(service.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let call = || async {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let key = [("Idempotency-Key", "shared")];
        exchange(s, addr, "POST", "/db/new", None, &key, Some(r#"{"name":"same"}"#)).await
    };
    let (first, second) = (call().await, call().await);
    assert_eq!((first.status, second.status), (201, 201), "{:?} {:?}", first.json, second.json);
    assert_ne!(first.json["token"], second.json["token"]);
    assert!(second.head.contains("x-idempotency-source: miss"), "{}", second.head);
    task.abort();
    service.shutdown().await;
}

/// A cluster kept with `--data-dir` from a version that named roles `usr_<token>`: at the next
/// start live pairs (and pool pairs) are renamed and keep working; a pair torn down under its old
/// name leaves nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_named_by_older_versions_are_adopted_and_never_leak() {
    let schema = fresh_schema();
    let admin = admin().await;
    let srv = Server::start(config(&schema, 1)).await;
    eventually("the pool to hold a pair", || async { srv.service.pool_ready().await.unwrap() == 1 }).await;
    let live = srv.create(Some(TOKEN_A), "live").await;
    let doomed = srv.create(Some(TOKEN_A), "doomed").await;
    srv.stop().await;
    let pooled: String = admin.query_one(&format!("SELECT token FROM {schema}.pool"), &[]).await.unwrap().get(0);
    for token in [s(&live, "token"), s(&doomed, "token"), pooled.clone()] {
        let sql = format!("ALTER ROLE \"db_{token}\" RENAME TO \"usr_{token}\"; ALTER ROLE \"usr_{token}\" RESET ALL");
        admin.batch_execute(&sql).await.unwrap();
    }
    // `doomed` plays a pair whose rename did not happen: its registry row is gone from the live set.
    let q = format!("UPDATE {schema}.resources SET status = 'deleting' WHERE token = $1");
    admin.execute(&q, &[&s(&doomed, "token")]).await.unwrap();

    let srv = Server::start(config(&schema, 1)).await;
    let c = connect(&s(&live, "connection_url")).await.expect("the adopted role logs in with its stored password");
    let limit: String = c.query_one("SHOW temp_file_limit", &[]).await.unwrap().get(0);
    assert_eq!(limit, "10GB", "an adopted role gets its temporary-file budget");
    let handed = srv.create(None, "from-the-old-pool").await;
    assert_eq!(s(&handed, "token"), pooled, "the old pool pair was not handed out");
    connect(&s(&handed, "connection_url")).await.expect("an adopted pool pair works");
    srv.service.sweep_once().await.unwrap();
    assert!(!role_exists(&admin, &s(&doomed, "token")).await, "a role under its old name leaked");
    let d = srv.call("DELETE", &format!("/api/v1/resources/{}", s(&live, "token")), Some(TOKEN_A), None).await;
    assert_eq!(d.status, 200, "{:?}", d.json);
    assert!(!role_exists(&admin, &s(&live, "token")).await && !db_exists(&admin, &s(&live, "token")).await);
    srv.stop().await;
}
