// Scenario: Intercom has fully loaded and booted before the monitor starts
// (injected late): buffered Resource Timing entries of the top page AND of
// #intercom-frame, and cookies already present, count with their real times.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import { APP_ID, assertExactFindings, runPageView, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('Intercom loaded before the monitor: the same findings, dated before the monitor started', { timeout: 90_000 }, async () => {
  let injectedAt;
  const run = await runPageView(stack, 'preloaded.html', {
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
    during: async ({ page }) => {
      injectedAt = await page.evaluate(() => window.twMonitorInjectedAt);
    },
  });
  assert.ok(injectedAt > 0, 'the page injected the monitor after Intercom booted');
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'preloaded');
  const requestFindings = run.reports.filter((r) => r.body.evidence && r.body.evidence.kind === 'request');
  assert.ok(requestFindings.length > 0);
  for (const r of requestFindings) {
    assert.ok(r.body.at < injectedAt, `${r.body.evidence.host}${r.body.evidence.path}: at=${r.body.at} must be the entry's real start time, before the monitor was injected at ${injectedAt}`);
  }
});
