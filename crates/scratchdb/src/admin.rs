//! The superuser side: a small pool of admin connections and the SQL that makes and unmakes a
//! (role, database) pair; `copy` makes one as a copy of another's database.
//!
//! Passwords never travel as plain text: the SCRAM verifier is computed here, so the server's statement
//! log (if someone turns it on) cannot leak a credential.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, NoTls};

mod copy;

pub(crate) use copy::copy_pair;

/// Why an admin operation failed. Never carries a password.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid admin url: {0}")]
    BadUrl(String),
    #[error("postgres: {}", detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// tokio-postgres shows only "db error"; the server's message is what an operator needs.
fn detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl AdminError {
    pub(crate) fn sql_state(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            AdminError::Postgres(e) => e.code(),
            AdminError::BadUrl(_) => None,
        }
    }
}

/// A bounded set of superuser connections, opened lazily and reused.
#[derive(Debug, Clone)]
pub(crate) struct AdminPool {
    config: tokio_postgres::Config,
    idle: Arc<Mutex<Vec<Client>>>,
    permits: Arc<Semaphore>,
}

/// A borrowed admin connection; it goes back to the pool on drop unless it broke.
pub(crate) struct AdminConn {
    client: Option<Client>,
    idle: Arc<Mutex<Vec<Client>>>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for AdminConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Only `None` after drop has begun.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for AdminConn {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for AdminConn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !c.is_closed() {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
            }
        }
    }
}

impl AdminPool {
    pub(crate) fn new(url: &str, max: usize) -> Result<Self, AdminError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| AdminError::BadUrl("cannot parse".into()))?;
        Ok(Self { config, idle: Arc::default(), permits: Arc::new(Semaphore::new(max.max(1))) })
    }

    /// Where the server listens, as clients outside should reach it.
    pub(crate) fn host_port(&self) -> (String, u16) {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        (host, self.config.get_ports().first().copied().unwrap_or(5432))
    }

    pub(crate) async fn get(&self) -> Result<AdminConn, AdminError> {
        let permit = self.permits.clone().acquire_owned().await.unwrap_or_else(|_| unreachable!("never closed"));
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let client = match reused {
            Some(c) => c,
            None => {
                let (client, conn) = self.config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "admin connection closed");
                    }
                });
                client
            }
        };
        Ok(AdminConn { client: Some(client), idle: self.idle.clone(), _permit: permit })
    }

    /// A superuser connection to database `db` rather than the admin database. It counts against
    /// the pool's bound like any other, but is closed on drop: the idle ones must all be the admin
    /// database's.
    pub(crate) async fn connect_to(&self, db: &str) -> Result<AdminConn, AdminError> {
        let permit = self.permits.clone().acquire_owned().await.unwrap_or_else(|_| unreachable!("never closed"));
        let (client, conn) = self.config.clone().dbname(db).connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection closed");
            }
        });
        Ok(AdminConn { client: Some(client), idle: Arc::default(), _permit: permit })
    }
}

/// Quotes an identifier for SQL. Names here are generated, but quoting is what makes hyphens legal.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A fresh random password: 32 alphanumerics, as URL-safe as it is strong.
pub(crate) fn new_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

fn verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

/// A scratch database's name is this prefix and its token; its role has the same name, which is
/// what lets pg_hba.conf's `sameuser` keep each role to its own database.
pub(crate) const DB_PREFIX: &str = "db_";

/// The database and role names of a resource token: one name for both (see [`DB_PREFIX`]).
pub(crate) fn names(token: &str) -> (String, String) {
    let name = format!("{DB_PREFIX}{token}");
    (name.clone(), name)
}

/// The role name versions before the `sameuser` rule gave a token, still found in kept clusters.
pub(crate) fn legacy_role(token: &str) -> String {
    format!("usr_{token}")
}

/// What a role needs to log in: its password, connection limit and temporary-file budget.
#[derive(Clone, Copy)]
pub(crate) struct Login<'a> {
    pub(crate) password: &'a str,
    pub(crate) connections: i32,
    pub(crate) temp_file_mb: i32,
}

/// The statements that give a role its limits and then its login, in that order: run in one batch
/// (one transaction), nothing can log in under the old limits.
fn login_sql(role: &str, login: &Login<'_>) -> String {
    format!(
        "ALTER ROLE {role} SET temp_file_limit = '{temp}MB'; \
         ALTER ROLE {role} LOGIN PASSWORD {pw} CONNECTION LIMIT {limit}",
        role = ident(role),
        temp = login.temp_file_mb,
        pw = literal(&verifier(login.password)),
        limit = login.connections,
    )
}

/// Creates the role and its database, closed to everyone else; with `login`, the role can log in
/// once it returns. The database is a copy of `template`'s (a token) when given, else of `template1`.
///
/// There is no moment when another role could connect: the database is created with connections
/// turned off (for every role, PUBLIC's default CONNECT notwithstanding), and they are turned on in
/// the same transaction that takes CONNECT from PUBLIC and gives the role its login.
pub(crate) async fn create_pair(
    pool: &AdminPool,
    token: &str,
    template: Option<&str>,
    login: Option<Login<'_>>,
    strategy: Option<&str>,
) -> Result<(), AdminError> {
    let (db, role) = names(token);
    let c = pool.get().await?;
    c.batch_execute(&format!("CREATE ROLE {} NOLOGIN", ident(&role))).await?;
    let strategy = strategy.map(|s| format!(" STRATEGY = {s}")).unwrap_or_default();
    let template = template.map(|t| format!(" TEMPLATE {}", ident(&names(t).0))).unwrap_or_default();
    let made = c
        .batch_execute(&format!(
            "CREATE DATABASE {} OWNER {}{template} ALLOW_CONNECTIONS false{strategy}",
            ident(&db),
            ident(&role)
        ))
        .await;
    if let Err(e) = made {
        let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(&role))).await;
        return Err(e.into());
    }
    let mut sql = format!(
        "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT ALL PRIVILEGES ON DATABASE {db} TO {role}; \
         ALTER DATABASE {db} ALLOW_CONNECTIONS true",
        db = ident(&db),
        role = ident(&role)
    );
    if let Some(login) = &login {
        sql = format!("{sql}; {}", login_sql(&role, login));
    }
    c.batch_execute(&sql).await?;
    Ok(())
}

/// Gives a (pooled) role a fresh password, login and its limits: its credentials from now on.
pub(crate) async fn set_login(pool: &AdminPool, token: &str, login: Login<'_>) -> Result<(), AdminError> {
    let (_, role) = names(token);
    let c = pool.get().await?;
    c.batch_execute(&login_sql(&role, &login)).await?;
    Ok(())
}

/// Stops a database for good: no new connections (CONNECT taken, the role NOLOGIN), then the
/// current ones ended. Only teardown undoes it.
pub(crate) async fn stop(pool: &AdminPool, token: &str) -> Result<(), AdminError> {
    let (db, role) = names(token);
    let c = pool.get().await?;
    c.batch_execute(&format!(
        "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC, {role}; ALTER ROLE {role} NOLOGIN",
        db = ident(&db),
        role = ident(&role)
    ))
    .await?;
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 OR usename = $2",
        &[&db, &role],
    )
    .await?;
    Ok(())
}

/// Rotates the password and ends every session that used the old one.
pub(crate) async fn rotate(pool: &AdminPool, token: &str, password: &str) -> Result<(), AdminError> {
    let (_, role) = names(token);
    let c = pool.get().await?;
    c.batch_execute(&format!("ALTER ROLE {} PASSWORD {}", ident(&role), literal(&verifier(password)))).await?;
    c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", &[&role]).await?;
    Ok(())
}

/// Revoke, terminate, drop the database (retrying while sessions linger), then always drop the role.
///
/// A role that still has dependents is tried again after dropping the database again: a create cut
/// short by a crash of scratchdb lives on in its Postgres session and may commit the database just
/// after this looked for it, which is exactly when a restarted scratchdb tears it down.
pub(crate) async fn teardown(pool: &AdminPool, token: &str) -> Result<(), AdminError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match teardown_once(pool, token).await {
            Err(e)
                if attempt < 5
                    && e.sql_state() == Some(&tokio_postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

async fn teardown_once(pool: &AdminPool, token: &str) -> Result<(), AdminError> {
    let (db, role) = names(token);
    let c = pool.get().await?;
    let exists = c.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db]).await?.is_some();
    let mut drop_result = Ok(());
    if exists {
        // Stop new logins before killing the current ones, or a client could slip back in between.
        let _ = c.batch_execute(&format!("REVOKE CONNECT ON DATABASE {} FROM PUBLIC", ident(&db))).await;
        let _ = c.batch_execute(&format!("ALTER ROLE {} NOLOGIN", ident(&role))).await;
        let _ = c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&db]).await;
        for attempt in 0..3 {
            drop_result = c
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&db)))
                .await
                .map_err(AdminError::from);
            match &drop_result {
                Err(e) if attempt < 2 && e.sql_state() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => break,
            }
        }
    }
    // The legacy name too: a pair made by an older version whose rename never happened must not leak.
    let role_result = c
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {}",
            ident(&role),
            ident(&legacy_role(token))
        ))
        .await;
    drop_result?;
    role_result?;
    Ok(())
}
