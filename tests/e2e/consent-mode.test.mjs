// Scenarios: Google Consent Mode claims checked against the CMP (issue 4
// item 7). The page sets Consent Mode defaults (all denied), runs the
// Cookiebot fixture (tests/fixtures/pages/cmp/fake-cookiebot.js) and, once
// Cookiebot has a response, whatever it is, the shop's Google tags: a
// `gtag('consent', 'update', {analytics_storage: 'granted'})` and/or a GA4
// hit to region1.google-analytics.com/g/collect with gcs=G111 (ad and
// analytics storage claimed granted). A claim the CMP does not back is a
// consent_signal_mismatch; none when the visitor granted everything.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ga4TrackingWithoutConsent, signalMismatch } from './expected.mjs';
import { assertExactFindings, runPageView, sleep, startStack } from './harness.mjs';

const GA_HOST = 'region1.google-analytics.com';
let stack;
before(async () => { stack = await startStack({ siteCount: 4 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

/** One page view: answer Cookiebot's dialog with `button`, let the Google tags run and their claims settle. */
function visit(cm, button) {
  return runPageView(stack, 'cmp/consent-mode.html', {
    extra: { cm },
    bootIntercom: false,
    during: async ({ page }) => {
      await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
      await page.click(button);
      await page.waitForFunction(() => window.twGa4Sent === true, null, { timeout: 10000, polling: 50 });
      if (cm === 'hit' || cm === 'both') {
        await page.waitForFunction((host) => performance.getEntriesByType('resource')
          .some((e) => e.name.startsWith(`https://${host}/g/collect?`) && e.responseEnd > 0), GA_HOST, { timeout: 10000, polling: 50 });
      }
      await sleep(800); // claims are checked 500 ms after they are made
    },
  });
}

function assertOnCookiebot(run) {
  for (const f of run.findings) {
    assert.equal(f.consent?.source, 'cookiebot', `decided on Cookiebot's state: ${JSON.stringify(f)}`);
    assert.equal(f.consent.analytics, false);
  }
}

test('Cookiebot refused, a GA4 hit claims gcs=G111 → consent_signal_mismatch (ga4, gcs) for both storage types', { timeout: 90_000 }, async () => {
  const run = await visit('hit', '#CybotCookiebotDialogBodyButtonDecline');
  assertExactFindings(run.findings, [
    ga4TrackingWithoutConsent({ host: GA_HOST }),
    signalMismatch({ vendor: 'ga4', signal: 'gcs', claimed: 'analytics_storage', host: GA_HOST, path: '/g/collect' }),
    signalMismatch({ vendor: 'ga4', signal: 'gcs', claimed: 'ad_storage', host: GA_HOST, path: '/g/collect' }),
  ], 'gcs claim without CMP consent');
  assertOnCookiebot(run);
  const mismatch = run.reports.find((r) => r.body.finding === 'consent_signal_mismatch' && r.body.evidence.claimed === 'analytics_storage');
  assert.equal(mismatch.body.category, 'analytics');
  assert.equal(mismatch.body.evidence.kind, 'signal');
});

test('Cookiebot refused, gtag("consent", "update", {analytics_storage: "granted"}) → consent_signal_mismatch (gtm, consent_update)', { timeout: 90_000 }, async () => {
  const run = await visit('update', '#CybotCookiebotDialogBodyButtonDecline');
  assertExactFindings(run.findings, [
    signalMismatch({ vendor: 'gtm', signal: 'consent_update', claimed: 'analytics_storage' }),
  ], 'Consent Mode update without CMP consent');
  assertOnCookiebot(run);
});

// Lists cross into the wasm as lines (www/consent.js `lines`): a key with a
// line break in it must not split into two keys and shift the values (here
// `analytics_storage` would be claimed `granted`).
test('Cookiebot refused, an update whose key carries a line break claims nothing → no findings', { timeout: 90_000 }, async () => {
  const run = await visit('newline', '#CybotCookiebotDialogBodyButtonDecline');
  assertExactFindings(run.findings, [], 'no storage type claimed');
});

test('Cookiebot granted everything: the same update and G111 hit are backed → no findings', { timeout: 90_000 }, async () => {
  const run = await visit('both', '#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll');
  assertExactFindings(run.findings, [], 'claims backed by the CMP');
  const vendors = run.inventories.flatMap((r) => r.body.vendors.map((v) => v.vendor));
  assert.ok(vendors.includes('ga4'), `the monitor saw the GA4 hit (inventory: ${vendors.join(', ')})`);
});
