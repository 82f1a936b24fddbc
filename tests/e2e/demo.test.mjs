// The demo page (www/demo/) works against the real collector: Intercom
// loads before any consent, "Send findings now" delivers the findings, and
// a withdrawal made in the demo's real CMP (vanilla-cookieconsent) reaches
// the collector as cookie_after_withdrawal decided on the CMP's state.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openDemo, pollFindings, sleep, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('demo: findings arrive after "Send findings now"; consent buttons work', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  const ctx = await openDemo(stack, site);
  try {
    const app = await ctx.page.evaluate(() => window.intercomSettings.app_id);
    await sleep(500);
    await ctx.page.click('#tw-flush');
    const findings = await pollFindings(stack.collector, site, (f) => f.length > 0);
    const keys = findings.map((f) => f.type ?? f.finding);
    assert.ok(keys.includes('script_before_consent'));
    assert.ok(keys.includes('cookie_before_consent'));
    assert.ok(keys.includes('tracking_before_consent'));
    assert.ok(findings.some((f) => JSON.stringify(f).includes(`intercom-id-${app}`)));
    // The demo's consent comes from a real CMP (vanilla-cookieconsent from
    // npm): its banner is up, and tagwatch reads a withdrawal in it.
    assert.equal(await ctx.page.evaluate(() => typeof window.CookieConsent?.acceptCategory), 'function');
    await ctx.page.click('#tw-accept');
    assert.match(await ctx.page.locator('#tw-state').textContent(), /functional: yes/);
    await ctx.page.click('#tw-withdraw');
    await sleep(3000 + 1500); // the demo's grace_ms, then a tick
    await ctx.page.click('#tw-flush');
    const withdrawn = await pollFindings(stack.collector, site, (f) => f.some((x) => (x.type ?? x.finding) === 'cookie_after_withdrawal'));
    const leftover = withdrawn.find((x) => (x.type ?? x.finding) === 'cookie_after_withdrawal');
    assert.equal(leftover.consent.source, 'vanilla-cookieconsent', JSON.stringify(leftover));
    assert.equal(leftover.consent.functional, false);
    await ctx.page.click('#tw-reject');
    assert.match(await ctx.page.locator('#tw-state').textContent(), /functional: no/);
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close();
  }
});
