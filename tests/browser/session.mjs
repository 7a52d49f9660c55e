// An agent session in the playground (docs/checkpoints.md): a base turn seeds a schema and
// fixtures and keeps its database as a checkpoint; a fork of it adds rows; a fork of the fork adds
// a table; each shows its database's summary with what it changed and the turn it came from. The
// base's checkpoint is then kept longer and released from its own page, a fork of it is refused,
// and the dashboard lists the checkpoint still live.
// Usage: node session.mjs <base-url> <artifacts-dir> <api-key>; prints one JSON report.
import { join } from 'node:path';
import { expectNoError, runNewTurn, session, signInWithLink } from './launch.mjs';

const [url, artifacts, key] = process.argv.slice(2);
const started = Date.now();
let page;
let report;

const SEED = `CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO items (name) VALUES ('a'), ('b'), ('c');`;

// Python run in a turn: `sql` against the turn's database, then how many rows `items` has.
const code = (sql) => `import os, psycopg
with psycopg.connect(os.environ["PG_URL"]) as conn:
    conn.execute(${JSON.stringify(sql)})
    print(conn.execute("SELECT count(*) FROM items").fetchone()[0])
`;

const view = () => page.getByTestId('turn-view');

async function waitOutcome(outcome) {
  await page.waitForSelector(`[data-testid="outcome"][data-outcome="${outcome}"]`, { timeout: 90000 });
}

// Whether the page's HTML holds a database URL anywhere (they carry the password).
const dbUrlOnPage = () => page.evaluate(() => /postgres(ql)?:\/\//.test(document.documentElement.outerHTML));

// What the current turn view shows of the turn and its place in the session.
async function turnReport() {
  return {
    turn_id: await view().getAttribute('data-turn-id'),
    outcome: await page.getByTestId('outcome').getAttribute('data-outcome'),
    stdout: (await page.locator('[data-testid="output"] .stdout').allTextContents()).join(''),
    lineage: await page.locator('[data-testid="lineage"] a').evaluateAll((links) => links.map((a) => ({
      parent: a.dataset.turnId, href: a.getAttribute('href'), text: a.textContent,
    }))),
    summary: await page.$$eval('[data-testid="summary-row"]', (rows) => rows.map((r) => ({
      table: r.dataset.table,
      change: r.dataset.change,
      rows: r.querySelector('[data-testid="summary-rows"]').textContent,
      columns: r.querySelector('.columns').textContent,
    }))),
    size: await page.getByTestId('summary-size').textContent().catch(() => null),
    summary_errors: await page.getByTestId('summary-error').count(),
    phases: await page.$$eval('[data-testid^="phase-"]', (rows) => rows.map((r) => [r.dataset.testid, r.dataset.done])),
    panels: await page.getByTestId('checkpoint-panel').count(),
    checkpoint: await page.getByTestId('checkpoint-panel').count() === 0 ? null : {
      live: await page.getByTestId('checkpoint-panel').getAttribute('data-live'),
      state: await page.getByTestId('checkpoint-panel').getAttribute('data-state'),
      countdown: await page.getByTestId('checkpoint-countdown').textContent(),
      until: Number(await page.getByTestId('checkpoint-countdown').getAttribute('data-until')),
    },
  };
}

// Runs what the form holds as a new turn and waits for it to succeed with its summary shown and,
// when it asked for one, its checkpoint live.
async function runTurn(step, { checkpoint }) {
  await runNewTurn(page);
  await waitOutcome('succeeded');
  await page.getByTestId('summary').waitFor({ timeout: 30000 });
  if (checkpoint) {
    await page.waitForSelector('[data-testid="checkpoint-panel"][data-live="true"]', { timeout: 30000 });
  }
  const turn = await turnReport();
  await expectNoError(page, report, step);
  await page.screenshot({ path: join(artifacts, `session-${step}.png`), fullPage: true });
  return turn;
}

// Clicks "Fork from this turn" in the turn view; returns what the form then holds.
async function forkFromView() {
  await view().getByTestId('fork').click();
  await page.getByTestId('fork-from').waitFor({ timeout: 5000 });
  return {
    from: await page.getByTestId('fork-from').inputValue(),
    seed_sql: await page.getByTestId('seed-sql').inputValue(),
    database: await page.getByTestId('database').isChecked(),
  };
}

// Runs `step`, in which the API refuses a call with `status` on purpose: Chromium logs each refused
// call as a console error, which only these may be.
async function refusedByTheApi(status, step) {
  const before = report.errors.length;
  await step();
  const expected = `the server responded with a status of ${status}`;
  const during = report.errors.splice(before);
  report.refusals_logged = (report.refusals_logged ?? 0) + during.filter((e) => e.includes(expected)).length;
  report.errors.push(...during.filter((e) => !e.includes(expected)));
}

// Clicks Run on a form the page must refuse: what it says, and whether a turn was created.
async function refusedRun(step) {
  const before = await view().getAttribute('data-turn-id', { timeout: 1000 }).catch(() => null);
  let created = 0;
  const count = (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/turns') created += 1; };
  page.on('request', count);
  await page.getByTestId('run').click();
  await page.getByTestId('problem').waitFor({ timeout: 5000 });
  const problem = await page.getByTestId('problem').textContent();
  // Long enough for a request the page might still send.
  await page.waitForTimeout(500);
  page.off('request', count);
  await expectNoError(page, report, step, ['problem']);
  return { problem, created, same_view: (await view().getAttribute('data-turn-id').catch(() => null)) === before };
}

await session('session', artifacts, async (p, r) => {
  page = p;
  report = r;
  await signInWithLink(page, url, key);
  await expectNoError(page, report, 'sign in');

  // A checkpoint kept for no time at all is refused before anything is sent.
  await page.getByTestId('checkpoint').check();
  await page.getByTestId('checkpoint-keep').fill('0');
  report.bad_keep = await refusedRun('a keep of 0 s');
  await page.getByTestId('checkpoint-keep').fill('900');

  // The base: schema and fixtures as its seed, one row more from its code, kept as a checkpoint.
  await page.getByLabel('Language').selectOption('python');
  await page.getByTestId('database').check();
  await page.getByLabel('Seed SQL').fill(SEED);
  await page.getByLabel('Agent code').fill(code("INSERT INTO items (name) VALUES ('d')"));
  report.base = await runTurn('base', { checkpoint: true });
  report.base.bars = await page.locator('[data-testid="timeline"] .bar').count();
  report.base.fork = await forkFromView();
  await expectNoError(page, report, 'fork the base');

  // A fork of the base, adding two rows, kept as a checkpoint too.
  await page.getByLabel('Agent code').fill(code("INSERT INTO items (name) VALUES ('e'), ('f')"));
  report.fork = await runTurn('fork', { checkpoint: true });
  report.fork.fork = await forkFromView();
  await expectNoError(page, report, 'fork the fork');

  // A fork needs a database: unchecked, the page says so and sends nothing.
  await page.getByTestId('database').uncheck();
  report.no_database = await refusedRun('a fork without a database');
  await page.getByTestId('database').check();

  // A fork of the fork, adding a table, with no checkpoint of its own.
  await page.getByTestId('checkpoint').uncheck();
  await page.getByLabel('Agent code')
    .fill(code('CREATE TABLE tags (id serial PRIMARY KEY, label text); INSERT INTO tags (label) VALUES (\'x\')'));
  report.grandchild = await runTurn('grandchild', { checkpoint: false });
  await page.waitForSelector('[data-testid="resource-database"][data-reap="reaped"]', { timeout: 60000 });
  report.playground_db_url = await dbUrlOnPage();

  // The base's own page: keep its checkpoint longer, then release it.
  const base = report.base.turn_id;
  await page.goto(`${url}/turns/${base}`);
  await page.waitForSelector('[data-testid="checkpoint-panel"][data-live="true"]', { timeout: 30000 });
  await expectNoError(page, report, 'the base\'s page');
  const fork = page.getByTestId('fork');
  report.turn_page = {
    fork_link: await fork.evaluate((el) => ({ tag: el.tagName, href: el.getAttribute('href') })),
  };
  // Followed, the link opens the playground forking the base; back, the base's page again.
  await fork.click();
  await page.getByTestId('fork-from').waitFor({ timeout: 10000 });
  report.turn_page.followed = {
    path: new URL(page.url()).pathname + new URL(page.url()).search,
    from: await page.getByTestId('fork-from').inputValue(),
  };
  await expectNoError(page, report, 'the base\'s fork link');
  await page.goBack();
  await page.waitForSelector('[data-testid="checkpoint-panel"][data-live="true"]', { timeout: 30000 });
  report.turn_page.until_before = Number(await page.getByTestId('checkpoint-countdown').getAttribute('data-until'));
  const extended = page.waitForResponse((a) => a.request().method() === 'POST' && a.url().endsWith(`/v1/turns/${base}/checkpoint`));
  await page.getByTestId('extend').click();
  report.turn_page.extend_status = (await extended).status();
  await page.waitForFunction((before) => Number(document.querySelector('[data-testid="checkpoint-countdown"]')
    ?.dataset.until) > before, report.turn_page.until_before, { timeout: 10000 });
  report.turn_page.until_after = Number(await page.getByTestId('checkpoint-countdown').getAttribute('data-until'));
  report.turn_page.countdown_after = await page.getByTestId('checkpoint-countdown').textContent();
  await expectNoError(page, report, 'keep 15 min more');

  // An answer refusing the extension (stubbed here: the live API refuses one only for a
  // checkpoint that is gone, which the panel then no longer offers to extend) is shown.
  const refusal = { error: { code: 'conflict', message: `turn ${base}'s checkpoint is no longer live: a stubbed refusal` } };
  await page.route(`**/v1/turns/${base}/checkpoint`, (route) => (route.request().method() === 'POST'
    ? route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify(refusal) })
    : route.continue()));
  await refusedByTheApi(409, async () => {
    await page.getByTestId('extend').click();
    await page.getByTestId('checkpoint-error').waitFor({ timeout: 5000 });
  });
  report.turn_page.extend_error = {
    text: await page.getByTestId('checkpoint-error').textContent(),
    role: await page.getByTestId('checkpoint-error').getAttribute('role'),
  };
  await expectNoError(page, report, 'an extension refused', ['checkpoint-error']);
  await page.unroute(`**/v1/turns/${base}/checkpoint`);

  const released = page.waitForResponse((a) => a.request().method() === 'DELETE' && a.url().endsWith(`/v1/turns/${base}/checkpoint`));
  await page.getByTestId('release').click();
  report.turn_page.release_status = (await released).status();
  await page.waitForSelector('[data-testid="checkpoint-panel"][data-state="released"]', { timeout: 10000 });
  await page.waitForSelector('[data-testid="resource-database"][data-reap="reaped"]', { timeout: 60000 });
  report.turn_page.after_release = {
    live: await page.getByTestId('checkpoint-panel').getAttribute('data-live'),
    countdown: await page.getByTestId('checkpoint-countdown').textContent(),
    buttons_disabled: await page.$$eval('[data-testid="checkpoint-panel"] button',
      (buttons) => buttons.map((b) => [b.dataset.testid, b.disabled])),
    errors_left: await page.getByTestId('checkpoint-error').count(),
  };
  report.turn_page.db_url = await dbUrlOnPage();
  await expectNoError(page, report, 'release');
  await page.screenshot({ path: join(artifacts, 'session-released.png'), fullPage: true });

  // The link the base's page offered, followed now that the checkpoint is gone: the playground
  // forks it, and the API's refusal is shown.
  await page.goto(`${url}${report.turn_page.fork_link.href}`);
  await page.getByTestId('fork-from').waitFor({ timeout: 20000 });
  report.refused_fork = {
    from: await page.getByTestId('fork-from').inputValue(),
    database: await page.getByTestId('database').isChecked(),
  };
  await page.getByLabel('Agent code').fill('print("never runs")');
  const refused = page.waitForResponse((a) => a.request().method() === 'POST' && new URL(a.url()).pathname === '/v1/turns');
  await refusedByTheApi(409, async () => {
    await page.getByTestId('run').click();
    report.refused_fork.status = (await refused).status();
    await page.getByTestId('problem').waitFor({ timeout: 5000 });
  });
  report.refused_fork.problem = await page.getByTestId('problem').textContent();
  report.refused_fork.views = await page.getByTestId('turn-view').count();
  await expectNoError(page, report, 'a fork of a released checkpoint', ['problem']);
  // Cleared, the field goes, and the turn would start from a fresh database.
  await page.getByTestId('fork-clear').click();
  report.refused_fork.cleared = await page.getByTestId('fork-from').count();

  // The dashboard: the fork's checkpoint is the one still live; each turn's database as it is.
  await page.getByRole('link', { name: 'Turns' }).click();
  const forkId = report.fork.turn_id;
  await page.waitForSelector(`[data-testid="reaper-checkpoints"] [data-turn-id="${forkId}"]`, { timeout: 20000 });
  await page.waitForSelector(`[data-testid="turn-row"][data-turn-id="${forkId}"]`, { timeout: 20000 });
  report.dashboard = {
    checkpoints: await page.$$eval('[data-testid="reaper-checkpoint"]', (items) => items.map((i) => ({
      turn_id: i.dataset.turnId, countdown: i.querySelector('[data-testid="reaper-checkpoint-countdown"]').textContent,
    }))),
    count: await page.getByTestId('reaper-checkpoint-count').textContent(),
    rows: await page.$$eval('[data-testid="turn-row"]', (rows) => rows.map((row) => ({
      turn_id: row.dataset.turnId,
      outcome: row.querySelector('[data-testid="turn-outcome"]').textContent,
      database: row.querySelector('[data-testid="reap-database"]').textContent,
    }))),
    db_url: await dbUrlOnPage(),
  };
  await expectNoError(page, report, 'dashboard');
  await page.screenshot({ path: join(artifacts, 'session-dashboard.png'), fullPage: true });
  report.elapsed_ms = Date.now() - started;
});
