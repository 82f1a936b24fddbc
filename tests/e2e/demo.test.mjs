// The demo page (www/demo/) works against the real collector: Intercom
// loads before any consent, "Send findings now" delivers the findings, the
// banner's buttons drive tagwatch('consent', …) without errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openPage, pollFindings, sleep, startStack, waitForFrameEntries } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('demo: findings arrive after "Send findings now"; consent buttons work', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  const ctx = await openPage(stack.browser, { collectorUrl: stack.tap.url });
  try {
    const q = new URLSearchParams({ collector: stack.tap.ingestUrl, site });
    await ctx.page.goto(`https://shop.example/demo/?${q}`);
    await waitForFrameEntries(ctx.page, [/\/messenger\/web\/metrics$/]);
    const app = await ctx.page.evaluate(() => window.intercomSettings.app_id);
    await sleep(500);
    await ctx.page.click('#tw-flush');
    const findings = await pollFindings(stack.collector, site, (f) => f.length > 0);
    const keys = findings.map((f) => f.type ?? f.finding);
    assert.ok(keys.includes('script_before_consent'));
    assert.ok(keys.includes('cookie_before_consent'));
    assert.ok(keys.includes('tracking_before_consent'));
    assert.ok(findings.some((f) => JSON.stringify(f).includes(`intercom-id-${app}`)));
    await ctx.page.click('#tw-accept');
    await ctx.page.click('#tw-withdraw');
    await ctx.page.click('#tw-reject');
    assert.match(await ctx.page.locator('#tw-state').textContent(), /functional: no/);
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close();
  }
});
