#!/bin/sh
# Start a turn, stream its output, survive a dropped stream, read the final detail.
#
# curl and jq. MAYFLY_URL (default http://127.0.0.1:8787) and MAYFLY_KEY say where and who;
# `cargo xtask dev` prints both.
set -eu
URL=${MAYFLY_URL:-http://127.0.0.1:8787}
AUTH="Authorization: Bearer $MAYFLY_KEY"

CODE='import os, time, psycopg
with psycopg.connect(os.environ["PG_URL"]) as db:
    for i in range(3):
        print("row", db.execute("SELECT %s::int", (i,)).fetchone()[0], flush=True)
        time.sleep(0.2)'

# The same Idempotency-Key on a retry gives back this turn instead of starting a second one.
TURN=$(jq -n --arg code "$CODE" '{code: $code, language: "python", database: true}' |
  curl -sSf -X POST "$URL/v1/turns" -H "$AUTH" -H "Content-Type: application/json" \
    -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" --data-binary @- | jq -r .turn_id)
echo "turn $TURN"

# The events after a seq, as Server-Sent Events, one JSON object a line.
events() {
  curl -sfN "$URL/v1/turns/$TURN/events" -H "$AUTH" -H "Accept: text/event-stream" \
    -H "Last-Event-ID: $1" | sed -un 's/^data: //p'
}
# The first read stops after the first line of output, as a dropped connection would; the second
# resumes after the last event seen, missing nothing.
FIRST=$(events 0 | jq -c --unbuffered 'select(.type == "stdout")' | head -n 1)
printf '%s\n' "$FIRST" | jq -j .data
events "$(printf '%s\n' "$FIRST" | jq .seq)" | jq -j 'select(.type == "stdout") | .data'

curl -sSf "$URL/v1/turns/$TURN" -H "$AUTH" |
  jq -r '"outcome \(.outcome) exit \(.exit_code)", "reaped \(all(.resources[]; .reap == "reaped" or .reap == "kept") // "pending")"'
