// The live view under trouble, and the embed view: the event stream is cut from the page's side
// mid-turn and the view resumes with no line lost or doubled; then a parent page drives the
// embed view over postMessage and receives every event.
// Usage: node live.mjs <base-url> <artifacts-dir> <api-key> <parent-port>; prints one JSON report.
// The parent page is served on <parent-port>, an origin the stack's EMBED_ORIGINS names.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { expectNoError, runNewTurn, session, signInWithLink } from './launch.mjs';

const [url, artifacts, key, parentPort] = process.argv.slice(2);

// Every WebSocket the app opens is kept where the test can reach it, and every state the link
// badge shows is recorded as it changes, however briefly.
const instrument = (context) => context.addInitScript(() => {
  window.__sockets = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
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

  // The embed view in an iframe of another site's page, driven by postMessage. The parent page
  // is served from another origin on this machine, by a server of the test's own.
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
        window.addEventListener('message', (e) => {
          if (e.origin !== ${JSON.stringify(url)}) return;
          window.messages.push(e.data);
          if (e.data.type === 'mayfly.ready') {
            document.getElementById('runner').contentWindow.postMessage({
              type: 'mayfly.run', language: 'python', database: false,
              code: 'import sys\\nprint("from the embed")\\nprint("to stderr", file=sys.stderr)\\n',
              api_key: ${JSON.stringify(key)},
            }, ${JSON.stringify(url)});
          }
        });
      </script>`;
  await page.goto(`${parent}/ide`);
  await page.waitForFunction(() => window.messages.some((m) => m.type === 'mayfly.event' && m.event.type === 'turn.finished'),
    null, { timeout: 60000 });
  report.embed = { messages: await page.evaluate(() => window.messages) };
  const frame = page.frameLocator('#runner');
  report.embed.has_header = await frame.locator('header.top').count();
  report.embed.output = await frame.getByTestId('output').textContent();
  await page.screenshot({ path: join(artifacts, 'embed.png') });
  server.close();
}, { beforeLoad: instrument });
