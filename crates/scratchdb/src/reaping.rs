//! Taking resources down: an owner's delete, the expiry sweep, and at start the pairs a crashed run
//! left half-made. A teardown that fails is retried (by the sweep or the next start) instead of
//! forgotten, so the cluster never keeps a pair the registry has given up on.

use crate::admin;
use crate::service::{Service, ServiceError};

impl Service {
    /// Tears down half-made pairs from a previous run and trims the pool to its configured size.
    pub(crate) async fn recover(&self) -> Result<(), ServiceError> {
        let s = self.s().to_string();
        let c = self.admin().get().await?;
        let filling = c.query(&format!("SELECT token FROM {s}.pool WHERE state = 'filling'"), &[]).await?;
        let extra = c
            .query(
                &format!("SELECT token FROM {s}.pool WHERE state = 'ready' ORDER BY created_at OFFSET $1"),
                &[&(self.config().pool_size as i64)],
            )
            .await?;
        drop(c);
        // A pair that cannot be torn down now is left for the next start, with a warning: one bad
        // pair must not keep the provisioner from starting at all.
        for r in filling.iter().chain(extra.iter()) {
            let token: String = r.get(0);
            if let Err(e) = admin::teardown(self.admin(), &token).await {
                tracing::warn!(error = %e, "a pool slot left by a crash could not be torn down; trying at the next start");
                continue;
            }
            let c = self.admin().get().await?;
            c.execute(&format!("DELETE FROM {s}.pool WHERE token = $1"), &[&token]).await?;
        }
        let c = self.admin().get().await?;
        let stuck = c.query(&format!("SELECT token FROM {s}.resources WHERE status = 'provisioning'"), &[]).await?;
        drop(c);
        for r in stuck {
            let token: String = r.get(0);
            if let Err(e) = admin::teardown(self.admin(), &token).await {
                tracing::warn!(error = %e, "a resource left mid-create by a crash could not be torn down; trying at the next start");
                continue;
            }
            let c = self.admin().get().await?;
            c.execute(&format!("UPDATE {s}.resources SET status = 'error' WHERE token = $1"), &[&token]).await?;
            // The create never finished, so its idempotency key is given back, as a failed create
            // gives it back: the caller's retry makes a new database instead of replaying this one.
            c.execute(&format!("DELETE FROM {s}.idempotency WHERE token = $1"), &[&token]).await?;
        }
        Ok(())
    }

    /// Deletes an owned resource. `Ok(false)` means it was already gone (an idempotent repeat).
    pub(crate) async fn delete(&self, owner: &str, token: &str) -> Result<bool, ServiceError> {
        let s = self.s().to_string();
        // A fork in progress finishes its copy first; once marked, no new one starts from it.
        let _forks = self.source_lock(token).await;
        let c = self.admin().get().await?;
        let status: String = c
            .query_opt(&format!("SELECT status FROM {s}.resources WHERE token = $1 AND owner = $2"), &[&token, &owner])
            .await?
            .map(|r| r.get(0))
            .ok_or(ServiceError::NotFound)?;
        if matches!(status.as_str(), "deleted" | "expired" | "error") {
            return Ok(false);
        }
        c.execute(&format!("UPDATE {s}.resources SET status = 'deleting' WHERE token = $1"), &[&token]).await?;
        drop(c);
        // Fail-open like instanode: if the drop fails the row stays `deleting` and the sweep retries it.
        if let Err(e) = admin::teardown(self.admin(), token).await {
            tracing::warn!(error = %e, "teardown failed; the sweep will retry");
            return Ok(true);
        }
        let c = self.admin().get().await?;
        c.execute(
            &format!("UPDATE {s}.resources SET status = 'deleted', deleted_at = now() WHERE token = $1"),
            &[&token],
        )
        .await?;
        Ok(true)
    }

    /// Drops every expired resource and retries failed teardowns; returns how many it finished.
    pub async fn sweep_once(&self) -> Result<usize, ServiceError> {
        let s = self.s().to_string();
        let c = self.admin().get().await?;
        let due = c
            .query(
                &format!(
                    "SELECT token, status FROM {s}.resources \
                     WHERE (status IN ('active', 'suspended') AND expires_at < now()) \
                     OR status = 'deleting' \
                     OR (status = 'provisioning' AND created_at < now() - interval '10 minutes')"
                ),
                &[],
            )
            .await?;
        c.execute(&format!("DELETE FROM {s}.idempotency WHERE created_at < now() - interval '24 hours'"), &[]).await?;
        drop(c);
        let mut done = 0;
        for r in due {
            let (token, status): (String, String) = (r.get(0), r.get(1));
            match admin::teardown(self.admin(), &token).await {
                Ok(()) => {
                    let next = if status == "deleting" || status == "provisioning" { "deleted" } else { "expired" };
                    let c = self.admin().get().await?;
                    c.execute(
                        &format!("UPDATE {s}.resources SET status = $2, deleted_at = now() WHERE token = $1"),
                        &[&token, &next],
                    )
                    .await?;
                    done += 1;
                }
                Err(e) => tracing::warn!(error = %e, "sweep teardown failed; retrying next round"),
            }
        }
        Ok(done)
    }

    pub(crate) async fn sweep_loop(self) {
        let mut stop = self.stop_signal();
        loop {
            match self.sweep_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reaped = n, "expiry sweep"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = tokio::time::sleep(self.config().sweep_interval) => {}
            }
        }
    }
}
