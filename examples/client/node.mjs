// The client package in a JavaScript runtime (Node.js 22, which has fetch and WebSocket): start a
// turn, print its output as it streams, then how it ended.
//
// MAYFLY_URL (default http://127.0.0.1:8787) and MAYFLY_KEY say where and who; `cargo xtask dev`
// prints both. The package is `cargo xtask build`'s target/dist/client.
import { readFile } from 'node:fs/promises';
import init, { MayflyClient } from '../../target/dist/client/mayfly_client.js';

const url = process.env.MAYFLY_URL ?? 'http://127.0.0.1:8787';
// The module fetches its wasm in a browser; here it is handed the bytes.
await init({ module_or_path: await readFile(new URL('../../target/dist/client/mayfly_client_bg.wasm', import.meta.url)) });

const client = new MayflyClient(url, process.env.MAYFLY_KEY);
const code = 'for i in range(3):\n    print("row", i, flush=True)\n';
const turn = await client.createTurn({ code, language: 'python', database: false }, crypto.randomUUID());
console.log('turn', turn.turn_id);
const finished = await client.events(turn.turn_id, (event) => {
  if (event.type === 'stdout') process.stdout.write(event.data);
});
const detail = await client.detail(turn.turn_id);
console.log('outcome', finished.outcome, 'exit', detail.exit_code);
