//! The attack on the programs sandboxd runs as root *outside* the jail: turn A plants programs
//! named like the host-side chain (`nsenter`, `prlimit`, `setpriv`, `bwrap`, `sh`) and a shared
//! library in its home and stays alive; turn B, another tenant's, names A's home in `PATH` or the
//! library in `LD_PRELOAD`. If any of B's variables reached the host-side chain, A's code would run
//! as root in the host's namespaces and leave its marker in the host's `/tmp`. It must not, and
//! B's turn must still run normally, with its variables in its own process.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use mayfly_core::Outcome;
use mayfly_e2e::turns::{outcome_of, stdout_of};
use mayfly_e2e::{InProcessStack, ALICE_KEY, BOB_KEY};

use crate::support::{follow_until, resources_of, CancelOnDrop};

/// Turn A: plants the fakes, says where, then waits to be cancelled.
const PLANTER: &str = r##"
import base64, os, time
home = "/home/user"
for name in ("nsenter", "prlimit", "setpriv", "bwrap", "sh", "mount", "ip"):
    path = os.path.join(home, name)
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\necho {name} >> {os.environ['MARKER']}\nexec /usr/bin/{name} \"$@\"\n")
    os.chmod(path, 0o755)
with open(os.path.join(home, "evil.so"), "wb") as f:
    f.write(base64.b64decode("EVIL_SO_BASE64"))
os.chmod(home, 0o755)
print("planted", flush=True)
while True:
    time.sleep(0.5)
"##;

/// Turn B's code: shows the variables it was given arrived in its own process.
const VICTIM: &str = r#"
import os
print("path=" + os.environ.get("PATH", ""))
print("preload=" + os.environ.get("LD_PRELOAD", ""))
print("done")
"#;

/// A shared library whose constructor leaves `marker` behind in whatever process loads it.
fn build_evil_library(dir: &Path, marker: &Path) -> Vec<u8> {
    let source = dir.join("evil.c");
    std::fs::write(
        &source,
        format!(
            "#include <fcntl.h>\n#include <unistd.h>\n\
             __attribute__((constructor)) static void planted(void) {{\n\
               int fd = open(\"{}\", O_WRONLY | O_CREAT | O_APPEND, 0644);\n\
               if (fd >= 0) {{ write(fd, \"preload\\n\", 8); close(fd); }}\n\
             }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let library = dir.join("evil.so");
    let built = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&library).arg(&source).status().unwrap();
    assert!(built.success(), "cc could not build the test's library");
    std::fs::read(library).unwrap()
}

/// A NUL ends an argument in what the jail's bwrap reads: a value carrying one would add bwrap
/// options of the tenant's own (binding the host's `/` into the jail, or leaving out the seccomp
/// filter). No environment can hold a NUL: it is refused at the edge, before anything is made.
#[test]
fn a_nul_in_a_turns_variables_is_refused_before_anything_is_made() {
    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let env = serde_json::json!({ "ZZ": "x\u{0}--ro-bind\u{0}/\u{0}/host\u{0}--setenv\u{0}Y" });
    let body = serde_json::json!({ "code": "import os; print(os.listdir('/host'))", "env": env, "database": false });
    let (status, answer) = alice.call("POST", "/v1/turns", Some(&body.to_string()));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("NUL"), "{answer}");
    crate::support::assert_nothing_provisioned(&stack);
}

#[test]
fn a_turns_variables_never_reach_the_programs_that_run_outside_the_jail() {
    let scratch = tempfile::tempdir().unwrap();
    // In the host's /tmp: inside a jail, /tmp is the sandbox's own, so only code that ran on the
    // host can write here.
    let marker = PathBuf::from(format!("/tmp/mayfly-host-chain-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let evil = base64::engine::general_purpose::STANDARD.encode(build_evil_library(scratch.path(), &marker));

    let stack = InProcessStack::start();
    let alice = stack.client(ALICE_KEY);
    let bob = stack.client(BOB_KEY);
    let env = serde_json::json!({ "MARKER": marker.display().to_string() });
    let code = PLANTER.replace("EVIL_SO_BASE64", &evil);
    let body = serde_json::json!({ "code": code, "env": env, "database": false, "timeout_s": 120 });
    let planter = alice.create_turn(&body.to_string());

    std::thread::scope(|scope| {
        // Whatever fails below, the planter ends now rather than at its timeout.
        let _cancel = CancelOnDrop { client: &alice, turn: &planter };
        let (seen, follower) = follow_until(scope, &alice, &planter, "planted");
        let (Some(sandbox), _) = resources_of(&seen) else { panic!("{seen:?}") };
        // Where A's home is on the host (its sandbox's directory under sandboxd's state).
        let home = stack.data_dir().join("sandboxes").join(&sandbox).join("home");
        assert!(home.join("prlimit").exists(), "the fakes are at {}", home.display());

        let attacks = [
            ("LD_PRELOAD", home.join("evil.so").display().to_string()),
            ("PATH", format!("{}:/usr/bin:/bin", home.display())),
        ];
        for (name, value) in attacks {
            let body = serde_json::json!({ "code": VICTIM, "env": { name: &value }, "database": false });
            let turn = bob.create_turn(&body.to_string());
            let events = bob.follow(&turn.turn_id, 0);
            let planted_ran = std::fs::read_to_string(&marker).unwrap_or_default();
            assert!(planted_ran.is_empty(), "{name}: the planted code ran on the host as: {planted_ran}");
            assert_eq!(outcome_of(&events), Some(Outcome::Succeeded), "{name}: {events:?}");
            let stdout = stdout_of(&events);
            // The variable is the user's own business inside the jail: it arrived there. (A turn
            // runs in a login shell, as on E2B, whose /etc/profile sets PATH anew; LD_PRELOAD is
            // left as given.)
            if name == "LD_PRELOAD" {
                assert!(stdout.contains(&format!("preload={value}\n")), "{name}: {stdout}");
            }
            assert!(stdout.ends_with("done\n"), "{name}: {stdout}");
        }

        let (status, answer) = alice.call("DELETE", &planter.status_url, None);
        assert_eq!(status, 202, "{answer}");
        follower.join().expect("the follower");
    });
    let _ = std::fs::remove_file(&marker);
}
