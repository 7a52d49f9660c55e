//! The durable registry: scratchdb's own schema in the admin database, so a restart loses nothing.
//!
//! Every pair is written down *before* it is created (`provisioning` resources, `filling` pool slots),
//! so a crash at any point leaves a row that startup or the sweep can finish tearing down — nothing in
//! the cluster is ever unknown to the registry.

use crate::admin::{ident, legacy_role, names, AdminError, AdminPool, DB_PREFIX};

/// One resource row, as the API needs it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) name: String,
    pub(crate) env: String,
    pub(crate) owner: Option<String>,
    pub(crate) tier: String,
    pub(crate) status: String,
    pub(crate) password: String,
    pub(crate) connections: i32,
    pub(crate) storage_mb: i32,
    pub(crate) created_at: String,
    pub(crate) expires_at: Option<String>,
    pub(crate) claim_token: Option<String>,
    /// Frozen by its owner (`crate::freeze`): nobody logs in, and no credential is handed out.
    pub(crate) frozen: bool,
}

fn ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

/// The column list `Row::from_pg` reads, in order; a query may add its own after them, from
/// [`COLUMNS`] on.
pub(crate) fn columns() -> String {
    format!(
        "id, token, name, env, owner, tier, status, password, connections, storage_mb, {}, {}, claim_token, \
         frozen_at IS NOT NULL",
        ts("created_at"),
        ts("expires_at")
    )
}

/// How many columns [`columns`] lists.
pub(crate) const COLUMNS: usize = 14;

impl Row {
    pub(crate) fn from_pg(r: &tokio_postgres::Row) -> Self {
        Self {
            id: r.get(0),
            token: r.get(1),
            name: r.get(2),
            env: r.get(3),
            owner: r.get(4),
            tier: r.get(5),
            status: r.get(6),
            password: r.get(7),
            connections: r.get(8),
            storage_mb: r.get(9),
            created_at: r.get(10),
            expires_at: r.get(11),
            claim_token: r.get(12),
            frozen: r.get(13),
        }
    }
}

/// Creates the schema and tables if missing. Serialised by an advisory lock so that two instances
/// starting at once do not race on `CREATE ... IF NOT EXISTS`.
pub(crate) async fn migrate(pool: &AdminPool, schema: &str) -> Result<(), AdminError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // Another instance may be migrating: waiting for it is what starting means, so this
    // transaction waits longer than an admin statement may.
    tx.batch_execute("SET LOCAL lock_timeout = '1min'; SET LOCAL statement_timeout = '1min'").await?;
    tx.execute("SELECT pg_advisory_xact_lock(7330331)", &[]).await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.resources (
             id text PRIMARY KEY,
             token text UNIQUE NOT NULL,
             name text NOT NULL,
             env text NOT NULL,
             owner text,
             tier text NOT NULL,
             status text NOT NULL,
             password text NOT NULL,
             connections int NOT NULL,
             storage_mb int NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now(),
             expires_at timestamptz,
             deleted_at timestamptz,
             claim_token text UNIQUE,
             claim_expires_at timestamptz,
             claimed_at timestamptz);
         ALTER TABLE {s}.resources ADD COLUMN IF NOT EXISTS caller text;
         ALTER TABLE {s}.resources ADD COLUMN IF NOT EXISTS frozen_at timestamptz;
         CREATE INDEX IF NOT EXISTS resources_owner ON {s}.resources (owner, status);
         CREATE TABLE IF NOT EXISTS {s}.idempotency (
             owner text NOT NULL,
             key text NOT NULL,
             body_hash text NOT NULL,
             token text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (owner, key));
         CREATE TABLE IF NOT EXISTS {s}.pool (
             token text PRIMARY KEY,
             state text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS {s}.sessions (
             owner text PRIMARY KEY,
             team_id text NOT NULL,
             email text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now());",
        s = ident(schema)
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Renames the roles of this registry's live pairs that an older version named `usr_<token>` to
/// their database's name, so they pass pg_hba.conf's `sameuser` rule and `names()` finds them. A
/// role's SCRAM verifier survives a rename, so stored passwords keep working; a client holding the
/// old URL must fetch the new one (`GET …/credentials`). A live role also gets its temporary-file
/// budget, which older versions did not set; pool pairs get theirs when handed out.
pub(crate) async fn adopt_legacy_roles(pool: &AdminPool, schema: &str) -> Result<(), AdminError> {
    let c = pool.get().await?;
    let legacy = c
        .query(
            &format!(
                "WITH live AS (SELECT token, storage_mb FROM {s}.resources \
                     WHERE status NOT IN ('deleted', 'expired', 'error') \
                 UNION ALL SELECT token, NULL FROM {s}.pool) \
                 SELECT live.token, live.storage_mb FROM live JOIN pg_roles r ON r.rolname = 'usr_' || live.token \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_roles n WHERE n.rolname = $1 || live.token)",
                s = ident(schema)
            ),
            &[&DB_PREFIX],
        )
        .await?;
    for r in legacy {
        let (token, storage_mb): (String, Option<i32>) = (r.get(0), r.get(1));
        let (_, role) = names(&token);
        let mut sql = format!("ALTER ROLE {} RENAME TO {}", ident(&legacy_role(&token)), ident(&role));
        if let Some(mb) = storage_mb {
            let temp = crate::limits::temp_file_mb(mb);
            sql = format!("{sql}; ALTER ROLE {} SET temp_file_limit = '{temp}MB'", ident(&role));
        }
        // One role that cannot be renamed must not keep the provisioner from starting; its resource
        // stays unreachable until an operator looks, and its teardown still drops the old name.
        if let Err(e) = c.batch_execute(&sql).await {
            tracing::warn!(error = %AdminError::from(e), "a role named by an older version could not be renamed");
        }
    }
    Ok(())
}
