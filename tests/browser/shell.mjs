// The app shell: the footer shows the API's health, and the navigation reaches the turns page
// and comes back. Usage: node shell.mjs <base-url> <screenshot.png>
import { launch } from './launch.mjs';

const [url, shot] = process.argv.slice(2);
const { context, page, errors } = await launch();
try {
  await page.goto(url);
  const health = page.getByTestId('health');
  await page.waitForSelector('[data-testid="health"][data-state="ok"], [data-testid="health"][data-state="error"]', { timeout: 20000 });
  const healthState = await health.getAttribute('data-state');
  const healthText = await health.textContent();
  await page.screenshot({ path: shot });
  await page.getByRole('link', { name: 'Turns' }).click();
  await page.getByTestId('page-turns').waitFor({ timeout: 10000 });
  const turnsPath = new URL(page.url()).pathname;
  await page.getByRole('link', { name: 'Playground' }).click();
  await page.getByTestId('page-playground').waitFor({ timeout: 10000 });
  console.log(JSON.stringify({
    health_state: healthState,
    health_text: healthText,
    turns_path: turnsPath,
    back_home: new URL(page.url()).pathname === '/',
    errors,
  }));
} finally {
  await context.close();
}
