// Visit the demo page in headless Chromium, the way a visitor would, so that
// findings reach the collector without a desktop browser:
//
//   node www/demo/visit.mjs --port 8443 [--accept] [--stay 3000]
//
// --port   the fake Intercom / demo site port (tests/fixtures/fake-intercom/server.mjs)
// --accept click "Accept all" first (then there is nothing to report)
// --stay   ms to stay on the page before "Send findings now" (default 2000)
// The page's collector and site come from www/demo/config.js (or the fake
// server's --collector/--site). Prints the demo's own log lines.
import { chromium } from 'playwright-core';
import { chromiumHostArgs } from '../../tests/fixtures/fake-intercom/hosts.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const port = Number(opt('--port', '8443'));
const stay = Number(opt('--stay', '2000'));
const accept = argv.includes('--accept');

const browser = await chromium.launch({
  executablePath: process.env.TAGWATCH_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    ...chromiumHostArgs(port),
  ],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('https://shop.example/demo/');
  if (accept) await page.click('#tw-accept');
  await page.waitForTimeout(stay);
  await page.click('#tw-flush');
  await page.waitForTimeout(500);
  const lines = await page.locator('#tw-log li').allTextContents();
  for (const l of lines.reverse()) process.stdout.write(`demo: ${l}\n`);
  await page.goto('about:blank');
  await page.waitForTimeout(300);
  if (errors.length) {
    process.stderr.write(`demo: page errors:\n${errors.join('\n')}\n`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
}
