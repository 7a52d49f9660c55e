// The playground, as a person uses it: the key from the `#key=` link, the seed turn run with
// Ctrl-Enter, a failing turn, a cancelled one, a kept database, and the page at phone width.
// Usage: node playground.mjs <base-url> <artifacts-dir> <api-key>; prints one JSON report.
import { join } from 'node:path';
import { expectNoError, runNewTurn, session, signInWithLink } from './launch.mjs';

const [url, artifacts, key] = process.argv.slice(2);
let page;
let report;
const text = async (id) => (await page.getByTestId(id).textContent()) ?? '';

// Picks an example and runs it with the Run button; returns when the turn view is up.
async function runExample(id) {
  await page.getByTestId('example').selectOption(id);
  await runNewTurn(page);
}


async function waitOutcome(outcome) {
  await page.waitForSelector(`[data-testid="outcome"][data-outcome="${outcome}"]`, { timeout: 60000 });
}

// Clicks Cancel and waits for the API's answer to it and for the turn to end cancelled: an answer
// the page cannot read would show as an error by then.
async function cancelTurn() {
  const answered = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().includes('/v1/turns/'));
  await page.getByTestId('cancel').click();
  report.cancel_status = (await answered).status();
  await waitOutcome('cancelled');
}

async function waitReap(resource, state) {
  await page.waitForSelector(`[data-testid="resource-${resource}"][data-reap="${state}"]`, { timeout: 60000 });
}

async function turnSummary() {
  return {
    turn_id: await page.getByTestId('turn-view').getAttribute('data-turn-id'),
    outcome: await page.getByTestId('outcome').getAttribute('data-outcome'),
    exit: await text('exit-code'),
    stdout: (await page.locator('[data-testid="output"] .stdout').allTextContents()).join(''),
    stderr: (await page.locator('[data-testid="output"] .stderr').allTextContents()).join(''),
    link: await page.getByTestId('link').getAttribute('data-state'),
  };
}

await session('playground', artifacts, async (p, r) => {
  page = p;
  report = r;
  // The dev link carries the key in its fragment; asked, the person takes it, and the app keeps it
  // and wipes it from the URL.
  await signInWithLink(page, url, key);
  report.key_bar = await text('key-bar');
  report.url_after_key = page.url();
  await expectNoError(page, report, 'sign in');

  // The seed turn, started from the keyboard.
  await page.getByLabel('Agent code').focus();
  await page.keyboard.press('Control+Enter');
  await page.getByTestId('turn-view').waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(artifacts, 'playground-mid-turn.png'), fullPage: true });
  await page.waitForFunction(() => document.querySelector('[data-testid="output"]')?.textContent.includes('(1000000,)'),
    null, { timeout: 60000 });
  await waitOutcome('succeeded');
  await waitReap('sandbox', 'reaped');
  await waitReap('database', 'reaped');
  report.seed = await turnSummary();
  await expectNoError(page, report, 'seed turn');
  report.seed.phases_done = await page.$$eval('[data-testid^="phase-"]',
    (rows) => rows.map((r) => [r.dataset.testid, r.dataset.done, r.querySelector('.phase-ms').textContent]));
  report.seed.bars = await page.locator('[data-testid="timeline"] .bar').count();
  // Secrets on the page: no database URL (it carries the password) and not the whole API key.
  report.seed.page_secrets = await page.evaluate((k) => {
    const html = document.documentElement.outerHTML;
    return { db_url: /postgres(ql)?:\/\//.test(html), api_key: html.includes(k) };
  }, key);
  await page.screenshot({ path: join(artifacts, 'turn-finished.png'), fullPage: true });

  // A failing turn: its stderr, its exit code, and the outcome.
  await runExample('fail');
  await waitOutcome('failed');
  report.fail = await turnSummary();
  report.fail.error = await text('turn-error');
  await expectNoError(page, report, 'failing turn', ['turn-error']);

  // A long turn, cancelled once it has printed something.
  await runExample('count');
  await page.waitForFunction(() => document.querySelector('[data-testid="output"]')?.textContent.includes('line 3'),
    null, { timeout: 60000 });
  await cancelTurn();
  await waitReap('sandbox', 'reaped');
  report.cancel = await turnSummary();
  await expectNoError(page, report, 'cancel', ['turn-error']);

  // Keep the database of a running turn: the claim instructions and the connection URL.
  await page.getByLabel('Language').selectOption('python');
  await page.getByLabel('Database').check();
  await page.getByLabel('Agent code').fill('import time\nprint("waiting", flush=True)\ntime.sleep(60)\n');
  await runNewTurn(page);
  await page.waitForFunction(() => document.querySelector('[data-testid="output"]')?.textContent.includes('waiting'),
    null, { timeout: 60000 });
  await page.waitForSelector('[data-testid="resource-database"][data-reap="live"]', { timeout: 20000 });
  const countdown = await text('countdown-database');
  await page.getByTestId('keep').click();
  await page.getByTestId('claim-instructions').waitFor({ timeout: 30000 });
  report.keep = {
    instructions: await text('claim-instructions'),
    connection_url: await page.getByTestId('connection-url').inputValue(),
    countdown,
  };
  await expectNoError(page, report, 'keep');
  await cancelTurn();
  await waitReap('database', 'kept');
  await waitReap('sandbox', 'reaped');
  report.keep.turn = await turnSummary();
  await expectNoError(page, report, 'cancel a kept turn', ['turn-error']);

  // The dashboard lists every turn of the tenant with its reap states.
  await page.getByRole('link', { name: 'Turns' }).click();
  await page.getByTestId('turns-table').waitFor({ timeout: 20000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="turn-row"]').length >= 4, null,
    { timeout: 20000 });
  report.dashboard = await page.$$eval('[data-testid="turn-row"]', (rows) => rows.map((r) => ({
    turn_id: r.dataset.turnId,
    outcome: r.querySelector('[data-testid="turn-outcome"]').textContent,
    sandbox: r.querySelector('[data-testid="reap-sandbox"]').textContent,
    database: r.querySelector('[data-testid="reap-database"]').textContent,
  })));
  report.reaper_alive = await text('reaper-alive');
  report.dashboard_secrets = await page.evaluate((k) => {
    const html = document.documentElement.outerHTML;
    return { db_url: /postgres(ql)?:\/\//.test(html), api_key: html.includes(k) };
  }, key);
  report.reaper_sweep = await text('reaper-sweep');
  await expectNoError(page, report, 'dashboard');
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });

  // A finished turn's own page, and the playground, at phone width: nothing wider than the screen.
  await page.locator('[data-testid="turn-row"] a').first().click();
  await page.waitForSelector('[data-testid="turn-view"] [data-testid="link"][data-state="done"]', { timeout: 20000 });
  await page.setViewportSize({ width: 390, height: 844 });
  report.narrow_turn_width = await page.evaluate(() => document.documentElement.scrollWidth);
  // The newest turn, the kept one, was cancelled: its page says so.
  await expectNoError(page, report, 'a turn\'s own page', ['turn-error']);
  await page.screenshot({ path: join(artifacts, 'turn-390.png'), fullPage: true });
  await page.getByRole('link', { name: 'Playground' }).click();
  await page.getByTestId('page-playground').waitFor();
  report.narrow_playground_width = await page.evaluate(() => document.documentElement.scrollWidth);
  await expectNoError(page, report, 'back to the playground');
  await page.screenshot({ path: join(artifacts, 'playground-390.png'), fullPage: true });
});
