// Issue 3, cookie_lifetime_exceeds_policy: policy.cookie_max_days = 30.
// Intercom's intercom-id-* and intercom-device-id-* live 9 months (270 days):
// findings with evidence.days >= 200; intercom-session-* lives a week: none.
// Chromium exposes expiry through the Cookie Store API (secure context).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cookieLifetimeExceeded } from './expected.mjs';
import { APP_ID, assertExactFindings, runPageView, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('cookie_max_days: 30: the 9-month Intercom cookies are findings, the 1-week session cookie is not', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'cookie-lifetime.html', {
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
    settleMs: 1500,
    during: async ({ page, context }) => {
      // the premise: the browser really holds these lifetimes
      const cookies = await context.cookies('https://shop.example/');
      const days = (n) => {
        const c = cookies.find((x) => x.name === n);
        return c ? (c.expires * 1000 - Date.now()) / 864e5 : null;
      };
      assert.ok(days(`intercom-id-${APP_ID}`) > 260, 'intercom-id lives ~270 days');
      assert.ok(days(`intercom-device-id-${APP_ID}`) > 260, 'intercom-device-id lives ~270 days');
      const session = days(`intercom-session-${APP_ID}`);
      assert.ok(session > 6 && session <= 7, `intercom-session lives a week (${session})`);
      assert.equal(await page.evaluate(() => typeof window.cookieStore), 'object', 'Chromium has the Cookie Store API here');
    },
  });
  assertExactFindings(run.findings, cookieLifetimeExceeded({ app: APP_ID }), 'cookie lifetime');
  for (const f of run.findings) {
    assert.equal(f.evidence.kind, 'cookie');
    assert.ok(Number.isInteger(f.evidence.days) && f.evidence.days >= 200 && f.evidence.days <= 270,
      `${f.evidence.cookie}: evidence.days ${f.evidence.days} is the remaining lifetime in whole days`);
  }
});
