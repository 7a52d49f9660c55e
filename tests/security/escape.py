# Escape attempts run as one turn's code. Each prints `escape <name>: blocked` or
# `escape <name>: ESCAPED <what it got>`; the test fails on any ESCAPED and on any attempt that
# printed nothing. The other turn (the victim) and the host's paths come in the environment.
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

import psycopg

env = dict(os.environ)
# The victim's names come reversed, so that this turn's own environment does not hold them.
for name in ("VICTIM_MARK", "VICTIM_SANDBOX"):
    env[name] = env[name][::-1]


def verdict(name, got):
    print(f"escape {name}: " + (f"ESCAPED {got}" if got else "blocked"), flush=True)


def attempt(name, probe):
    try:
        verdict(name, probe())
    except Exception as err:  # an attempt that crashes got nothing
        print(f"attempt {name} failed closed: {type(err).__name__}: {err}", flush=True)
        verdict(name, None)


def read(path, size=200):
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return None


def host_files():
    got = [p for p in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/proc/1/root/etc/shadow") if read(p)]
    return got or None


def root_home():
    got = os.listdir("/root") + [p for p in ("/root/.bashrc", "/proc/1/root/root/.bashrc") if read(p)]
    return got or None


def checkout():
    paths = [env["CHECKOUT"], env["CHECKOUT"] + "/Cargo.toml", "/work", "/proc/1/root" + env["CHECKOUT"]]
    got = [p for p in paths if os.path.exists(p)]
    return got or None


def sandbox_state():
    got = [p for p in (env["STATE_DIR"], "/proc/1/root" + env["STATE_DIR"]) if os.path.exists(p)]
    return got or None


def victim_files():
    mark = env["VICTIM_MARK"].encode()
    found = []
    for top in os.listdir("/"):
        if top in ("proc", "sys", "dev", "usr", "opt"):
            continue
        for root, _, files in os.walk("/" + top):
            for name in files:
                data = read(os.path.join(root, name))
                if data and mark in data:
                    found.append(os.path.join(root, name))
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for path in ("/home/user/secret.txt", "/tmp/secret.txt"):
            data = read(f"/proc/{pid}/root{path}")
            if data and mark in data:
                found.append(f"/proc/{pid}/root{path}")
    return found or None


def processes():
    # Only this jail's processes are visible: no other turn's, no host's.
    victim = (env["VICTIM_MARK"].encode(), env["VICTIM_SANDBOX"].encode())
    host = (b"workerd", b"wrangler", b"bin/postgres")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        cmdline = read(f"/proc/{pid}/cmdline", 1 << 16) or b""
        environ = read(f"/proc/{pid}/environ", 1 << 16) or b""
        if any(w in cmdline or w in environ for w in victim) or any(w in cmdline for w in host):
            found.append(f"{pid}: {cmdline[:80]!r}")
    return found or None


def signal_host():
    got = []
    for pid in map(int, env["HOST_PIDS"].split(",")):
        if os.path.exists(f"/proc/{pid}"):
            continue  # a process of this jail that happens to have the same number
        try:
            os.kill(pid, 0)
            got.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return got or None


def victim_db_with_own_credentials():
    url = urllib.parse.urlsplit(env["PG_URL"])
    other = url._replace(path="/" + env["VICTIM_DB"]).geturl()
    try:
        with psycopg.connect(other, connect_timeout=5) as conn:
            return conn.execute("select current_database()").fetchone()
    except psycopg.OperationalError:
        return None


def victim_db_with_guesses():
    url = urllib.parse.urlsplit(env["PG_URL"])
    mine = url.password
    victim = env["VICTIM_DB"]
    guesses = [
        ("postgres", "postgres", "postgres"),
        ("postgres", "", "postgres"),
        ("postgres", mine, "postgres"),
        ("postgres", "postgres", victim),
        (victim, mine, victim),
        (victim, victim, victim),
        (victim, "", victim),
        ("root", "", "postgres"),
        (url.username, mine, "postgres"),
        (url.username, mine, "template1"),
    ]
    got = []
    for user, password, db in guesses:
        try:
            with psycopg.connect(host=url.hostname, port=url.port, user=user, password=password, dbname=db,
                                 connect_timeout=5) as conn:
                got.append((user, db, conn.execute("select current_database()").fetchone()))
        except psycopg.OperationalError:
            pass
    for socket_dir in ("/var/run/postgresql", "/run/postgresql", "/tmp"):
        try:
            with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", connect_timeout=5):
                got.append(socket_dir)
        except psycopg.OperationalError:
            pass
    return got or None


def own_db_is_not_a_superuser():
    with psycopg.connect(env["PG_URL"]) as conn:
        row = conn.execute("select rolsuper or rolcreaterole or rolcreatedb from pg_roles where rolname = current_user")
        return "privileged role" if row.fetchone()[0] else None


def http(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(300)
    except urllib.error.HTTPError as err:
        return err.code, err.read(300)
    except urllib.error.URLError:
        return 0, b""  # nothing listens there: as blocked as it gets


def providers_without_credentials():
    sandbox = {"E2b-Sandbox-Id": env["VICTIM_SANDBOX"], "E2b-Sandbox-Port": "49983"}
    tries = [
        (env["SANDBOXD_URL"] + "/sandboxes", {}),
        (env["SANDBOXD_URL"] + "/v2/sandboxes", {"X-API-Key": "e2b_guess"}),
        (env["SANDBOXD_URL"] + "/files?path=/home/user/secret.txt", sandbox),
        (env["SANDBOXD_URL"] + "/files?path=/home/user/secret.txt", {**sandbox, "X-Access-Token": "guess"}),
        (env["SCRATCHDB_URL"] + "/api/v1/resources", {}),
        (env["SCRATCHDB_URL"] + "/api/v1/resources", {"Authorization": "Bearer guess"}),
        (env["WORKER_URL"] + "/v1/turns", {}),
        (env["WORKER_URL"] + "/v1/turns/" + env["VICTIM_TURN"], {"Authorization": "Bearer guess"}),
    ]
    got = []
    for url, headers in tries:
        status, body = http(url, headers)
        if 0 < status < 400 or env["VICTIM_MARK"].encode() in body:
            got.append((url, status))
    return got or None


def victim_server():
    # The victim listens on its own 127.0.0.1:7000 and answers with its mark.
    try:
        with socket.create_connection(("127.0.0.1", 7000), timeout=5) as conn:
            got = conn.recv(200)
    except OSError:
        return None
    return got if env["VICTIM_MARK"].encode() in got else None


def loopback_ports():
    # The one port a turn reaches on its loopback is its database's: no provider, no worker, no
    # debugger's port, no other turn's server.
    database = urllib.parse.urlsplit(env["PG_URL"]).port
    found = []
    for port in range(1, 65536):
        if port == database:
            continue
        with socket.socket() as probe:
            probe.settimeout(0.5)
            # A connection to itself (source port = the port tried) is TCP's simultaneous open,
            # not a listener.
            if probe.connect_ex(("127.0.0.1", port)) == 0 and probe.getsockname()[1] != port:
                found.append(port)
    return found or None


for name, probe in [
    ("host_files", host_files),
    ("root_home", root_home),
    ("checkout", checkout),
    ("sandbox_state", sandbox_state),
    ("victim_files", victim_files),
    ("processes", processes),
    ("signal_host", signal_host),
    ("victim_db_own_credentials", victim_db_with_own_credentials),
    ("victim_db_guessed_credentials", victim_db_with_guesses),
    ("own_db_privileges", own_db_is_not_a_superuser),
    ("providers_without_credentials", providers_without_credentials),
    ("victim_server", victim_server),
    ("loopback_ports", loopback_ports),
]:
    attempt(name, probe)
