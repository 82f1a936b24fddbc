// Issue 14: a CMP's per-service choice is that vendor's consent, not its
// category's. The real vanilla-cookieconsent v3 (npm) with Google Analytics
// and Hotjar as two services of its analytics category
// (tests/fixtures/pages/cmp/cookieconsent-services.html); the visitor
// clicks the shop's "Google Analytics only" button, which accepts Google
// Analytics and refuses Hotjar through cookieconsent's own API
// (`acceptService`); the careless shop loads both in cookieconsent's
// onConsent callback, which runs before cookieconsent's `cc:onConsent`
// event: the choice counts from the click. The shipped monitor
// reads `getUserPreferences().acceptedServices / rejectedServices`, maps
// the service names through the core's table (`ga` → GA4, `hotjar` →
// Hotjar) and the real collector stores exactly Hotjar's finding, its
// `consent.vendor` false; GA4's hit is not a finding. A returning visitor
// with that choice restored: the same.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertExactFindings, findingKey, runPageView, startStack } from './harness.mjs';

const PAGE = 'cmp/cookieconsent-services.html';
const HOTJAR = findingKey({
  type: 'script_before_consent', vendor: 'hotjar',
  evidence: { kind: 'request', host: 'static.hotjar.com', path: '/c/hotjar-3000001.js', frame: 'top' },
});

let stack;
before(async () => { stack = await startStack({ siteCount: 4 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

/** The monitor runs and cookieconsent has applied a state. */
async function ready(page) {
  await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
}

/** Both tags' requests are in the page's Resource Timing. */
async function bothLoaded(page) {
  await page.waitForFunction(() => {
    const names = performance.getEntriesByType('resource').map((e) => e.name);
    return names.some((n) => n.includes('static.hotjar.com/c/hotjar-3000001.js'))
      && names.some((n) => n.includes('region1.google-analytics.com/g/collect'));
  }, null, { timeout: 15000, polling: 50 });
}

function assertHotjarOnly(run, label) {
  assertExactFindings(run.findings, [HOTJAR], label);
  const [f] = run.findings;
  assert.equal(f.consent.vendor, false, `Hotjar's own choice, refused: ${JSON.stringify(f.consent)}`);
  assert.equal(f.consent.analytics, true, 'its category is granted: the service choice decided');
  assert.equal(f.consent.source, 'vanilla-cookieconsent');
  const vendors = run.inventories.flatMap((r) => r.body.vendors.map((v) => v.vendor));
  assert.ok(vendors.includes('ga4'), `GA4's hit was seen (inventory: ${vendors.join(', ')})`);
}

test('Google Analytics accepted, Hotjar refused in one category → exactly Hotjar\'s finding is stored', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, PAGE, {
    bootIntercom: false,
    during: async ({ page }) => {
      await ready(page);
      assert.equal(await page.evaluate(() => window.TW_CMP.answers), 0, 'nothing answered before the choice');
      await page.click('#stats-ga-only');
      const prefs = await page.evaluate(() => CookieConsent.getUserPreferences());
      assert.deepEqual(prefs.acceptedServices.analytics, ['ga'], JSON.stringify(prefs));
      assert.deepEqual(prefs.rejectedServices.analytics, ['hotjar'], JSON.stringify(prefs));
      await bothLoaded(page);
    },
  });
  assertHotjarOnly(run, 'per-service choice');
});

test('returning visitor: the restored per-service choice decides the same', { timeout: 90_000 }, async () => {
  let cookie = null;
  await runPageView(stack, PAGE, {
    bootIntercom: false,
    during: async ({ page, context }) => {
      await ready(page);
      await page.click('#stats-ga-only');
      await bothLoaded(page);
      cookie = (await context.cookies()).find((c) => c.name === 'cc_cookie');
    },
  });
  assert.ok(cookie, 'cookieconsent stored the choice');
  const run = await runPageView(stack, PAGE, {
    bootIntercom: false,
    before: async ({ context }) => { await context.addCookies([cookie]); },
    during: async ({ page }) => {
      await ready(page);
      await bothLoaded(page);
    },
  });
  assertHotjarOnly(run, 'restored per-service choice');
});
