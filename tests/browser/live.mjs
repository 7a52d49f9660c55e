// The live view under trouble, and another site's page: the event stream is cut from the page's
// side mid-turn and the view resumes with no line lost or doubled; then a page of another origin
// calls the API itself with a turn token, hands the token to the embed view and drives it over
// postMessage, receiving every event; a page of an origin not allowed cannot call the API.
// Usage: node live.mjs <base-url> <artifacts-dir> <api-key> <parent-port> <turn-token>; prints one
// JSON report. The parent page is served on <parent-port>, an origin the stack's EMBED_ORIGINS and
// CORS_ORIGINS name.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { expectNoError, runNewTurn, session, signInWithLink } from './launch.mjs';

const [url, artifacts, key, parentPort, token] = process.argv.slice(2);
// What a credential seen on the wire was, without printing it.
const credential = (value) => (value?.includes(token) ? 'token' : value?.includes(key) ? 'key' : String(value));

// Every WebSocket the app opens is kept where the test can reach it, and every state the link
// badge shows is recorded as it changes, however briefly.
const instrument = (context) => context.addInitScript(() => {
  window.__sockets = [];
  window.__offers = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      window.__offers.push([].concat(args[1] ?? []));
    }
  };
  window.__linkStates = [];
  new MutationObserver(() => {
    const state = document.querySelector('[data-testid="link"]')?.dataset.state;
    if (state && window.__linkStates.at(-1) !== state) window.__linkStates.push(state);
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
});

const LINES = 60;
const code = `import time\nfor i in range(1, ${LINES + 1}):\n    print(f"n{i}", flush=True)\n    time.sleep(0.05)\n`;

await session('live', artifacts, async (page, report) => {
  await signInWithLink(page, url, key);
  await page.getByLabel('Database').uncheck();
  await page.getByLabel('Agent code').fill(code);
  await runNewTurn(page);
  await page.waitForFunction(() => /\bn10\b/.test(document.querySelector('[data-testid="output"]')?.textContent ?? ''),
    null, { timeout: 60000 });
  // Cut the stream from the page's side, as a flaky network would.
  report.closed = await page.evaluate(() => {
    const open = window.__sockets.filter((s) => s.readyState === WebSocket.OPEN);
    open.forEach((s) => s.close());
    return open.length;
  });
  // Once the output overflows its box, the reader scrolls up to read: the view must stop
  // following the output.
  await page.waitForFunction(() => /\bn30\b/.test(document.querySelector('[data-testid="output"]')?.textContent ?? ''),
    null, { timeout: 60000 });
  await page.getByTestId('output').hover();
  await page.mouse.wheel(0, -5000);
  await page.getByRole('button', { name: '↓ follow output' }).waitFor({ timeout: 5000 });
  await page.waitForSelector('[data-testid="outcome"][data-outcome="succeeded"]', { timeout: 60000 });
  report.reconnect = {
    output: await page.getByTestId('output').textContent(),
    link_states: await page.evaluate(() => window.__linkStates),
    sockets: await page.evaluate(() => window.__sockets.map((s) => s.url.replace(/^.*\/events/, '/events'))),
    protocols: await page.evaluate(() => window.__sockets.map((s) => s.protocol)),
    below_view: await page.getByTestId('output').evaluate((el) => el.scrollHeight - el.clientHeight - el.scrollTop),
    overflowing: await page.getByTestId('output').evaluate((el) => el.scrollHeight > el.clientHeight),
    follow_button: await page.getByRole('button', { name: '↓ follow output' }).count(),
  };
  await expectNoError(page, report, 'a stream cut mid-turn');

  // Colours: rendered as styles, with nothing of the escape syntax left in the text.
  await page.getByTestId('example').selectOption('colours');
  await runNewTurn(page);
  await page.waitForSelector('[data-testid="outcome"][data-outcome="succeeded"]', { timeout: 60000 });
  report.colours = {
    red: await page.locator('[data-testid="output"] .ansi-fg-1.ansi-bold').allTextContents(),
    text: await page.getByTestId('output').textContent(),
  };
  await expectNoError(page, report, 'terminal colours');

  // Two megabytes of output: the page shows the first one and says how much it left out.
  await page.getByLabel('Language').selectOption('python');
  await page.getByLabel('Agent code').fill('import sys\nfor i in range(2048):\n    sys.stdout.write(str(i % 10) * 1023 + "\\n")\n');
  await runNewTurn(page);
  await page.waitForSelector('[data-testid="outcome"][data-outcome="succeeded"]', { timeout: 60000 });
  await page.getByTestId('output-capped').waitFor({ timeout: 10000 });
  report.capped = {
    notice: await page.getByTestId('output-capped').textContent(),
    shown: await page.getByTestId('output').evaluate((el) => el.textContent.length),
  };
  await expectNoError(page, report, 'output past the page\'s cap');

  // Another site's page, served from another origin on this machine by a server of the test's
  // own. It calls the API itself with a turn token (its browser's own preflight first), then
  // hands the token to the embed view and drives it over postMessage.
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(parentPage(`http://127.0.0.1:${server.address().port}`));
  });
  await new Promise((resolve) => server.listen(Number(parentPort), '127.0.0.1', resolve));
  // A failing test must not be kept alive by it.
  server.unref();
  const parent = `http://127.0.0.1:${server.address().port}`;
  const parentPage = (origin) => `<!doctype html><title>an IDE</title>
      <iframe id="runner" src="${url}/embed?origin=${encodeURIComponent(origin)}" style="width:900px;height:640px"></iframe>
      <script>
        window.messages = [];
        window.addEventListener('message', (e) => { if (e.origin === ${JSON.stringify(url)}) window.messages.push(e.data); });
        const frame = () => document.getElementById('runner').contentWindow;
        window.handToken = (token) => frame().postMessage({ type: 'mayfly.token', token }, ${JSON.stringify(url)});
        window.run = () => frame().postMessage({
          type: 'mayfly.run', language: 'python', database: false,
          code: 'import sys\\nprint("from the embed")\\nprint("to stderr", file=sys.stderr)\\n',
        }, ${JSON.stringify(url)});
      </script>`;
  const requests = [];
  // Only the IDE's page and its frame: the playground this page showed before may still have a
  // request in flight, with the key saved in this browser.
  const watched = (frameUrl) => frameUrl.startsWith(`${parent}/`) || frameUrl.startsWith(`${url}/embed`);
  page.on('request', (r) => {
    if (r.url().startsWith(`${url}/v1/`) && watched(r.frame().url())) {
      requests.push({ method: r.method(), path: new URL(r.url()).pathname, from: new URL(r.frame().url()).origin, auth: credential(r.headers().authorization) });
    }
  });
  await page.goto(`${parent}/ide`);

  // The page calls the API across origins with the token: its browser asks first (a preflight,
  // for the Authorization header and the JSON body), then sends the request and reads the answer.
  report.cors = await page.evaluate(async ({ url, token }) => {
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const created = await fetch(`${url}/v1/turns`, { method: 'POST', headers, body: JSON.stringify({ code: 'print("called across origins")', database: false }) });
    const turn = await created.json();
    const detail = await fetch(`${url}${turn.status_url}`, { headers: { Authorization: `Bearer ${token}` } });
    return { create_status: created.status, turn_id: turn.turn_id, detail_status: detail.status, detail_turn: (await detail.json()).turn_id };
  }, { url, token });
  await expectNoError(page, report, 'a call across origins with a token');

  // The frame is ready; the page hands it the token, then asks for a run without any key.
  await page.waitForFunction(() => window.messages.some((m) => m.type === 'mayfly.ready'), null, { timeout: 20000 });
  const embed = page.frames().find((f) => f.url().startsWith(`${url}/embed`));
  await page.evaluate((token) => window.handToken(token), token);
  await expectNoError(embed, report, 'a token handed to the embed view');
  await page.evaluate(() => window.run());
  await page.waitForFunction(() => window.messages.some((m) => m.type === 'mayfly.event' && m.event.type === 'turn.finished'),
    null, { timeout: 60000 });
  const frame = page.frameLocator('#runner');
  await frame.getByTestId('outcome').waitFor({ timeout: 20000 });
  await expectNoError(embed, report, 'a turn run in the embed view with the token');
  report.embed = {
    messages: await page.evaluate(() => window.messages),
    has_header: await frame.locator('header.top').count(),
    output: await frame.getByTestId('output').textContent(),
    outcome: await frame.getByTestId('outcome').getAttribute('data-outcome'),
    // What the frame offered on its WebSockets: `mayfly` and the token as `bearer.<token>`.
    offers: (await embed.evaluate(() => window.__offers))
      .map((offer) => offer.map((p) => (p.startsWith('bearer.') ? `bearer.${credential(p.slice(7))}` : p))),
  };
  report.requests = requests;
  await page.screenshot({ path: join(artifacts, 'embed.png') });

  // A page of an origin the deployment does not name: its browser withholds the answer, so the
  // call fails. That page's console is its own, watched apart from the others.
  const stranger = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>another site</title>');
  });
  await new Promise((resolve) => stranger.listen(0, '127.0.0.1', resolve));
  stranger.unref();
  const other = await page.context().newPage();
  await other.goto(`http://127.0.0.1:${stranger.address().port}/`);
  report.stranger = await other.evaluate(async ({ url, token }) => {
    try {
      const answer = await fetch(`${url}/v1/turns/t_0123456789abcdef0123456789abcdef`, { headers: { Authorization: `Bearer ${token}` } });
      return { read: answer.status };
    } catch (err) {
      return { refused: String(err) };
    }
  }, { url, token });
  await other.close();
  stranger.close();
  server.close();
}, { beforeLoad: instrument });
