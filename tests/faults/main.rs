//! Fault injection: many turns, each perhaps hit by one fault at a random point — a SIGKILL of
//! `wrangler dev`, sandboxd or scratchdb (restarted afterwards), or a provider call that answers
//! 503, is held past the client's timeout, or is cut mid-answer or mid-stream by the proxy in front
//! of each provider. After every deadline plus the sweep's grace, nothing may be left anywhere and
//! every turn must say truthfully how it ended.
//!
//! The plan comes from a seed, printed first: `MAYFLY_FAULT_SEED=<seed>` runs the same plan again.
//! `MAYFLY_FAULT_TURNS` changes the number of turns (50 by default).

mod checkpoints;
mod create;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mayfly_core::{EventBody, Outcome, ReapState, ReaperStatus, TurnDetail, TurnProgress, TurnState};
use mayfly_e2e::fault_proxy::{Fault, FaultProxy, Fired, Rule};
use mayfly_e2e::leftovers::Leftovers;
use mayfly_e2e::separate_process_stack::SWEEP_GRACE;
use mayfly_e2e::{Profile, SeparateProcessStack, TestStackOptions};

/// Every turn's limit: short, so that a turn whose worker died is reaped by its alarm soon.
const TIMEOUT_S: u64 = 5;

/// A small seeded generator (SplitMix64): the plan must be the same for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Victim {
    Worker,
    Sandboxd,
    Scratchdb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Provider {
    Sandboxd,
    Scratchdb,
}

/// What happens to one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Injection {
    None,
    /// SIGKILL once the turn's event number `at_seq` has been seen (or it finished).
    Kill {
        victim: Victim,
        at_seq: u64,
    },
    /// A fault on the first matching provider request.
    Provider {
        provider: Provider,
        call: &'static str,
        method: &'static str,
        path: &'static str,
        fault: Fault,
    },
}

impl Injection {
    fn label(&self) -> String {
        match self {
            Injection::None => "none".into(),
            Injection::Kill { victim, at_seq } => format!("kill -9 {victim:?} at event {at_seq}"),
            Injection::Provider { provider, call, fault, .. } => format!("{} on {provider:?} {call}", fault.name()),
        }
    }

    fn kind(&self) -> String {
        match self {
            Injection::None => "none".into(),
            Injection::Kill { victim, .. } => format!("SIGKILL {victim:?}"),
            Injection::Provider { provider, fault, .. } => format!("{provider:?} {}", fault.name()),
        }
    }
}

/// The provider calls a fault can hit, per provider.
const CALLS: &[(Provider, &str, &str, &str)] = &[
    (Provider::Sandboxd, "create", "POST", "/sandboxes"),
    (Provider::Sandboxd, "upload", "POST", "/files"),
    (Provider::Sandboxd, "process stream", "POST", "/process.Process/Start"),
    (Provider::Sandboxd, "kill", "DELETE", "/sandboxes/"),
    (Provider::Scratchdb, "create", "POST", "/db/new"),
    (Provider::Scratchdb, "delete", "DELETE", "/api/v1/resources/"),
];

/// The turn's code, and what it prints when nothing goes wrong. Some turns sleep a little, so that a
/// kill can land while the code runs.
fn code(rng: &mut Rng) -> (String, String) {
    let query = "import os, psycopg\nwith psycopg.connect(os.environ['DATABASE_URL']) as c:\n    print(c.execute('select 40 + 2').fetchone()[0], flush=True)\n";
    if rng.below(2) == 0 {
        (query.to_owned(), "42\n".to_owned())
    } else {
        (format!("import time\nprint('up', flush=True)\ntime.sleep(1)\n{query}"), "up\n42\n".to_owned())
    }
}

/// The whole plan: every kind of fault at least once, spread over the turns at random, the rest of
/// the turns clean (they check that a fault does not spill over into the next turn).
fn plan(seed: u64, turns: usize) -> Vec<(Injection, String, String)> {
    let mut rng = Rng(seed);
    let mut injections = Vec::new();
    for victim in [Victim::Worker, Victim::Sandboxd, Victim::Scratchdb] {
        for _ in 0..4 {
            injections.push(Injection::Kill { victim, at_seq: 1 + rng.below(9) });
        }
    }
    for &(provider, call, method, path) in CALLS {
        for fault in Fault::ALL {
            // An upload is retried whatever went wrong, so a held one only costs time.
            if call == "upload" && fault == Fault::Hang {
                continue;
            }
            injections.push(Injection::Provider { provider, call, method, path, fault });
        }
    }
    // Fewer turns than faults (a quick local run) keeps a random subset of them.
    rng.shuffle(&mut injections);
    injections.truncate(turns);
    injections.resize(turns, Injection::None);
    rng.shuffle(&mut injections);
    injections
        .into_iter()
        .map(|injection| {
            let (code, expected) = code(&mut rng);
            (injection, code, expected)
        })
        .collect()
}

/// What happened to one turn, for the checks at the end.
#[derive(Debug)]
struct Record {
    index: usize,
    turn_id: String,
    injection: Injection,
    expected: String,
    /// The faults the proxies fired while this turn ran.
    fired: Vec<Fired>,
    /// Whether the kill of this turn's plan happened while the turn was still going.
    killed_mid_turn: bool,
    created: Instant,
}

impl Record {
    fn faulted(&self) -> bool {
        !self.fired.is_empty() || self.killed_mid_turn
    }
}

fn seed() -> u64 {
    match std::env::var("MAYFLY_FAULT_SEED") {
        Ok(seed) => seed.trim().parse().expect("MAYFLY_FAULT_SEED is a number"),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos() as u64,
    }
}

fn proxy(stack: &SeparateProcessStack, provider: Provider) -> &FaultProxy {
    match provider {
        Provider::Sandboxd => &stack.sandboxd_proxy,
        Provider::Scratchdb => &stack.scratchdb_proxy,
    }
}

fn kill(stack: &SeparateProcessStack, victim: Victim) {
    let result = match victim {
        Victim::Worker => stack.crash_worker(),
        Victim::Sandboxd => stack.crash_sandboxd(),
        Victim::Scratchdb => stack.crash_scratchdb(),
    };
    result.unwrap_or_else(|err| panic!("{victim:?} did not come back after SIGKILL: {err:#}"));
}

/// Polls the turn until it is finished, or fails at the deadline.
fn wait_finished(stack: &SeparateProcessStack, turn_id: &str, patience: Duration) -> TurnDetail {
    let deadline = Instant::now() + patience;
    let api = stack.client();
    loop {
        // The worker may be starting again; an unanswered poll is retried.
        if let Ok(detail) = api.try_detail(turn_id) {
            if detail.state == TurnState::Finished {
                return detail;
            }
            assert!(Instant::now() < deadline, "turn {turn_id} is not finished: {detail:?}");
        }
        assert!(Instant::now() < deadline, "turn {turn_id} cannot be read");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_one(stack: &SeparateProcessStack, index: usize, injection: &Injection, code: &str, expected: &str) -> Record {
    let fired_before = stack.sandboxd_proxy.fired().len() + stack.scratchdb_proxy.fired().len();
    if let Injection::Provider { provider, method, path, fault, .. } = injection {
        let mut rule = Rule::new(method, path, *fault);
        if *path == "/sandboxes" {
            // The create is `POST /sandboxes`; `/sandboxes/<id>/timeout` is another call.
            rule.except = vec!["/sandboxes/".into()];
        }
        proxy(stack, *provider).arm(rule);
    }
    let body = serde_json::json!({ "code": code, "language": "python", "timeout_s": TIMEOUT_S }).to_string();
    let api = stack.client();
    let created = Instant::now();
    let turn = api.try_create_turn(&body).unwrap_or_else(|err| panic!("turn {index}: {err:#}"));
    let mut killed_mid_turn = false;
    match injection {
        Injection::Kill { victim, at_seq } => {
            // A stream the kill broke ends the read like a closed one: the turn is polled below.
            let _ = api.read_events(&turn.turn_id, 0, |event| {
                if event.seq >= *at_seq && !event.body.is_terminal() && !killed_mid_turn {
                    killed_mid_turn = true;
                    kill(stack, *victim);
                }
            });
            // A turn that ended before its kill's event gets the kill right after: it hits the
            // time between turns, which must be harmless too.
            if !killed_mid_turn {
                kill(stack, *victim);
            }
        }
        _ => {
            let _ = api.read_events(&turn.turn_id, 0, |_| {});
        }
    }
    // A turn whose worker died is finished by its alarm after the deadline and its slack.
    wait_finished(stack, &turn.turn_id, Duration::from_secs(TIMEOUT_S + 60));
    stack.sandboxd_proxy.disarm();
    stack.scratchdb_proxy.disarm();
    let mut fired: Vec<Fired> = stack.sandboxd_proxy.fired();
    fired.extend(stack.scratchdb_proxy.fired());
    fired.sort_by_key(|f| f.at);
    let fired = fired.split_off(fired_before);
    Record {
        index,
        turn_id: turn.turn_id,
        injection: injection.clone(),
        expected: expected.to_owned(),
        fired,
        killed_mid_turn,
        created,
    }
}

/// The checks of one turn once everything is settled: what is wrong goes into `problems`.
fn check_turn(
    stack: &SeparateProcessStack,
    record: &Record,
    errors: &mut BTreeMap<String, usize>,
    problems: &mut Vec<String>,
) -> Option<Outcome> {
    let what = format!("turn {} ({}, {})", record.index, record.turn_id, record.injection.label());
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(format!("{what}: {problem}"));
        }
    };
    let api = stack.client();
    let detail = match api.try_detail(&record.turn_id) {
        Ok(detail) => detail,
        Err(err) => {
            check(false, format!("cannot be read: {err:#}"));
            return None;
        }
    };
    check(detail.state == TurnState::Finished, format!("not finished: {detail:?}"));
    check(detail.outcome.is_some(), format!("no outcome: {detail:?}"));
    let outcome = detail.outcome?;
    for resource in &detail.resources {
        check(resource.reap == ReapState::Reaped, format!("a resource it held is not reaped: {resource:?}"));
    }
    let (events, _) = api.read_events(&record.turn_id, 0, |_| {});
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    check(seqs == (1..=events.len() as u64).collect::<Vec<_>>(), format!("the log has gaps: {seqs:?}"));
    // The log, folded as every viewer folds it, must tell what the object's detail tells.
    let logged = TurnProgress::of(&events);
    match events.last() {
        Some(last) if last.body.is_terminal() => check(
            (logged.outcome, &logged.error, logged.exit_code) == (Some(outcome), &detail.error, detail.exit_code),
            format!(
                "the log says {:?} {:?} exit {:?}, the detail {outcome:?} {:?} exit {:?}",
                logged.outcome, logged.error, logged.exit_code, detail.error, detail.exit_code
            ),
        ),
        last => check(false, format!("the log does not end with turn.finished but {last:?}")),
    }
    let stdout: String = mayfly_e2e::turns::stdout_of(&events);
    if outcome == Outcome::Succeeded {
        check(detail.exit_code == Some(0), format!("succeeded with exit code {:?}", detail.exit_code));
        check(stdout == record.expected, format!("succeeded but printed {stdout:?}, not {:?}", record.expected));
        check(detail.error.is_none(), format!("succeeded with an error: {:?}", detail.error));
    } else {
        check(record.faulted(), format!("nothing happened to it, yet it ended {outcome:?}: {:?}", detail.error));
        match detail.error.as_deref() {
            Some(error) => {
                check(is_clear(error, stack), format!("unclear error {error:?}"));
                *errors.entry(format!("{outcome:?}: {error}")).or_default() += 1;
            }
            None => check(false, format!("ended {outcome:?} without telling why")),
        }
    }
    for event in &events {
        if let EventBody::ReapFailed { error, .. } = &event.body {
            check(is_clear(error, stack), format!("unclear reap.failed error {error:?}"));
            *errors.entry(format!("reap.failed: {error}")).or_default() += 1;
        }
    }
    Some(outcome)
}

/// An error a user can read: a sentence of words, not a dump or a runtime's placeholder, and no
/// secret.
fn is_clear(error: &str, stack: &SeparateProcessStack) -> bool {
    let secrets = [stack.postgres_admin_url(), &stack.endpoints.scratchdb_token, &stack.endpoints.sandboxd_api_key];
    let words = error.split_whitespace().filter(|w| w.chars().any(char::is_alphabetic)).count();
    words >= 3
        && error.len() <= 1000
        && !error.trim_start().starts_with(['{', '['])
        && !secrets.iter().any(|secret| error.contains(secret))
        && !error.contains("postgres://")
        && !error.contains("postgresql://")
        && !error.contains("undefined")
        && !error.contains("[object")
}

#[test]
fn faults_at_random_points_leave_nothing_and_every_turn_says_how_it_ended() {
    let started = Instant::now();
    let seed = seed();
    let turns: usize = std::env::var("MAYFLY_FAULT_TURNS").map_or(50, |n| n.parse().expect("a number of turns"));
    eprintln!("fault seed {seed} ({turns} turns): MAYFLY_FAULT_SEED={seed} reproduces this plan");
    let plan = plan(seed, turns);
    let stack =
        SeparateProcessStack::start(TestStackOptions::default().profile(Profile::Debug)).expect("the stack starts");
    let api = stack.client();

    let mut records = Vec::new();
    for (index, (injection, code, expected)) in plan.iter().enumerate() {
        let record = run_one(&stack, index, injection, code, expected);
        eprintln!(
            "turn {index:>2} {} {:<45} fired: {:?} ({:.1}s)",
            record.turn_id,
            injection.label(),
            record.fired.iter().map(|f| format!("{} {} {}", f.fault.name(), f.method, f.path)).collect::<Vec<_>>(),
            record.created.elapsed().as_secs_f64()
        );
        records.push(record);
    }
    let turns_done = started.elapsed();

    // Past every deadline plus the sweep's grace, the sweep takes what no turn knew it had (a
    // resource whose create answer was lost); the providers' own timers agree.
    let last_created = records.iter().map(|r| r.created).max().expect("at least one turn");
    let sweep_due = last_created + Duration::from_secs(TIMEOUT_S + 1) + SWEEP_GRACE;
    while Instant::now() < sweep_due {
        std::thread::sleep(Duration::from_millis(500));
    }
    let swept_after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    api.trigger_sweep();
    let sweep_by = Instant::now() + Duration::from_secs(60);
    let sweep = loop {
        let (status, body) = api.try_call("GET", "/v1/reaper", None).expect("the reaper answers");
        assert_eq!(status, 200, "{body}");
        let reaper: ReaperStatus = serde_json::from_str(&body).expect("a ReaperStatus");
        if let Some(sweep) = reaper.last_sweep.filter(|s| s.at_unix_ms >= swept_after) {
            assert!(reaper.overdue.is_empty() && reaper.failed.is_empty(), "{body}");
            break sweep;
        }
        assert!(Instant::now() < sweep_by, "no sweep reported: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(sweep.errors.is_empty() && sweep.failed.is_empty(), "{sweep:?}");

    let mut errors = BTreeMap::new();
    let mut problems = Vec::new();
    let mut outcomes: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for record in &records {
        let outcome = check_turn(&stack, record, &mut errors, &mut problems);
        let outcome = outcome.map_or("not final".to_owned(), |o| format!("{o:?}"));
        *outcomes.entry(record.injection.kind()).or_default().entry(outcome).or_default() += 1;
    }
    let leftovers: Leftovers = stack.leftovers().expect("the providers can be asked");
    let (leaked_sandboxes, leaked_databases) = leftovers.counts();

    eprintln!("\nfault seed {seed}: {} turns in {:.0}s, then the sweep", records.len(), turns_done.as_secs_f64());
    eprintln!("faults by kind (planned -> outcomes):");
    for (kind, by_outcome) in &outcomes {
        let fired = records.iter().filter(|r| r.injection.kind() == *kind && r.faulted()).count();
        eprintln!(
            "  {kind:<22} {:>2} turns, {fired:>2} hit mid-turn: {by_outcome:?}",
            by_outcome.values().sum::<usize>()
        );
    }
    eprintln!("errors the users read:");
    for (error, n) in &errors {
        eprintln!("  {n:>2} x {error}");
    }
    let swept = |resource| sweep.reaped.iter().filter(|f| f.resource == resource).count();
    eprintln!(
        "sweep: {} sandboxes and {} databases of the tenant's turns reaped",
        swept(mayfly_core::Resource::Sandbox),
        swept(mayfly_core::Resource::Database)
    );
    eprintln!(
        "leaks: {leaked_sandboxes} sandboxes, {leaked_databases} databases or roles; total {:.0}s",
        started.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert!(leftovers.is_empty(), "left behind: {leftovers:#?}");
}
