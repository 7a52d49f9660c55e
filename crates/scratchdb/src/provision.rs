//! Creating resources: from the warm pool when it has a ready pair, else a fresh pair (or a copy of
//! another, for a fork: `crate::fork`), with `Idempotency-Key` replays; and the filler that keeps
//! the pool at its size, so that most creates cost a login change instead of a `CREATE DATABASE`.

use std::time::Duration;

use crate::admin;
use crate::config::{ANON_CONNECTIONS, ANON_STORAGE_MB, OWNED_TIER};
use crate::limits;
use crate::registry::{self, Row};
use crate::service::{Caller, Created, NewResource, Service, ServiceError};

impl Service {
    /// Creates a resource, from the pool when it has a ready pair; a fork is registered, limited and
    /// undone on failure exactly as a create is, and differs only in how its pair is made.
    pub(crate) async fn create(&self, caller: &Caller, req: NewResource) -> Result<Created, ServiceError> {
        let s = self.s().to_string();
        let (owner, tier, connections, storage_mb, ttl) = match caller {
            Caller::Anonymous(_) => {
                (None, "anonymous", ANON_CONNECTIONS, ANON_STORAGE_MB, Some(self.config().anonymous_ttl.as_secs_f64()))
            }
            Caller::Owner(o) => {
                let config = self.config();
                (Some(o.clone()), OWNED_TIER, config.authenticated_connections, config.authenticated_storage_mb, None)
            }
        };
        let scope = caller.idempotency_scope();
        let idempotency = match (&scope, req.idempotency) {
            (Some(scope), Some((key, hash))) => Some((scope.clone(), key, hash)),
            (None, Some(_)) => {
                tracing::warn!(
                    "an anonymous Idempotency-Key was not honoured: the server was not given peer addresses"
                );
                None
            }
            (_, None) => None,
        };
        let password = admin::new_password();
        let id = uuid::Uuid::new_v4().to_string();
        let claim_token = owner.is_none().then(|| format!("clm_{}", admin::new_password()));
        let mut c = self.admin().get().await?;
        let tx = c.transaction().await?;
        // A pool pair is a copy of template1, never of the database a fork asks for.
        let pooled: Option<String> = if self.config().pool_size > 0 && req.fork_of.is_none() {
            tx.query_opt(
                &format!(
                    "DELETE FROM {s}.pool WHERE token = (SELECT token FROM {s}.pool WHERE state = 'ready' \
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING token"
                ),
                &[],
            )
            .await?
            .map(|r| r.get(0))
        } else {
            None
        };
        let token = pooled.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Some((owner_key, key, hash)) = &idempotency {
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO {s}.idempotency (owner, key, body_hash, token) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&owner_key, key, hash, &token],
                )
                .await?;
            if inserted == 0 {
                tx.rollback().await?;
                drop(c);
                return self.replay(owner_key, key, hash).await;
            }
        }
        // Checked after the key is taken, so that a retry is answered with its fork even once the
        // source is gone.
        if let Some(source) = &req.fork_of {
            let max_bytes = self.config().fork_source_max_bytes;
            if let Err(e) = crate::fork::check_source(&tx, &s, owner.as_deref(), source, max_bytes).await {
                tx.rollback().await?;
                return Err(e);
            }
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO {s}.resources (id, token, name, env, owner, tier, status, password, connections, \
                     storage_mb, expires_at, claim_token, claim_expires_at, caller) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'provisioning', $7, $8, $9, \
                     now() + $10::float8 * interval '1 second', $11, now() + interval '7 days', $12) RETURNING {}",
                    registry::columns()
                ),
                &[
                    &id,
                    &token,
                    &req.name,
                    &req.env,
                    &owner,
                    &tier,
                    &password,
                    &connections,
                    &storage_mb,
                    &ttl,
                    &claim_token,
                    &caller.anonymous_address(),
                ],
            )
            .await?;
        tx.commit().await?;
        drop(c);
        let mut row = Row::from_pg(&row);
        if pooled.is_some() {
            self.refill().notify_one();
        }
        let login = admin::Login { password: &password, connections, temp_file_mb: limits::temp_file_mb(storage_mb) };
        let made = match (&pooled, &req.fork_of) {
            (_, Some(source)) => admin::copy_pair(self.admin(), source, &token, login, self.strategy())
                .await
                .map_err(ServiceError::from_copy),
            (Some(_), None) => admin::set_login(self.admin(), &token, login).await.map_err(ServiceError::from),
            (None, None) => {
                admin::create_pair(self.admin(), &token, None, Some(login), self.strategy()).await.map_err(Into::into)
            }
        };
        let c = self.admin().get().await?;
        if let Err(e) = made {
            drop(c);
            let _ = admin::teardown(self.admin(), &token).await;
            let c = self.admin().get().await?;
            c.execute(&format!("UPDATE {s}.resources SET status = 'error' WHERE token = $1"), &[&token]).await?;
            c.execute(&format!("DELETE FROM {s}.idempotency WHERE token = $1"), &[&token]).await?;
            return Err(e);
        }
        c.execute(
            &format!("UPDATE {s}.resources SET status = 'active' WHERE token = $1 AND status = 'provisioning'"),
            &[&token],
        )
        .await?;
        row.status = "active".into();
        Ok(Created { row, replay: false, idempotent: idempotency.is_some() })
    }

    /// Answers a repeated key: the same resource once it is ready, or a conflict for another body.
    async fn replay(&self, owner_key: &str, key: &str, hash: &str) -> Result<Created, ServiceError> {
        let s = self.s().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.admin().get().await?;
            let Some(prior) = c
                .query_opt(
                    &format!("SELECT body_hash, token FROM {s}.idempotency WHERE owner = $1 AND key = $2"),
                    &[&owner_key, &key],
                )
                .await?
            else {
                // The first create failed and gave its key back; this one is not a replay of anything.
                return Err(ServiceError::Unfinished);
            };
            let (prior_hash, token): (String, String) = (prior.get(0), prior.get(1));
            if prior_hash != hash {
                return Err(ServiceError::IdempotencyConflict);
            }
            let row = c
                .query_opt(&format!("SELECT {} FROM {s}.resources WHERE token = $1", registry::columns()), &[&token])
                .await?
                .map(|r| Row::from_pg(&r))
                .ok_or(ServiceError::Unfinished)?;
            // The first request may still be creating the database; a replay must not answer before it.
            if row.status != "provisioning" || tokio::time::Instant::now() > deadline {
                return Ok(Created { row, replay: true, idempotent: true });
            }
            drop(c);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Ready pairs in the pool right now.
    pub async fn pool_ready(&self) -> Result<usize, ServiceError> {
        let c = self.admin().get().await?;
        let n: i64 =
            c.query_one(&format!("SELECT count(*) FROM {}.pool WHERE state = 'ready'", self.s()), &[]).await?.get(0);
        Ok(n as usize)
    }

    async fn fill_one(&self) -> Result<bool, ServiceError> {
        let s = self.s().to_string();
        let c = self.admin().get().await?;
        let n: i64 = c.query_one(&format!("SELECT count(*) FROM {s}.pool"), &[]).await?.get(0);
        if n as usize >= self.config().pool_size {
            return Ok(false);
        }
        let token = uuid::Uuid::new_v4().to_string();
        c.execute(&format!("INSERT INTO {s}.pool (token, state) VALUES ($1, 'filling')"), &[&token]).await?;
        drop(c);
        if let Err(e) = admin::create_pair(self.admin(), &token, None, None, self.strategy()).await {
            let _ = admin::teardown(self.admin(), &token).await;
            let c = self.admin().get().await?;
            c.execute(&format!("DELETE FROM {s}.pool WHERE token = $1"), &[&token]).await?;
            return Err(e.into());
        }
        let c = self.admin().get().await?;
        c.execute(&format!("UPDATE {s}.pool SET state = 'ready', created_at = now() WHERE token = $1"), &[&token])
            .await?;
        Ok(true)
    }

    pub(crate) async fn fill_loop(self) {
        if self.config().pool_size == 0 {
            return;
        }
        let mut stop = self.stop_signal();
        loop {
            let wait = match self.fill_one().await {
                Ok(true) => Duration::ZERO,
                Ok(false) => Duration::from_secs(5),
                Err(e) => {
                    tracing::warn!(error = %e, "pool refill failed");
                    Duration::from_secs(1)
                }
            };
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = self.refill().notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
