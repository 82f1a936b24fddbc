// Releases (issue 15): two releases of the demo shop (www/demo/) through
// real Chromium, the shipped monitor and the real collector with
// `--webhook`. Release 1 is the demo as it is (Intercom before consent);
// release 2 adds Google Analytics 4 claiming consent nobody gave (?tag=ga4).
// GET /api/diff names the new vendor (ga4) and the new finding type
// (consent_signal_mismatch); the release webhook fires once for each; and
// the release is the only new thing on the wire: every report carries it,
// exactly as configured, and nothing else changed (no query string, no
// canary).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { canaryNeedles } from '../fixtures/canaries.mjs';
import { apiGet, CANARIES, openDemo, openPage, pollFindings, startStack, waitFor } from './harness.mjs';

// Site-chosen strings: a space, quotes, SQL and non-ASCII travel as they are.
const R1 = 'shop-2026.12.1';
const R2 = 'shop-2026.12.2 "β" \' OR 1=1 --';
// What a report body may hold besides `release` (docs/report.schema.json
// before releases), per report type.
const BODY_KEYS = {
  'tagwatch-finding': ['schema', 'site', 'page_view', 'finding', 'vendor', 'at', 'evidence', 'consent', 'count', 'category'],
  'tagwatch-inventory': ['schema', 'site', 'page_view', 'vendors', 'unclassified'],
  'tagwatch-health': ['schema', 'site', 'status', 'page_view', 'reason'],
};

let stack;
let hook;

// The stores the reports are kept in: SQLite, and ClickHouse (`--events`,
// a database of this run's own, dropped after) when a test server is given
// (TAGWATCH_TEST_CLICKHOUSE, as ./build.sh test does).
const STORES = [{ name: 'SQLite', args: [], drop: async () => {} }];
const CH = process.env.TAGWATCH_TEST_CLICKHOUSE;
if (CH) {
  const database = `tw_e2e_releases_${process.pid}`;
  const http = `http://${new URL(CH.replace(/^clickhouse:/, 'http:')).host}/`;
  STORES.push({
    name: 'ClickHouse (--events)',
    args: ['--events', CH.replace(/\/[^/?]*(?=\?|$)/, `/${database}`)],
    drop: async () => { await fetch(http, { method: 'POST', body: `DROP DATABASE IF EXISTS ${database}` }); },
  });
}

/** A webhook receiver that keeps every alert. */
function startHook() {
  const alerts = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      alerts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}/hook`,
    alerts,
    close: () => new Promise((r) => server.close(r)),
  })));
}

/** One page view of the demo at `release` (with `tag`), its findings sent with "Send findings now". */
async function visit(site, release, { tag = null, expect }) {
  const ofRelease = (f) => f.filter((x) => x.release === release);
  const before = ofRelease(await stack.collector.findings(site)).length;
  const params = { release, ref: CANARIES.query, ...(tag ? { tag } : {}) };
  const ctx = await openDemo(stack, site, { params, fragment: CANARIES.fragment });
  try {
    // The monitor judged what this release must show (consent claims settle
    // in 500 ms): wait on its own findings, not on a clock.
    await ctx.page.waitForFunction((kinds) => {
      let reports = [];
      try { reports = window.tagwatch('findings') || []; } catch (e) { return false; }
      const have = new Set(reports.map((r) => r.body && r.body.finding));
      return kinds.every((k) => have.has(k));
    }, expect, { timeout: 20000, polling: 100 });
    await ctx.page.click('#tw-flush');
    // This page view's findings stored (more rows of the release than before it).
    await pollFindings(stack.collector, site, (f) => ofRelease(f).length > before
      && expect.every((k) => ofRelease(f).some((x) => x.type === k)), { timeoutMs: 15000 });
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close();
  }
}

async function api(path) {
  const res = await apiGet(`${stack.collector.url}${path}`, { headers: { Authorization: `Bearer ${stack.collector.token}` } });
  const text = await res.text();
  return { status: res.status, text, json: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null };
}

const releaseAlerts = () => hook.alerts.filter((a) => a.event === 'release_introduced');

for (const store of STORES) {
  test(`releases (${store.name}): the diff and the webhook name what release 2 added; the release is the only new thing on the wire`, { timeout: 180_000 }, async () => {
    stack = undefined;
    hook = await startHook();
    try {
      stack = await startStack({ siteCount: 1, collectorArgs: ['--webhook', hook.url, ...store.args] });
      await releases();
    } finally {
      await stack?.stop();
      await hook.close();
      await store.drop();
    }
  });
}

async function releases() {
  const site = stack.nextSite();
  await visit(site, R1, { expect: ['script_before_consent', 'cookie_before_consent'] });
  await visit(site, R2, { tag: 'ga4', expect: ['consent_signal_mismatch', 'tracking_before_consent'] });

  const findings = await stack.collector.findings(site);
  const r2 = findings.filter((f) => f.release === R2);
  assert.ok(r2.some((f) => f.vendor === 'ga4' && f.type === 'consent_signal_mismatch'), JSON.stringify(r2));
  assert.ok(findings.every((f) => f.release === R1 || f.release === R2), JSON.stringify(findings));
  const only1 = await stack.collector.findings(site, { release: R1 });
  assert.ok(only1.length > 0 && only1.every((f) => f.release === R1 && f.vendor === 'intercom'), JSON.stringify(only1));

  // Release 2's findings being readable does not mean its inventory is:
  // ClickHouse takes a batch's tables one insert after another (no
  // transaction across them), and the inventory's last state is sent as
  // the page view ends (the context closed). Wait for the diff to see it
  // (its hosts), not on a clock.
  const diff = await waitFor(async () => {
    const d = await api(`/api/diff?${new URLSearchParams({ site, from: R1, to: R2 })}`);
    return d.status !== 200 || d.json.hosts.new.some((h) => h.host === 'region1.google-analytics.com') ? d : null;
  }, { timeoutMs: 15000, what: "the diff to show release 2's inventory (its hosts)" });
  assert.equal(diff.status, 200, diff.text);
  const d = diff.json;
  assert.deepEqual(d.vendors.appeared.map((v) => v.vendor), ['ga4'], diff.text);
  assert.deepEqual(d.vendors.vanished, [], diff.text);
  assert.equal(d.vendors.appeared[0].per_1000_page_views, 1000, diff.text);
  assert.ok(d.hosts.new.some((h) => h.host === 'region1.google-analytics.com'), diff.text);
  assert.ok(d.finding_types.appeared.some((t) => t.type === 'consent_signal_mismatch'), diff.text);
  assert.deepEqual(d.from, { release: R1, page_views: 1 });
  assert.deepEqual(d.to, { release: R2, page_views: 1 });
  const unknown = await api(`/api/diff?${new URLSearchParams({ site, from: R1, to: 'shop-2026.12.3' })}`);
  assert.equal(unknown.status, 400, unknown.text);
  assert.match(unknown.text, /no report of site .* names release "shop-2026\.12\.3"/);

  // The webhook: once for the vendor and once for the type.
  await waitFor(() => releaseAlerts().length >= 2, { timeoutMs: 15000, what: 'release alerts' });
  const items = () => releaseAlerts().map((a) => `${a.release}|${a.previous}|${a.kind}|${a.item}`).sort();
  assert.deepEqual(items(), [
    `${R2}|${R1}|finding_type|consent_signal_mismatch`,
    `${R2}|${R1}|vendor|ga4`,
  ]);
  for (const a of releaseAlerts()) {
    assert.deepEqual(Object.keys(a).sort(), ['at', 'event', 'item', 'kind', 'previous', 'release', 'site', 'text']);
  }
  // Release 2 again: stored, and not alerted again.
  await visit(site, R2, { tag: 'ga4', expect: ['consent_signal_mismatch'] });
  assert.deepEqual(items(), [
    `${R2}|${R1}|finding_type|consent_signal_mismatch`,
    `${R2}|${R1}|vendor|ga4`,
  ], 'the second visit of release 2 was committed (visit() read its findings back) and alerted nothing more');

  // The dashboard's release view: the latest two releases compared.
  const dash = await openPage(stack.browser);
  try {
    const { page } = dash;
    await page.goto(`${stack.collector.url}/dashboard/`);
    await page.fill('#token', stack.collector.token);
    await page.click('#auth button[type=submit]');
    await page.waitForFunction((s) => document.getElementById('status').textContent.startsWith(`Site ${s}:`), site);
    assert.equal(await page.inputValue('#diff-from'), R1);
    assert.equal(await page.inputValue('#diff-to'), R2);
    await page.click('#diff-form button[type=submit]');
    await page.waitForSelector('#diff tr[data-change="vendor appeared"][data-name="ga4"]');
    assert.equal(await page.locator('#diff tr[data-change="finding type appeared"][data-name="consent_signal_mismatch"]').count(), 1);
    // The release filter: only release 1's findings, each showing it.
    await page.selectOption('#release', R1);
    await page.waitForFunction((r) => document.getElementById('status').textContent.includes(`release ${r}:`), R1);
    const shown = await page.locator('#findings td.release').allTextContents();
    assert.ok(shown.length > 0 && shown.every((t) => t === R1), JSON.stringify(shown));
    assert.deepEqual(dash.pageErrors, []);
  } finally {
    await dash.context.close();
  }

  // On the wire: every report of each page view names its release exactly;
  // without `release`, a body has only what it had before releases; no
  // canary (query, fragment) anywhere.
  const posts = stack.tap.posts.filter((p) => p.method === 'POST' && p.body.includes(site));
  assert.ok(posts.length >= 3, `${posts.length} posts`);
  const needles = canaryNeedles();
  for (const p of posts) {
    for (const n of needles) assert.ok(!p.body.includes(n), `canary ${n} in ${p.body.slice(0, 300)}`);
    for (const r of JSON.parse(p.body)) {
      const { release, ...rest } = r.body;
      assert.ok(release === R1 || release === R2, `release ${JSON.stringify(release)} in ${JSON.stringify(r)}`);
      for (const k of Object.keys(rest)) assert.ok(BODY_KEYS[r.type].includes(k), `${r.type} body key ${k}`);
      assert.ok(!r.url.includes('?') && !r.url.includes('#'), r.url);
    }
  }
}
