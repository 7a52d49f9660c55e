//! Code run as a turn tries to get out: the host's files and processes, another live turn's files
//! and database, the providers' APIs without their keys, any other port on the loopback (another
//! turn's server, the worker's debugger), the disk, memory and process limits, and
//! outliving the turn. Every attempt prints its verdict; every turn still reaps, and afterwards no
//! process of it is left on the host.

use std::time::Instant;

use mayfly_core::{CreateTurnResponse, Event, EventBody, Outcome};
use mayfly_e2e::procfs::{cmdline, pids, sandbox_processes};
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{ApiClient, InProcessStack, Tools, ALICE_KEY, BOB_KEY};

use crate::support::{follow_until, lines_with, resources_of, CancelOnDrop};

const ESCAPE: &str = include_str!("escape.py");
const OUTLIVE: &str = include_str!("outlive.py");

/// Waits for the victim's files; then idles until it is cancelled (or its timeout).
const VICTIM: &str = r#"
import os, socket, threading, time
for path in ("/home/user/secret.txt", "/tmp/secret.txt"):
    with open(path, "w") as f:
        f.write(os.environ["MARK"])
server = socket.create_server(("127.0.0.1", 7000))
def serve():
    while True:
        conn, _ = server.accept()
        conn.sendall(os.environ["MARK"].encode())
        conn.close()
threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(0.5)
"#;

/// 3 GiB touched page by page: inside the address-space limit, far above the memory cgroup's cap.
const MEMORY_BOMB: &str = r#"
import subprocess, sys
bomb = "b = bytearray(3 << 30)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')"
run = subprocess.run([sys.executable, "-c", bomb], capture_output=True, text=True)
print(f"memory: the bomb ended with {run.returncode}: {run.stderr.strip()[-200:]}", flush=True)
print("escape memory_bomb: " + ("ESCAPED survived" if "survived" in run.stdout else "blocked"), flush=True)
"#;

/// The classic, in bash; the code then becomes a sleep so the turn runs into its timeout.
const FORK_BOMB: &str = r#"
bomb() { bomb | bomb & }
bomb
exec sleep 60
"#;

fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

fn mark(name: &str) -> String {
    format!("mayfly-escape-{name}-{}", std::process::id())
}

/// The verdicts a turn printed; fails on any attempt that got out, crashed or did not report.
fn assert_blocked(events: &[Event], expected: &[&str]) {
    let stdout = stdout_of(events);
    let verdicts = lines_with(&stdout, "escape ");
    let escaped: Vec<_> = verdicts.iter().filter(|v| !v.ends_with(": blocked")).collect();
    assert!(escaped.is_empty(), "escapes that worked: {escaped:?}\n{stdout}");
    let crashed = lines_with(&stdout, "attempt ");
    assert!(crashed.is_empty(), "attempts that did not run: {crashed:?}\n{stdout}");
    let names: Vec<_> = verdicts.iter().filter_map(|v| v.split(':').next()).collect();
    assert_eq!(names, expected, "{stdout}");
}

/// Asserts the turn is reaped on both sides and nothing of it runs on the host.
fn assert_gone(stack: &InProcessStack, client: &ApiClient, turn: &CreateTurnResponse, events: &[Event], mark: &str) {
    client.wait_reaped(&turn.turn_id);
    stack.assert_nothing_left(&turn.turn_id);
    let (Some(sandbox), _) = resources_of(events) else { panic!("no sandbox: {events:?}") };
    let left = sandbox_processes(&sandbox, mark);
    assert!(left.is_empty(), "processes of {} outlived its reap: {left:?}", turn.turn_id);
}

/// Host pids the attacker tries to signal: this test and the stack's long-lived processes.
fn host_pids() -> String {
    let mut chosen = vec![std::process::id()];
    for pid in pids() {
        let cmdline = cmdline(pid).unwrap_or_default();
        if ["workerd", "wrangler", "postgres"].iter().any(|name| cmdline.contains(name)) {
            chosen.push(pid);
        }
    }
    chosen.iter().take(40).map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn a_turn_cannot_reach_the_host_or_another_live_turn() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let victim_mark = mark("victim");
    let body = serde_json::json!({ "code": VICTIM, "env": { "MARK": victim_mark }, "timeout_s": 120 });
    let victim = bob.create_turn(&body.to_string());

    std::thread::scope(|scope| {
        // Whatever fails below, the victim ends now rather than at its timeout.
        let _cancel = CancelOnDrop { client: &bob, turn: &victim };
        // The victim is live, its files written: its sandbox and database are known from its events.
        let (seen, follower) = follow_until(scope, &bob, &victim, "ready");
        let (Some(sandbox), Some((_, database))) = resources_of(&seen) else { panic!("{seen:?}") };

        let attacker_mark = mark("attacker");
        let endpoints = &stack.local().endpoints;
        let env = serde_json::json!({
            "MARK": attacker_mark,
            "VICTIM_MARK": reversed(&victim_mark),
            "VICTIM_SANDBOX": reversed(&sandbox),
            "VICTIM_DB": database,
            "VICTIM_TURN": victim.turn_id,
            "CHECKOUT": Tools::of_workspace().root.display().to_string(),
            "STATE_DIR": stack.data_dir().join("sandboxes").display().to_string(),
            "SANDBOXD_URL": endpoints.sandboxd_url,
            "SCRATCHDB_URL": endpoints.scratchdb_url,
            "WORKER_URL": stack.worker.url,
            "HOST_PIDS": host_pids(),
        });
        let body = serde_json::json!({ "code": ESCAPE, "env": env, "timeout_s": 120 });
        let attacker = alice.create_turn(&body.to_string());
        let attack = alice.follow(&attacker.turn_id, 0);
        assert_eq!(outcome_of(&attack), Some(Outcome::Succeeded), "{attack:?}");
        assert_blocked(
            &attack,
            &[
                "host_files",
                "root_home",
                "checkout",
                "sandbox_state",
                "victim_files",
                "processes",
                "signal_host",
                "victim_db_own_credentials",
                "victim_db_guessed_credentials",
                "own_db_privileges",
                "providers_without_credentials",
                "victim_server",
                "loopback_ports",
            ],
        );
        assert_gone(&stack, &alice, &attacker, &attack, &attacker_mark);

        // The victim lived through it all; cancelled now, it is reaped like any other turn.
        let (status, body) = bob.call("DELETE", &victim.status_url, None);
        assert_eq!(status, 202, "{body}");
        let victim_events = follower.join().expect("the follower");
        assert_eq!(outcome_of(&victim_events), Some(Outcome::Cancelled), "{victim_events:?}");
        assert_gone(&stack, &bob, &victim, &victim_events, &victim_mark);
    });
}

#[test]
fn bombs_and_leftovers_are_contained_and_every_turn_reaps() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let root = is_root();
    let outlive_env = if root {
        serde_json::json!({ "MARK": mark("outlive"), "FILL_DISK": "1" })
    } else {
        serde_json::json!({ "MARK": mark("outlive") })
    };
    let turns = [
        ("outlive", serde_json::json!({ "code": OUTLIVE, "env": outlive_env, "database": false, "timeout_s": 60 })),
        (
            "memory",
            serde_json::json!({ "code": MEMORY_BOMB, "env": { "MARK": mark("memory") }, "database": false, "timeout_s": 60 }),
        ),
        (
            "fork",
            serde_json::json!({ "code": FORK_BOMB, "language": "bash", "env": { "MARK": mark("fork") }, "database": false, "timeout_s": 5 }),
        ),
    ];
    let started = Instant::now();
    let created: Vec<_> = turns.iter().map(|(name, body)| (*name, alice.create_turn(&body.to_string()))).collect();
    let followed: Vec<(&str, CreateTurnResponse, Vec<Event>)> = std::thread::scope(|scope| {
        let followers: Vec<_> = created
            .iter()
            .map(|(name, turn)| {
                let alice = &alice;
                scope.spawn(move || (*name, turn.clone(), alice.follow(&turn.turn_id, 0)))
            })
            .collect();
        followers.into_iter().map(|f| f.join().expect("a follower")).collect()
    });
    eprintln!("bombs: all three turns ended {:?} after they were created", started.elapsed());

    for (name, turn, events) in &followed {
        match *name {
            "outlive" => {
                assert_eq!(outcome_of(events), Some(Outcome::Succeeded), "{events:?}");
                let mut expected = vec!["file_size_limit", "daemonise", "fork_count"];
                if root {
                    expected.insert(1, "fill_disk");
                }
                assert_blocked(events, &expected);
                assert!(stdout_of(events).contains("leaving"), "{events:?}");
            }
            "memory" => {
                assert_eq!(outcome_of(events), Some(Outcome::Succeeded), "{events:?}");
                if root {
                    assert_blocked(events, &["memory_bomb"]);
                }
            }
            _ => {
                // The bomb never ends by itself: the turn's timeout ends it.
                assert_eq!(outcome_of(events), Some(Outcome::TimedOut), "{events:?}");
                assert!(events.iter().any(|e| matches!(e.body, EventBody::ProcessStarted { .. })), "{events:?}");
            }
        }
        assert_gone(&stack, &alice, turn, events, &mark(name));
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}
