// Scenario: Intercom loads (Basic JavaScript snippet, on window load) while
// the visitor has consented to nothing but `necessary`. The monitor starts
// first; a returning visitor's intercom-id cookie already exists at start,
// the other two are set later.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import {
  APP_ID, assertExactFindings, assertNoCanaries, cookieValues, endPageView, openPage, pageUrl, pollFindings, runPageView,
  sleep, startStack, waitFor, waitForFrameEntries, waitForIntercomBoot,
} from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('no consent: script, cookie and tracking findings, exactly; sent once on pagehide', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'no-consent.html', {
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
  });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'no consent');
  for (const r of run.reports) {
    assert.equal(r.type, 'tagwatch-finding');
    assert.equal(r.body.vendor, 'intercom');
    assert.equal(r.body.consent.functional, false);
    assert.equal(r.body.consent.marketing, false);
    assert.equal(r.body.consent.gpc, false);
  }
  // the categories the behaviours needed, per the default Intercom policy
  const cat = (f) => run.reports.filter((r) => r.body.finding === f).map((r) => r.body.category);
  assert.ok(cat('script_before_consent').every((c) => c === 'functional'));
  assert.ok(cat('cookie_before_consent').every((c) => c === 'functional'));
  assert.ok(cat('tracking_before_consent').every((c) => c === 'marketing'));
});

test('data-collector / data-site attributes, tagwatch("flush"), straight to the collector (no tap)', { timeout: 90_000 }, async () => {
  const { fake, collector, browser } = stack;
  const site = stack.nextSite();
  const ctx = await openPage(browser, { collectorUrl: collector.url });
  try {
    const seq0 = fake.requests.length;
    await ctx.page.goto(pageUrl('no-consent-attrs.html', { collector: collector.ingestUrl, site }));
    await waitFor(() => fake.requests.slice(seq0).find((r) => r.path === '/tagwatch/tagwatch_bg.wasm' && r.status !== null), { what: 'the wasm fetch' });
    await waitForIntercomBoot(ctx.page);
    await waitForFrameEntries(ctx.page, [/\/messenger\/web\/events$/]);
    await sleep(500);
    await ctx.page.evaluate(() => tagwatch('flush'));
    const expected = loadedWithoutConsent({ fake, app: APP_ID });
    const findings = await pollFindings(collector, site, (f) => f.length >= expected.length);
    // flushed reports are not sent again on pagehide
    const values = await cookieValues(ctx.context);
    await endPageView(ctx.page);
    await sleep(1500);
    assertExactFindings(await collector.findings(site), expected, 'attributes + flush');
    assert.equal(findings.length, expected.length);
    // the flush request happened while the page was alive: the browser saw it
    // Besides the loader's GET /config/<site> (its settings), only report POSTs.
    const reports = ctx.collectorRequests.filter((r) => !new URL(r.url).pathname.startsWith('/config/'));
    assert.equal(ctx.collectorRequests.length - reports.length, 1, 'one GET /config/<site> per page view');
    assert.ok(reports.length >= 1, 'the browser sent the flush to the collector');
    assert.ok(reports.every((r) => r.method === 'POST'));
    assertNoCanaries(ctx.collectorRequests.map((r) => `${r.url}\n${r.body}`), values);
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close();
  }
});
