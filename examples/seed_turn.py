# The seed's agent turn: use the scratch Postgres freely, nothing persists past the turn.
# Run it with `mayfly run examples/seed_turn.py`; it prints (1000000,).
import os

import psycopg

with psycopg.connect(os.environ["PG_URL"]) as conn:
    conn.execute("CREATE TABLE scratch AS SELECT * FROM generate_series(1,1000000)")
    print(conn.execute("SELECT COUNT(*) FROM scratch").fetchone())
