//! scratchdb's freeze extension (`POST /api/v1/resources/{token}/freeze`, docs/protocols/instanode.md
//! §12) against a real Postgres: once it answers, nobody logs in with the resource's role and none
//! of its sessions is left, however they were opened; a frozen resource still forks, lists and
//! deletes, and hands out no credential.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn freeze(srv: &Server, bearer: Option<&str>, token: &str) -> Resp {
    srv.call("POST", &format!("/api/v1/resources/{token}/freeze"), bearer, None).await
}

/// Freezes TOKEN_A's `token` and expects the route's `200 {"ok": true}`.
async fn frozen(srv: &Server, token: &str) {
    let r = freeze(srv, Some(TOKEN_A), token).await;
    assert_eq!((r.status, &r.json), (200, &json!({"ok": true})), "{:?}", r.json);
    assert_from_the_freeze_route(&r);
}

fn assert_from_the_freeze_route(r: &Resp) {
    assert!(r.head.contains("x-scratchdb-extension: freeze"), "{}", r.head);
}

/// `url` with another password.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, tail) = rest.rsplit_once('@').unwrap();
    let user = credentials.split_once(':').unwrap().0;
    format!("{scheme}://{user}:{password}@{tail}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_survives_a_freeze_and_no_password_logs_in_after_it() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let v = srv.create(Some(TOKEN_A), "checkpoint").await;
    let (token, url) = (s(&v, "token"), s(&v, "connection_url"));
    let held = connect(&url).await.unwrap();
    held.batch_execute("CREATE TABLE notes (body text); BEGIN; INSERT INTO notes VALUES ('x')").await.unwrap();
    // A session that gives its role a password of its own, to come back with once the turn is over.
    let schemer = connect(&url).await.unwrap();
    schemer.batch_execute("ALTER ROLE CURRENT_USER PASSWORD 'known'").await.unwrap();
    drop(connect(&with_password(&url, "known")).await.expect("the role's own password works before the freeze"));
    frozen(&srv, &token).await;
    assert_eq!(sessions_of(&admin, &token).await, 0, "a session of the role is left");
    held.batch_execute("SELECT 1").await.expect_err("a session held open across the freeze survived it");
    schemer.batch_execute("SELECT 1").await.expect_err("the session that set a password survived the freeze");
    connect(&url).await.expect_err("the resource's password logs in after the freeze");
    connect(&with_password(&url, "known")).await.expect_err("the password the role gave itself logs in");
    let login: bool = admin
        .query_one("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", &[&format!("db_{token}")])
        .await
        .unwrap()
        .get(0);
    assert!(!login, "the frozen role may still log in");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_resource_hands_out_no_credential_and_is_listed_as_before() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let v = srv.create(Some(TOKEN_A), "checkpoint").await;
    let token = s(&v, "token");
    frozen(&srv, &token).await;
    frozen(&srv, &token).await;
    let path = format!("/api/v1/resources/{token}");
    assert_envelope(&srv.call("GET", &format!("{path}/credentials"), Some(TOKEN_A), None).await, 409, "frozen");
    let rotated = srv.call("POST", &format!("{path}/rotate-credentials"), Some(TOKEN_A), None).await;
    assert_envelope(&rotated, 409, "frozen");
    assert!(rotated.json["message"].as_str().unwrap().contains("frozen"), "{:?}", rotated.json);
    connect(&s(&v, "connection_url")).await.expect_err("a refused rotate opened the database again");
    let got = srv.call("GET", &path, Some(TOKEN_A), None).await;
    assert_eq!((got.status, &got.json["item"]["token"]), (200, &json!(token)), "{:?}", got.json);
    assert_eq!(got.json["item"]["status"], "active", "{:?}", got.json);
    let listed = srv.call("GET", "/api/v1/resources", Some(TOKEN_A), None).await;
    assert_eq!((listed.json["total"].clone(), listed.json["items"][0]["token"].clone()), (json!(1), json!(token)));
    srv.stop().await;
}

/// A resource whose create has not answered yet: its create gives the role its login last, which
/// would undo a freeze, and sets its password last, over a rotate's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_still_being_created_is_neither_frozen_nor_rotated() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let token = s(&srv.create(Some(TOKEN_A), "making").await, "token");
    let set = |status: &'static str| {
        let q = format!("UPDATE {}.resources SET status = '{status}' WHERE token = $1", srv.schema);
        let (admin, token) = (&admin, &token);
        async move { admin.execute(&q, &[token]).await.unwrap() }
    };
    set("provisioning").await;
    let r = freeze(&srv, Some(TOKEN_A), &token).await;
    assert_envelope(&r, 409, "resource_provisioning");
    assert_from_the_freeze_route(&r);
    let rotate = format!("/api/v1/resources/{token}/rotate-credentials");
    assert_envelope(&srv.call("POST", &rotate, Some(TOKEN_A), None).await, 409, "resource_provisioning");
    set("active").await;
    let creds = srv.call("GET", &format!("/api/v1/resources/{token}/credentials"), Some(TOKEN_A), None).await;
    assert_eq!(creds.status, 200, "a refused freeze froze it: {:?}", creds.json);
    frozen(&srv, &token).await;
    srv.stop().await;
}

/// Logins in a loop while the freeze runs: whichever got in before it is ended by it, and none
/// gets in after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_the_freeze_leave_no_session_and_no_way_in() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let v = srv.create(Some(TOKEN_A), "checkpoint").await;
    let (token, url) = (s(&v, "token"), s(&v, "connection_url"));
    let stop = Arc::new(AtomicBool::new(false));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            tokio::spawn(async move {
                // The newest few only: the role's connection limit is 20, and those that matter
                // logged in just before the freeze.
                let mut kept = VecDeque::new();
                let mut logins = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(c) = connect(&url).await {
                        logins += 1;
                        kept.push_back(c);
                        if kept.len() > 6 {
                            kept.pop_front();
                        }
                    }
                }
                (logins, kept)
            })
        })
        .collect();
    eventually("the racers to log in", || async { sessions_of(&admin, &token).await >= 4 }).await;
    frozen(&srv, &token).await;
    assert_eq!(sessions_of(&admin, &token).await, 0, "a session of the role is left right after the freeze");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut logins = 0;
    for racer in racers {
        let (n, kept) = racer.await.unwrap();
        logins += n;
        for c in kept {
            c.batch_execute("SELECT 1").await.expect_err("a session that logged in around the freeze survived");
        }
    }
    assert!(logins >= 4, "{logins}");
    assert_eq!(sessions_of(&admin, &token).await, 0, "a session of the role appeared after the freeze");
    connect(&url).await.expect_err("a login after the freeze");
    srv.stop().await;
}

/// A login that fetched the role's password verifier before the freeze and proves it after: the
/// window a rotate could not close (it ended sessions before this one existed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_mid_authentication_at_the_freeze_does_not_get_in() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let v = srv.create(Some(TOKEN_A), "checkpoint").await;
    let (token, url) = (s(&v, "token"), s(&v, "connection_url"));
    let paused = PausedLogin::begin(&url).await;
    frozen(&srv, &token).await;
    let answer = tokio::time::timeout(Duration::from_secs(4), paused.finish()).await.expect("the server answered");
    let refusal = answer.expect_err("a login begun before the freeze got in after it");
    assert!(
        refusal.contains("permission denied") || refusal.contains("not permitted to log in"),
        "refused for another reason: {refusal}"
    );
    assert_eq!(sessions_of(&admin, &token).await, 0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_forks_and_the_copys_role_logs_in() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let source = srv.create(Some(TOKEN_A), "checkpoint").await;
    let (source_token, source_url) = (s(&source, "token"), s(&source, "connection_url"));
    let c = connect(&source_url).await.unwrap();
    c.batch_execute("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')").await.unwrap();
    drop(c);
    frozen(&srv, &source_token).await;
    let r = srv
        .call("POST", &format!("/api/v1/resources/{source_token}/fork"), Some(TOKEN_A), Some(r#"{"name":"resumed"}"#))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let (token, url) = (s(&r.json, "token"), s(&r.json, "connection_url"));
    let copy = connect(&url).await.expect("the copy's role logs in");
    let body: String = copy.query_one("SELECT body FROM notes", &[]).await.unwrap().get(0);
    assert_eq!(body, "kept");
    copy.batch_execute("INSERT INTO notes VALUES ('new')").await.expect("and writes");
    let creds = srv.call("GET", &format!("/api/v1/resources/{token}/credentials"), Some(TOKEN_A), None).await;
    assert_eq!(creds.status, 200, "the copy is not frozen: {:?}", creds.json);
    // The source stays frozen.
    connect(&source_url).await.expect_err("the fork opened its frozen source");
    let q = "SELECT rolcanlogin, has_database_privilege($1::text, $1::text, 'CONNECT') FROM pg_roles WHERE rolname = $1::text";
    let row = admin.query_one(q, &[&format!("db_{source_token}")]).await.unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (false, false));
    let creds = srv.call("GET", &format!("/api/v1/resources/{source_token}/credentials"), Some(TOKEN_A), None).await;
    assert_envelope(&creds, 409, "frozen");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_resource_is_deleted_like_any_other() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let admin = admin().await;
    let token = s(&srv.create(Some(TOKEN_A), "checkpoint").await, "token");
    frozen(&srv, &token).await;
    let d = srv.call("DELETE", &format!("/api/v1/resources/{token}"), Some(TOKEN_A), None).await;
    assert_eq!((d.status, &d.json["message"]), (200, &json!("Resource deleted")), "{:?}", d.json);
    assert!(!db_exists(&admin, &token).await && !role_exists(&admin, &token).await, "the frozen pair survived");
    let gone = freeze(&srv, Some(TOKEN_A), &token).await;
    assert_envelope(&gone, 404, "not_found");
    assert_from_the_freeze_route(&gone);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_and_other_owners_cannot_freeze() {
    let srv = Server::start(config(&fresh_schema(), 0)).await;
    let v = srv.create(Some(TOKEN_A), "mine").await;
    let token = s(&v, "token");
    let anonymous = s(&srv.create(None, "nobodys").await, "token");
    let r = freeze(&srv, None, &token).await;
    assert_envelope(&r, 401, "unauthorized");
    assert_eq!(r.json["error_code"], "missing_credentials", "{:?}", r.json);
    assert_from_the_freeze_route(&r);
    assert_envelope(&freeze(&srv, Some("not-a-token"), &token).await, 401, "unauthorized");
    let answers = [
        freeze(&srv, Some(TOKEN_B), &token).await,
        freeze(&srv, Some(TOKEN_A), &anonymous).await,
        freeze(&srv, Some(TOKEN_A), &uuid::Uuid::new_v4().to_string()).await,
    ];
    for r in &answers {
        assert_envelope(r, 404, "not_found");
        assert_from_the_freeze_route(r);
    }
    assert!(answers.iter().all(|r| r.json == answers[0].json), "{answers:?}");
    assert_envelope(&freeze(&srv, Some(TOKEN_A), "not-a-uuid").await, 400, "invalid_id");
    // None of it froze anything.
    connect(&s(&v, "connection_url")).await.expect("a refused freeze closed the owner's database");
    let creds = srv.call("GET", &format!("/api/v1/resources/{token}/credentials"), Some(TOKEN_A), None).await;
    assert_eq!(creds.status, 200, "{:?}", creds.json);
    srv.stop().await;
}

/// A login by hand, stopped inside its SCRAM exchange: the server has read the role's password
/// verifier and waits for the client's proof.
struct PausedLogin {
    stream: TcpStream,
    scram: ScramSha256,
}

impl PausedLogin {
    async fn begin(url: &str) -> PausedLogin {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            other => panic!("{other:?}"),
        };
        let mut stream = TcpStream::connect((host.as_str(), config.get_ports()[0])).await.unwrap();
        let (user, db) = (config.get_user().unwrap(), config.get_dbname().unwrap());
        let mut body = 196608_i32.to_be_bytes().to_vec();
        for part in ["user", user, "database", db, ""] {
            body.extend_from_slice(part.as_bytes());
            body.push(0);
        }
        let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        startup.extend(body);
        stream.write_all(&startup).await.unwrap();
        let (kind, body) = read_message(&mut stream).await;
        assert_eq!((kind, &body[..4]), (b'R', &10_i32.to_be_bytes()[..]), "not a SASL request");
        let mut scram = ScramSha256::new(config.get_password().unwrap(), ChannelBinding::unsupported());
        let mut initial = b"SCRAM-SHA-256\0".to_vec();
        initial.extend((scram.message().len() as i32).to_be_bytes());
        initial.extend(scram.message());
        write_message(&mut stream, b'p', &initial).await;
        let (kind, body) = read_message(&mut stream).await;
        assert_eq!((kind, &body[..4]), (b'R', &11_i32.to_be_bytes()[..]), "not a SASL challenge");
        scram.update(&body[4..]).unwrap();
        PausedLogin { stream, scram }
    }

    /// Sends the proof; `Ok` once the server is ready for queries, else its error message.
    async fn finish(mut self) -> Result<(), String> {
        let proof = self.scram.message().to_vec();
        write_message(&mut self.stream, b'p', &proof).await;
        loop {
            match read_message(&mut self.stream).await {
                (b'E', body) => {
                    let fields = body.split(|b| *b == 0);
                    let message = fields.filter(|f| f.first() == Some(&b'M')).map(|f| &f[1..]).next().unwrap_or(&[]);
                    return Err(String::from_utf8_lossy(message).into_owned());
                }
                (b'Z', _) => return Ok(()),
                _ => {}
            }
        }
    }
}

async fn read_message(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let kind = stream.read_u8().await.unwrap();
    let len = stream.read_i32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    stream.read_exact(&mut body).await.unwrap();
    (kind, body)
}

async fn write_message(stream: &mut TcpStream, kind: u8, body: &[u8]) {
    let mut message = vec![kind];
    message.extend(((body.len() + 4) as i32).to_be_bytes());
    message.extend(body);
    stream.write_all(&message).await.unwrap();
}
