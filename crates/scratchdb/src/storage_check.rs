//! The storage check: every `storage_check_interval`, a database over its limit is stopped
//! (CONNECT taken, its role NOLOGIN, its sessions ended) and marked `suspended` in the registry, and
//! stays so until it is deleted or expires. Between two checks a database can outgrow its limit by
//! whatever it writes in that time; the check is what bounds it, not every write.

use crate::admin::{self, DB_PREFIX};
use crate::limits::SUSPENDED;
use crate::service::{Service, ServiceError};

impl Service {
    /// Stops every live database over its storage limit; returns how many it stopped.
    ///
    /// One query sizes every database of this registry at once: the check costs one directory walk
    /// per scratch database, not one round trip.
    pub async fn storage_check_once(&self) -> Result<usize, ServiceError> {
        let s = self.s().to_string();
        let c = self.admin().get().await?;
        let over = c
            .query(
                &format!(
                    "SELECT r.token, r.id FROM {s}.resources r JOIN pg_database d ON d.datname = $1 || r.token \
                     WHERE r.status = 'active' AND pg_database_size(d.oid) > r.storage_mb::bigint * 1048576"
                ),
                &[&DB_PREFIX],
            )
            .await?;
        drop(c);
        let mut stopped = 0;
        for r in over {
            let (token, id): (String, String) = (r.get(0), r.get(1));
            // Stopped before it is marked: a crash in between leaves it `active` and over its limit,
            // so the next check stops it again; the other order could leave it marked but open.
            if let Err(e) = admin::stop(self.admin(), &token).await {
                tracing::warn!(error = %e, "stopping a database over its storage limit failed; retrying next round");
                continue;
            }
            let c = self.admin().get().await?;
            c.execute(
                &format!("UPDATE {s}.resources SET status = $2 WHERE token = $1 AND status = 'active'"),
                &[&token, &SUSPENDED],
            )
            .await?;
            tracing::info!(resource = %id, "database over its storage limit stopped");
            stopped += 1;
        }
        Ok(stopped)
    }

    pub(crate) async fn storage_check_loop(self) {
        let mut stop = self.stop_signal();
        loop {
            if let Err(e) = self.storage_check_once().await {
                tracing::warn!(error = %e, "storage check failed");
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = tokio::time::sleep(self.config().storage_check_interval) => {}
            }
        }
    }
}
