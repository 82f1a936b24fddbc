// Issue 11, item 4: on a quiet page the sweeps are event-driven; with no
// event at all only a fallback check runs (www/observe.js: the host's last
// answer asked again in JavaScript, backing off to FALLBACK_MS). The one
// state no event announces — a vendor's global set by the page's own timer,
// with no entry, no DOM change and no cookie — must still be found by that
// check while the page view lasts (not only by the report's own sweep at
// its end), dated when the check saw it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { endPageView, openPage, pageUrl, startStack, waitForReports } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

// The fallback's longest interval (www/observe.js FALLBACK_MS), and room
// for the page view's start before it.
const FALLBACK_MS = 60_000;

test('a vendor global set by a timer alone (no entry, no DOM change, no cookie) is found by the idle check', { timeout: 150_000 }, async () => {
  const { tap, browser } = stack;
  const site = stack.nextSite();
  const ctx = await openPage(browser, { collectorUrl: new URL(tap.ingestUrl).origin });
  try {
    await ctx.page.goto(pageUrl('quiet.html', { collector: tap.ingestUrl, site }));
    await ctx.page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 20_000, polling: 100 });
    // Once the sweeps have backed off (nothing happened for seconds).
    await ctx.page.waitForFunction(() => performance.now() > 12_000, null, { timeout: 30_000, polling: 500 });
    // Mouseflow's global, as a page's timer would set it: an assignment.
    // Read through a getter that notes when something looked at it.
    const setAt = await ctx.page.evaluate(() => {
      const reads = [];
      Object.defineProperty(window, 'twReads', { value: reads });
      const mouseflow = { version: 1 };
      Object.defineProperty(window, 'mouseflow', {
        configurable: true, enumerable: true, get() { reads.push(performance.now()); return mouseflow; },
      });
      return performance.now();
    });
    // The check (or a sweep) looked: nothing else on the page reads it.
    await ctx.page.waitForFunction(() => window.twReads.length > 0, null, { timeout: FALLBACK_MS + 10_000, polling: 250 });
    const askedAt = await ctx.page.evaluate(() => performance.now());
    const batch = await ctx.page.evaluate(() => window.tagwatch('findings'));
    const found = batch.filter((r) => r.body.evidence?.kind === 'global' && r.body.evidence.name === 'mouseflow');
    assert.equal(found.length, 1, `one finding of the global: ${JSON.stringify(batch.map((r) => [r.body.finding, r.body.evidence]))}`);
    const at = found[0].body.at;
    // Found by the check, before the `findings` command's own sweep.
    assert.ok(at >= Math.floor(setAt) && at < askedAt, `found at ${at}: after it was set (${setAt}), before it was asked for (${askedAt})`);
    console.log(`# the global set at ${Math.round(setAt)} ms was found at ${at} ms (${at - Math.round(setAt)} ms later)`);
    await endPageView(ctx.page);
    const posts = await waitForReports(tap, site);
    assert.ok(posts.some((p) => p.body.includes('"name":"mouseflow"')), 'the report carries it');
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close().catch(() => {});
  }
});
