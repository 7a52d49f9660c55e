"""mayfly's database helper, run by the turn inside its own sandbox (docs/checkpoints.md).

    python3 db_helper.py seed FILE   runs the SQL in FILE against $PG_URL, in one transaction
    python3 db_helper.py summary     prints the database's tables, row counts, columns and size
    python3 db_helper.py copy        copies the database at $MAYFLY_SOURCE_URL into $PG_URL
                                     (pg_dump | psql, in one transaction), prints the bytes copied

It runs with the turn's own credentials and sees only the turn's own database, so what it does
and what it prints are no more trusted than the turn's code: mayfly bounds what it reads back.
"""

import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

# Kept in step with SUMMARY_MAX_TABLES, SUMMARY_MAX_COLUMNS, SUMMARY_MAX_NAME_BYTES and
# SUMMARY_MAX_BYTES in core's wire/database.rs (the JSON here may be longer, being cut by
# characters); core bounds what it reads back in any case.
MAX_TABLES = 200
MAX_COLUMNS = 100
MAX_NAME = 200
MAX_BYTES = 64 * 1024

TABLES = """
    SELECT n.nspname, c.relname, c.oid
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
     ORDER BY n.nspname, c.relname
     LIMIT %s
"""

COLUMNS = """
    SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      FROM pg_attribute a
     WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum
"""


def connect():
    try:
        import psycopg
    except ImportError:
        sys.exit(
            "this sandbox's template has no psycopg, which seeds and summaries need: "
            "use mayfly's template (docs/templates.md)"
        )
    return psycopg, psycopg.connect(os.environ["PG_URL"], connect_timeout=10)


def seed(path):
    with open(path, encoding="utf-8") as file:
        sql = file.read()
    psycopg, conn = connect()
    try:
        with conn:
            # No parameters: psycopg sends the text as one simple query, so it may hold many
            # statements, and the connection's transaction holds them all.
            conn.execute(sql)
    except psycopg.Error as error:
        sys.exit(f"the seed SQL failed: {str(error).strip()}")


def summary():
    psycopg, conn = connect()
    from psycopg import sql

    with conn:
        conn.read_only = True
        conn.execute("SET statement_timeout = '5s'")
        tables = []
        truncated = False
        found = conn.execute(TABLES, (MAX_TABLES + 1,)).fetchall()
        room = MAX_BYTES
        for schema, name, oid in found[:MAX_TABLES]:
            count = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            rows = conn.execute(count).fetchone()[0]
            columns = [row[0][:MAX_NAME] for row in conn.execute(COLUMNS, (oid,)).fetchall()]
            truncated = truncated or len(columns) > MAX_COLUMNS
            table = {"name": f"{schema}.{name}"[:MAX_NAME], "rows": rows, "columns": columns[:MAX_COLUMNS]}
            room -= len(json.dumps(table))
            if room < 0:
                truncated = True
                break
            tables.append(table)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    truncated = truncated or len(found) > MAX_TABLES
    print(json.dumps({"tables": tables, "bytes": size, "truncated": truncated}))


def without_password(url):
    """The URL with its password taken out, and the password: the password then goes to libpq
    through the environment of the one program that needs it, never on a command line, which
    everyone in the sandbox can read in /proc."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}")), urllib.parse.unquote(parts.password)


def said(err, status):
    """What a client tool said of its failure: its first error line (psql follows an error with
    `LINE n:` and a caret), else its last line."""
    err.seek(0)
    lines = [line.strip() for line in err.read().decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line or "FATAL:" in line or "error:" in line]
    return (errors or lines or [f"status {status}"])[0 if errors else -1]


def copy():
    """A fork's copy of its checkpoint where the provider cannot fork (hosted instanode): all of
    it, in one transaction, or nothing."""
    source, source_password = without_password(os.environ.pop("MAYFLY_SOURCE_URL"))
    target, target_password = without_password(os.environ["PG_URL"])
    # libpq reads PG* variables: none but the ones set here may steer it.
    base = {name: value for name, value in os.environ.items() if not name.startswith("PG")}

    def env(password):
        return {**base, "PGPASSWORD": password} if password is not None else base

    # -w: never wait for a password on a terminal; a lock someone holds on the checkpoint is an
    # error after 10 s, not a wait until the deadline.
    dump_command = ["pg_dump", "-w", "--lock-wait-timeout=10000", "--no-owner", "--no-privileges", "--dbname", source]
    restore_command = ["psql", "-w", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--dbname", target]
    copied = 0
    # Their stderr goes to files, not pipes: a chatty pg_dump can then never stall on a full pipe.
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err:
        try:
            dump = subprocess.Popen(dump_command, stdout=subprocess.PIPE, stderr=dump_err, env=env(source_password))
            restore = subprocess.Popen(
                restore_command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=restore_err,
                env=env(target_password),
            )
        except FileNotFoundError:
            sys.exit(
                "this sandbox's template has no pg_dump and psql, which a fork needs where the "
                "provider cannot fork: use mayfly's template (docs/templates.md)"
            )
        try:
            while chunk := dump.stdout.read(1 << 16):
                restore.stdin.write(chunk)
                copied += len(chunk)
        except BrokenPipeError:
            # The restore stopped at an error: its words say why, not the dump's end.
            dump.kill()
            dump.wait()
            restore.wait()
            sys.exit(f"the restore failed: {said(restore_err, restore.returncode)}")
        dumped = dump.wait()
        if dumped != 0:
            # psql takes the end of its input, even inside a COPY, as the end: a dump cut short
            # would be committed. The restore is killed before its input ends, so it commits nothing.
            restore.kill()
            restore.wait()
            sys.exit(f"pg_dump failed: {said(dump_err, dumped)}")
        restore.stdin.close()
        restored = restore.wait()
        if restored != 0:
            sys.exit(f"the restore failed: {said(restore_err, restored)}")
    print(json.dumps({"bytes": copied}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"] and len(sys.argv) == 3:
        seed(sys.argv[2])
    elif sys.argv[1:] == ["summary"]:
        summary()
    elif sys.argv[1:] == ["copy"]:
        copy()
    else:
        sys.exit("usage: db_helper.py seed FILE | summary | copy")
