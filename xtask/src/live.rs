//! `cargo xtask test --live`: `mayfly doctor`, then `mayfly selftest` (the seed turn, a
//! cancelled turn and a turn killed mid-run, then nothing left at either provider) against the
//! real E2B and instanode named by the environment.
//!
//! Without both keys it runs nothing and says so, and exits with a status of its own (2), so a
//! script can never take a live run that did not happen for one that passed.

use std::path::Path;

use crate::process::run_checked;
use crate::toolchain::Toolchain;

/// The variables a live run needs; a key alone is not enough for instanode, whose anonymous tier
/// would give turns databases mayfly cannot delete.
const KEYS: [&str; 2] = ["E2B_API_KEY", "INSTANODE_TOKEN"];

/// The exit status of a live run that did not run.
pub(crate) const NOT_RUN: i32 = 2;

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let missing = missing_keys(|name| std::env::var(name).ok());
    if !missing.is_empty() {
        println!(
            "live: NOT RUN — {} not set. Nothing was tested against the real E2B and instanode; \
             set both (see README, \"Real providers\") and run `cargo xtask test --live` again.",
            missing.join(" and ")
        );
        std::process::exit(NOT_RUN);
    }
    run_checked(Toolchain::native_cargo().args(["build", "-p", "mayfly"]))?;
    let mayfly = root.join("target/debug/mayfly");
    eprintln!("\n==== mayfly doctor");
    run_checked(std::process::Command::new(&mayfly).arg("doctor"))?;
    eprintln!("\n==== mayfly selftest");
    run_checked(std::process::Command::new(&mayfly).arg("selftest"))?;
    println!("live: passed against the providers named above");
    Ok(())
}

/// The keys `var` does not have, or has empty.
fn missing_keys(var: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    KEYS.into_iter().filter(|name| var(name).is_none_or(|value| value.trim().is_empty())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_run_needs_both_keys_and_names_each_missing_one() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(missing_keys(env(&[])), ["E2B_API_KEY", "INSTANODE_TOKEN"]);
        assert_eq!(missing_keys(env(&[("E2B_API_KEY", "e2b_x"), ("INSTANODE_TOKEN", " ")])), ["INSTANODE_TOKEN"]);
        assert!(missing_keys(env(&[("E2B_API_KEY", "e2b_x"), ("INSTANODE_TOKEN", "ink_y")])).is_empty());
    }
}
