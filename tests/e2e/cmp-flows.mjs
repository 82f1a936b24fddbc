// The four visitor flows the CMP scenarios share (cmp-npm.test.mjs,
// cmp-fixtures.test.mjs), each one page view through runPageView. A CMP is
// described by its page under /pages/, its id (the `consent.source` the
// findings must carry) and how a visitor accepts, refuses and withdraws in
// its own UI or API (`extra`: its page's query parameters, optional). The
// pages (tests/fixtures/pages/cmp/) belong to a careless shop: Intercom
// loads once the banner is answered, whatever the answer, and keeps
// running after a withdrawal (site.js).
import assert from 'node:assert/strict';
import { loadedWithoutConsent, withdrawnAndIgnored } from './expected.mjs';
import {
  APP_ID, assertExactFindings, pageUrl, runPageView, sleep, waitForFrameEntries, waitForIntercomBoot,
} from './harness.mjs';

export const GRACE_MS = 1000;
const FRAME_BOOTED = [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/];

/** The monitor runs (its consent adapters listen) and the CMP has applied a state. */
async function monitorAndCmpReady(page) {
  await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
}

/** Intercom loaded after the answer and booted, its trackEvent sent. */
async function intercomRan(page) {
  await waitForIntercomBoot(page);
  await waitForFrameEntries(page, FRAME_BOOTED);
}

function assertSource(findings, cmp) {
  for (const f of findings) {
    assert.equal(f.consent?.source, cmp.id, `the finding was decided on ${cmp.id}'s state: ${JSON.stringify(f)}`);
  }
}

/** The monitor saw Intercom run: a "no findings" result is not a blind monitor. */
function assertIntercomSeen(run) {
  const vendors = run.inventories.flatMap((r) => r.body.vendors.map((v) => v.vendor));
  assert.ok(vendors.includes('intercom'), `the page view's inventory lists intercom (got ${vendors.join(', ') || 'none'})`);
}

/** New visitor refuses in the banner; the shop loads Intercom anyway. */
export async function refuseFlow(stack, cmp) {
  const run = await runPageView(stack, cmp.page, {
    bootIntercom: false,
    during: async ({ page }) => {
      await monitorAndCmpReady(page);
      assert.equal(await page.evaluate(() => window.TW_CMP.answers), 0, 'nothing answered before the click');
      await cmp.refuse(page);
      await intercomRan(page);
    },
  });
  const expected = cmp.refused ? cmp.refused() : loadedWithoutConsent({ fake: stack.fake, app: APP_ID });
  assertExactFindings(run.findings, expected, `${cmp.id}: refused, Intercom loaded anyway`);
  assertSource(run.findings, cmp);
  const refused = cmp.refusedCategories || ['functional', 'marketing'];
  for (const f of run.findings) {
    for (const c of refused) assert.equal(f.consent[c], false, `${c} explicitly refused in ${JSON.stringify(f)}`);
  }
  return run;
}

/** New visitor accepts in the banner; Intercom loads after the click: nothing to report. */
export async function acceptFlow(stack, cmp) {
  const run = await runPageView(stack, cmp.page, {
    bootIntercom: false,
    during: async ({ page }) => {
      await monitorAndCmpReady(page);
      assert.equal(await page.evaluate(() => window.TW_CMP.answers), 0, 'nothing answered before the click');
      await cmp.accept(page);
      await intercomRan(page);
    },
  });
  assertExactFindings(run.findings, [], `${cmp.id}: accepted, Intercom loaded after the click`);
  assertIntercomSeen(run);
  return run;
}

/** Accepts, Intercom runs; withdraws in the CMP; Intercom left running (update + trackEvent after the grace period). */
export async function withdrawFlow(stack, cmp) {
  const run = await runPageView(stack, cmp.page, {
    extra: cmp.extra,
    bootIntercom: false,
    grace: GRACE_MS,
    during: async ({ page }) => {
      await monitorAndCmpReady(page);
      await cmp.accept(page);
      await intercomRan(page);
      await cmp.withdraw(page);
      await sleep(GRACE_MS + 500);
      const before = await page.evaluate(() => document.getElementById('intercom-frame').contentWindow.performance.getEntriesByType('resource').length);
      await page.evaluate(() => window.twLaterActivity());
      await page.waitForFunction((n) => document.getElementById('intercom-frame').contentWindow.performance
        .getEntriesByType('resource').slice(n).filter((e) => /\/messenger\/web\/(ping|events)$/.test(e.name) && e.responseEnd > 0).length >= 2, before);
    },
  });
  const expected = cmp.withdrawn ? cmp.withdrawn() : withdrawnAndIgnored({ app: APP_ID });
  assertExactFindings(run.findings, expected, `${cmp.id}: withdrawn in the CMP, Intercom left running`);
  assertSource(run.findings, cmp);
  for (const r of run.reports) {
    assert.ok(r.body.at >= r.body.consent.since + GRACE_MS, `after the grace period (at=${r.body.at}, since=${r.body.consent.since})`);
  }
  return run;
}

/**
 * Returning visitor: an earlier visit (no monitor) accepted in the CMP, which
 * stored the choice. This time the shop loads Intercom on window load and its
 * CMP only after Intercom booted (?lazy=1): the stored choice is restored and
 * counts from page start, so nothing Intercom did is a finding.
 */
export async function returningFlow(stack, cmp) {
  const run = await runPageView(stack, cmp.page, {
    extra: { lazy: '1' },
    waitFrame: FRAME_BOOTED,
    before: async ({ page }) => {
      await page.goto(pageUrl(cmp.page, { canary: false }));
      await page.waitForFunction(() => window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
      await cmp.accept(page);
      await page.waitForFunction(() => window.TW_CMP.answers > 0, null, { timeout: 15000, polling: 50 });
    },
    during: async ({ page }) => {
      await page.waitForFunction(() => window.TW_CMP.ready && window.TW_CMP.answers > 0, null, { timeout: 15000, polling: 50 });
      const order = await page.evaluate(() => ({
        cmp: window.TW_CMP.cmpLoadAt,
        loader: (performance.getEntriesByType('resource').find((e) => e.name.includes('widget.intercom.io/widget/')) || {}).startTime,
      }));
      assert.ok(order.loader < order.cmp, `Intercom loaded before the CMP script (${JSON.stringify(order)})`);
    },
  });
  assertExactFindings(run.findings, [], `${cmp.id}: returning visitor, choice restored from storage`);
  assertIntercomSeen(run);
  return run;
}
