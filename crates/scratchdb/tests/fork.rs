//! scratchdb's fork extension (`POST /api/v1/resources/{token}/fork`, docs/protocols/instanode.md
//! §12) against a real Postgres: what a fork copies, whose it is, who may ask for one, and that it
//! lives and dies like any other resource.

mod common;

use std::collections::HashSet;

use common::*;
use mayfly_core::wire::instanode::NewDatabaseAnswer;
use serde_json::{json, Value};

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    assert_eq!((r.json["ok"].clone(), r.json["error"].clone()), (json!(false), json!(code)), "{:?}", r.json);
    assert!(r.json["message"].is_string(), "{:?}", r.json);
}

/// A 404 from this route must say the route exists, or a client could not tell "no such source"
/// from "no fork here" (hosted instanode).
fn assert_from_the_fork_route(r: &Resp) {
    assert!(r.head.contains("x-scratchdb-extension: fork"), "{}", r.head);
}

fn fork_path(source: &str) -> String {
    format!("/api/v1/resources/{source}/fork")
}

async fn fork(srv: &Server, bearer: Option<&str>, source: &str, name: &str) -> Resp {
    srv.call("POST", &fork_path(source), bearer, Some(&format!(r#"{{"name":"{name}"}}"#))).await
}

/// Forks and expects a `201`; the answer's body.
async fn forked(srv: &Server, source: &str, name: &str) -> Value {
    let r = fork(srv, Some(TOKEN_A), source, name).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json
}

/// TOKEN_A's database with a table of two rows, and no session left open on it.
async fn seeded(srv: &Server) -> Value {
    let v = srv.create(Some(TOKEN_A), "source").await;
    let c = connect(&s(&v, "connection_url")).await.unwrap();
    c.batch_execute(
        "CREATE TABLE notes (id int PRIMARY KEY, body text); CREATE INDEX notes_body ON notes (body); \
         INSERT INTO notes VALUES (1, 'hi'), (2, 'there')",
    )
    .await
    .unwrap();
    v
}

async fn bodies(url: &str) -> Vec<String> {
    let c = connect(url).await.unwrap_or_else(|e| panic!("connect: {e}"));
    let rows = c.query("SELECT body FROM notes ORDER BY id", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_copies_schema_and_rows_and_answers_like_a_create() {
    let schema = fresh_schema();
    let srv = Server::start(config(&schema, 1)).await;
    let admin = admin().await;
    eventually("the pool to hold a pair", || async { srv.service.pool_ready().await.unwrap() == 1 }).await;
    let source = seeded(&srv).await;
    eventually("the pool to refill", || async { srv.service.pool_ready().await.unwrap() == 1 }).await;
    let pool = format!("SELECT token FROM {schema}.pool");
    let pooled: String = admin.query_one(&pool, &[]).await.unwrap().get(0);
    let r = fork(&srv, Some(TOKEN_A), &s(&source, "token"), "copy").await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_from_the_fork_route(&r);
    assert!(r.head.contains("x-idempotency-source: miss"), "{}", r.head);
    let v = r.json;
    let still: String = admin.query_one(&pool, &[]).await.unwrap().get(0);
    assert_eq!((still, s(&v, "token") != pooled), (pooled, true), "a fork took the pool's pair");
    // The body of an owner's create, field for field, so the client reads it with the same code.
    let created = srv.create(Some(TOKEN_A), "copy").await;
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<HashSet<_>>();
    assert_eq!(keys(&v), keys(&created), "{v} vs {created}");
    for same in ["ok", "name", "tier", "env", "dedicated", "limits", "env_override_reason"] {
        assert_eq!(v[same], created[same], "{same}");
    }
    serde_json::from_value::<NewDatabaseAnswer>(v.clone()).expect("the client's type reads the answer");
    let token = s(&v, "token");
    assert_ne!(token, s(&source, "token"));
    let url = s(&v, "connection_url");
    assert!(url.starts_with(&format!("postgres://db_{token}:")), "{url}");
    assert_eq!(bodies(&url).await, ["hi", "there"]);
    let c = connect(&url).await.unwrap();
    let index: Option<String> = c.query_one("SELECT to_regclass('notes_body')::text", &[]).await.unwrap().get(0);
    assert_eq!(index.as_deref(), Some("notes_body"), "the schema came along");
    // It is an ordinary resource of its owner's.
    let got = srv.call("GET", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await;
    assert_eq!((got.status, got.json["item"]["status"].clone()), (200, json!("active")), "{:?}", got.json);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_fork_are_seen_by_neither_its_source_nor_a_sibling() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let source = seeded(&srv).await;
    let a = forked(&srv, &s(&source, "token"), "a").await;
    let b = forked(&srv, &s(&source, "token"), "b").await;
    for (v, word) in [(&a, "from a"), (&b, "from b"), (&source, "from the source")] {
        let c = connect(&s(v, "connection_url")).await.unwrap();
        c.execute("INSERT INTO notes VALUES (3, $1)", &[&word]).await.unwrap();
        c.execute("DELETE FROM notes WHERE id = 1", &[]).await.unwrap();
    }
    assert_eq!(bodies(&s(&a, "connection_url")).await, ["there", "from a"]);
    assert_eq!(bodies(&s(&b, "connection_url")).await, ["there", "from b"]);
    assert_eq!(bodies(&s(&source, "connection_url")).await, ["there", "from the source"]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_forks_of_one_source_all_succeed() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let source = s(&seeded(&srv).await, "token");
    let (x, y, z) = tokio::join!(
        fork(&srv, Some(TOKEN_A), &source, "x"),
        fork(&srv, Some(TOKEN_A), &source, "y"),
        fork(&srv, Some(TOKEN_A), &source, "z")
    );
    let all = [x, y, z];
    assert!(all.iter().all(|r| r.status == 201), "{all:?}");
    let tokens: HashSet<String> = all.iter().map(|r| s(&r.json, "token")).collect();
    assert_eq!(tokens.len(), 3);
    for r in &all {
        assert_eq!(bodies(&s(&r.json, "connection_url")).await, ["hi", "there"]);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_refused_as_on_every_owner_route() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let source = s(&seeded(&srv).await, "token");
    let r = fork(&srv, None, &source, "mine now").await;
    assert_error(&r, 401, "unauthorized");
    assert_eq!(r.json["error_code"], "missing_credentials", "{:?}", r.json);
    assert_from_the_fork_route(&r);
    // The very answer the owner routes give an anonymous caller.
    let get = srv.call("GET", &format!("/api/v1/resources/{source}"), None, None).await;
    assert_eq!((get.status, &get.json), (r.status, &r.json));
    assert_error(&fork(&srv, Some("not-a-token"), &source, "x").await, 401, "unauthorized");
    let listed = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    assert_eq!(listed.json["total"], 1, "a refused fork made something: {:?}", listed.json);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_owners_unknown_or_anonymous_source_is_not_found() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let source = s(&seeded(&srv).await, "token");
    let anonymous = s(&srv.create(None, "nobodys").await, "token");
    let unknown = uuid::Uuid::new_v4().to_string();
    let answers = [
        fork(&srv, Some(TOKEN_B), &source, "theirs").await,
        fork(&srv, Some(TOKEN_A), &unknown, "ghost").await,
        fork(&srv, Some(TOKEN_A), &anonymous, "adopted").await,
    ];
    for r in &answers {
        assert_error(r, 404, "not_found");
        assert_from_the_fork_route(r);
    }
    // Indistinguishable: the same body whatever the reason.
    assert!(answers.iter().all(|r| r.json == answers[0].json), "{answers:?}");
    assert_error(&fork(&srv, Some(TOKEN_A), "not-a-uuid", "x").await, 400, "invalid_id");
    // The body is checked as /db/new checks it.
    let path = fork_path(&source);
    assert_error(&srv.call("POST", &path, Some(TOKEN_A), Some("{}")).await, 400, "name_required");
    assert_error(&srv.call("POST", &path, Some(TOKEN_A), Some(r#"{"name":"a;b"}"#)).await, 400, "invalid_name");
    let dedicated = Some(r#"{"name":"x","dedicated":true}"#);
    assert_error(&srv.call("POST", &path, Some(TOKEN_A), dedicated).await, 402, "upgrade_required");
    // Nothing was made for TOKEN_B, and the owner still forks its own.
    let listed = srv.call("GET", "/api/v1/resources", Some(TOKEN_B), None).await;
    assert_eq!(listed.json["total"], 0, "{:?}", listed.json);
    forked(&srv, &source, "mine").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_returns_the_same_fork() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let source = s(&seeded(&srv).await, "token");
    let other_source = s(&srv.create(Some(TOKEN_A), "other").await, "token");
    let key = [("Idempotency-Key", "fork-1")];
    let call = |source: &str, body: &'static str| {
        let path = fork_path(source);
        let srv = &srv;
        async move { srv.call_h("POST", &path, Some(TOKEN_A), &key, Some(body)).await }
    };
    let first = call(&source, r#"{"name":"f","env":"dev"}"#).await;
    assert_eq!(first.status, 201, "{:?}", first.json);
    assert!(first.head.contains("x-idempotency-source: explicit"), "{}", first.head);
    let again = call(&source, r#"{"env":"dev","name":"f"}"#).await;
    assert_eq!(again.status, 201, "{:?}", again.json);
    assert_eq!(
        (&again.json["token"], &again.json["connection_url"]),
        (&first.json["token"], &first.json["connection_url"])
    );
    assert!(again.head.contains("x-idempotent-replay: true"), "{}", again.head);
    // The key promised this fork: another body, another source or a create is refused.
    assert_error(&call(&source, r#"{"name":"g"}"#).await, 409, "idempotency_key_conflict");
    assert_error(&call(&other_source, r#"{"name":"f","env":"dev"}"#).await, 409, "idempotency_key_conflict");
    let create = srv.call_h("POST", "/db/new", Some(TOKEN_A), &key, Some(r#"{"name":"f","env":"dev"}"#)).await;
    assert_error(&create, 409, "idempotency_key_conflict");
    let listed = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    assert_eq!(listed.json["total"], 3, "one fork, two sources: {:?}", listed.json);
    // Racing retries of a new key all get the one fork.
    let race = [("Idempotency-Key", "fork-race")];
    let path = fork_path(&source);
    let body = Some(r#"{"name":"r"}"#);
    let (p, q, r) = tokio::join!(
        srv.call_h("POST", &path, Some(TOKEN_A), &race, body),
        srv.call_h("POST", &path, Some(TOKEN_A), &race, body),
        srv.call_h("POST", &path, Some(TOKEN_A), &race, body)
    );
    let tokens: HashSet<String> = [&p, &q, &r].iter().map(|r| s(&r.json, "token")).collect();
    assert_eq!(tokens.len(), 1, "{p:?} {q:?} {r:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_belongs_to_the_forks_own_role() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let source = seeded(&srv).await;
    let source_url = s(&source, "connection_url");
    let c = connect(&source_url).await.unwrap();
    // Default privileges and a view: objects and grants beyond a table's that name the source's role.
    c.batch_execute(
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC; \
         CREATE VIEW hello AS SELECT body FROM notes; CREATE SEQUENCE counter",
    )
    .await
    .unwrap();
    drop(c);
    let (source_token, v) = (s(&source, "token"), forked(&srv, &s(&source, "token"), "mine").await);
    let (token, url) = (s(&v, "token"), s(&v, "connection_url"));
    let c = connect(&url).await.unwrap();
    let foreign: i64 = c
        .query_one("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(foreign, 0, "objects in the copy still belong to another role");
    c.batch_execute(
        "INSERT INTO notes VALUES (3, 'mine'); UPDATE notes SET body = 'edited' WHERE id = 1; \
         SELECT nextval('counter'); ALTER TABLE notes ADD COLUMN extra int; DROP VIEW hello; DROP TABLE notes",
    )
    .await
    .expect("the fork's role alters and drops what it was given");
    drop(c);
    // The source is untouched and still its own role's.
    let owner: String = admin
        .query_one(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
            &[&format!("db_{source_token}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, format!("db_{source_token}"));
    let c = connect(&source_url).await.expect("the source's role still opens its database");
    c.batch_execute("ALTER TABLE notes ADD COLUMN extra int; DROP VIEW hello")
        .await
        .expect("and still owns its tables");
    drop(c);
    assert_eq!(bodies(&source_url).await, ["hi", "there"]);
    // Neither role opens the other's database: the embedded cluster's pg_hba.conf says so, and so
    // do the databases' own grants, the only barrier on a server whose pg_hba.conf is not ours.
    connect(&with_database(&source_url, &format!("db_{token}"))).await.expect_err("the source's role opened the fork");
    connect(&with_database(&url, &format!("db_{source_token}"))).await.expect_err("the fork's role opened the source");
    for (role, db, allowed) in [
        (&source_token, &token, false),
        (&token, &source_token, false),
        (&token, &token, true),
        (&source_token, &source_token, true),
    ] {
        let q = "SELECT has_database_privilege($1, $2, 'CONNECT')";
        let may: bool = admin.query_one(q, &[&format!("db_{role}"), &format!("db_{db}")]).await.unwrap().get(0);
        assert_eq!(may, allowed, "CONNECT for db_{role} on db_{db}");
    }
    // Nothing in the fork names the source's role, so deleting the source drops its role.
    let d = srv.call("DELETE", &format!("/api/v1/resources/{source_token}"), Some(TOKEN_A), None).await;
    assert_eq!(d.status, 200, "{:?}", d.json);
    assert!(!role_exists(&admin, &source_token).await, "the fork kept the source's role alive");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_an_open_session_is_refused_with_409() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let source = seeded(&srv).await;
    let session = connect(&s(&source, "connection_url")).await.unwrap();
    let r = fork(&srv, Some(TOKEN_A), &s(&source, "token"), "busy").await;
    assert_error(&r, 409, "source_in_use");
    assert_from_the_fork_route(&r);
    assert!(r.json["message"].as_str().unwrap().contains("session"), "{:?}", r.json);
    // The refused fork left nothing behind: no resource, database or role.
    let listed = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    assert_eq!(listed.json["total"], 1, "{:?}", listed.json);
    let q = format!("SELECT token FROM {}.resources WHERE name = 'busy'", srv.schema);
    for row in admin.query(&q, &[]).await.unwrap() {
        let t: String = row.get(0);
        assert!(!db_exists(&admin, &t).await && !role_exists(&admin, &t).await, "the refused fork left {t}");
    }
    session.batch_execute("SELECT 1").await.expect("the source's session was left alone");
    drop(session);
    forked(&srv, &s(&source, "token"), "free").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_source_leaves_its_forks_intact() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let source = seeded(&srv).await;
    let source_token = s(&source, "token");
    let forks = [forked(&srv, &source_token, "a").await, forked(&srv, &source_token, "b").await];
    let d = srv.call("DELETE", &format!("/api/v1/resources/{source_token}"), Some(TOKEN_A), None).await;
    assert_eq!(d.status, 200, "{:?}", d.json);
    assert!(!db_exists(&admin, &source_token).await && !role_exists(&admin, &source_token).await);
    assert_error(&fork(&srv, Some(TOKEN_A), &source_token, "late").await, 404, "not_found");
    for v in &forks {
        assert_eq!(bodies(&s(v, "connection_url")).await, ["hi", "there"]);
    }
    // A fork is deleted like any other resource.
    let token = s(&forks[0], "token");
    let d = srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await;
    assert_eq!(d.status, 200, "{:?}", d.json);
    assert!(!db_exists(&admin, &token).await && !role_exists(&admin, &token).await);
    assert_eq!(bodies(&s(&forks[1], "connection_url")).await, ["hi", "there"]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_gets_the_limits_of_a_create() {
    let config = Config { authenticated_connections: 2, authenticated_storage_mb: 64, ..config(&fresh_schema(), 0) };
    let srv = Server::start(config).await;
    let admin = admin().await;
    let source = seeded(&srv).await;
    let v = forked(&srv, &s(&source, "token"), "limited").await;
    assert_eq!(v["limits"], json!({"storage_mb": 64, "connections": 2}));
    let (token, url) = (s(&v, "token"), s(&v, "connection_url"));
    let c1 = connect(&url).await.unwrap();
    let _c2 = connect(&url).await.unwrap();
    let third = connect(&url).await.expect_err("a third connection was admitted");
    assert!(third.contains("too many connections"), "{third}");
    let limit: String = c1.query_one("SHOW temp_file_limit", &[]).await.unwrap().get(0);
    assert_eq!(limit, "64MB");
    // The storage check holds it to its limit like any other: here a limit it is already over.
    let q = format!("UPDATE {}.resources SET storage_mb = 1 WHERE token = $1", srv.schema);
    admin.execute(&q, &[&token]).await.unwrap();
    let path = format!("/api/v1/resources/{token}");
    eventually("the storage check to stop the fork", || async {
        srv.call("GET", &path, Some(TOKEN_A), None).await.json["item"]["status"] == "suspended"
    })
    .await;
    // A stopped database is not a source either: its copy would start over its limit.
    assert_error(&fork(&srv, Some(TOKEN_A), &token, "again").await, 409, "source_suspended");
    srv.stop().await;
}
