// Issue 3, inventory and performance: what ran on a page view reaches the
// collector as a tagwatch-inventory report, and GET /api/inventory shows it
// per vendor (requests, scripts, bytes where Timing-Allow-Origin allows,
// hosts, regions, cookies, the catalog's declared weight) plus the
// third-party hosts the catalog does not know. The page posts to
// https://collector.example/r (the fake proxies it to the tap, then the
// collector) and flushes once mid-page, so the collector host really is in
// the page's Resource Timing: it must not be listed, nor the shop itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { APP_ID, assertExactFindings, runPageView, startStack } from './harness.mjs';
import { UNKNOWN_WIDGET_HOST } from '../fixtures/fake-intercom/hosts.mjs';

const INTERCOM_HOST = /(^|\.)(intercom\.io|intercomcdn\.com)$/;

let stack;
before(async () => {
  stack = await startStack();
  // collector.example → tap → collector, so the tap still records every POST
  stack.fake.setCollectorUpstream(stack.tap.url);
}, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

/** Resource Timing entries of the top document and of #intercom-frame. */
function entriesIn(page) {
  return page.evaluate(() => {
    const pick = (w, frame) => w.performance.getEntriesByType('resource').map((e) => ({
      name: e.name, host: new URL(e.name).hostname, initiator: e.initiatorType, transfer: e.transferSize, frame,
    }));
    const f = document.getElementById('intercom-frame');
    return [...pick(window, 'top'), ...(f && f.contentWindow ? pick(f.contentWindow, 'frame') : [])];
  });
}

test('inventory: Intercom with its usage and declared weight, the unknown widget unclassified', { timeout: 90_000 }, async () => {
  let entries = [];
  const run = await runPageView(stack, 'inventory.html', {
    collector: 'https://collector.example/r',
    maxPosts: 2, // the flush below, and the final state on pagehide if it changed since
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
    settleMs: 300,
    during: async ({ page }) => {
      await page.waitForFunction(() => window.twUnknownWidgetReady === true, null, { timeout: 10_000 });
      await page.evaluate(() => tagwatch('flush'));
      await page.waitForFunction(() => performance.getEntriesByType('resource')
        .some((e) => new URL(e.name).hostname === 'collector.example' && e.responseEnd > 0), null, { timeout: 10_000 });
      entries = await entriesIn(page);
    },
  });
  assertExactFindings(run.findings, [], 'all granted, no policy');

  // the premise, from the browser's own Resource Timing
  const intercomEntries = entries.filter((e) => INTERCOM_HOST.test(e.host));
  const intercomScripts = intercomEntries.filter((e) => e.initiator === 'script');
  assert.ok(intercomScripts.length >= 3, `loader + 2 bundles: ${JSON.stringify(intercomScripts)}`);
  assert.ok(entries.some((e) => e.host === 'collector.example'), 'the collector is in the page timeline');
  assert.ok(entries.some((e) => e.host === UNKNOWN_WIDGET_HOST), 'the unknown widget is in the page timeline');
  assert.ok(entries.some((e) => e.host === 'shop.example'), 'first-party requests are in the page timeline');
  assert.ok(entries.some((e) => e.host === 'js.intercomcdn.com' && e.transfer > 0), 'the CDN sends Timing-Allow-Origin');

  // what the monitor sent
  assert.ok(run.inventories.length >= 1, 'the page view sent its inventory');
  for (const r of run.inventories) {
    assert.equal(r.url, 'https://shop.example/pages/inventory.html');
    assert.equal(r.body.site, run.site);
  }

  const inv = await stack.collector.inventory(run.site);
  assert.equal(inv.page_views, 1, 'one page view, however many sends');
  const ic = inv.vendors.find((v) => v.vendor === 'intercom');
  assert.ok(ic, `intercom in the inventory: ${JSON.stringify(inv)}`);
  assert.equal(ic.name, 'Intercom');
  assert.equal(ic.category, 'chat');
  assert.equal(ic.page_views, 1);
  assert.ok(ic.requests >= intercomEntries.length, `requests ${ic.requests} >= ${intercomEntries.length} Intercom entries (top + frame)`);
  assert.ok(ic.script_requests >= 3, `script_requests ${ic.script_requests} >= 3`);
  assert.ok(ic.transfer_bytes > 0, 'transfer_bytes > 0: js.intercomcdn.com sends Timing-Allow-Origin');
  assert.ok(ic.encoded_bytes > 0, 'encoded_bytes > 0');
  assert.ok(ic.duration_ms >= 0);
  for (const h of ['widget.intercom.io', 'js.intercomcdn.com', 'api-iam.intercom.io']) {
    assert.ok(ic.hosts.includes(h), `hosts include ${h}: ${ic.hosts}`);
  }
  assert.ok(ic.regions.includes('us'), `regions include us (api-iam.intercom.io): ${ic.regions}`);
  for (const c of [`intercom-id-${APP_ID}`, `intercom-device-id-${APP_ID}`, `intercom-session-${APP_ID}`]) {
    assert.ok(ic.cookies.includes(c), `cookies include ${c}: ${ic.cookies}`);
  }
  assert.deepEqual({ script_kb: ic.declared?.script_kb, requests: ic.declared?.requests }, { script_kb: 250, requests: 2 }, 'declared weight from the catalog');
  assert.equal(ic.per_page.requests, ic.requests);
  assert.equal(ic.per_page.script_requests, ic.script_requests);

  const hosts = inv.unclassified.map((h) => h.host);
  const widget = inv.unclassified.find((h) => h.host === UNKNOWN_WIDGET_HOST);
  assert.ok(widget, `unclassified includes ${UNKNOWN_WIDGET_HOST}: ${hosts}`);
  assert.equal(widget.page_views, 1);
  assert.ok(widget.requests >= 2, `widget.js + config.json: ${widget.requests}`);
  assert.ok(widget.transfer_bytes > 0, 'the widget sends Timing-Allow-Origin');
  for (const h of hosts) {
    assert.ok(h !== 'shop.example' && !h.endsWith('.shop.example'), `the page's own site is not a third party: ${hosts}`);
    assert.notEqual(h, 'collector.example', `the collector is not listed: ${hosts}`);
    assert.ok(!INTERCOM_HOST.test(h), `Intercom hosts are classified, not unclassified: ${hosts}`);
  }
  assert.ok(!inv.vendors.some((v) => v.hosts.includes(UNKNOWN_WIDGET_HOST)));
});
