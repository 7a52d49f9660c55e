// The client library's example page, as a person uses it: the page (served next to the API)
// loads the package, runs a turn with the turn token typed in, streams its output — across a connection
// cut from the page's side — and shows the outcome, with no error.
// Usage: node client.mjs <base-url> <artifacts-dir> <turn-token>; prints one JSON report.
import { join } from 'node:path';
import { expectNoError, session } from './launch.mjs';

const [url, artifacts, key] = process.argv.slice(2);

// Every WebSocket the page opens is kept where the test can reach it, and every state the status
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
  window.__states = [];
  new MutationObserver(() => {
    const state = document.querySelector('[data-testid="status"]')?.dataset.state;
    if (state && window.__states.at(-1) !== state) window.__states.push(state);
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
});

const LINES = 40;
const code = `import time\nfor i in range(1, ${LINES + 1}):\n    print(f"n{i}", flush=True)\n    time.sleep(0.05)\n`;

await session('client', artifacts, async (page, report) => {
  await page.goto(`${url}/examples/client/`);
  await page.waitForSelector('[data-testid="run"][data-ready="true"]', { timeout: 20000 });
  report.api = await page.getByTestId('api').inputValue();
  await page.getByTestId('key').fill(key);
  await page.getByTestId('code').fill(code);
  await page.getByTestId('database').uncheck();
  await page.getByTestId('run').click();
  await page.waitForFunction(() => /\bn5\b/.test(document.querySelector('[data-testid="output"]')?.textContent ?? ''),
    null, { timeout: 60000 });
  // Cut the stream from the page's side, as a flaky network would.
  report.closed = await page.evaluate(() => {
    const open = window.__sockets.filter((s) => s.readyState === WebSocket.OPEN);
    open.forEach((s) => s.close());
    return open.length;
  });
  await page.waitForSelector('[data-testid="outcome"][data-outcome="succeeded"]', { timeout: 60000 });
  report.run = {
    turn_id: await page.getByTestId('turn-id').textContent(),
    output: await page.getByTestId('output').textContent(),
    outcome: await page.getByTestId('outcome').textContent(),
    states: await page.evaluate(() => window.__states),
    sockets: await page.evaluate(() => window.__sockets.map((s) => s.url.replace(/^.*\/events/, '/events'))),
    protocols: await page.evaluate(() => window.__sockets.map((s) => s.protocol)),
  };
  await expectNoError(page, report, 'a turn streamed across a cut connection');
  await page.screenshot({ path: join(artifacts, 'client-example.png'), fullPage: true });
}, { beforeLoad: instrument });
