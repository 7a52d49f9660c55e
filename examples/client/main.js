// The example's one script: a file, not inline, since a page served by mayfly allows scripts from
// its own origin only. It uses the package `cargo xtask build` makes (target/dist/client), served
// next to this page as ./pkg/.
import init, { MayflyClient } from './pkg/mayfly_client.js';

// `init` fetches the wasm next to the module (Node.js passes its bytes instead).
await init();

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const form = $('form');
form.elements.api.value = new URLSearchParams(location.search).get('api') ?? location.origin;

function setStatus(state, text = state) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function showError(err) {
  const code = err.code ? ` [${err.code}]` : '';
  $('error').textContent = `${err.message ?? err}${code}`;
  $('error').hidden = false;
  setStatus('failed');
}

// A retry of the same create (after a timeout, say) must not start a second turn.
const idempotencyKey = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`;

let current = null;

async function run() {
  const client = new MayflyClient(form.elements.api.value, form.elements.key.value);
  $('output').replaceChildren();
  $('error').hidden = true;
  $('outcome').textContent = '';
  $('outcome').dataset.outcome = '';
  setStatus('creating', 'creating…');
  const request = { code: form.elements.code.value, language: 'python', database: form.elements.database.checked };
  const turn = await client.createTurn(request, idempotencyKey());
  current = { client, turnId: turn.turn_id };
  $('turn-id').textContent = turn.turn_id;
  $('cancel').disabled = false;
  const finished = await client.events(turn.turn_id, (event) => {
    if (event.type === 'stdout' || event.type === 'stderr') {
      const span = document.createElement('span');
      span.className = event.type;
      span.textContent = event.data;
      $('output').append(span);
    }
  }, {
    onStatus: (status) => status.state === 'connected'
      ? setStatus('live')
      : setStatus('reconnecting', `reconnecting… (attempt ${status.attempt})`),
  });
  $('cancel').disabled = true;
  setStatus('done', 'complete');
  const detail = await client.detail(turn.turn_id);
  const exit = detail.exit_code === undefined ? '' : ` · exit ${detail.exit_code}`;
  $('outcome').dataset.outcome = finished.outcome;
  $('outcome').textContent = `${finished.outcome.replace('_', ' ')}${exit}${finished.error ? ` — ${finished.error}` : ''}`;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  run().catch(showError);
});

$('cancel').addEventListener('click', () => {
  current?.client.cancel(current.turnId).catch(showError);
});

$('run').dataset.ready = 'true';
