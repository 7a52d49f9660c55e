//! `mayfly stack` as a user starts it in another terminal, for the tests that run `mayfly` as a
//! user does.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `mayfly stack`, stopped with SIGKILL if a test fails before it stops it itself (its
/// Postgres follows it: `crates/scratchdb/src/embedded.rs`'s watchdog).
pub(crate) struct Stack(Child);

impl Drop for Stack {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `mayfly stack` with its state in `state`, once its endpoints file says it is up.
pub(crate) fn start_stack(state: &Path) -> Stack {
    let mut stack = Stack(
        Command::new(env!("CARGO_BIN_EXE_mayfly"))
            .arg("stack")
            .env("MAYFLY_STATE_DIR", state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoints = state.join("stack.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !endpoints.exists() {
        assert!(stack.0.try_wait().unwrap().is_none(), "mayfly stack exited early");
        assert!(Instant::now() < deadline, "mayfly stack did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    stack
}

/// Stops `stack` as Ctrl-C in its terminal would (SIGTERM), and checks it stopped cleanly.
pub(crate) fn stop_stack(mut stack: Stack, state: &Path) {
    let status = Command::new("kill").args(["-TERM", &stack.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = stack.0.wait().unwrap();
    assert!(exit.success(), "mayfly stack did not stop cleanly: {exit}");
    assert!(!state.join("stack.json").exists(), "the endpoints file outlived the stack");
}

/// `mayfly ARGS` against the stack in `state`: its exit status, stdout and stderr.
pub(crate) fn mayfly(state: &Path, args: &[&str]) -> (bool, String, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_mayfly")).args(args).env("MAYFLY_STATE_DIR", state).output().unwrap();
    (run.status.success(), String::from_utf8_lossy(&run.stdout).into(), String::from_utf8_lossy(&run.stderr).into())
}
