//! Running a file helper inside a sandbox's jail, as the requesting user.

use axum::body::Bytes;
use mayfly_core::e2b::RpcError;
use tokio::io::AsyncWriteExt;

use crate::jail::JailUser;
use crate::sandbox::Sandbox;

/// Exit codes the helpers use to say why they refused.
pub(super) const NOT_FOUND: i32 = 4;
pub(super) const NOT_DIR: i32 = 5;
pub(super) const IS_DIR: i32 = 6;
pub(super) const EXISTS: i32 = 7;
pub(super) const NO_SPACE: i32 = 8;
pub(super) const LOOP: i32 = 9;

/// Output of a helper run in the jail.
pub(super) struct Helper {
    pub(super) code: i32,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: String,
}

/// A `/bin/sh` script with positional arguments.
pub(super) async fn helper(
    sb: &Sandbox,
    user: JailUser,
    script: &str,
    args: &[&str],
    input: Option<Bytes>,
) -> Result<Helper, RpcError> {
    let mut argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned(), "sh".to_owned()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    run(sb, user, argv, input).await
}

/// Any program of the jail, with `input` on its stdin.
pub(super) async fn run(
    sb: &Sandbox,
    user: JailUser,
    argv: Vec<String>,
    input: Option<Bytes>,
) -> Result<Helper, RpcError> {
    let mut cmd = sb.helper(user, &argv).await.map_err(|e| RpcError::new("internal", e.to_string()))?;
    cmd.stdin(if input.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| RpcError::new("internal", e.to_string()))?;
    if let (Some(data), Some(mut pipe)) = (input, child.stdin.take()) {
        // A helper that fails early closes its stdin; its exit code tells why.
        tokio::spawn(async move {
            let _ = pipe.write_all(&data).await;
        });
    }
    let out = child.wait_with_output().await.map_err(|e| RpcError::new("internal", e.to_string()))?;
    Ok(Helper {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}
