// Evidence from same-origin frames must not depend on timing: each scenario
// forces, step by step and without sleeps, a moment at which a frame's
// Resource Timing read by polling loses an entry — a bundle that finishes
// after a later one was read, a frame past its 250-entry buffer, a frame
// removed or navigated right after its request. The monitor observes every
// frame document's own timeline (src/lib.rs, "Frames"; docs/report-format.md,
// `evidence.frame`); each entry is judged exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import { APP_ID, assertExactFindings, expect, runPageView, startStack, waitForFrameEntries, waitForIntercomBoot } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

const API = 'api-iam.intercom.io';
const HELPDESK = '#helpdesk';
const pathOf = (src) => new URL(src).pathname;

/** Waits until the monitor runs: `tagwatch('findings')` answers once it does. */
async function monitorRunning(page) {
  await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
}

test('a frame bundle that finishes after a later one was already read is judged (Resource Timing lists by start time)', { timeout: 90_000 }, async () => {
  const { fake } = stack;
  // frame-modern starts first and is held; vendor-modern, started after it,
  // finishes first and is read by the monitor; then frame-modern finishes and
  // takes the first place in the frame's timeline, ahead of what was read.
  const gate = fake.hold('js.intercomcdn.com', pathOf(fake.frameSrc));
  const vendorPath = pathOf(fake.vendorSrc);
  try {
    const run = await runPageView(stack, 'no-consent.html', {
      bootIntercom: false,
      during: async ({ page }) => {
        await gate.arrived;
        // `findings` reads everything now: wait until it has judged vendor-modern.
        await page.waitForFunction((path) => {
          const batch = window.tagwatch('findings');
          return Array.isArray(batch) && batch.some((r) => r.body && r.body.evidence && r.body.evidence.path === path);
        }, vendorPath, { timeout: 15000, polling: 50 });
        gate.release();
        await waitForIntercomBoot(page);
        await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/]);
      },
    });
    assertExactFindings(run.findings, loadedWithoutConsent({ fake, app: APP_ID }), 'bundles finishing out of order');
    // Nothing judged twice: each bundle was requested once in this page view.
    for (const src of [fake.frameSrc, fake.vendorSrc]) {
      const f = run.findings.find((x) => x.evidence.path === pathOf(src));
      assert.equal(f.count, 1, `${pathOf(src)} judged ${f.count} times`);
    }
  } finally {
    gate.release();
  }
});

test('a frame past its 250-entry Resource Timing buffer: its later requests are judged', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'frames.html', {
    bootIntercom: false,
    during: async ({ page }) => {
      await monitorRunning(page);
      await page.evaluate(() => window.twAddFrame());
      const frame = page.frames().find((f) => f.url().includes('/pages/frames-inner.html'));
      assert.ok(frame, 'the #helpdesk frame');
      const held = await frame.evaluate(() => window.twFill(250));
      assert.equal(held, 250, 'the frame\'s buffer is full');
      await page.evaluate(() => document.getElementById('helpdesk').contentWindow.twCall('ping'));
      await page.waitForFunction(() => window.twSeen.includes('ping'), null, { timeout: 15000, polling: 50 });
      // The buffer dropped it: only an observer of the frame's timeline has it.
      assert.equal(await frame.evaluate(() => performance.getEntriesByType('resource').some((e) => /\/ping$/.test(e.name))), false);
    },
  });
  assertExactFindings(run.findings, [expect.request('tracking_before_consent', API, '/messenger/web/ping', HELPDESK)], 'buffer full');
});

test('a frame removed right after its request: the request is judged', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'frames.html', {
    bootIntercom: false,
    during: async ({ page }) => {
      await monitorRunning(page);
      await page.evaluate(() => window.twAddFrame());
      await page.evaluate(() => window.tagwatch('findings'));   // the frame is known and read
      // The frame removes itself in the task its ping's entry is delivered
      // in, from an observer older than the monitor's: the monitor's
      // observer callback never runs, the entry stays in its records.
      await page.evaluate(() => document.getElementById('helpdesk').contentWindow.twCall('ping', 'remove'));
      await page.waitForFunction(() => window.twSeen.includes('ping') && !document.getElementById('helpdesk'), null, { timeout: 15000, polling: 50 });
    },
  });
  assertExactFindings(run.findings, [expect.request('tracking_before_consent', API, '/messenger/web/ping', HELPDESK)], 'frame removed');
});

test('a frame whose document is replaced right after its request: both documents\' requests are judged', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'frames.html', {
    bootIntercom: false,
    during: async ({ page }) => {
      await monitorRunning(page);
      await page.evaluate(() => window.twAddFrame());
      await page.evaluate(() => window.tagwatch('findings'));
      // ping from the first document, which then replaces itself with one that calls metrics.
      await page.evaluate(() => document.getElementById('helpdesk').contentWindow.twCall('ping', 'navigate'));
      await page.waitForFunction(() => window.twSeen.includes('ping') && window.twSeen.includes('metrics'), null, { timeout: 15000, polling: 50 });
    },
  });
  assertExactFindings(run.findings, [
    expect.request('tracking_before_consent', API, '/messenger/web/ping', HELPDESK),
    expect.request('tracking_before_consent', API, '/messenger/web/metrics', HELPDESK),
  ], 'document replaced');
  for (const f of run.findings) assert.equal(f.count, 1, `${f.evidence.path} judged ${f.count} times`);
});
