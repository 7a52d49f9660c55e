//! Where the machine's CPU time goes while turns run: all of it, and each program of the stack's
//! part (from `/proc`, `procfs`). On a machine of two cores a burst of turns is bound by this: the
//! last turn cannot be done before the cores have done every turn's work.

use crate::procfs;

/// The programs a turn's work is split among. `wrangler dev` runs a Node.js process beside workerd.
/// The bench process runs sandboxd, scratchdb and the client; the jails are its children, counted
/// once reaped. Postgres's backends that have exited are counted by their postmaster in the same
/// way. What is left ("other") is mostly the kernel's own threads.
const GROUPS: [&str; 5] =
    ["workerd", "wrangler's Node.js", "Postgres", "sandboxd, scratchdb and the client", "the jails' processes"];

/// The CPU time used so far, in ms: the machine's, then each of [`GROUPS`]'.
#[derive(Debug, Clone, Copy)]
pub struct CpuTotals {
    machine: f64,
    groups: [f64; GROUPS.len()],
}

impl CpuTotals {
    pub fn now() -> Option<CpuTotals> {
        let mut groups = [0.0; GROUPS.len()];
        (groups[3], groups[4]) = procfs::cpu_ms(std::process::id())?;
        for pid in procfs::pids() {
            let group = match procfs::comm(pid).as_str() {
                "workerd" => 0,
                "node" => 1,
                "postgres" => 2,
                _ => continue,
            };
            if let Some((own, children)) = procfs::cpu_ms(pid) {
                groups[group] += own + children;
            }
        }
        Some(CpuTotals { machine: procfs::machine_busy_ms()?, groups })
    }

    /// What was used from `before` to `self`, per turn of `turns`: the machine's, and each
    /// group's, with what none of them used as "other".
    pub fn per_turn_since(&self, before: &CpuTotals, turns: usize) -> (f64, Vec<(String, f64)>) {
        let turns = turns.max(1) as f64;
        let total = (self.machine - before.machine) / turns;
        let mut split: Vec<(String, f64)> = GROUPS
            .iter()
            .zip(self.groups.iter().zip(&before.groups))
            .map(|(name, (after, before))| ((*name).to_owned(), (after - before) / turns))
            .collect();
        let named: f64 = split.iter().map(|(_, ms)| ms).sum();
        split.push(("other".to_owned(), (total - named).max(0.0)));
        (total, split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_adds_up_to_the_machines_time() {
        let before = CpuTotals { machine: 1000.0, groups: [100.0, 100.0, 100.0, 100.0, 100.0] };
        let after = CpuTotals { machine: 3000.0, groups: [700.0, 100.0, 300.0, 500.0, 300.0] };
        let (total, split) = after.per_turn_since(&before, 2);
        assert_eq!(total, 1000.0);
        let ms: Vec<f64> = split.iter().map(|(_, ms)| *ms).collect();
        assert_eq!(ms, [300.0, 0.0, 100.0, 200.0, 100.0, 300.0]);
        assert!(CpuTotals::now().is_some(), "this machine's /proc is readable");
    }
}
