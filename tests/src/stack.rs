//! What the two test stacks share: how a test asks for one. [`crate::InProcessStack`] runs
//! Postgres, scratchdb and sandboxd in the test's own process; [`crate::SeparateProcessStack`]
//! runs them as child processes a test can kill. Both put `wrangler dev` ([`crate::WranglerDev`])
//! in front of them.

/// How to boot a test stack. The CLI's `mayfly_cli::stack::StackOptions` is the options of the
/// providers alone, which an in-process stack is built from.
#[derive(Debug, Clone, Default)]
pub struct TestStackOptions {
    /// Ready databases scratchdb keeps to hand out.
    pub pool: usize,
    /// Worker variables besides the stack's own (a limit, say); a test's value of a variable
    /// replaces the stack's.
    pub vars: Vec<(String, String)>,
    /// Which build of the provider binaries a separate-process stack runs. An in-process stack's
    /// providers are part of the test binary, so it has no say there.
    pub profile: Profile,
    /// What the worker serves besides the API, instead of the built web app.
    pub assets: Option<std::path::PathBuf>,
    /// Each owned database's storage limit, in MB, checked every 200 ms (an in-process stack's
    /// scratchdb only); scratchdb's own by default.
    pub database_storage_mb: Option<i32>,
    /// scratchdb answers as hosted instanode does (`--like-hosted`): without its fork and freeze
    /// extensions (an in-process stack's scratchdb only).
    pub like_hosted: bool,
}

impl TestStackOptions {
    /// These options with a warm pool of `pool` databases.
    pub fn pool(mut self, pool: usize) -> TestStackOptions {
        self.pool = pool;
        self
    }

    /// These options with the worker variable `name` set to `value`.
    pub fn var(mut self, name: &str, value: &str) -> TestStackOptions {
        self.vars.push((name.to_owned(), value.to_owned()));
        self
    }

    /// These options with every owned database limited to `mb` of storage, checked often.
    pub fn database_storage_mb(mut self, mb: i32) -> TestStackOptions {
        self.database_storage_mb = Some(mb);
        self
    }

    /// These options with a scratchdb that answers as hosted instanode does.
    pub fn like_hosted(mut self) -> TestStackOptions {
        self.like_hosted = true;
        self
    }

    /// These options with the worker serving `dir` as its assets.
    pub fn assets(mut self, dir: &std::path::Path) -> TestStackOptions {
        self.assets = Some(dir.to_path_buf());
        self
    }

    pub fn profile(mut self, profile: Profile) -> TestStackOptions {
        self.profile = profile;
        self
    }

    /// The worker's variables: the stack's own, each replaced by the test's value when it has one,
    /// then the test's others.
    pub(crate) fn worker_vars(&self, stack_vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> =
            stack_vars.into_iter().filter(|(name, _)| !self.vars.iter().any(|(extra, _)| extra == name)).collect();
        vars.extend(self.vars.iter().cloned());
        vars
    }
}

/// Which build of the provider binaries to run: `debug`, or `native` (the workspace's optimised
/// native profile; `release` is the wasm one) under `target/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    #[default]
    Debug,
    Native,
}

impl Profile {
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Native => "native",
        }
    }
}
