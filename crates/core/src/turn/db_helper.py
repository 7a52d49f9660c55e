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


def copy():
    """A fork's copy of its checkpoint where the provider cannot fork (hosted instanode)."""
    source = os.environ.pop("MAYFLY_SOURCE_URL")
    target = os.environ["PG_URL"]
    # libpq reads PG* variables: none but the URLs given on the command line may steer it.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    dump_command = ["pg_dump", "--no-owner", "--no-privileges", "--dbname", source]
    restore_command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--dbname", target]
    copied = 0
    # Their stderr goes to files, not pipes: a chatty pg_dump can then never stall on a full pipe.
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err:
        try:
            dump = subprocess.Popen(dump_command, stdout=subprocess.PIPE, stderr=dump_err, env=env)
            restore = subprocess.Popen(
                restore_command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=restore_err, env=env
            )
        except FileNotFoundError:
            sys.exit(
                "this sandbox's template has no pg_dump and psql, which a fork needs where the "
                "provider cannot fork: use mayfly's template (docs/templates.md)"
            )
        restore_stopped = False
        try:
            while chunk := dump.stdout.read(1 << 16):
                restore.stdin.write(chunk)
                copied += len(chunk)
            restore.stdin.close()
        except BrokenPipeError:
            # The restore stopped at an error: its words say why, not the dump's end.
            restore_stopped = True
            dump.kill()
        dumped, restored = dump.wait(), restore.wait()
        failures = [(dumped, dump_err, "pg_dump"), (restored, restore_err, "the restore")]
        for status, err, what in reversed(failures) if restore_stopped else failures:
            if status != 0:
                err.seek(0)
                lines = err.read().decode("utf-8", "replace").strip().splitlines()
                sys.exit(f"{what} failed: {lines[-1] if lines else f'status {status}'}")
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
