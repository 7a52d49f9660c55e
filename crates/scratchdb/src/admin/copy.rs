//! The SQL that makes a pair as a copy of another pair's database (a fork, see `crate::fork`).
//!
//! A template's objects keep their owner, so the copy's tables would still be the source's role's,
//! which cannot even connect there: the copy is handed to its own role before that role gets a
//! login. `REASSIGN OWNED` in the copy also hands over the shared objects the source's role owns —
//! the source database itself — so the same transaction gives that back; `DROP OWNED` then clears
//! what still names the source's role in the copy (default privileges), or dropping that role when
//! the source is deleted would fail for as long as the fork lives.

use super::{create_pair, ident, names, set_login, AdminError, AdminPool, Login};

/// Makes `token`'s pair as a copy of `source`'s database, owned through and through by `token`'s
/// role, and only then lets that role log in. Postgres refuses a source that has sessions
/// (`OBJECT_IN_USE`), and one deleted meanwhile has no database (`INVALID_CATALOG_NAME`) or role
/// (`UNDEFINED_OBJECT`) left to copy.
pub(crate) async fn copy_pair(
    pool: &AdminPool,
    source: &str,
    token: &str,
    login: Login<'_>,
    strategy: Option<&str>,
) -> Result<(), AdminError> {
    create_pair(pool, token, Some(source), None, strategy).await?;
    hand_over(pool, source, token).await?;
    set_login(pool, token, login).await
}

async fn hand_over(pool: &AdminPool, source: &str, token: &str) -> Result<(), AdminError> {
    let (source_db, source_role) = names(source);
    let (db, role) = names(token);
    let mut c = pool.connect_to(&db).await?;
    // One batch is one transaction: nobody ever sees the source database owned by the fork's role.
    // It visits every object of the copy, which can take as long as the copy did.
    c.execute_long(&format!(
        "REASSIGN OWNED BY {source_role} TO {role}; ALTER DATABASE {source_db} OWNER TO {source_role}; \
         DROP OWNED BY {source_role}",
        source_role = ident(&source_role),
        role = ident(&role),
        source_db = ident(&source_db),
    ))
    .await?;
    Ok(())
}
