//! Ending a role's sessions, and the operations that must: a rotate (the old password's sessions)
//! and a stop (every session, for good; the storage check's and a freeze's).
//!
//! Two things make this more than one `pg_terminate_backend` after the change:
//!
//! - Ended *before* any `ALTER ROLE`: a session of the role can hold its `pg_authid` row (an
//!   `ALTER ROLE CURRENT_USER …` left uncommitted) or, as the database's owner, its `pg_database`
//!   row, and scratchdb's statement would wait on it. Only the role's own sessions (and
//!   superusers) can, so ending them releases it; the lock timeout covers anyone else.
//! - Ended *until none is left* after it: a login that passed its checks just before the change
//!   committed is not yet in `pg_stat_activity`, and would be missed by a single look.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;

use super::{ident, literal, names, verifier, AdminError, AdminPool};

/// How long the sessions of a locked-out role may take to be gone before the operation gives up
/// (a `503`, retried): long enough for a backend to exit, short enough not to hold a request.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// Between two looks at the sessions left.
const LOOK_AGAIN: Duration = Duration::from_millis(25);

/// Signals every session of `role`, every session in `db` and every login into `db` still starting
/// to end; returns how many it found.
///
/// A login takes a lock on its database just before its `CONNECT` check and lets it go only after
/// it shows in `pg_stat_activity`, so reading `pg_locks` first and `pg_stat_activity` second (in
/// separate statements: each takes its own snapshot) misses no login that passed the check.
pub(crate) async fn end_sessions(c: &Client, db: &str, role: &str) -> Result<usize, AdminError> {
    let starting = c
        .query(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.objid \
             WHERE l.locktype = 'object' AND l.database = 0 AND l.classid = 'pg_database'::regclass \
             AND l.mode = 'RowExclusiveLock' AND d.datname = $1 AND l.pid <> pg_backend_pid()",
            &[&db],
        )
        .await?;
    let running = c
        .query(
            "SELECT pid FROM pg_stat_activity WHERE (datname = $1 OR usename = $2) AND pid <> pg_backend_pid()",
            &[&db, &role],
        )
        .await?;
    let pids: BTreeSet<i32> = starting.iter().chain(&running).map(|r| r.get(0)).collect();
    if !pids.is_empty() {
        let pids: Vec<i32> = pids.iter().copied().collect();
        c.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid", &[&pids]).await?;
    }
    Ok(pids.len())
}

/// [`end_sessions`] until two looks in a row find none, or `AdminError::SessionsRemain`.
///
/// One empty look would do for logins into `db`, once `CONNECT` is taken (see above). The second,
/// a little later, is for a login of the role into another database, possible only where
/// pg_hba.conf lets the role reach one: it has no lock on `db` to be seen by in the meantime.
async fn end_sessions_until_gone(c: &Client, db: &str, role: &str) -> Result<(), AdminError> {
    let deadline = Instant::now() + GONE_WITHIN;
    let mut empty_looks = 0;
    loop {
        if end_sessions(c, db, role).await? == 0 {
            empty_looks += 1;
            if empty_looks == 2 {
                return Ok(());
            }
        } else {
            empty_looks = 0;
        }
        if Instant::now() >= deadline {
            return Err(AdminError::SessionsRemain(GONE_WITHIN));
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

/// Rotates the password and ends every session of the role.
///
/// A login that read the old password's verifier before the change and proves it after still gets
/// in: its session starts after this looked. A rotate is for a credential that leaked, not for
/// shutting a role out; that is [`stop`].
pub(crate) async fn rotate(pool: &AdminPool, token: &str, password: &str) -> Result<(), AdminError> {
    let (db, role) = names(token);
    let c = pool.get().await?;
    end_sessions(&c, &db, &role).await?;
    c.batch_execute(&format!("ALTER ROLE {} PASSWORD {}", ident(&role), literal(&verifier(password)))).await?;
    end_sessions_until_gone(&c, &db, &role).await
}

/// Stops a database for good: its role's sessions ended, then no new connections (`CONNECT`
/// taken from PUBLIC and the role, the role `NOLOGIN`), then every session ended until none is
/// left. Only teardown undoes it; idempotent, so a failed stop is retried by running it again.
///
/// Nothing a session did before survives it: a password the role gave itself opens nothing for a
/// role that may not log in, and a login that read the role's verifier before the change fails
/// its `CONNECT` check after it.
pub(crate) async fn stop(pool: &AdminPool, token: &str) -> Result<(), AdminError> {
    let (db, role) = names(token);
    let c = pool.get().await?;
    end_sessions(&c, &db, &role).await?;
    let lock_out = format!(
        "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC, {role}; ALTER ROLE {role} NOLOGIN",
        db = ident(&db),
        role = ident(&role)
    );
    // Twice: the role owns its database, so a session of it that lived until the first round
    // ended it could have granted `CONNECT` back meanwhile. By the second, the role has no session
    // left to do so, and no way to log in for one.
    for _ in 0..2 {
        c.batch_execute(&lock_out).await?;
        end_sessions_until_gone(&c, &db, &role).await?;
    }
    Ok(())
}
