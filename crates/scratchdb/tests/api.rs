//! scratchdb against a real Postgres: the API contract, real databases, isolation, idempotency,
//! concurrency, churn, restart and the expiry sweep.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    assert_eq!(r.json["ok"], Value::Bool(false), "{:?}", r.json);
    assert_eq!(r.json["error"], code, "{:?}", r.json);
    assert!(r.json["message"].is_string(), "{:?}", r.json);
    assert!(r.json.get("retry_after_seconds").is_some(), "{:?}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_error_has_its_code() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let post = |body: &'static str| srv.call("POST", "/db/new", None, Some(body));
    assert_error(&post("{}").await, 400, "name_required");
    assert_error(&post("").await, 400, "name_required");
    assert_error(&post(r#"{"name":null}"#).await, 400, "name_required");
    assert_error(&post(r#"{"name":"   "}"#).await, 400, "name_required");
    assert_error(&post(r#"{"name":"-starts-with-dash"}"#).await, 400, "invalid_name");
    assert_error(&post(r#"{"name":"semi;colon"}"#).await, 400, "invalid_name");
    assert_error(&post(r#"{"name":"émoji"}"#).await, 400, "invalid_name");
    assert_error(&post(r#"{"name":42}"#).await, 400, "invalid_name");
    let long = format!(r#"{{"name":"{}"}}"#, "a".repeat(65));
    assert_error(&srv.call("POST", "/db/new", None, Some(&long)).await, 400, "invalid_name");
    assert_error(&post("{not json").await, 400, "invalid_body");
    assert_error(&post("[1,2]").await, 400, "invalid_body");
    assert_error(&post(r#"{"name":"ok","env":"Prod!"}"#).await, 400, "invalid_env");
    assert_error(&post(r#"{"name":"ok","dedicated":true}"#).await, 402, "auth_required");
    assert_error(&post(r#"{"name":"ok","parent_resource_id":"x"}"#).await, 402, "auth_required");
    let r = srv.call("POST", "/db/new", Some(TOKEN_A), Some(r#"{"name":"ok","dedicated":true}"#)).await;
    assert_error(&r, 402, "upgrade_required");
    let r = srv.call("POST", "/db/new", Some("not-a-token"), Some(r#"{"name":"ok"}"#)).await;
    assert_error(&r, 401, "unauthorized");
    let long_key = "k".repeat(256);
    let r = srv.call_h("POST", "/db/new", None, &[("Idempotency-Key", &long_key)], Some(r#"{"name":"ok"}"#)).await;
    assert_error(&r, 400, "invalid_idempotency_key");
    let some = "0b5f0a4e-2f7e-4bd3-9a57-1d1c1c7e1f00";
    assert_error(&srv.call("DELETE", &format!("/api/v1/resources/{some}"), None, None).await, 401, "unauthorized");
    assert_error(&srv.call("GET", "/api/v1/resources", None, None).await, 401, "unauthorized");
    assert_error(&srv.call("DELETE", "/api/v1/resources/nope", Some(TOKEN_A), None).await, 400, "invalid_id");
    let r = srv.call("DELETE", &format!("/api/v1/resources/{some}"), Some(TOKEN_A), None).await;
    assert_error(&r, 404, "not_found");
    assert_error(&srv.call("GET", "/db/unknown", None, None).await, 404, "not_found");
    assert_error(&srv.call("POST", "/claim", None, Some("{")).await, 400, "invalid_body");
    assert_error(&srv.call("POST", "/claim", None, Some(r#"{"email":"a@b.c"}"#)).await, 400, "missing_token");
    assert_error(&srv.call("POST", "/claim", None, Some(r#"{"token":"x"}"#)).await, 400, "missing_email");
    let r = srv.call("POST", "/claim", None, Some(r#"{"token":"x","email":"nope"}"#)).await;
    assert_error(&r, 400, "invalid_email_format");
    let r = srv.call("POST", "/claim", None, Some(r#"{"token":"x","email":"a@b.co"}"#)).await;
    assert_error(&r, 400, "invalid_token");
    assert_error(&srv.call("GET", "/claim/preview", None, None).await, 400, "missing_token");
    // A 64-character name is the longest allowed, and unknown fields are echoed back sorted.
    let name = "N".repeat(64);
    let body = format!(r#"{{"name":"{name}","zeta":1,"region":"eu"}}"#);
    let r = srv.call("POST", "/db/new", None, Some(&body)).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.json["ignored_fields"], serde_json::json!(["region", "zeta"]));
    let h = srv.call("GET", "/healthz", None, None).await;
    assert_eq!((h.status, h.json["ok"].clone()), (200, Value::Bool(true)));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_resource_lives_for_real_and_is_gone_after_delete() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let r = srv.call("POST", "/db/new?env=staging", Some(TOKEN_A), Some(r#"{"name":"turn 1"}"#)).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let v = r.json;
    assert_eq!(v["tier"], "pro");
    assert_eq!(v["env"], "staging");
    assert!(v.get("expires_at").is_none() && v.get("upgrade_jwt").is_none(), "{v}");
    let (token, url) = (s(&v, "token"), s(&v, "connection_url"));
    assert!(url.starts_with(&format!("postgres://db_{token}:")) && url.ends_with("?sslmode=disable"), "{url}");

    let c = connect(&url).await.expect("connect with the connection_url");
    c.batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'hi')")
        .await
        .unwrap();
    let db: String = c.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
    assert_eq!(db, format!("db_{token}"));
    assert!(db_exists(&admin, &token).await && role_exists(&admin, &token).await);

    let got = srv.call("GET", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await;
    assert_eq!((got.status, got.json["item"]["status"].clone()), (200, "active".into()), "{:?}", got.json);
    assert!(got.json["item"]["storage_bytes"].as_i64().unwrap() > 0);
    let list = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    assert_eq!(list.json["total"], 1);
    assert_eq!(srv.call("GET", "/api/v1/resources?env=production", Some(TOKEN_A), None).await.json["total"], 0);
    let creds = srv.call("GET", &format!("/api/v1/resources/{token}/credentials"), Some(TOKEN_A), None).await;
    assert_eq!(s(&creds.json, "connection_url"), url);

    // Rotation: the old password stops working and the old session is ended.
    let rot = srv.call("POST", &format!("/api/v1/resources/{token}/rotate-credentials"), Some(TOKEN_A), None).await;
    assert_eq!(rot.status, 200, "{:?}", rot.json);
    let new_url = s(&rot.json, "connection_url");
    assert_ne!(new_url, url);
    assert!(connect(&url).await.is_err(), "old password still works");
    let c2 = connect(&new_url).await.expect("new password works");
    let n: i64 = c2.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    drop(c2);
    let creds = srv.call("GET", &format!("/api/v1/resources/{token}/credentials"), Some(TOKEN_A), None).await;
    assert_eq!(s(&creds.json, "connection_url"), new_url);

    let d = srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await;
    assert_eq!((d.status, d.json["ok"].clone()), (200, Value::Bool(true)), "{:?}", d.json);
    assert!(!db_exists(&admin, &token).await, "database survived delete");
    assert!(!role_exists(&admin, &token).await, "role survived delete");
    let again = srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await;
    assert_eq!(again.status, 200, "repeat delete must be idempotent");
    assert_error(&srv.call("GET", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await, 404, "not_found");
    assert!(connect(&new_url).await.is_err());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_isolated_from_each_other_and_other_owners() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let a = srv.create(Some(TOKEN_A), "alpha").await;
    let b = srv.create(Some(TOKEN_B), "bravo").await;
    let (ta, tb) = (s(&a, "token"), s(&b, "token"));
    // A's credentials pointed at B's database.
    let a_on_b = with_database(&s(&a, "connection_url"), &format!("db_{tb}"));
    connect(&a_on_b).await.expect_err("a's role opened b's database");
    // Nor the admin database that holds the registry, nor template1.
    for other in ["postgres", "template1"] {
        let url = with_database(&s(&a, "connection_url"), other);
        assert!(connect(&url).await.is_err(), "a's role opened {other}");
    }
    let b_on_a = with_database(&s(&b, "connection_url"), &format!("db_{ta}"));
    assert!(connect(&b_on_a).await.is_err());
    // Owners see only their own resources; someone else's is "not found", never "forbidden".
    for path in [format!("/api/v1/resources/{tb}"), format!("/api/v1/resources/{tb}/credentials")] {
        assert_error(&srv.call("GET", &path, Some(TOKEN_A), None).await, 404, "not_found");
    }
    let rot = srv.call("POST", &format!("/api/v1/resources/{tb}/rotate-credentials"), Some(TOKEN_A), None).await;
    assert_error(&rot, 404, "not_found");
    assert_error(&srv.call("DELETE", &format!("/api/v1/resources/{tb}"), Some(TOKEN_A), None).await, 404, "not_found");
    let list = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    let tokens: Vec<&str> =
        list.json["items"].as_array().unwrap().iter().map(|i| i["token"].as_str().unwrap()).collect();
    assert_eq!(tokens, vec![ta.as_str()]);
    assert!(connect(&s(&b, "connection_url")).await.is_ok(), "b still works after a's attempts");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_shape_limits_and_claim() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let v = srv.create(None, "anon").await;
    assert_eq!(v["tier"], "anonymous");
    assert_eq!(v["limits"], serde_json::json!({"storage_mb": 10, "connections": 2, "expires_in": "24h"}));
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    let claim_url = s(&v, "claim_url");
    assert!(claim_url.starts_with(&format!("http://{}/claim/preview?t=", srv.addr)), "{claim_url}");
    assert_eq!(v["upgrade"], v["claim_url"]);
    let (token, url, jwt) = (s(&v, "token"), s(&v, "connection_url"), s(&v, "upgrade_jwt"));

    // CONNECTION LIMIT 2: a third session is refused.
    let c1 = connect(&url).await.unwrap();
    let c2 = connect(&url).await.unwrap();
    let third = connect(&url).await.expect_err("third connection admitted");
    assert!(third.contains("too many connections"), "{third}");
    drop((c1, c2));

    // Anonymous resources cannot be deleted or seen through the Bearer API.
    assert_error(
        &srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await,
        404,
        "not_found",
    );

    let p = srv.call("GET", &format!("/claim/preview?t={jwt}"), None, None).await;
    assert_eq!(p.json["token_valid"], true, "{:?}", p.json);
    assert_eq!(p.json["items"][0]["token"], token.as_str());
    let body = format!(r#"{{"token":"{jwt}","email":"dev@example.com"}}"#);
    let c = srv.call("POST", "/claim", None, Some(&body)).await;
    assert_eq!(c.status, 201, "{:?}", c.json);
    let session = s(&c.json, "session_token");
    assert_error(&srv.call("POST", "/claim", None, Some(&body)).await, 409, "already_claimed");
    let p = srv.call("GET", &format!("/claim/preview?t={jwt}"), None, None).await;
    assert_eq!(p.json["token_valid"], false);

    // Claimed: owned by the session token, no expiry, deletable by its new owner.
    let got = srv.call("GET", &format!("/api/v1/resources/{token}"), Some(&session), None).await;
    assert_eq!(got.status, 200, "{:?}", got.json);
    assert!(got.json["item"].get("expires_at").is_none(), "{:?}", got.json);
    assert!(connect(&url).await.is_ok());
    let d = srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(&session), None).await;
    assert_eq!(d.status, 200);
    assert!(!db_exists(&admin, &token).await && !role_exists(&admin, &token).await);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_returns_the_same_database() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let key = [("Idempotency-Key", "turn-42")];
    let body = Some(r#"{"name":"idem","env":"dev"}"#);
    let first = srv.call_h("POST", "/db/new", Some(TOKEN_A), &key, body).await;
    assert_eq!(first.status, 201);
    assert!(first.head.contains("x-idempotency-source: explicit"));
    // Same key, same body (keys in another order): the same database, marked as a replay.
    let same = Some(r#"{"env":"dev","name":"idem"}"#);
    let second = srv.call_h("POST", "/db/new", Some(TOKEN_A), &key, same).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json["token"], first.json["token"]);
    assert_eq!(second.json["connection_url"], first.json["connection_url"]);
    assert!(second.head.contains("x-idempotent-replay: true"));
    let other = srv.call_h("POST", "/db/new", Some(TOKEN_A), &key, Some(r#"{"name":"other"}"#)).await;
    assert_error(&other, 409, "idempotency_key_conflict");
    // Keys belong to their caller: another owner's identical key makes its own database.
    let b = srv.call_h("POST", "/db/new", Some(TOKEN_B), &key, body).await;
    assert_eq!(b.status, 201);
    assert_ne!(b.json["token"], first.json["token"]);
    // Without a key, identical bodies make distinct databases (per-turn use needs that).
    let n1 = srv.create(Some(TOKEN_A), "same").await;
    let n2 = srv.create(Some(TOKEN_A), "same").await;
    assert_ne!(n1["token"], n2["token"]);
    // Racing requests with one key all get the one database.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        tasks.push(srv.call_h(
            "POST",
            "/db/new",
            Some(TOKEN_A),
            &[("Idempotency-Key", "race")],
            Some(r#"{"name":"r"}"#),
        ));
    }
    let results = futures_join(tasks).await;
    let tokens: HashSet<String> = results.iter().map(|r| s(&r.json, "token")).collect();
    assert_eq!(tokens.len(), 1, "{results:?}");
    assert!(connect(&s(&results[0].json, "connection_url")).await.is_ok());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_creates_are_fifty_working_databases() {
    let server = Server::start(config(&fresh_schema(), 4)).await;
    let srv = &server;
    let admin = admin().await;
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let body = format!(r#"{{"name":"c{i}"}}"#);
            async move { srv.call("POST", "/db/new", Some(TOKEN_A), Some(&body)).await }
        })
        .collect();
    let results = futures_join(calls).await;
    assert!(results.iter().all(|r| r.status == 201), "{results:?}");
    let tokens: HashSet<String> = results.iter().map(|r| s(&r.json, "token")).collect();
    assert_eq!(tokens.len(), 50);
    for r in &results {
        let c = connect(&s(&r.json, "connection_url")).await.expect("connect");
        c.batch_execute("CREATE TABLE t (x int)").await.unwrap();
    }
    let deletes: Vec<_> = tokens
        .iter()
        .map(|t| async move { srv.call("DELETE", &format!("/api/v1/resources/{t}"), Some(TOKEN_A), None).await })
        .collect();
    assert!(futures_join(deletes).await.iter().all(|r| r.status == 200));
    for t in &tokens {
        assert!(!db_exists(&admin, t).await && !role_exists(&admin, t).await, "{t} left behind");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_create_delete_cycles_leave_nothing_behind() {
    let srv = Server::start(config(&fresh_schema(), 2)).await;
    let admin = admin().await;
    let lane = |l: usize| {
        let srv = &srv;
        async move {
            let mut tokens = Vec::new();
            for i in 0..50 {
                let v = srv.create(Some(TOKEN_A), &format!("cycle-{l}-{i}")).await;
                let t = s(&v, "token");
                let d = srv.call("DELETE", &format!("/api/v1/resources/{t}"), Some(TOKEN_A), None).await;
                assert_eq!(d.status, 200);
                tokens.push(t);
            }
            tokens
        }
    };
    let lanes = futures_join((0..4).map(lane).collect()).await;
    let tokens: Vec<String> = lanes.into_iter().flatten().collect();
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 200);
    let names: Vec<String> = tokens.iter().map(|t| format!("db_{t}")).collect();
    let roles: Vec<String> = tokens.iter().flat_map(|t| [format!("db_{t}"), format!("usr_{t}")]).collect();
    let left: i64 =
        admin.query_one("SELECT count(*) FROM pg_database WHERE datname = ANY($1)", &[&names]).await.unwrap().get(0);
    let left_roles: i64 =
        admin.query_one("SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)", &[&roles]).await.unwrap().get(0);
    assert_eq!((left, left_roles), (0, 0));
    let q = format!("SELECT count(*) FROM {}.resources WHERE status <> 'deleted'", srv.schema);
    let live: i64 = admin.query_one(&q, &[]).await.unwrap().get(0);
    assert_eq!(live, 0);
    // Everything else this registry owns in the cluster is exactly its pool.
    let q = format!("SELECT count(*) FROM {}.pool", srv.schema);
    let pooled: i64 = admin.query_one(&q, &[]).await.unwrap().get(0);
    assert!(pooled <= 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_hands_out_each_pair_once_with_fresh_credentials() {
    let schema = fresh_schema();
    let srv = Server::start(config(&schema, 3)).await;
    let admin = admin().await;
    eventually("pool full", || async { srv.service.pool_ready().await.unwrap() == 3 }).await;
    let q = format!("SELECT token FROM {schema}.pool");
    let pooled: HashSet<String> = admin.query(&q, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let v = srv.create(Some(TOKEN_A), "pooled").await;
    let token = s(&v, "token");
    assert!(pooled.contains(&token), "create did not use the pool");
    let c = connect(&s(&v, "connection_url")).await.expect("pooled pair accepts its fresh password");
    c.batch_execute("CREATE TABLE t (x int)").await.unwrap();
    let still: HashSet<String> = admin.query(&q, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert!(!still.contains(&token), "handed-out pair still in the pool");
    let mut seen = HashSet::from([token]);
    for i in 0..6 {
        assert!(seen.insert(s(&srv.create(Some(TOKEN_A), &format!("p{i}")).await, "token")), "pair handed out twice");
    }
    eventually("pool refilled", || async { srv.service.pool_ready().await.unwrap() == 3 }).await;
    srv.stop().await;
    // Restarting with a smaller pool trims the surplus for real.
    let srv = Server::start(config(&schema, 0)).await;
    assert_eq!(srv.service.pool_ready().await.unwrap(), 0);
    for t in &pooled {
        if !seen.contains(t) {
            assert!(!db_exists(&admin, t).await, "trimmed pool pair {t} left behind");
        }
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_live_resources_and_the_sweep_reaps_expired_ones() {
    let schema = fresh_schema();
    let admin = admin().await;
    let first = Server::start(common::Config { anonymous_ttl: Duration::from_secs(2), ..config(&schema, 0) }).await;
    let anon = first.create(None, "short-lived").await;
    let owned = first.create(Some(TOKEN_A), "keeper").await;
    let (anon_token, owned_token) = (s(&anon, "token"), s(&owned, "token"));
    assert!(connect(&s(&anon, "connection_url")).await.is_ok());
    first.stop().await;

    let second =
        Server::start(common::Config { sweep_interval: Duration::from_millis(200), ..config(&schema, 0) }).await;
    // The sweep drops the database and role, then marks the row: wait for the whole of it.
    let status_query = format!("SELECT status FROM {schema}.resources WHERE token = $1");
    eventually("the expired resource to be reaped and marked", || async {
        let status: String = admin.query_one(&status_query, &[&anon_token]).await.unwrap().get(0);
        status == "expired"
    })
    .await;
    assert!(!db_exists(&admin, &anon_token).await);
    assert!(!role_exists(&admin, &anon_token).await);
    // The owned one survived the restart, with its credentials.
    let got = second.call("GET", &format!("/api/v1/resources/{owned_token}"), Some(TOKEN_A), None).await;
    assert_eq!(got.status, 200);
    let c = connect(&s(&owned, "connection_url")).await.expect("owned resource survives restart");
    c.batch_execute("SELECT 1").await.unwrap();
    drop(c);
    let d = second.call("DELETE", &format!("/api/v1/resources/{owned_token}"), Some(TOKEN_A), None).await;
    assert_eq!(d.status, 200);
    assert!(!db_exists(&admin, &owned_token).await);
    second.stop().await;
}

/// A crash mid-create leaves a `provisioning` row. If its pair cannot be torn down at the next start
/// (here the role owns a table teardown does not know), scratchdb still starts and serves, and
/// leaves the row for the start after; once the obstacle is gone, that start tears the pair down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_that_cannot_be_torn_down_does_not_stop_the_start() {
    let schema = fresh_schema();
    let admin = admin().await;
    Server::start(config(&schema, 0)).await.stop().await;
    let token = uuid::Uuid::new_v4().to_string();
    let (db, role) = (format!("db_{token}"), format!("db_{token}"));
    admin
        .execute(
            &format!(
                "INSERT INTO {schema}.resources (id, token, name, env, tier, status, password, connections, storage_mb) \
                 VALUES ($1, $1, 'crashed', 'development', 'pro', 'provisioning', 'x', 1, 1)"
            ),
            &[&token],
        )
        .await
        .unwrap();
    // The crashed create's caller sent an idempotency key; its retry must not be answered with
    // this pair once it is torn down.
    admin
        .execute(
            &format!("INSERT INTO {schema}.idempotency (owner, key, body_hash, token) VALUES ('o', 'k', 'h', $1)"),
            &[&token],
        )
        .await
        .unwrap();
    let keys = format!("SELECT count(*) FROM {schema}.idempotency WHERE token = $1");
    let table = format!("blocker_{}", uuid::Uuid::new_v4().simple());
    // One statement at a time: a multi-statement batch is one transaction, and CREATE DATABASE
    // refuses to run inside one.
    for sql in [
        format!("CREATE ROLE \"{role}\" NOLOGIN"),
        format!("CREATE DATABASE \"{db}\" OWNER \"{role}\""),
        format!("CREATE TABLE public.{table} ()"),
        format!("ALTER TABLE public.{table} OWNER TO \"{role}\""),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }

    let second = Server::start(config(&schema, 0)).await;
    let made = second.create(Some(TOKEN_A), "after-the-crash").await;
    assert!(connect(&s(&made, "connection_url")).await.is_ok(), "it serves: {made}");
    assert!(role_exists(&admin, &token).await, "the role it could not drop is still there");
    second.stop().await;

    admin.batch_execute(&format!("DROP TABLE public.{table}")).await.unwrap();
    let third = Server::start(config(&schema, 0)).await;
    assert!(!db_exists(&admin, &token).await && !role_exists(&admin, &token).await, "torn down at the next start");
    let status: String = admin
        .query_one(&format!("SELECT status FROM {schema}.resources WHERE token = $1"), &[&token])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "error");
    let left: i64 = admin.query_one(&keys, &[&token]).await.unwrap().get(0);
    assert_eq!(left, 0, "the key is given back");
    third.stop().await;
}
