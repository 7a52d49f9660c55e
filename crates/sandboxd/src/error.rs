//! The failures of making and running sandboxes, in a room of their own: the jail, the network
//! and the registry all report them, and none of them should import another to name one.

/// Failures of the sandbox layer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    #[error("jail setup failed: {0}")]
    Jail(String),
    #[error("failed to start process: {0}")]
    Spawn(String),
    /// What the caller asked for cannot be done as asked (a NUL in an environment variable, say).
    #[error("{0}")]
    Invalid(String),
}
