"""Start a turn, stream its output, survive a dropped stream, read the final detail.

Standard library only. MAYFLY_URL (default http://127.0.0.1:8787) and MAYFLY_KEY say where and
who; `cargo xtask dev` prints both.
"""
import json
import os
import urllib.request
import uuid

URL = os.environ.get("MAYFLY_URL", "http://127.0.0.1:8787")
KEY = os.environ["MAYFLY_KEY"]

CODE = """
import os, time, psycopg
with psycopg.connect(os.environ["PG_URL"]) as db:
    for i in range(3):
        print("row", db.execute("SELECT %s::int", (i,)).fetchone()[0], flush=True)
        time.sleep(0.2)
"""


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(URL + path, method=method, data=body and json.dumps(body).encode())
    request.add_header("Authorization", f"Bearer {KEY}")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    return urllib.request.urlopen(request)


def events(turn_id, last_seq):
    """The turn's events after `last_seq`, as Server-Sent Events, until the stream ends."""
    stream = call("GET", f"/v1/turns/{turn_id}/events", headers={
        "Accept": "text/event-stream",
        "Last-Event-ID": str(last_seq),
    })
    with stream:
        for line in stream:
            if line.startswith(b"data: "):
                yield json.loads(line[len(b"data: "):])


# The same Idempotency-Key on a retry gives back this turn instead of starting a second one.
created = json.load(call("POST", "/v1/turns", {"code": CODE, "language": "python", "database": True},
                         headers={"Idempotency-Key": str(uuid.uuid4())}))
turn_id = created["turn_id"]
print("turn", turn_id)

last_seq, dropped, finished = 0, False, False
while not finished:
    for event in events(turn_id, last_seq):
        last_seq = event["seq"]
        if event["type"] == "stdout":
            print(event["data"], end="")
        finished = event["type"] == "turn.finished"
        if event["type"] == "stdout" and not dropped:
            # A connection drops: resume from the last event seen, missing nothing.
            dropped = True
            break

detail = json.load(call("GET", f"/v1/turns/{turn_id}"))
print("outcome", detail["outcome"], "exit", detail.get("exit_code"))
print("reaped", all(r["reap"] in ("reaped", "kept") for r in detail["resources"]) or "pending")
