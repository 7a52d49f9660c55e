//! Freezes, scratchdb's own extension (docs/protocols/instanode.md §12): the owner closes a
//! database for good but keeps it, as mayfly keeps a checkpoint, to fork from later. Afterwards
//! nobody logs in with its role and none of its sessions is left (`crate::admin::stop`, the lock-out
//! the storage check uses too), and it hands out no credential: its `credentials` and
//! `rotate-credentials` answer `409 frozen`. It stays an ordinary resource otherwise: listed, read,
//! forked (the copy gets a role of its own that logs in) and deleted.

use crate::admin;
use crate::service::{Service, ServiceError};

impl Service {
    /// Freezes the owner's database `token`; freezing a frozen one does the lock-out again.
    pub(crate) async fn freeze(&self, owner: &str, token: &str) -> Result<(), ServiceError> {
        // Not while a fork copies it (ending sessions in it is no business of a copy's) or a delete
        // drops it (the role would vanish under the lock-out).
        let _source = self.source_lock(token).await;
        let row = self.get(owner, token).await?;
        // Its create gives the role its login last, which would undo the lock-out.
        if row.status == "provisioning" {
            return Err(ServiceError::Provisioning);
        }
        // Marked first: from here on no credential is handed out, even if the lock-out below fails
        // (a `503`), and the owner's retry runs it again.
        let c = self.admin().get().await?;
        c.execute(
            &format!("UPDATE {}.resources SET frozen_at = coalesce(frozen_at, now()) WHERE token = $1", self.s()),
            &[&token],
        )
        .await?;
        drop(c);
        admin::stop(self.admin(), token).await?;
        Ok(())
    }
}
