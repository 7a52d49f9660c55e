//! A person uses the web app in a browser (headless Chromium driven by Playwright): the shell,
//! the playground running real turns on the whole stack, the live view surviving a dropped
//! stream, the dashboard, and the embed view in another site's page.

use std::path::Path;
use std::process::Command;

use mayfly_e2e::wrangler::free_port;
use mayfly_e2e::{InProcessStack, TestStackOptions, Tools, ALICE_KEY, BOB_KEY};
use serde_json::Value;

use crate::support::worker_with;

/// Runs a Playwright script from `tests/browser/` with `args`; returns the JSON object it
/// printed last. Fails the test on a non-zero exit or a `failure` in the report.
pub(crate) fn run_browser_script(script: &str, args: &[&str]) -> Value {
    let tools = Tools::of_workspace();
    std::fs::create_dir_all(tools.artifacts_dir()).unwrap();
    let out = Command::new("node")
        .env("PATH", tools.node_path())
        .env("MAYFLY_TOOLS_DIR", tools.tools_dir())
        .arg(tools.root.join("tests/browser").join(script))
        .args(args)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    let report: Value =
        serde_json::from_str(last).unwrap_or_else(|err| panic!("{script} printed no JSON ({err}): {stdout}"));
    assert!(report.get("failure").is_none(), "{script}: {}\nreport: {report:#}", report["failure"]);
    assert_eq!(report["errors"], serde_json::json!([]), "console errors in {script}: {report:#}");
    assert_eq!(report["shown_errors"], serde_json::json!([]), "errors shown after an action in {script}: {report:#}");
    report
}

pub(crate) fn artifacts() -> String {
    Tools::of_workspace().artifacts_dir().display().to_string()
}

fn assert_screenshots(names: &[&str]) {
    let dir = Tools::of_workspace().artifacts_dir();
    for name in names {
        let path = dir.join(name);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "no screenshot at {}", Path::new(&path).display());
    }
}

fn str_of<'a>(report: &'a Value, pointer: &str) -> &'a str {
    report.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} in {report:#}"))
}

#[test]
fn app_shell_shows_health_from_the_api_and_navigates() {
    let worker = worker_with(&[("E2B_API_URL", "http://127.0.0.1:49982")]);
    let shot = Tools::of_workspace().artifacts_dir().join("shell.png");
    let report = run_browser_script("shell.mjs", &[&worker.url, &shot.display().to_string()]);
    assert_eq!(report["health_state"], "ok", "{report}");
    let health = report["health_text"].as_str().unwrap();
    assert!(health.contains(&format!("v{}", mayfly_core::VERSION)), "{health}");
    assert!(health.contains("http://127.0.0.1:49982"), "{health}");
    assert_eq!(report["turns_path"], "/turns", "{report}");
    assert_eq!(report["back_home"], true, "{report}");
    assert_screenshots(&["shell.png"]);
}

#[test]
fn the_playground_runs_fails_cancels_and_keeps_turns_and_the_dashboard_lists_them() {
    let stack = InProcessStack::start();
    let report = run_browser_script("playground.mjs", &[&stack.worker.url, &artifacts(), ALICE_KEY]);

    // The key came from the link's fragment, shows only its tail, and left the address bar.
    assert!(str_of(&report, "/key_bar").contains(&ALICE_KEY[ALICE_KEY.len() - 4..]), "{report:#}");
    assert!(!str_of(&report, "/key_bar").contains(ALICE_KEY), "the whole key is on the page: {report:#}");
    assert!(!str_of(&report, "/url_after_key").contains("key="), "{report:#}");

    // The seed turn: its answer, every phase on the timeline, both resources reaped.
    assert_eq!(str_of(&report, "/seed/stdout"), "(1000000,)\n", "{report:#}");
    assert_eq!(str_of(&report, "/seed/outcome"), "succeeded");
    assert_eq!(str_of(&report, "/seed/link"), "done");
    assert!(str_of(&report, "/seed/exit").contains("exit 0"), "{report:#}");
    let phases = report.pointer("/seed/phases_done").and_then(Value::as_array).unwrap();
    assert_eq!(phases.len(), 5, "{report:#}");
    for phase in phases {
        assert_eq!(phase[1], "true", "a phase did not finish: {phase}");
        assert!(phase[2].as_str().unwrap().ends_with(" ms") || phase[2].as_str().unwrap().ends_with(" s"), "{phase}");
    }
    assert_eq!(report.pointer("/seed/bars"), Some(&Value::from(5)), "{report:#}");
    let no_secrets = serde_json::json!({ "db_url": false, "api_key": false });
    assert_eq!(report.pointer("/seed/page_secrets"), Some(&no_secrets), "a secret is on the page");
    assert_eq!(report.pointer("/dashboard_secrets"), Some(&no_secrets), "a secret is on the dashboard");

    // The failing turn shows its stderr apart from stdout, its exit code and why it failed.
    assert_eq!(str_of(&report, "/fail/outcome"), "failed");
    assert_eq!(str_of(&report, "/fail/stdout"), "about to fail\n");
    assert!(str_of(&report, "/fail/stderr").contains("something went wrong"), "{report:#}");
    assert!(str_of(&report, "/fail/exit").contains("exit 3"), "{report:#}");
    assert!(str_of(&report, "/fail/error").contains('3'), "{report:#}");

    // The cancelled turn stopped early.
    assert_eq!(str_of(&report, "/cancel/outcome"), "cancelled");
    assert_eq!(report["cancel_status"], 202, "the API accepts a cancel with 202 and no body");
    let printed = str_of(&report, "/cancel/stdout").lines().count();
    assert!((3..600).contains(&printed), "the cancelled turn printed {printed} lines");

    // Keeping the database tells how to claim it and hands over its URL; it is not reaped.
    assert!(!str_of(&report, "/keep/instructions").is_empty(), "{report:#}");
    assert!(str_of(&report, "/keep/connection_url").starts_with("postgres"), "{report:#}");
    assert_eq!(str_of(&report, "/keep/turn/outcome"), "cancelled");
    // While the database was live, its row counted down to its deadline.
    assert!(str_of(&report, "/keep/countdown").starts_with("reaped within "), "{report:#}");

    // The dashboard has all four turns, newest first, with truthful reap states.
    let rows = report["dashboard"].as_array().unwrap();
    let find =
        |id: &str| rows.iter().find(|r| r["turn_id"] == id).unwrap_or_else(|| panic!("{id} not listed: {rows:#?}"));
    for (turn, outcome, database) in [
        ("/seed/turn_id", "succeeded", "reaped"),
        ("/fail/turn_id", "failed", "—"),
        ("/cancel/turn_id", "cancelled", "—"),
        ("/keep/turn/turn_id", "cancelled", "kept"),
    ] {
        let row = find(str_of(&report, turn));
        assert_eq!((row["outcome"].as_str(), row["database"].as_str()), (Some(outcome), Some(database)), "{row}");
        assert_eq!(row["sandbox"], "reaped", "{row}");
    }
    assert_eq!(rows[0]["turn_id"], report.pointer("/keep/turn/turn_id").cloned().unwrap(), "newest first");

    // Readable at phone width: nothing scrolls sideways.
    assert!(report["narrow_turn_width"].as_u64().unwrap() <= 390, "{report:#}");
    assert!(report["narrow_playground_width"].as_u64().unwrap() <= 390, "{report:#}");
    assert_screenshots(&["playground-mid-turn.png", "turn-finished.png", "dashboard.png", "turn-390.png"]);
}

/// The rows of a turn's summary table as the script read them: (table, change, rows).
fn summary_rows(report: &Value, turn: &str) -> Vec<(String, String, String)> {
    let rows = report.pointer(&format!("/{turn}/summary")).and_then(Value::as_array).unwrap();
    rows.iter()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_owned();
            (field("table"), field("change"), field("rows"))
        })
        .collect()
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())).collect()
}

#[test]
fn an_agent_session_in_the_playground_seeds_checkpoints_forks_and_releases() {
    let stack = InProcessStack::start();
    let started = std::time::Instant::now();
    let report = run_browser_script("session.mjs", &[&stack.worker.url, &artifacts(), ALICE_KEY]);
    eprintln!("session.mjs took {:.1} s", started.elapsed().as_secs_f64());
    let (base, fork, grandchild) =
        (str_of(&report, "/base/turn_id"), str_of(&report, "/fork/turn_id"), str_of(&report, "/grandchild/turn_id"));
    assert!(base != fork && fork != grandchild && base != grandchild, "{report:#}");

    // What the API would refuse was said before anything was sent.
    for (refused, why) in
        [("/bad_keep", "from 1 to 86400"), ("/no_database", "A fork and a checkpoint need the database")]
    {
        assert!(str_of(&report, &format!("{refused}/problem")).contains(why), "{report:#}");
        assert_eq!(report.pointer(&format!("{refused}/created")), Some(&Value::from(0)), "{report:#}");
        assert_eq!(report.pointer(&format!("{refused}/same_view")), Some(&Value::Bool(true)), "{report:#}");
    }

    // The base: seeded, its row added, kept; no parent; its seed phase on the timeline, in order.
    assert_eq!((str_of(&report, "/base/outcome"), str_of(&report, "/base/stdout")), ("succeeded", "4\n"));
    assert_eq!(summary_rows(&report, "base"), owned(&[("public.items", "same", "4")]), "{report:#}");
    assert_eq!(str_of(&report, "/base/summary/0/columns"), "id integer, name text", "{report:#}");
    assert!(str_of(&report, "/base/size").ends_with("MiB") || str_of(&report, "/base/size").ends_with("KiB"));
    assert_eq!(report.pointer("/base/lineage"), Some(&serde_json::json!([])), "{report:#}");
    let phases: Vec<(&str, &str)> = report
        .pointer("/base/phases")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap(), p[1].as_str().unwrap()))
        .collect();
    let labels: Vec<&str> = phases.iter().map(|p| p.0).collect();
    assert_eq!(labels, ["phase-sandbox", "phase-database", "phase-upload", "phase-seed", "phase-run", "phase-reap"]);
    assert!(phases.iter().all(|p| p.1 == "true"), "{phases:?}");
    assert_eq!(report.pointer("/base/bars"), Some(&Value::from(6)), "{report:#}");
    assert_eq!(str_of(&report, "/base/checkpoint/state"), "live");
    assert!(str_of(&report, "/base/checkpoint/countdown").starts_with("kept for "), "{report:#}");
    // Forking fills the form: the base's id, the database on, the seed (which the checkpoint
    // holds already) cleared.
    let filled = serde_json::json!({ "from": base, "seed_sql": "", "database": true });
    assert_eq!(report.pointer("/base/fork"), Some(&filled), "{report:#}");

    // The fork: two rows more than the checkpoint it came from, and its parent linked.
    assert_eq!((str_of(&report, "/fork/outcome"), str_of(&report, "/fork/stdout")), ("succeeded", "6\n"));
    assert_eq!(summary_rows(&report, "fork"), owned(&[("public.items", "rows", "4 → 6")]), "{report:#}");
    assert_eq!(str_of(&report, "/fork/lineage/0/parent"), base);
    assert_eq!(str_of(&report, "/fork/lineage/0/href"), format!("/turns/{base}"));
    assert_eq!(str_of(&report, "/fork/checkpoint/state"), "live");
    let seeded = |turn: &str| {
        report
            .pointer(&format!("/{turn}/phases"))
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .any(|p| p[0] == "phase-seed")
    };
    assert!(!seeded("fork") && !seeded("grandchild"), "a turn without seed SQL shows a seed phase: {report:#}");
    let filled = serde_json::json!({ "from": fork, "seed_sql": "", "database": true });
    assert_eq!(report.pointer("/fork/fork"), Some(&filled), "{report:#}");

    // The fork of the fork: its new table added, against its own parent (6 rows, unchanged).
    assert_eq!((str_of(&report, "/grandchild/outcome"), str_of(&report, "/grandchild/stdout")), ("succeeded", "6\n"));
    assert_eq!(
        summary_rows(&report, "grandchild"),
        owned(&[("public.items", "same", "6"), ("public.tags", "added", "1")]),
        "{report:#}"
    );
    assert_eq!(str_of(&report, "/grandchild/lineage/0/parent"), fork);
    assert!(str_of(&report, "/grandchild/size").contains(" (+"), "a new table takes room: {report:#}");
    assert_eq!(report.pointer("/grandchild/panels"), Some(&Value::from(0)), "it asked for no checkpoint");
    for turn in ["base", "fork", "grandchild"] {
        assert_eq!(report.pointer(&format!("/{turn}/summary_errors")), Some(&Value::from(0)), "{report:#}");
    }

    // The base's page: kept 15 minutes more, a refusal shown, then released and reaped.
    let page = &report["turn_page"];
    assert_eq!(page["fork_link"], serde_json::json!({ "tag": "A", "href": format!("/?from={base}") }));
    let forking = serde_json::json!({ "path": format!("/?from={base}"), "from": base });
    assert_eq!(page["followed"], forking, "{report:#}");
    assert_eq!(page["extend_status"], 200, "{report:#}");
    let (before, after) = (page["until_before"].as_u64().unwrap(), page["until_after"].as_u64().unwrap());
    assert!(after > before, "the extension moved nothing: {before} → {after}");
    assert!(str_of(&report, "/turn_page/countdown_after").contains("kept for 1"), "{report:#}");
    assert!(str_of(&report, "/turn_page/extend_error/text").contains("a stubbed refusal"), "{report:#}");
    assert_eq!(str_of(&report, "/turn_page/extend_error/role"), "alert");
    assert_eq!(page["release_status"], 202, "{report:#}");
    assert_eq!(page["after_release"]["live"], "false", "{report:#}");
    assert_eq!(str_of(&report, "/turn_page/after_release/countdown"), "its database is reaped now");
    assert_eq!(
        page["after_release"]["buttons_disabled"],
        serde_json::json!([["fork", true], ["extend", true], ["release", true]]),
        "{report:#}"
    );
    assert_eq!(page["after_release"]["errors_left"], 0, "{report:#}");

    // Its page's fork link, followed after the release: the API refused, and the page said why.
    assert_eq!(str_of(&report, "/refused_fork/from"), base);
    assert_eq!(report.pointer("/refused_fork/database"), Some(&Value::Bool(true)));
    assert_eq!(report.pointer("/refused_fork/status"), Some(&Value::from(409)), "{report:#}");
    assert!(str_of(&report, "/refused_fork/problem").contains("no longer live"), "{report:#}");
    assert_eq!(report.pointer("/refused_fork/views"), Some(&Value::from(0)), "{report:#}");
    assert_eq!(report.pointer("/refused_fork/cleared"), Some(&Value::from(0)), "{report:#}");
    // Chromium logged the two refusals the script brought about, and no other error.
    assert_eq!(report.pointer("/refusals_logged"), Some(&Value::from(2)), "{report:#}");

    // The dashboard: the fork's checkpoint is the only one live, with its time left.
    let checkpoints = report.pointer("/dashboard/checkpoints").and_then(Value::as_array).unwrap();
    assert_eq!(checkpoints.len(), 1, "{report:#}");
    assert_eq!(checkpoints[0]["turn_id"], fork);
    assert!(checkpoints[0]["countdown"].as_str().unwrap().starts_with("kept for "), "{report:#}");
    assert_eq!(str_of(&report, "/dashboard/count"), "1");
    let rows = report.pointer("/dashboard/rows").and_then(Value::as_array).unwrap();
    let database_of = |id: &str| {
        let row = rows.iter().find(|r| r["turn_id"] == id).unwrap_or_else(|| panic!("{id} not listed: {rows:#?}"));
        assert_eq!(row["outcome"], "succeeded", "{row}");
        row["database"].as_str().unwrap().to_owned()
    };
    assert_eq!([database_of(base), database_of(fork), database_of(grandchild)], ["reaped", "checkpointed", "reaped"]);

    // No database URL on any page.
    for page in ["/playground_db_url", "/turn_page/db_url", "/dashboard/db_url"] {
        assert_eq!(report.pointer(page), Some(&Value::Bool(false)), "a database URL on the page ({page})");
    }
    assert_screenshots(&["session-base.png", "session-fork.png", "session-grandchild.png", "session-released.png"]);

    // The API agrees, and nothing is left once the fork's checkpoint goes too.
    let alice = stack.client(ALICE_KEY);
    assert!(alice.detail(base).checkpoint.is_some_and(|c| !c.live));
    assert!(alice.detail(fork).checkpoint.is_some_and(|c| c.live));
    let (status, answer) = alice.call("DELETE", &format!("/v1/turns/{fork}/checkpoint"), None);
    assert_eq!(status, 202, "{answer}");
    // Every reap first: the providers' check counts all of Postgres's databases at once.
    for turn in [base, fork, grandchild] {
        alice.wait_reaped(turn);
    }
    for turn in [base, fork, grandchild] {
        stack.assert_nothing_left(turn);
    }
}

#[test]
fn the_live_view_resumes_after_a_dropped_stream_and_another_sites_page_runs_turns_with_a_token() {
    // The parent page's origin is one the deployment lets frame the embed view and call the API.
    let parent_port = free_port().unwrap();
    let parent = format!("http://127.0.0.1:{parent_port}");
    let stack = InProcessStack::start_with(
        TestStackOptions::default().var("EMBED_ORIGINS", &parent).var("CORS_ORIGINS", &parent),
    );
    // What the IDE's own server would do with the tenant's key: mint a token for the page.
    let alice = stack.client(ALICE_KEY);
    let token = alice.mint_token("{}").token;
    let args = [stack.worker.url.as_str(), &artifacts(), ALICE_KEY, &parent_port.to_string(), &token];
    let report = run_browser_script("live.mjs", &args);

    // Every line once, in order, although the stream was cut mid-turn.
    assert!(report["closed"].as_u64().unwrap() >= 1, "{report:#}");
    let output = str_of(&report, "/reconnect/output");
    let expected: String = (1..=60).map(|i| format!("n{i}\n")).collect();
    assert_eq!(output, expected, "lines lost or doubled across the reconnect");
    let states: Vec<&str> = report
        .pointer("/reconnect/link_states")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(states.contains(&"reconnecting"), "the reconnect was not shown: {states:?}");
    assert_eq!(states.last(), Some(&"done"), "{states:?}");
    let sockets = report.pointer("/reconnect/sockets").and_then(Value::as_array).unwrap();
    assert!(sockets.len() >= 2, "{sockets:?}");
    assert_eq!(sockets[0], "/events?after=0");
    let resumed_after: u64 = sockets[1].as_str().unwrap().trim_start_matches("/events?after=").parse().unwrap();
    assert!(resumed_after > 10, "the second socket did not resume after what was seen: {sockets:?}");
    // The key rode as a subprotocol, which the server answered with `mayfly`.
    for protocol in report.pointer("/reconnect/protocols").and_then(Value::as_array).unwrap() {
        assert_eq!(protocol, "mayfly");
    }

    // Scrolled up by the reader, the view stopped following and offers to follow again.
    assert_eq!(report.pointer("/reconnect/overflowing"), Some(&Value::Bool(true)), "{report:#}");
    let below = report.pointer("/reconnect/below_view").and_then(Value::as_f64).unwrap();
    assert!(below > 100.0, "the view scrolled back down under the reader: {report:#}");
    assert_eq!(report.pointer("/reconnect/follow_button"), Some(&Value::from(1)), "{report:#}");

    // ANSI colours become styles; no escape syntax is left in the text.
    let red = report.pointer("/colours/red").and_then(Value::as_array).unwrap();
    assert_eq!(red.len(), 1, "{report:#}");
    assert!(red[0].as_str().unwrap().contains("colour 31"), "{report:#}");
    let text = str_of(&report, "/colours/text");
    assert!(text.contains("colour 36") && !text.contains('\u{1b}') && !text.contains("[0m"), "{text:?}");

    // 2 MiB of output: the first MiB is on the page, the rest is counted in a notice.
    let shown = report.pointer("/capped/shown").and_then(Value::as_u64).unwrap();
    assert!(((1 << 20) - (256 << 10)..=1 << 20).contains(&shown), "{shown} bytes shown");
    let notice = str_of(&report, "/capped/notice");
    let hidden: u64 = notice.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(shown + hidden, 2048 * 1024, "{notice}");

    // The page called the API across origins with the token, as Chromium allows only with the
    // answers' CORS headers, and read what it created; a page of another origin could not.
    assert_eq!(report.pointer("/cors/create_status"), Some(&Value::from(201)), "{report:#}");
    assert_eq!(report.pointer("/cors/detail_status"), Some(&Value::from(200)), "{report:#}");
    let called = str_of(&report, "/cors/turn_id");
    assert_eq!(str_of(&report, "/cors/detail_turn"), called);
    assert!(str_of(&report, "/stranger/refused").contains("Failed to fetch"), "{report:#}");
    assert_eq!(report.pointer("/stranger/read"), None, "{report:#}");

    // Every call the page and the frame made carried the token, never the key saved in this
    // browser (which the pinned frame could have used, but the token comes first).
    let requests = report["requests"].as_array().unwrap();
    for from in [parent.as_str(), stack.worker.url.as_str()] {
        let creates =
            requests.iter().filter(|r| r["from"] == from && r["method"] == "POST" && r["path"] == "/v1/turns");
        assert_eq!(creates.count(), 1, "one turn created from {from}: {requests:#?}");
    }
    for request in requests {
        assert_eq!(request["auth"], "token", "{request}");
    }
    let offers = report.pointer("/embed/offers").and_then(Value::as_array).unwrap();
    assert!(!offers.is_empty(), "the frame opened no event stream: {report:#}");
    for offer in offers {
        assert_eq!(offer, &serde_json::json!(["mayfly", "bearer.token"]), "{report:#}");
    }
    assert_eq!(str_of(&report, "/embed/outcome"), "succeeded");

    // The embed view: ready, the turn's id, then every event once and in order, to the parent.
    let messages = report.pointer("/embed/messages").and_then(Value::as_array).unwrap();
    assert_eq!(messages[0]["type"], "mayfly.ready", "{messages:#?}");
    assert_eq!(messages[1]["type"], "mayfly.turn", "{messages:#?}");
    let turn_id = messages[1]["turn_id"].as_str().unwrap();
    let events: Vec<&Value> = messages.iter().filter(|m| m["type"] == "mayfly.event").collect();
    assert!(events.iter().all(|m| m["turn_id"] == turn_id));
    let seqs: Vec<u64> = events.iter().map(|m| m["event"]["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "events missing, doubled or out of order");
    let kinds: Vec<&str> = events.iter().map(|m| m["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"turn.accepted"));
    assert_eq!(kinds.last(), Some(&"turn.finished"));
    assert!(kinds.contains(&"stdout") && kinds.contains(&"stderr"), "{kinds:?}");
    assert!(!kinds.contains(&"database.creating"), "the parent asked for no database: {kinds:?}");
    assert_eq!(report.pointer("/embed/has_header"), Some(&Value::from(0)), "the embed view has no chrome");
    assert!(str_of(&report, "/embed/output").contains("from the embed"), "{report:#}");
    assert_screenshots(&["embed.png"]);
    for turn_id in [called, turn_id] {
        alice.wait_reaped(turn_id);
        stack.assert_nothing_left(turn_id);
    }
}

#[test]
fn a_link_never_sets_a_key_without_asking_and_the_embed_view_trusts_only_its_pinned_parent() {
    let (allowed, denied) = (free_port().unwrap(), free_port().unwrap());
    let stack = InProcessStack::start_with(
        TestStackOptions::default().var("EMBED_ORIGINS", &format!("http://127.0.0.1:{allowed}")),
    );
    let (a, b) = (ALICE_KEY, BOB_KEY);
    let (artifacts, allowed_port, denied_port) = (artifacts(), allowed.to_string(), denied.to_string());
    let token = stack.client(ALICE_KEY).mint_token("{}").token;
    let args = [stack.worker.url.as_str(), &artifacts, a, b, &allowed_port, &denied_port, &token];
    let report = run_browser_script("safety.mjs", &args);
    let tail = |key: &str| key[key.len() - 4..].to_owned();

    // A fresh browser asked before the first link signed it in, and took nothing meanwhile.
    assert_eq!(str_of(&report, "/fresh/new"), tail(a));
    assert_eq!(report.pointer("/fresh/saved"), Some(&Value::from(0)), "{report:#}");
    assert_eq!(report.pointer("/fresh/stored"), Some(&Value::Null), "the link set a key before anyone was asked");
    assert!(!str_of(&report, "/fresh/url").contains("key="), "the key stayed in the address bar");
    assert!(str_of(&report, "/first/bar").contains(&tail(a)), "{report:#}");
    assert_eq!(str_of(&report, "/first/stored"), a);
    // The second asked, showing the last four of each, and changed nothing until answered.
    assert_eq!(str_of(&report, "/offer/new"), tail(b));
    assert_eq!(str_of(&report, "/offer/saved"), tail(a));
    assert!(str_of(&report, "/offer/bar").contains(&tail(a)), "{report:#}");
    assert_eq!(str_of(&report, "/offer/stored"), a, "the link replaced the saved key before anyone was asked");
    assert!(!str_of(&report, "/offer/url").contains("key="), "the key stayed in the address bar");
    assert_eq!(str_of(&report, "/kept/stored"), a);
    assert!(str_of(&report, "/kept/bar").contains(&tail(a)), "{report:#}");
    // Taken when the person says so.
    assert_eq!(str_of(&report, "/used/stored"), b);
    assert!(str_of(&report, "/used/bar").contains(&tail(b)), "{report:#}");
    for pointer in ["/first/bar", "/offer/new", "/offer/saved", "/used/bar"] {
        let shown = str_of(&report, pointer);
        assert!(!shown.contains(a) && !shown.contains(b), "a whole key is on the page: {shown}");
    }

    // Pinned by its own origin, the embed view ran on its own and reported to its parent.
    let kinds: Vec<&str> =
        report.pointer("/pinned/kinds").and_then(Value::as_array).unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(kinds[..2], ["mayfly.ready", "mayfly.turn"], "{report:#}");
    assert!(str_of(&report, "/pinned/output").contains("ran on its own"), "{report:#}");
    assert_eq!(report.pointer("/pinned/creates"), Some(&Value::from(1)), "{report:#}");
    // Not pinned, or pinned to another origin: nothing ran, the frame said why, and a Run pressed
    // there did not spend the saved key.
    for path in ["unpinned", "elsewhere"] {
        assert_eq!(report.pointer(&format!("/{path}/creates")), Some(&Value::from(0)), "{path}: {report:#}");
        assert!(str_of(&report, &format!("/{path}/notice")).contains("origin="), "{path}: {report:#}");
    }
    assert_eq!(report.pointer("/elsewhere/run_creates"), Some(&Value::from(0)), "{report:#}");
    // A turn token from a parent the frame does not pin is not taken: the frame that pins nobody
    // says why, and Run there spends neither the token nor the saved key.
    assert!(str_of(&report, "/unpinned/token_problem").contains("pins the parent's origin"), "{report:#}");
    assert!(str_of(&report, "/unpinned/token_run_problem").contains("no API key"), "{report:#}");
    assert_eq!(report.pointer("/unpinned/token_creates"), Some(&Value::from(0)), "{report:#}");
    assert!(str_of(&report, "/elsewhere/run_problem").contains("send one in `mayfly.run`"), "{report:#}");

    // A page of an origin the deployment does not name could not frame it.
    let refusals = report.pointer("/denied/refusals").and_then(Value::as_array).unwrap();
    assert!(
        refusals.iter().any(|r| r.as_str().unwrap_or_default().contains("frame-ancestors")),
        "the browser did not refuse the frame: {report:#}"
    );
    assert_eq!(report.pointer("/denied/messages"), Some(&Value::from(0)), "{report:#}");
    assert_screenshots(&["key-offer-used.png", "embed-untrusted.png"]);
}
