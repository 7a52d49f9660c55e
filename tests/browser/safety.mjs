// What a page of mayfly never hands away: a `#key=` link does not replace a saved, different key
// without asking; the embed view runs nothing on its own and spends no saved key unless the page
// framing it is the origin the embed URL pins, nor a turn token from any other parent; and a page
// of an origin the deployment does not name cannot frame it at all.
// Usage: node safety.mjs <base-url> <artifacts-dir> <key-a> <key-b> <allowed-port> <denied-port> <token>
// The stack's EMBED_ORIGINS names http://127.0.0.1:<allowed-port> and not the other.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { session } from './launch.mjs';

const [url, artifacts, keyA, keyB, allowedPort, deniedPort, token] = process.argv.slice(2);
const allowed = `http://127.0.0.1:${allowedPort}`;
const denied = `http://127.0.0.1:${deniedPort}`;

// The embedding pages: /pinned pins its own origin, /unpinned pins none, /elsewhere pins another;
// all ask for autorun. Each records what the frame tells it.
const embedPage = (origin, pin) => {
  const query = new URLSearchParams({ code: 'print("ran on its own")', language: 'python', database: 'false', autorun: '1' });
  if (pin) query.set('origin', pin);
  return `<!doctype html><title>an IDE</title>
    <iframe id="runner" src="${url}/embed?${query}" style="width:900px;height:500px"></iframe>
    <script>
      window.messages = [];
      window.addEventListener('message', (e) => { if (e.origin === ${JSON.stringify(url)}) window.messages.push(e.data); });
      window.handToken = (token) => document.getElementById('runner').contentWindow
        .postMessage({ type: 'mayfly.token', token }, ${JSON.stringify(url)});
    </script>`;
};
const serve = (port, origin) => {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    const pin = { '/pinned': origin, '/unpinned': null, '/elsewhere': 'https://ide.example' }[req.url];
    res.end(embedPage(origin, pin));
  });
  server.unref();
  return new Promise((resolve) => server.listen(Number(port), '127.0.0.1', () => resolve(server)));
};

const text = (frameOrPage, id) => frameOrPage.getByTestId(id).textContent();
const storedKey = (page) => page.evaluate(() => localStorage.getItem('mayfly.api_key'));

await session('safety', artifacts, async (page, report) => {
  const creates = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/v1/turns')) creates.push(r.frame().url()); });

  // Even a fresh browser asks before a link signs it in, and takes nothing until answered.
  await page.goto(`${url}/#key=${encodeURIComponent(keyA)}`);
  await page.getByTestId('key-offer').waitFor({ timeout: 20000 });
  report.fresh = {
    new: await text(page, 'key-offer-new'),
    saved: await page.getByTestId('key-offer-saved').count(),
    stored: await storedKey(page),
    url: page.url(),
  };
  await page.getByTestId('key-offer-use').click();
  await page.waitForSelector('[data-testid="key-bar"][data-state="set"]', { timeout: 20000 });
  report.first = { bar: await text(page, 'key-bar'), stored: await storedKey(page) };

  // A link with another key asks, showing the last four characters of each; keeping is kept.
  await page.goto(`${url}/turns#key=${encodeURIComponent(keyB)}`);
  await page.getByTestId('key-offer').waitFor({ timeout: 20000 });
  report.offer = {
    new: await text(page, 'key-offer-new'),
    saved: await text(page, 'key-offer-saved'),
    bar: await text(page, 'key-bar'),
    stored: await storedKey(page),
    url: page.url(),
  };
  await page.getByTestId('key-offer-keep').click();
  await page.getByTestId('key-offer').waitFor({ state: 'detached' });
  report.kept = { bar: await text(page, 'key-bar'), stored: await storedKey(page) };

  // Asked again, the person takes the link's key.
  await page.goto(`${url}/#key=${encodeURIComponent(keyB)}`);
  await page.getByTestId('key-offer-use').click();
  await page.getByTestId('key-offer').waitFor({ state: 'detached' });
  report.used = { bar: await text(page, 'key-bar'), stored: await storedKey(page) };
  await page.screenshot({ path: join(artifacts, 'key-offer-used.png') });

  // The embed view in pages of an allowed origin. Pinned and matching: it runs on its own,
  // with the key saved in this browser (the key B now).
  const servers = [await serve(allowedPort, allowed), await serve(deniedPort, denied)];
  await page.goto(`${allowed}/pinned`);
  await page.waitForFunction(() => window.messages.some((m) => m.type === 'mayfly.event' && m.event.type === 'turn.finished'),
    null, { timeout: 60000 });
  const pinned = page.frameLocator('#runner');
  report.pinned = {
    kinds: await page.evaluate(() => window.messages.map((m) => m.type)),
    output: await text(pinned, 'output'),
    creates: creates.length,
  };

  // Not pinned: nothing runs on its own, and it says why.
  for (const path of ['unpinned', 'elsewhere']) {
    const before = creates.length;
    await page.goto(`${allowed}/${path}`);
    const frame = page.frameLocator('#runner');
    await frame.getByTestId('notice').waitFor({ timeout: 20000 });
    report[path] = { notice: await text(frame, 'notice'), creates: creates.length - before };
  }
  // A token from a parent the frame does not pin is not taken: unpinned, the frame cannot tell
  // whose it is, and says so; pinned elsewhere, it does not even read the message.
  {
    const frame = page.frameLocator('#runner');
    await page.goto(`${allowed}/unpinned`);
    await frame.getByTestId('notice').waitFor({ timeout: 20000 });
    await page.waitForFunction(() => window.messages.some((m) => m.type === 'mayfly.ready'), null, { timeout: 20000 });
    const before = creates.length;
    await page.evaluate((token) => window.handToken(token), token);
    await frame.getByTestId('problem').waitFor({ timeout: 20000 });
    report.unpinned.token_problem = await text(frame, 'problem');
    await frame.getByTestId('run').click();
    await frame.getByText('no API key').waitFor({ timeout: 20000 });
    report.unpinned.token_run_problem = await text(frame, 'problem');
    report.unpinned.token_creates = creates.length - before;
    await page.goto(`${allowed}/elsewhere`);
    await frame.getByTestId('notice').waitFor({ timeout: 20000 });
    await page.evaluate((token) => window.handToken(token), token);
  }
  // Pressed by hand in a frame whose parent is not the pinned one, Run does not spend the saved key.
  {
    const before = creates.length;
    const frame = page.frameLocator('#runner');
    await frame.getByTestId('run').click();
    await frame.getByTestId('problem').waitFor({ timeout: 20000 });
    report.elsewhere.run_problem = await text(frame, 'problem');
    report.elsewhere.run_creates = creates.length - before;
  }
  await page.screenshot({ path: join(artifacts, 'embed-untrusted.png') });

  // A page of an origin the deployment does not name: the browser refuses to show the frame.
  // Its own console says so; that page is watched apart from the others.
  const other = await page.context().newPage();
  const refusals = [];
  other.on('console', (m) => { if (m.type() === 'error') refusals.push(m.text()); });
  await other.goto(`${denied}/pinned`);
  const deadline = Date.now() + 20000;
  while (!refusals.some((r) => r.includes('frame-ancestors')) && Date.now() < deadline) {
    await other.waitForEvent('console', { timeout: Math.max(1, deadline - Date.now()) }).catch(() => {});
  }
  report.denied = {
    refusals,
    frame_urls: other.frames().map((f) => f.url()),
    messages: await other.evaluate(() => window.messages.length),
  };
  await other.close();
  for (const server of servers) server.close();
});
