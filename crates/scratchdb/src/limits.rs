//! What one resource may take from the server besides connections: temporary files and storage.
//!
//! Temporary files are capped per role with `temp_file_limit` (superuser-only, so a role cannot lift
//! it). Storage is checked by [`crate::storage_check`]. These are the rules both go by; they
//! depend on nothing else of the server's.

/// The registry status of a stopped database. Hosted instanode's statuses are `active`, `paused`,
/// `suspended`, `expired`, `deleted` and `error`; `paused` is the owner's own, undone by `/resume`,
/// while `suspended` is the provider's doing, which this is.
pub(crate) const SUSPENDED: &str = "suspended";

/// The smallest temporary-file budget a role gets. A sort or hash over all of a full 10 MB database
/// spills about twice its size (tuple headers and sort bookkeeping), so the smallest tier's own
/// limit would fail ordinary queries over ordinary data.
pub(crate) const TEMP_FILE_FLOOR_MB: i32 = 32;

/// A role's `temp_file_limit`: its storage limit, but never below the floor. It is per session, so
/// a resource can hold up to its connection limit times this in temporary files at once.
pub(crate) fn temp_file_mb(storage_mb: i32) -> i32 {
    storage_mb.max(TEMP_FILE_FLOOR_MB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_budget_is_the_storage_limit_with_a_floor() {
        assert_eq!(temp_file_mb(10), TEMP_FILE_FLOOR_MB);
        assert_eq!(temp_file_mb(10240), 10240);
    }
}
