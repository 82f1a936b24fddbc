// Scenario: the monitor runs in a frame (a support chat page with its own
// tagwatch snippet and Intercom) while the IAB TCF CMP (@iabtechlabtcf/cmpapi
// from npm) runs only in the top page. The frame has no __tcfapi: the monitor
// must reach the CMP through the top page's __tcfapiLocator frame
// (postMessage __tcfapiCall / __tcfapiReturn). A returning visitor's stored
// TC string is consent restored from storage (eventStatus tcloaded), so it
// counts from page start even though Intercom loaded before the CMP answered.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GVL, TCModel, TCString } from '@iabtechlabtcf/core';
import { loadedWithoutConsent } from './expected.mjs';
import {
  APP_ID, REPO_ROOT, assertExactFindings, assertNoCanaries, cookieValues, endPageView, openPage, pageUrl,
  reportsOf, startStack, waitForReports,
} from './harness.mjs';

const gvl = new GVL(JSON.parse(readFileSync(join(REPO_ROOT, 'tests/fixtures/pages/cmp/gvl.json'), 'utf8')));

/** A TC string as the page's CMP would have stored it on an earlier visit. */
function tcString(purposes) {
  const m = new TCModel(gvl);
  m.cmpId = 300;
  m.cmpVersion = 1;
  m.consentScreen = 1;
  m.consentLanguage = 'EN';
  m.publisherCountryCode = 'DE';
  m.isServiceSpecific = true;
  m.purposeConsents.set(purposes);
  if (purposes.length) m.vendorConsents.set(Object.keys(gvl.vendors).map(Number));
  return TCString.encode(m);
}

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

async function framedVisit(purposes, extra = {}) {
  const site = stack.nextSite();
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(stack.tap.ingestUrl).origin });
  try {
    await ctx.context.addCookies([{ name: 'euconsent-v2', value: tcString(purposes), domain: 'shop.example', path: '/' }]);
    await ctx.page.goto(pageUrl('cmp/tcf-top.html', { collector: stack.tap.ingestUrl, site, extra }));
    const frame = await (await ctx.page.waitForSelector('#chat')).contentFrame();
    await frame.waitForFunction(() => typeof window.twIntercomBootedNow === 'function' && window.twIntercomBootedNow(),
      null, { timeout: 20000, polling: 50 });
    assert.equal(await frame.evaluate(() => typeof window.__tcfapi), 'undefined', 'the frame has no TCF API of its own');
    await new Promise((r) => setTimeout(r, 500));
    const values = await cookieValues(ctx.context);
    await endPageView(ctx.page);
    const posts = await waitForReports(stack.tap, site);
    assertNoCanaries(posts.map((p) => p.body), values);
    assert.deepEqual(ctx.pageErrors, []);
    return { posts, reports: reportsOf(posts), findings: await stack.collector.findings(site) };
  } finally {
    await ctx.context.close().catch(() => {});
  }
}

test('framed monitor, stored refusal: Intercom findings decided on the TCF state from page start', { timeout: 90_000 }, async () => {
  const run = await framedVisit([]);
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'refused through the locator');
  for (const f of run.findings) {
    assert.equal(f.consent.source, 'tcf', `decided on the CMP's state, read through __tcfapiLocator: ${JSON.stringify(f)}`);
    assert.equal(f.consent.since, 0, 'a stored TC string counts from page start');
    assert.equal(f.consent.functional, false);
  }
});

// A hostile page (docs/hostile-pages.md): the locator answers in JSON
// strings, and the frame's JSON.parse throws for the monitor once its
// snippet ran (before the brain starts): the monitor parses the answers
// with the parser its loader took at parse time.
test('framed monitor, stored refusal, answers as JSON strings and JSON.parse broken after the snippet: still decided on the TCF state', { timeout: 90_000 }, async () => {
  const run = await framedVisit([], { json: '1' });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'refused through the locator, in JSON');
  for (const f of run.findings) {
    assert.equal(f.consent.source, 'tcf', `decided on the CMP's state, read through __tcfapiLocator: ${JSON.stringify(f)}`);
    assert.equal(f.consent.since, 0, 'a stored TC string counts from page start');
  }
});

test('framed monitor, stored acceptance: no findings, and the monitor did see Intercom', { timeout: 90_000 }, async () => {
  const run = await framedVisit([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assertExactFindings(run.findings, [], 'accepted through the locator');
  const vendors = run.reports.filter((r) => r.type === 'tagwatch-inventory').flatMap((r) => r.body.vendors.map((v) => v.vendor));
  assert.ok(vendors.includes('intercom'), `inventory lists intercom: ${vendors}`);
});
