//! A background process in a process group of its own; dropping the guard stops the group.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
}

impl Service {
    pub fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Service> {
        use std::os::unix::process::CommandExt;
        let child =
            cmd.stdin(Stdio::null()).process_group(0).spawn().with_context(|| format!("cannot start {name}"))?;
        Ok(Service { name: name.to_owned(), child })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the service has exited already.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited: {status}", self.name);
        }
        Ok(())
    }

    /// Polls `url` until it answers 200, the service dies, or `timeout` passes.
    pub fn wait_for_http(&mut self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if matches!(agent.get(url).call(), Ok(resp) if resp.status() == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{}: {url} did not answer 200 within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the whole process group at once, as a crash would: no TERM, no chance to clean up.
    /// Returns once no process of the group runs: a child of the service's (workerd under
    /// wrangler) may outlive the service's own exit for a moment, holding its listening sockets,
    /// and a service started again on the same ports would find them taken.
    pub fn kill_hard(&mut self) {
        let pgid = self.child.id();
        let group = format!("-{pgid}");
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::procfs::group_runs(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the whole process group: TERM, a moment to exit, then KILL for whatever is left.
    pub fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill").args([sig, "--", &group]).stderr(Stdio::null()).status();
        };
        if self.child.try_wait().ok().flatten().is_none() {
            signal("-TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Children that outlive their parent (workerd under wrangler, say) keep the group alive.
        signal("-KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}
