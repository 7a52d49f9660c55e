//! Running a file helper inside a sandbox's jail, as the requesting user.
//!
//! What a helper prints is the tenant's to choose (a path can name `/dev/zero`, a FIFO its own
//! code feeds, a directory of a million entries), and sandboxd, which every sandbox shares, must
//! not hold it. So a helper's answer is read up to a bound and refused past it; a file's content
//! is never an answer but a stream ([`spawn`], and `files.rs`).

use axum::body::Bytes;
use mayfly_core::wire::e2b::RpcError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::jail::JailUser;
use crate::sandbox::Sandbox;

/// Exit codes the helpers use to say why they refused.
pub(super) const NOT_FOUND: i32 = 4;
pub(super) const NOT_DIR: i32 = 5;
pub(super) const IS_DIR: i32 = 6;
pub(super) const EXISTS: i32 = 7;
pub(super) const NO_SPACE: i32 = 8;
pub(super) const LOOP: i32 = 9;

/// The most a helper's answer may be (a listing, an entry), and its error message.
const MAX_ANSWER: usize = 32 << 20;
const MAX_ERROR: usize = 64 << 10;

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
    run(sb, user, script_argv(script, args), input).await
}

/// The argv of a `/bin/sh` script with positional arguments.
pub(super) fn script_argv(script: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned(), "sh".to_owned()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    argv
}

/// Any program of the jail, with `input` on its stdin.
pub(super) async fn run(
    sb: &Sandbox,
    user: JailUser,
    argv: Vec<String>,
    input: Option<Bytes>,
) -> Result<Helper, RpcError> {
    let mut child = spawn(sb, user, argv, input.is_some()).await?;
    if let (Some(data), Some(mut pipe)) = (input, child.stdin.take()) {
        // A helper that fails early closes its stdin; its exit code tells why.
        tokio::spawn(async move {
            let _ = pipe.write_all(&data).await;
        });
    }
    finish(child).await
}

/// Any program of the jail, with what `source` reads streamed to its stdin while it runs; also
/// how many bytes went in, or why feeding it stopped. A helper that ends early (and so stops
/// reading) is reported by its exit code.
pub(super) async fn run_fed(
    sb: &Sandbox,
    user: JailUser,
    argv: Vec<String>,
    mut source: impl AsyncRead + Unpin,
) -> Result<(Helper, std::io::Result<u64>), RpcError> {
    let mut child = spawn(sb, user, argv, true).await?;
    let mut stdin = child.stdin.take().ok_or_else(|| RpcError::new("internal", "the helper has no stdin"))?;
    let feed = async move {
        let fed = tokio::io::copy(&mut source, &mut stdin).await;
        // Closing stdin is the end of the file for the helper.
        drop(stdin);
        fed
    };
    let (fed, done) = tokio::join!(feed, finish(child));
    Ok((done?, fed))
}

/// Starts a program of the jail with stdout and stderr piped (stdin too when `stdin`); it is
/// killed if dropped.
pub(super) async fn spawn(sb: &Sandbox, user: JailUser, argv: Vec<String>, stdin: bool) -> Result<Child, RpcError> {
    if argv.iter().any(|arg| arg.contains('\0')) {
        return Err(RpcError::new("invalid_argument", "a path may not contain a NUL byte"));
    }
    let mut cmd = sb.helper(user, &argv).await.map_err(|e| RpcError::new("internal", e.to_string()))?;
    cmd.stdin(if stdin { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| RpcError::new("internal", e.to_string()))
}

/// Reads a helper's answer and error, each up to its bound, and waits for it. Past a bound the
/// helper is killed (by the drop) and the call refused.
pub(super) async fn finish(mut child: Child) -> Result<Helper, RpcError> {
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (stdout, stderr) = tokio::join!(read_bounded(stdout, MAX_ANSWER), read_bounded(stderr, MAX_ERROR));
    let internal = |e: std::io::Error| RpcError::new("internal", e.to_string());
    let Some(stdout) = stdout.map_err(internal)? else {
        return Err(RpcError::new(
            "resource_exhausted",
            format!("the answer is larger than {} MiB: ask for less at once", MAX_ANSWER >> 20),
        ));
    };
    let stderr = stderr.map_err(internal)?.unwrap_or_else(|| b"(error message too long)".to_vec());
    let status = child.wait().await.map_err(internal)?;
    Ok(Helper { code: status.code().unwrap_or(-1), stdout, stderr: String::from_utf8_lossy(&stderr).trim().to_owned() })
}

/// All of `pipe` if it is at most `bound` bytes, `None` if it is more (then it is read no further).
pub(super) async fn read_bounded(
    pipe: Option<impl AsyncRead + Unpin>,
    bound: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(pipe) = pipe else { return Ok(Some(Vec::new())) };
    let mut out = Vec::new();
    pipe.take(bound as u64 + 1).read_to_end(&mut out).await?;
    Ok((out.len() <= bound).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_past_its_bound_is_refused_without_being_read_to_its_end() {
        assert_eq!(read_bounded(Some(&b"short"[..]), 5).await.unwrap(), Some(b"short".to_vec()));
        assert_eq!(read_bounded(Some(&b"longer"[..]), 5).await.unwrap(), None);
        // A pipe that never ends, like `/dev/zero`'s.
        assert_eq!(read_bounded(Some(tokio::io::repeat(0)), 1 << 20).await.unwrap(), None);
        assert_eq!(read_bounded(None::<&[u8]>, 5).await.unwrap(), Some(Vec::new()));
    }
}
