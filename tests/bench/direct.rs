//! The direct-SDK baseline: the seed's flow as a user writes it without mayfly, with the official
//! `e2b` Python SDK and httpx (`direct_sdk.py`), against the stack's own sandboxd and scratchdb.
//! One Python process runs all its turns, as an agent's loop would, so the SDK's import and its
//! first connections are not in any sample.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use mayfly_e2e::{InProcessStack, Tools};

pub(crate) struct DirectSdk {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl DirectSdk {
    pub(crate) fn start(stack: &InProcessStack) -> anyhow::Result<DirectSdk> {
        let tools = Tools::of_workspace();
        let python = tools.tools_dir().join("venv/bin/python");
        anyhow::ensure!(python.exists(), "{} is missing: `cargo xtask setup` makes it", python.display());
        let endpoints = &stack.local().endpoints;
        let mut child = Command::new(python)
            .arg(tools.root.join("tests/bench/direct_sdk.py"))
            .env("E2B_API_URL", &endpoints.sandboxd_url)
            .env("E2B_SANDBOX_URL", &endpoints.sandboxd_url)
            .env("E2B_API_KEY", &endpoints.sandboxd_api_key)
            .env("E2B_DOMAIN", "localhost")
            .env_remove("E2B_DEBUG")
            .env("SCRATCHDB_URL", &endpoints.scratchdb_url)
            .env("SCRATCHDB_TOKEN", &endpoints.scratchdb_token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("the SDK's process has no pipes");
        };
        Ok(DirectSdk { child, stdin, stdout: BufReader::new(stdout) })
    }

    /// One turn: the start to its first stdout byte, in milliseconds.
    pub(crate) fn turn(&mut self) -> anyhow::Result<f64> {
        writeln!(self.stdin, "turn")?;
        self.stdin.flush()?;
        let mut line = String::new();
        anyhow::ensure!(self.stdout.read_line(&mut line)? > 0, "the SDK's process ended: {:?}", self.child.try_wait());
        let answer: serde_json::Value = serde_json::from_str(&line)?;
        match answer["first_stdout_ms"].as_f64() {
            Some(ms) => Ok(ms),
            None => anyhow::bail!("the SDK's turn failed: {}", answer["error"]),
        }
    }
}

impl Drop for DirectSdk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
