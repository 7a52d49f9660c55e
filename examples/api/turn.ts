// Start a turn, stream its output, survive a dropped stream, read the final detail.
//
// Plain `fetch` (Node 18+, Deno, Bun, browsers with a scoped token). MAYFLY_URL (default
// http://127.0.0.1:8787) and MAYFLY_KEY say where and who; `cargo xtask dev` prints both.

const URL_ = process.env.MAYFLY_URL ?? "http://127.0.0.1:8787";
const KEY = process.env.MAYFLY_KEY!;

type TurnEvent = { seq: number; at_ms: number; type: string; data?: string };
type Detail = { outcome?: string; exit_code?: number; resources: { reap: string }[] };

const code = `
import os, time, psycopg
with psycopg.connect(os.environ["PG_URL"]) as db:
    for i in range(3):
        print("row", db.execute("SELECT %s::int", (i,)).fetchone()[0], flush=True)
        time.sleep(0.2)
`;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const answer = await fetch(URL_ + path, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${await answer.text()}`);
  return answer;
}

/** The turn's events after `lastSeq`, as Server-Sent Events, until the stream ends. */
async function* events(turnId: string, lastSeq: number): AsyncGenerator<TurnEvent> {
  const answer = await call("GET", `/v1/turns/${turnId}/events`, undefined, {
    Accept: "text/event-stream",
    "Last-Event-ID": String(lastSeq),
  });
  const reader = answer.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split("\n").find((line) => line.startsWith("data: "));
        if (data) yield JSON.parse(data.slice("data: ".length));
      }
    }
  } finally {
    await reader.cancel();
  }
}

// The same Idempotency-Key on a retry gives back this turn instead of starting a second one.
const created = await (
  await call("POST", "/v1/turns", { code, language: "python", database: true }, {
    "Idempotency-Key": crypto.randomUUID(),
  })
).json();
const turnId: string = created.turn_id;
console.log("turn", turnId);

let lastSeq = 0;
let dropped = false;
let finished = false;
while (!finished) {
  for await (const event of events(turnId, lastSeq)) {
    lastSeq = event.seq;
    if (event.type === "stdout") process.stdout.write(event.data!);
    finished = event.type === "turn.finished";
    if (event.type === "stdout" && !dropped) {
      // A connection drops: resume from the last event seen, missing nothing.
      dropped = true;
      break;
    }
  }
}

const detail: Detail = await (await call("GET", `/v1/turns/${turnId}`)).json();
console.log("outcome", detail.outcome, "exit", detail.exit_code);
console.log("reaped", detail.resources.every((r) => r.reap === "reaped" || r.reap === "kept") || "pending");
