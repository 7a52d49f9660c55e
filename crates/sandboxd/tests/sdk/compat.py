"""Drives the unmodified official `e2b` Python SDK against sandboxd.

Configuration comes only from the SDK's ordinary environment variables, set by the Rust test
that runs this script: E2B_API_URL and E2B_SANDBOX_URL point at sandboxd, E2B_API_KEY is one of
its keys, E2B_DOMAIN is its domain. Prints one `ok <step>` line per step; any failure raises.
"""

import sys
import uuid

from e2b import CommandExitException, Sandbox, SandboxQuery

run_id = uuid.uuid4().hex[:12]

sbx = Sandbox.create(
    template="mayfly",
    timeout=120,
    envs={"GREETING": "hello from envs"},
    metadata={"suite": "compat", "run": run_id},
)
print("ok create", sbx.sandbox_id, flush=True)

try:
    out, err = [], []
    r = sbx.commands.run(
        'echo "$GREETING"; echo to-stderr >&2; echo "sandbox=$E2B_SANDBOX"; whoami',
        on_stdout=lambda s: out.append(s),
        on_stderr=lambda s: err.append(s),
    )
    assert r.exit_code == 0, r
    assert "hello from envs" in r.stdout, r.stdout
    assert "sandbox=true" in r.stdout, r.stdout
    assert "user" in r.stdout, r.stdout
    assert "to-stderr" in r.stderr, r.stderr
    assert "hello from envs" in "".join(out), out
    assert "to-stderr" in "".join(err), err
    print("ok commands.run callbacks", flush=True)

    try:
        sbx.commands.run("echo failing >&2; exit 3")
        raise AssertionError("a non-zero exit must raise")
    except CommandExitException as e:
        assert e.exit_code == 3, e.exit_code
        assert "failing" in e.stderr, e.stderr
    print("ok non-zero exit", flush=True)

    sbx.files.write("/home/user/agent.py", "import psycopg, sys\nprint('psycopg', psycopg.__version__, sys.argv[1])\n")
    assert sbx.files.read("/home/user/agent.py").startswith("import psycopg")
    r = sbx.commands.run("python3 /home/user/agent.py arg1")
    assert r.stdout.startswith("psycopg 3"), r.stdout
    assert r.stdout.strip().endswith("arg1"), r.stdout
    print("ok files.write/read + python with psycopg", flush=True)

    # gzip both ways, and metadata kept and shown, as envd 0.6.2 does.
    info = sbx.files.write("notes/a.txt", "zipped", gzip=True, metadata={"Author": "compat"})
    assert info.metadata == {"author": "compat"}, info.metadata
    assert sbx.files.read("notes/a.txt", gzip=True) == "zipped"
    assert sbx.files.get_info("notes/a.txt").metadata == {"author": "compat"}
    print("ok files gzip + metadata", flush=True)

    sbx.files.make_dir("notes/b/deep")
    sbx.commands.run("ln -s a.txt /home/user/notes/link")
    names = [e.name for e in sbx.files.list("notes", depth=2)]
    assert names == ["a.txt", "b", "deep", "link"], names
    link = sbx.files.get_info("notes/link")
    assert link.type.value == "file" and link.symlink_target == "/home/user/notes/a.txt", link
    print("ok files.list order + symlink info", flush=True)

    again = Sandbox.connect(sbx.sandbox_id)
    assert again.commands.run("echo again").stdout == "again\n"
    print("ok connect", flush=True)

    other = Sandbox.create(template="base", timeout=60, metadata={"suite": "compat", "run": "other-" + run_id})
    try:
        found = Sandbox.list(query=SandboxQuery(metadata={"run": run_id})).next_items()
        ids = [s.sandbox_id for s in found]
        assert ids == [sbx.sandbox_id], ids
        print("ok list with metadata filter", flush=True)
        query = SandboxQuery(metadata={"suite": "compat"})
        ids = [s.sandbox_id for s in Sandbox.list(query=query, order="asc").next_items()]
        assert ids == [sbx.sandbox_id, other.sandbox_id], ids
        query = SandboxQuery(metadata={"suite": "compat"}, template="base", started_after=sbx.get_info().started_at)
        ids = [s.sandbox_id for s in Sandbox.list(query=query).next_items()]
        assert ids == [other.sandbox_id], ids
        print("ok list order, template and started_after", flush=True)
    finally:
        other.kill()

    sbx.set_timeout(300)
    info = sbx.get_info()
    left = (info.end_at - info.started_at).total_seconds()
    assert 290 <= left <= 320, left
    print("ok set_timeout", flush=True)
finally:
    first = sbx.kill()
    second = sbx.kill()

assert first is True, first
assert second is False, second
assert not sbx.is_running()
print("ok kill twice", flush=True)
print("ALL OK")
sys.exit(0)
