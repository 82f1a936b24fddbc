// Issue 11, nothing lost on a busy page: a commerce page with about 300
// third-party resources from 30 hosts (images, scripts, stylesheets, fetch /
// XHR / POST calls, iframes; plan "busy" in
// tests/fixtures/fake-intercom/busy.mjs), 25 cookies and Intercom loading
// before consent, the visitor having granted analytics only. More entries
// than the browser's default Resource Timing buffer (250) keeps: the page's
// own buffer fills, and the monitor must still count every entry, without
// changing that buffer's size. Checked against the plan (what the page
// loads, confirmed by the fake's request log) and Intercom's own requests:
// every host with its request count in the stored inventory, every vendor
// cookie, and the findings exactly Intercom's. Twice: as the page loads
// naturally, and with the monitor's later pieces (everything under
// /tagwatch/ but the loader the snippet names) held back until the page's
// resources are all done, so that the monitor's brain starts only after
// the page's buffer filled up: what it did not see live, the loader must
// have kept.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import { APP_ID, SHOP_ORIGIN, assertExactFindings, runPageView, startStack, waitFor } from './harness.mjs';
import { expectedRequests, hostVendors, plannedCookies, resources } from '../fixtures/fake-intercom/busy.mjs';
import { INTERCOM_HOSTS } from '../fixtures/fake-intercom/hosts.mjs';

// The browser's default Resource Timing buffer size (Chromium, the spec's 250).
const DEFAULT_BUFFER = 250;
// The loader, as the snippet names it (the public contract); everything else
// the monitor fetches from its directory comes later.
const LOADER_PATH = '/tagwatch/tagwatch.js';
const SHOP_HOST = new URL(SHOP_ORIGIN).hostname;

// Cookies the page's analytics tags set, by the catalog vendor they belong to
// (gtag.js sets GA4's); Intercom's are its id (planted: a returning visitor),
// device id and session.
const VENDOR_COOKIES = {
  ga4: ['_ga', '_ga_BENCH1', '_gid'],
  hotjar: ['_hjSessionUser_3000001', '_hjSession_3000001'],
  'microsoft-clarity': ['_clck', '_clsk'],
  segment: ['ajs_anonymous_id'],
  optimizely: ['optimizelyEndUserId'],
  intercom: [`intercom-id-${APP_ID}`, `intercom-device-id-${APP_ID}`, `intercom-session-${APP_ID}`],
};

let stack;
before(async () => { stack = await startStack({ siteCount: 2 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

const busyDone = (page) => page.evaluate(() => Boolean(window.twBusyDone && window.twBusyDone())).catch(() => false);

/** One page view of busy.html; `before` as runPageView's. Returns the run, the page's state and the fake's requests. */
async function busyPageView({ before: beforeOpen = null } = {}) {
  const { fake } = stack;
  const seq0 = fake.requests.length ? fake.requests[fake.requests.length - 1].seq : 0;
  let state = null;
  let buffered = 0;
  const run = await runPageView(stack, 'busy.html', {
    before: beforeOpen,
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
    during: async ({ page }) => {
      await page.waitForFunction(() => window.twBusyDone && window.twBusyDone(), null, { timeout: 60_000, polling: 100 });
      state = await page.evaluate(() => window.twBusyState());
      buffered = await page.evaluate(() => performance.getEntriesByType('resource').length);
    },
  });
  return { run, state, buffered, seen: fake.requests.filter((r) => r.seq > seq0 && r.method !== 'OPTIONS') };
}

/** Every planned resource and Intercom's, every vendor cookie in the inventory; findings exactly Intercom's. */
async function assertNothingLost({ run, state, buffered, seen }) {
  const { fake } = stack;
  // The premise: every planned resource loaded, once, and the page's own
  // buffer is full at the browser's default size.
  const planned = resources('busy');
  assert.deepEqual(state.failed, [], 'every planned resource loads');
  assert.equal(state.done, planned.length);
  for (const r of planned) {
    const hits = seen.filter((q) => q.url === r.url);
    assert.equal(hits.length, 1, `${r.url} requested once (got ${hits.length})`);
  }
  const intercom = seen.filter((r) => INTERCOM_HOSTS.includes(r.host));
  const hosts = new Set([...planned.map((r) => r.host), ...intercom.map((r) => r.host)]);
  assert.equal(hosts.size, 30, `30 third-party hosts: ${[...hosts].join(' ')}`);
  assert.equal(planned.length + intercom.length, 300, `300 third-party resources (${planned.length} planned, ${intercom.length} Intercom)`);
  assert.equal(buffered, DEFAULT_BUFFER, 'the page\'s Resource Timing buffer is full at the default size: not enlarged by the monitor');

  assertExactFindings(run.findings, loadedWithoutConsent({ fake, app: APP_ID }), 'busy page, analytics granted');

  const inv = await stack.collector.inventory(run.site);
  assert.equal(inv.page_views, 1);

  // Unclassified: exactly the plan's hosts the catalog does not know, each with every request.
  const vendorOf = hostVendors('busy');
  const counts = expectedRequests('busy');
  const unknown = [...counts].filter(([h]) => !vendorOf.has(h));
  const listed = Object.fromEntries(inv.unclassified.map((u) => [u.host, u.requests]));
  assert.deepEqual(listed, Object.fromEntries(unknown), 'unclassified hosts and their request counts');

  // Vendors: exactly the plan's catalog vendors and Intercom, each with every request, host and cookie.
  const want = new Map([['intercom', { requests: intercom.length, hosts: new Set(intercom.map((r) => r.host)) }]]);
  for (const [h, v] of vendorOf) {
    const w = want.get(v) || { requests: 0, hosts: new Set() };
    w.requests += counts.get(h);
    w.hosts.add(h);
    want.set(v, w);
  }
  assert.deepEqual(inv.vendors.map((v) => v.vendor).sort(), [...want.keys()].sort(), 'the vendors seen');
  for (const v of inv.vendors) {
    const w = want.get(v.vendor);
    assert.equal(v.requests, w.requests, `${v.vendor}: requests`);
    assert.deepEqual([...v.hosts].sort(), [...w.hosts].sort(), `${v.vendor}: hosts`);
    assert.deepEqual([...v.cookies].sort(), [...(VENDOR_COOKIES[v.vendor] || [])].sort(), `${v.vendor}: cookies`);
  }
}

test('the busy fixture: 25 cookies, the vendor cookies the inventory checks', () => {
  const cookies = plannedCookies('busy');
  const vendorCookies = Object.entries(VENDOR_COOKIES).filter(([v]) => v !== 'intercom').flatMap(([, c]) => c);
  assert.deepEqual([...cookies.vendor].sort(), vendorCookies.sort());
  assert.equal(cookies.firstParty.length + cookies.vendor.length + VENDOR_COOKIES.intercom.length + 1 /* shop_cart */, 25);
});

test('busy page: 300 resources from 30 hosts, every one in the inventory; findings exactly Intercom\'s', { timeout: 120_000 }, async () => {
  await assertNothingLost(await busyPageView());
});

// Fails on the monitor before issue 11's loader (it observes the timeline
// only once the wasm has started: entries past the page's full buffer are
// gone by then, Intercom's loader script among them). The loader's own
// buffered observer is the fix; remove `todo` when it lands.
const BRAIN_LATE_TODO = 'issue 11: the loader must keep the entries the brain did not see';

test('busy page, the monitor\'s later pieces held until the page\'s resources are done: still none lost', { timeout: 120_000, todo: BRAIN_LATE_TODO }, async () => {
  const wall = stack.fake.holdMatching((r) => r.host === SHOP_HOST && r.path.startsWith('/tagwatch/') && r.path !== LOADER_PATH);
  let waited = null;
  try {
    const result = await busyPageView({
      before: ({ page }) => {
        // Not awaited: runs while the page loads, releases once it is done.
        waited = waitFor(() => busyDone(page), { timeoutMs: 60_000, intervalMs: 100, what: 'the busy page\'s resources' })
          .finally(() => wall.release());
      },
    });
    await waited;
    assert.ok(wall.held.length >= 1, 'the monitor fetched something besides its loader, and it was held');
    await assertNothingLost(result);
  } finally {
    wall.release();
    await waited?.catch(() => {});
  }
});
