//! Running commands in the foreground: echoed before they run, failing loudly.

use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Runs `cmd` with inherited output; fails unless it exits 0.
pub(crate) fn run_checked(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd.status().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; fails unless it exits 0.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed: {}", describe(cmd), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first line a tool prints about itself, or why it could not.
pub(crate) fn version_of(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(out) if out.status.success() => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_owned()
        }
        Ok(out) => format!("not working ({})", out.status),
        Err(_) => "not found".to_owned(),
    }
}

fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Tests counted across every `cargo test` run of a pipeline.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestCount {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

/// Runs a test command, passing its output through, and adds up its `test result:` lines.
pub(crate) fn run_tests(cmd: &mut Command, count: &mut TestCount) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    eprintln!("$ {}", describe(cmd));
    let mut child = cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot start {}", describe(cmd)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(result) = parse_test_result(&line) {
            count.passed += result.passed;
            count.failed += result.failed;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed: {status}", describe(cmd));
    }
    Ok(())
}

/// Reads `test result: ok. 23 passed; 0 failed; ...`, as libtest prints it natively and on wasm32.
fn parse_test_result(line: &str) -> Option<TestCount> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let number_before = |word: &str| -> Option<u64> {
        let at = rest.find(word)?;
        rest[..at].trim_end().rsplit([' ', '.']).next()?.parse().ok()
    };
    Some(TestCount { passed: number_before(" passed")?, failed: number_before(" failed")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_result_lines() {
        let ok = parse_test_result(
            "test result: ok. 23 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        );
        assert_eq!(ok, Some(TestCount { passed: 23, failed: 0 }));
        let failed = parse_test_result("test result: FAILED. 8 passed; 1 failed; 0 ignored; 0 measured");
        assert_eq!(failed, Some(TestCount { passed: 8, failed: 1 }));
        assert_eq!(parse_test_result("running 3 tests"), None);
    }
}
