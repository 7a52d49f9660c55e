//! `mayfly`: run a turn from the terminal (`run`), run the local stack (`stack`), sweep leaks
//! (`reap`), check the providers before a first turn (`doctor`) and prove a whole turn's life
//! against them (`selftest`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use mayfly_cli::providers::{self, EnvProviders, NativeProviders};
use mayfly_cli::run::{self, RunArgs};
use mayfly_cli::stack::{self, LocalStack, StackOptions};
use mayfly_core::providers::Clock;
use mayfly_core::{Language, TemplateMap, Verdict};

#[derive(Debug, Parser)]
#[command(name = "mayfly", version, about = "A hermetic runtime for every agent turn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    templates: TemplateArgs,
}

/// The template each language's turns run in (default: E2B's `base` against E2B, `mayfly`
/// against the local stack).
#[derive(Debug, Default, clap::Args)]
struct TemplateArgs {
    /// The sandbox template of Python turns.
    #[arg(long, global = true, env = "E2B_TEMPLATE_PYTHON", value_name = "TEMPLATE")]
    template_python: Option<String>,
    /// The sandbox template of bash turns.
    #[arg(long, global = true, env = "E2B_TEMPLATE_BASH", value_name = "TEMPLATE")]
    template_bash: Option<String>,
    /// The sandbox template of Node turns.
    #[arg(long, global = true, env = "E2B_TEMPLATE_NODE", value_name = "TEMPLATE")]
    template_node: Option<String>,
}

impl TemplateArgs {
    /// The map for `env`'s providers with these flags applied.
    fn resolve(&self, env: &EnvProviders) -> anyhow::Result<TemplateMap> {
        providers::templates(env, |variable| {
            let flag = match variable {
                "E2B_TEMPLATE_PYTHON" => &self.template_python,
                "E2B_TEMPLATE_BASH" => &self.template_bash,
                "E2B_TEMPLATE_NODE" => &self.template_node,
                _ => &None,
            };
            flag.clone()
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local stack (Postgres, scratchdb, sandboxd) until Ctrl-C or SIGTERM.
    Stack {
        /// Keep Postgres data here between runs (default: a temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Ready databases kept in scratchdb's warm pool.
        #[arg(long, default_value_t = 2)]
        pool: usize,
    },
    /// Run FILE as one turn: a fresh sandbox and database, output streamed, both reaped.
    Run {
        file: PathBuf,
        /// The code's language (default: from the file's extension).
        #[arg(long, value_enum)]
        language: Option<LanguageArg>,
        /// Run without a scratch database.
        #[arg(long)]
        no_db: bool,
        /// Keep the database after the turn and print how to claim it.
        #[arg(long, conflicts_with = "no_db")]
        keep_db: bool,
        /// Keep the database, frozen, for later runs to fork with `--from`: for this long (`15m`,
        /// `2h`, at most `24h`) past the run's timeout, when `mayfly reap` reaps it.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with_all = ["no_db", "keep_db"])]
        checkpoint: Option<Duration>,
        /// Start the database as a copy of this earlier turn's checkpoint (the turn id `mayfly
        /// run` printed; needs the same running `mayfly stack` or providers).
        #[arg(long, value_name = "TURN", conflicts_with = "no_db")]
        from: Option<String>,
        /// Run the SQL in this file against the database before the code, in one transaction.
        #[arg(long, value_name = "FILE", conflicts_with = "no_db")]
        seed_sql: Option<PathBuf>,
        /// Seconds the code may run (1-540, default 30).
        #[arg(long)]
        timeout: Option<u32>,
    },
    /// Check the configured providers before a first turn: E2B takes the key and has each
    /// template, instanode answers and takes the token as an account's. Exits 1 if a check fails.
    Doctor,
    /// Three real turns against the configured providers (the seed turn, one cancelled, one whose
    /// `mayfly run` is killed mid-run), then a check that neither provider lists anything of them.
    Selftest,
    /// Sweep the providers once: reap mayfly resources past their deadline.
    Reap {
        /// Minutes past its deadline a resource may live before it is reaped.
        #[arg(long, default_value_t = 1)]
        grace_minutes: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LanguageArg {
    Python,
    Bash,
    Node,
}

impl From<LanguageArg> for Language {
    fn from(arg: LanguageArg) -> Language {
        match arg {
            LanguageArg::Python => Language::Python,
            LanguageArg::Bash => Language::Bash,
            LanguageArg::Node => Language::Node,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Stack { data_dir, pool } => {
            runtime.block_on(stack_command(StackOptions { data_dir, pool, ..StackOptions::default() }))
        }
        Command::Run { file, language, no_db, keep_db, checkpoint, from, seed_sql, timeout } => {
            let args = RunArgs {
                file,
                language: language.map(Into::into),
                database: !no_db,
                keep_database: keep_db,
                timeout_s: timeout,
                checkpoint,
                from,
                seed_sql,
            };
            let status = runtime.block_on(run_command(args, &cli.templates))?;
            // Dropping the runtime first lets every server task and child process finish cleanly.
            drop(runtime);
            std::process::exit(status);
        }
        Command::Doctor => {
            let passed = runtime.block_on(doctor_command(&cli.templates))?;
            drop(runtime);
            std::process::exit(if passed { 0 } else { 1 });
        }
        Command::Selftest => runtime.block_on(selftest_command(&cli.templates)),
        Command::Reap { grace_minutes } => runtime.block_on(reap_command(Duration::from_secs(grace_minutes * 60))),
    }
}

async fn stack_command(options: StackOptions) -> anyhow::Result<()> {
    let stack = LocalStack::start(options).await?;
    let file = stack::write_endpoints(&stack.endpoints)?;
    println!("mayfly stack is up:");
    println!("  sandboxd (E2B protocol):       {}", stack.endpoints.sandboxd_url);
    println!("  scratchdb (instanode protocol): {}", stack.endpoints.scratchdb_url);
    println!("  endpoints and keys:            {} (owner-only)", file.display());
    println!("For an E2B SDK or another client (the keys are in that file, never printed):");
    println!("  E2B_API_URL={0} E2B_SANDBOX_URL={0} E2B_DOMAIN=localhost", stack.endpoints.sandboxd_url);
    println!("  INSTANODE_URL={}", stack.endpoints.scratchdb_url);
    println!("`mayfly run FILE` uses it. Ctrl-C stops everything.");
    wait_for_stop_signal().await?;
    eprintln!("mayfly stack: stopping (sandboxes killed, databases dropped, Postgres stopped)…");
    stack::remove_endpoints(&stack.endpoints);
    stack.shutdown().await;
    Ok(())
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {},
    }
    Ok(())
}

async fn run_command(args: RunArgs, templates: &TemplateArgs) -> anyhow::Result<i32> {
    let env = EnvProviders::from_env();
    let spec = run::spec_for(&args, &templates.resolve(&env)?)?;
    let running = if env.is_complete() { None } else { stack::read_endpoints() };
    let own_stack = if env.is_complete() || running.is_some() {
        None
    } else {
        eprintln!("mayfly: no `mayfly stack` running; starting the local stack for this turn");
        Some(LocalStack::start(StackOptions::default()).await?)
    };
    let local = running.as_ref().or(own_stack.as_ref().map(|s| &s.endpoints));
    let providers = providers::build(&env, local)?;
    let fork = match &spec.from {
        Some(parent) => Some(run::fork_source(&providers, parent).await?),
        None => None,
    };
    let report = run::run(spec, args.keep_database, fork, &providers).await;
    if let Some(stack) = own_stack {
        if args.keep_database || args.checkpoint.is_some() {
            eprintln!("mayfly: note: the local stack started for this turn stops now, and its database with it");
        }
        stack.shutdown().await;
    }
    Ok(run::exit_status(&report))
}

async fn doctor_command(templates: &TemplateArgs) -> anyhow::Result<bool> {
    let (providers, templates) = configured(templates, "nothing to check")?;
    println!(
        "mayfly doctor: E2B at {}, instanode at {} ({} mode); templates: {templates}",
        providers.sandboxes.config().api_url,
        providers.databases.config().base_url,
        if providers.databases.config().token.is_some() { "token" } else { "anonymous" },
    );
    let checks =
        mayfly_core::providers::doctor::check_providers(&providers.sandboxes, &providers.databases, &templates).await;
    for check in &checks {
        let verdict = match check.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        println!("  {verdict}  {}: {}", check.check, check.detail);
        if let Some(fix) = &check.fix {
            println!("        fix: {fix}");
        }
    }
    let passed = mayfly_core::providers::doctor::all_passed(&checks);
    println!(
        "{}",
        if passed { "ready for a first turn" } else { "not ready: fix what failed, then run `mayfly doctor` again" }
    );
    Ok(passed)
}

/// The providers the environment names, the running `mayfly stack` filling in the rest, and the
/// templates; `nothing` is what to say when there is neither.
fn configured(templates: &TemplateArgs, nothing: &str) -> anyhow::Result<(NativeProviders, TemplateMap)> {
    let env = EnvProviders::from_env();
    let running = if env.is_complete() { None } else { stack::read_endpoints() };
    if !env.is_complete() && running.is_none() {
        anyhow::bail!("{nothing}: set E2B_API_KEY and INSTANODE_TOKEN (or INSTANODE_URL), or run `mayfly stack`");
    }
    Ok((providers::build(&env, running.as_ref())?, templates.resolve(&env)?))
}

async fn selftest_command(templates: &TemplateArgs) -> anyhow::Result<()> {
    let (providers, templates) = configured(templates, "nothing to test")?;
    println!(
        "mayfly selftest: E2B at {}, instanode at {}; templates: {templates}",
        providers.sandboxes.config().api_url,
        providers.databases.config().base_url,
    );
    let exe = std::env::current_exe()?;
    match mayfly_cli::selftest::run(&exe, &providers, &templates).await {
        Ok(()) => {
            println!("selftest passed");
            Ok(())
        }
        Err(error) => anyhow::bail!("selftest FAILED: {error:#}"),
    }
}

async fn reap_command(grace: Duration) -> anyhow::Result<()> {
    let (providers, _) = configured(&TemplateArgs::default(), "nothing to sweep")?;
    let now = mayfly_cli::clock::SystemClock.now_ms();
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let report = mayfly_core::providers::sweep::sweep(&providers, now, grace_ms).await;
    println!(
        "swept: {} sandboxes seen, {} reaped; {} databases seen, {} reaped",
        report.sandboxes_seen, report.sandboxes_reaped, report.databases_seen, report.databases_reaped
    );
    for error in &report.errors {
        println!("  error: {error}");
    }
    if !report.errors.is_empty() {
        anyhow::bail!("the sweep met {} errors; run it again", report.errors.len());
    }
    Ok(())
}
