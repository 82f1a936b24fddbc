// Scenario: consent granted at load, then withdrawn (functional and
// marketing) on the page. grace_ms is 1000 in the test pages.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withdrawnAndIgnored, withdrawnWithShutdown } from './expected.mjs';
import { APP_ID, assertExactFindings, runPageView, sleep, startStack } from './harness.mjs';

const GRACE_MS = 1000;
let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('withdrawn + Intercom("shutdown"): the id and device-id cookies outlive the grace period', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'withdraw.html', {
    during: async ({ page }) => {
      await page.click('#withdraw'); // twWithdraw({ shutdown: true })
      await sleep(GRACE_MS + 1000);
    },
  });
  assertExactFindings(run.findings, withdrawnWithShutdown({ app: APP_ID }), 'withdrawn with shutdown');
  for (const r of run.reports) {
    assert.equal(r.body.consent.functional, false, 'decided on the withdrawn state');
    assert.ok(r.body.at >= r.body.consent.since + GRACE_MS, `cookie_after_withdrawal is dated at the end of the grace period (at=${r.body.at}, since=${r.body.consent.since})`);
  }
});

test('withdrawn, Intercom left running: cookies stay and its tracking goes on after the grace period', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'withdraw.html', {
    during: async ({ page }) => {
      await page.evaluate(() => window.twWithdraw({ shutdown: false }));
      await sleep(GRACE_MS + 500);
      const before = await page.evaluate(() => document.getElementById('intercom-frame').contentWindow.performance.getEntriesByType('resource').length);
      await page.evaluate(() => window.twLaterActivity()); // Intercom('update') + trackEvent
      await page.waitForFunction((n) => document.getElementById('intercom-frame').contentWindow.performance
        .getEntriesByType('resource').slice(n).filter((e) => /\/messenger\/web\/(ping|events)$/.test(e.name) && e.responseEnd > 0).length >= 2, before);
    },
  });
  assertExactFindings(run.findings, withdrawnAndIgnored({ app: APP_ID }), 'withdrawn, not shut down');
});

test('no findings when the page view ends within the grace period after a withdrawal + shutdown', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'withdraw.html', {
    expectReports: false,
    grace: 10_000, // generous: the page view surely ends inside it, even on a loaded machine
    during: async ({ page }) => { await page.click('#withdraw'); },
    settleMs: 100,
  });
  assertExactFindings(run.findings, [], 'ended inside the grace period');
});
