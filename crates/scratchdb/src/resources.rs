//! What callers read and change of a live resource: an owner's look-ups and password rotation, and
//! the claim that hands an anonymous resource to a new owner. None of it makes or drops a database,
//! which is why it needs neither the pool nor the sweep.

use crate::admin;
use crate::config::OWNED_TIER;
use crate::registry::{self, Row};
use crate::service::{sha256_hex, Claimed, Service, ServiceError};

impl Service {
    /// The caller's live resource, or `NotFound` (also for other owners' and anonymous ones).
    pub(crate) async fn get(&self, owner: &str, token: &str) -> Result<Row, ServiceError> {
        let c = self.admin().get().await?;
        c.query_opt(
            &format!(
                "SELECT {} FROM {}.resources WHERE token = $1 AND owner = $2 \
                 AND status IN ('active', 'provisioning', 'suspended')",
                registry::columns(),
                self.s()
            ),
            &[&token, &owner],
        )
        .await?
        .map(|r| Row::from_pg(&r))
        .ok_or(ServiceError::NotFound)
    }

    pub(crate) async fn list(&self, owner: &str, env: Option<&str>) -> Result<Vec<Row>, ServiceError> {
        let c = self.admin().get().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM {}.resources WHERE owner = $1 \
                     AND status IN ('active', 'provisioning', 'suspended') AND ($2::text IS NULL OR env = $2) \
                     ORDER BY created_at",
                    registry::columns(),
                    self.s()
                ),
                &[&owner, &env],
            )
            .await?;
        Ok(rows.iter().map(Row::from_pg).collect())
    }

    /// The database's size on disk; 0 if it is going away under us.
    pub(crate) async fn storage_bytes(&self, token: &str) -> i64 {
        let (db, _) = admin::names(token);
        let Ok(c) = self.admin().get().await else { return 0 };
        c.query_opt("SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1", &[&db])
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0))
            .unwrap_or(0)
    }

    /// New password for an owned resource; the old one stops working at once. A frozen one gets
    /// none: it hands out no credential.
    pub(crate) async fn rotate(&self, owner: &str, token: &str) -> Result<Row, ServiceError> {
        let mut row = self.get(owner, token).await?;
        if row.frozen {
            return Err(ServiceError::Frozen);
        }
        // Its create sets the password last, over this one, and a fork's create still has an admin
        // session in the database that this would end.
        if row.status == "provisioning" {
            return Err(ServiceError::Provisioning);
        }
        let password = admin::new_password();
        admin::rotate(self.admin(), token, &password).await?;
        let c = self.admin().get().await?;
        let stored = c
            .execute(
                &format!("UPDATE {}.resources SET password = $2 WHERE token = $1 AND frozen_at IS NULL", self.s()),
                &[&token, &password],
            )
            .await?;
        // Frozen meanwhile: the freeze won, and the password just set opens nothing for a role
        // that may not log in.
        if stored == 0 {
            return Err(ServiceError::Frozen);
        }
        row.password = password;
        Ok(row)
    }

    /// The live anonymous resource a claim token names, with the token's own expiry.
    pub(crate) async fn claim_preview(&self, claim: &str) -> Result<Option<(Row, String)>, ServiceError> {
        let c = self.admin().get().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {}, {} FROM {}.resources WHERE claim_token = $1 AND claim_expires_at > now() \
                     AND claimed_at IS NULL AND status IN ('active', 'suspended')",
                    registry::columns(),
                    "to_char(claim_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                    self.s()
                ),
                &[&claim],
            )
            .await?;
        Ok(row.map(|r| (Row::from_pg(&r), r.get(registry::COLUMNS))))
    }

    /// Moves an anonymous resource to a new owner (a freshly minted session token) and clears its expiry.
    pub(crate) async fn claim(&self, claim: &str, email: &str) -> Result<Claimed, ServiceError> {
        let s = self.s().to_string();
        let session_token = format!("ink_{}", admin::new_password());
        let owner = sha256_hex(&session_token);
        let team_id = uuid::Uuid::new_v4().to_string();
        let mut c = self.admin().get().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE {s}.resources SET owner = $2, tier = $3, expires_at = NULL, claimed_at = now() \
                     WHERE claim_token = $1 AND claim_expires_at > now() AND claimed_at IS NULL \
                     AND status IN ('active', 'suspended')"
                ),
                &[&claim, &owner, &OWNED_TIER],
            )
            .await?;
        if n == 0 {
            let claimed = tx
                .query_opt(
                    &format!("SELECT 1 FROM {s}.resources WHERE claim_token = $1 AND claimed_at IS NOT NULL"),
                    &[&claim],
                )
                .await?;
            return Err(if claimed.is_some() { ServiceError::AlreadyClaimed } else { ServiceError::InvalidClaim });
        }
        tx.execute(
            &format!("INSERT INTO {s}.sessions (owner, team_id, email) VALUES ($1, $2, $3)"),
            &[&owner, &team_id, &email],
        )
        .await?;
        tx.commit().await?;
        Ok(Claimed { session_token, user_id: uuid::Uuid::new_v4().to_string(), team_id })
    }
}
