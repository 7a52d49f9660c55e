// Launches Debian's Chromium through playwright-core, offline: nothing is downloaded, and the
// flags keep Chromium from calling home on a machine without internet.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(join(process.env.MAYFLY_TOOLS_DIR, 'package.json'));
const { chromium } = require('playwright-core');

export async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'mayfly-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { context, page, errors, userDataDir };
}

// Runs `steps(page, report)` in a fresh browser and prints `report` as one JSON line, whatever
// happens: a step that throws is reported as `failure`, with a screenshot `<name>-failure.png`.
export async function session(name, artifacts, steps, { beforeLoad } = {}) {
  const { context, page, errors, userDataDir } = await launch();
  const report = { errors, shown_errors: [] };
  try {
    if (beforeLoad) await beforeLoad(context);
    await steps(page, report);
  } catch (err) {
    report.failure = String(err?.stack ?? err);
    await page.screenshot({ path: join(artifacts, `${name}-failure.png`), fullPage: true }).catch(() => {});
  } finally {
    console.log(JSON.stringify(report));
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

// Clicks Run and waits for the view of the new turn: the previous turn's view stays up until
// the new one is created, so waiting on its outcome would read the old turn.
export async function runNewTurn(page) {
  const view = page.getByTestId('turn-view');
  const previous = await view.getAttribute('data-turn-id', { timeout: 1000 }).catch(() => null);
  await page.getByTestId('run').click();
  await page.waitForSelector(`[data-testid="turn-view"]:not([data-turn-id="${previous}"])`, { timeout: 15000 });
}

// Opens `url` with the key in a `#key=` link, as `cargo xtask dev` prints it, and accepts the key
// when the page asks (it always asks before it takes a key from a link).
export async function signInWithLink(page, url, key) {
  await page.goto(`${url}/#key=${encodeURIComponent(key)}`);
  await page.getByTestId('key-offer-use').click({ timeout: 20000 });
  await page.waitForSelector('[data-testid="key-bar"][data-state="set"]', { timeout: 20000 });
}

// What the page shows as an error right now: every visible `.error` or `role="alert"` element,
// but those whose `data-testid` the step expects.
export async function shownErrors(page, expected = []) {
  return page.$$eval('.error, [role="alert"]', (elements, expected) => elements
    .filter((e) => e.offsetParent !== null && !expected.includes(e.dataset.testid))
    .map((e) => `${e.dataset.testid ?? e.className}: ${e.textContent.trim()}`), expected);
}

// After an action a person takes: the page shows no error but those `expected`. What it does show
// goes into `report.shown_errors`, which the test requires to be empty.
export async function expectNoError(page, report, step, expected = []) {
  const shown = await shownErrors(page, expected);
  if (shown.length > 0) report.shown_errors.push({ step, shown });
}
