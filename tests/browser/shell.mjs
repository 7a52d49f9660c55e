// The app shell: the footer shows the API's health, and the navigation reaches the turns page
// and comes back. Usage: node shell.mjs <base-url> <screenshot.png>
import { dirname } from 'node:path';
import { expectNoError, session } from './launch.mjs';

const [url, shot] = process.argv.slice(2);
await session('shell', dirname(shot), async (page, report) => {
  await page.goto(url);
  const health = page.getByTestId('health');
  await page.waitForSelector('[data-testid="health"][data-state="ok"], [data-testid="health"][data-state="error"]', { timeout: 20000 });
  report.health_state = await health.getAttribute('data-state');
  report.health_text = await health.textContent();
  await expectNoError(page, report, 'open the app');
  await page.screenshot({ path: shot });
  await page.getByRole('link', { name: 'Turns' }).click();
  await page.getByTestId('page-turns').waitFor({ timeout: 10000 });
  report.turns_path = new URL(page.url()).pathname;
  await expectNoError(page, report, 'the turns page');
  await page.getByRole('link', { name: 'Playground' }).click();
  await page.getByTestId('page-playground').waitFor({ timeout: 10000 });
  report.back_home = new URL(page.url()).pathname === '/';
  await expectNoError(page, report, 'back to the playground');
});
