//! The superuser side: a small pool of admin connections and the SQL that makes and unmakes a
//! (role, database) pair; `copy` makes one as a copy of another's database, and `sessions` ends a
//! role's sessions for the operations that must (rotate, stop, and so freeze).
//!
//! Passwords never travel as plain text: the SCRAM verifier is computed here, so the server's statement
//! log (if someone turns it on) cannot leak a credential.
//!
//! Every admin statement has a lock timeout and a statement timeout: there are only a few admin
//! connections, and one waiting on a lock for as long as its holder likes is one fewer for every
//! tenant's create. A timeout is an ordinary `AdminError`, which the API answers with a `503`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, NoTls};

mod copy;
mod sessions;

pub(crate) use copy::copy_pair;
pub(crate) use sessions::{rotate, stop};

/// How long an admin statement waits for a lock. The locks a tenant can take on what scratchdb
/// alters (its role's row, its database's row) are its role's, and the role's sessions are ended
/// first; anyone else holding one (an operator, another scratchdb) costs a `503` to retry.
const LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an ordinary admin statement may run: registry reads and writes, roles, grants.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `CREATE DATABASE` and `DROP DATABASE` may run: a copy takes as long as its source is
/// big (up to the fork size limit, 1 GiB by default), and both wait for a checkpoint.
const DATABASE_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Why an admin operation failed. Never carries a password.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid admin url: {0}")]
    BadUrl(String),
    #[error("postgres: {}", detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// Sessions of a role kept showing up after it was locked out (see `sessions`).
    #[error("sessions of the role were still there after {0:?} of ending them")]
    SessionsRemain(Duration),
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
            AdminError::BadUrl(_) | AdminError::SessionsRemain(_) => None,
        }
    }

    /// Whether it gave up waiting (on a lock, a long statement, sessions that would not end)
    /// rather than failed: the same request is likely to go through shortly.
    pub(crate) fn is_busy(&self) -> bool {
        use tokio_postgres::error::SqlState;
        matches!(self, AdminError::SessionsRemain(_))
            || self.sql_state().is_some_and(|s| *s == SqlState::LOCK_NOT_AVAILABLE || *s == SqlState::QUERY_CANCELED)
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
    /// False once it may carry a setting other than the pool's (see `execute_long`).
    reusable: bool,
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
            if self.reusable && !c.is_closed() {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
            }
        }
    }
}

impl AdminConn {
    /// Runs `sql` with the longer timeout a whole database's work needs: `CREATE DATABASE` and
    /// `DROP DATABASE`, or a fork's hand-over. The first two cannot run in a transaction, so the
    /// timeout is set for the session and reset after; a connection whose reset failed is closed
    /// rather than pooled with it.
    pub(crate) async fn execute_long(&mut self, sql: &str) -> Result<(), AdminError> {
        self.batch_execute(&format!("SET statement_timeout = {}", DATABASE_STATEMENT_TIMEOUT.as_millis())).await?;
        let result = self.batch_execute(sql).await;
        if self.batch_execute("RESET statement_timeout").await.is_err() {
            self.reusable = false;
        }
        Ok(result?)
    }
}

impl AdminPool {
    pub(crate) fn new(url: &str, max: usize) -> Result<Self, AdminError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| AdminError::BadUrl("cannot parse".into()))?;
        // Sent at connect, so every admin connection has them from its first statement, and `RESET`
        // comes back to them.
        let timeouts = format!(
            "-c lock_timeout={} -c statement_timeout={}",
            LOCK_TIMEOUT.as_millis(),
            STATEMENT_TIMEOUT.as_millis()
        );
        let options = match config.get_options().map(str::trim) {
            Some(given) if !given.is_empty() => format!("{given} {timeouts}"),
            _ => timeouts,
        };
        config.options(&options);
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
        Ok(AdminConn { client: Some(client), idle: self.idle.clone(), reusable: true, _permit: permit })
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
        Ok(AdminConn { client: Some(client), idle: Arc::default(), reusable: false, _permit: permit })
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
    let mut c = pool.get().await?;
    c.batch_execute(&format!("CREATE ROLE {} NOLOGIN", ident(&role))).await?;
    let strategy = strategy.map(|s| format!(" STRATEGY = {s}")).unwrap_or_default();
    let template = template.map(|t| format!(" TEMPLATE {}", ident(&names(t).0))).unwrap_or_default();
    let made = c
        .execute_long(&format!(
            "CREATE DATABASE {} OWNER {}{template} ALLOW_CONNECTIONS false{strategy}",
            ident(&db),
            ident(&role)
        ))
        .await;
    if let Err(e) = made {
        let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(&role))).await;
        return Err(e);
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
    let mut c = pool.get().await?;
    // Ended before anything is altered: only the role's own sessions can hold its role's row or
    // its database's row (an `ALTER ROLE CURRENT_USER` or a `GRANT … ON DATABASE` left
    // uncommitted), and the statements below would wait on them.
    sessions::end_sessions(&c, &db, &role).await?;
    let exists = c.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db]).await?.is_some();
    let mut drop_result = Ok(());
    if exists {
        // Stop new logins before killing the current ones, or a client could slip back in between.
        let _ = c.batch_execute(&format!("REVOKE CONNECT ON DATABASE {} FROM PUBLIC", ident(&db))).await;
        let _ = c.batch_execute(&format!("ALTER ROLE {} NOLOGIN", ident(&role))).await;
        let _ = sessions::end_sessions(&c, &db, &role).await;
        for attempt in 0..3 {
            drop_result = c.execute_long(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&db))).await;
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
