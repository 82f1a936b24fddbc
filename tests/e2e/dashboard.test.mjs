// Issue 5 item 5, the dashboard: GET /dashboard/ on the real collector, in
// real Chromium, over findings the real monitor produced (no-consent.html)
// and a crafted report whose page URL and evidence carry HTML. Checks: the
// page asks for the token and shows nothing without the right one (a clear
// message on a wrong one, every data call carrying the token); the site
// selector; the SVG chart has the findings' day; the vendor, type and page
// tables; the inventory (cookies with lifetimes and purposes, destinations
// and regions); the drill-down into one finding's evidence and consent
// state; the strict CSP (no violation); data with HTML renders as text.
//
// TAGWATCH_SCREENSHOT=1 refreshes docs/dashboard.png and
// docs/dashboard-finding.png (otherwise they go to target/).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { APP_ID, REPO_ROOT, SHOP_ORIGIN, openPage, reportedPageUrl, runPageView, startStack } from './harness.mjs';

const SHOT_DIR = join(REPO_ROOT, process.env.TAGWATCH_SCREENSHOT === '1' ? 'docs' : 'target');
const XSS = '<img src=x onerror=window.__twXss=1>';
const XSS_PAGE = `${SHOP_ORIGIN}/pages/<script>window.__twXss=2</script>`;
// The collector stores a page URL as a browser reads it (WHATWG URL: `<`
// percent-encoded); the evidence path keeps the raw HTML, still inert.
const XSS_PAGE_STORED = new URL(XSS_PAGE).href;

let stack;
let run; // the no-consent page view
let xssSite;

before(async () => {
  stack = await startStack({ siteCount: 3 });
  run = await runPageView(stack, 'no-consent.html', {
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
  });
  assert.ok(run.findings.length >= 5, `the monitor's findings: ${JSON.stringify(run.findings)}`);

  // A crafted report, as any browser could send: HTML in the page URL and
  // in the evidence (both pass the report schema).
  xssSite = stack.nextSite();
  const res = await fetch(stack.collector.ingestUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify([{
      type: 'tagwatch-finding', age: 10, url: XSS_PAGE, user_agent: 'crafted',
      body: {
        schema: 1, site: xssSite, page_view: '0123456789abcdef', finding: 'script_before_consent',
        vendor: 'intercom', category: 'functional', at: 5, count: 1,
        evidence: { kind: 'request', host: 'evil.example', path: `/${XSS}`, initiator: 'script', frame: 'top' },
        consent: { necessary: true, functional: false, analytics: false, marketing: false, source: 'api', since: 1, vendor: false, gpc: true },
      },
    }]),
  });
  assert.equal(res.status, 204, `crafted report: ${res.status} ${await res.text()}`);
}, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

/** A fresh page on the dashboard; records CSP violations and API requests. */
async function openDashboard() {
  const ctx = await openPage(stack.browser);
  await ctx.context.addInitScript(() => {
    window.__twViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__twViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  ctx.apiRequests = [];
  ctx.page.on('request', (req) => {
    if (new URL(req.url()).pathname.startsWith('/api/')) ctx.apiRequests.push({ url: req.url(), auth: req.headers().authorization ?? null });
  });
  const resp = await ctx.page.goto(`${stack.collector.url}/dashboard/`);
  assert.equal(resp.status(), 200);
  ctx.csp = resp.headers()['content-security-policy'];
  return ctx;
}

async function signIn(page, token) {
  await page.fill('#token', token);
  await page.click('#auth button[type=submit]');
}

async function assertClean(ctx) {
  assert.deepEqual(await ctx.page.evaluate(() => window.__twViolations), [], 'no CSP violation');
  assert.deepEqual(ctx.pageErrors, [], 'no page error');
  assert.equal(await ctx.page.evaluate(() => window.__twXss), undefined, 'no injected code ran');
}

/** Select `site` and wait until its data is rendered (the status line is written last). */
async function pickSite(page, site) {
  await page.selectOption('#site', site);
  await page.waitForFunction((s) => document.getElementById('status').textContent.startsWith(`Site ${s}:`), site);
}

const cellText = (page, selector) => page.locator(selector).first().textContent();

test('wrong token: a clear message and no data; every data call carries the token', { timeout: 60_000 }, async () => {
  const ctx = await openDashboard();
  try {
    const { page } = ctx;
    assert.match(ctx.csp, /(^|; )default-src 'self'(;|$)/, `CSP: ${ctx.csp}`);
    assert.doesNotMatch(ctx.csp, /unsafe-inline|unsafe-eval/);
    assert.equal(ctx.apiRequests.length, 0, 'no data call before a token is entered');
    assert.equal(await page.isVisible('#data'), false);

    await signIn(page, 'not-the-token');
    await page.waitForSelector('#error', { state: 'visible' });
    const message = await page.textContent('#error');
    assert.match(message, /refused this admin token \(401: wrong admin token\)/);
    assert.equal(await page.isVisible('#data'), false, 'no data section');
    assert.equal(await page.locator('#site option').count(), 0, 'no site list');
    assert.equal(await page.locator('#data td').count(), 0, 'no table cell');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tagwatch.admin-token')), null, 'a refused token is not kept');
    assert.ok(ctx.apiRequests.length >= 1);
    for (const r of ctx.apiRequests) assert.equal(r.auth, 'Bearer not-the-token', r.url);
    await assertClean(ctx);
  } finally {
    await ctx.context.close();
  }
});

test('the right token: site selector, chart, tables, inventory, drill-down', { timeout: 60_000 }, async () => {
  const { collector } = stack;
  const site = run.site;
  const findings = await collector.findings(site);
  const day = findings[0].at.slice(0, 10);
  const onDay = findings.filter((f) => f.at.startsWith(day)).length;
  const inventory = await collector.inventory(site);
  const intercom = inventory.vendors.find((v) => v.vendor === 'intercom');
  assert.ok(intercom, 'the page view sent its inventory');

  const ctx = await openDashboard();
  try {
    const { page } = ctx;
    await signIn(page, collector.token);
    await page.waitForSelector(`#site option[value="${site}"]`, { state: 'attached' });
    assert.equal(await page.locator('#site option').count(), collector.sites.length, 'every registered site');
    assert.match(await page.textContent(`#site option[value="${site}"]`), /https:\/\/shop\.example/);

    // an empty site first, then the one with findings
    const empty = collector.sites[2];
    await pickSite(page, empty);
    assert.match(await page.textContent('#chart'), /No findings/);
    await pickSite(page, site);

    // chart
    assert.equal(await page.getAttribute(`#chart rect.bar[data-day="${day}"]`, 'data-findings'), String(onDay));
    assert.match(await page.textContent('#chart svg'), new RegExp(day));
    assert.equal(await page.textContent('#n-findings'), String(findings.length));

    // tables by vendor, type and page
    assert.equal(await cellText(page, '#by-vendor tr[data-vendor="intercom"] td.n'), String(findings.length));
    const types = [...new Set(findings.map((f) => f.type))];
    assert.deepEqual(types.sort(), ['cookie_before_consent', 'script_before_consent', 'tracking_before_consent']);
    for (const t of types) {
      const n = findings.filter((f) => f.type === t).length;
      assert.equal(await cellText(page, `#by-type tr[data-type="${t}"] td.n`), String(n), t);
    }
    assert.equal(await page.locator(`#by-page tr[data-page="${reportedPageUrl('no-consent.html')}"]`).count(), 1);
    assert.equal(await page.locator('#findings tbody tr').count(), findings.length);
    assert.ok(Number(await cellText(page, '#by-source td.n')) >= 1);

    // inventory: vendor, cookies with purpose and lifetime, destinations with region
    assert.match(await page.textContent('#inventory tr[data-vendor="intercom"]'), /Intercom \(intercom\)/);
    const cookie = intercom.cookie_details.find((c) => c.lifetime_days !== null);
    assert.ok(cookie, JSON.stringify(intercom.cookie_details));
    const cookieRow = await page.locator(`details[data-vendor="intercom"] tr[data-cookie="${cookie.name}"]`).textContent();
    assert.ok(cookieRow.includes(`${cookie.lifetime_days} days`) && cookieRow.includes(cookie.purpose), cookieRow);
    const dest = intercom.destinations.find((d) => d.region !== null);
    assert.ok(dest, JSON.stringify(intercom.destinations));
    assert.equal(await cellText(page, `details[data-vendor="intercom"] tr[data-host="${dest.host}"] td:nth-child(2)`), dest.region);
    await page.click('details[data-vendor="intercom"] summary');
    await page.screenshot({ path: join(SHOT_DIR, 'dashboard.png'), fullPage: true });

    // drill-down: the widget loader request
    const widget = findings.find((f) => f.evidence.host === 'widget.intercom.io');
    assert.ok(widget);
    const row = page.locator('#findings tbody tr', { hasText: `widget.intercom.io/widget/${APP_ID}` });
    assert.equal(await row.count(), 1);
    await row.locator('button').click();
    await page.waitForSelector('#finding', { state: 'visible' });
    const kv = (table, key) => cellText(page, `#${table} tr[data-key="${key}"] td`);
    assert.equal(await kv('finding-evidence', 'host'), 'widget.intercom.io');
    assert.equal(await kv('finding-evidence', 'path'), `/widget/${APP_ID}`);
    assert.equal(await kv('finding-evidence', 'kind'), 'request');
    assert.equal(await kv('finding-what', 'type'), 'script_before_consent');
    assert.equal(await kv('finding-what', 'page view'), widget.page_view);
    assert.equal(await kv('finding-consent', 'necessary'), 'granted');
    assert.equal(await kv('finding-consent', 'functional'), 'denied');
    assert.equal(await kv('finding-consent', 'marketing'), 'denied');
    assert.equal(await kv('finding-consent', 'source'), widget.consent.source);
    assert.equal(await kv('finding-consent', 'since'), `${widget.consent.since} ms after navigation start`);
    assert.equal(await kv('finding-consent', 'gpc'), 'off');
    // The page's own tagwatch('consent') refusal: a decision.
    assert.equal(widget.consent.basis, 'explicit');
    assert.equal(await kv('finding-consent', 'basis'), 'explicit (a decision the source reports)');
    mkdirSync(SHOT_DIR, { recursive: true });
    await page.locator('#finding').screenshot({ path: join(SHOT_DIR, 'dashboard-finding.png') });

    // a type filters the findings list
    await page.click('#by-type tr[data-type="tracking_before_consent"] button');
    await page.waitForSelector('#clear-filter', { state: 'visible' });
    await page.waitForFunction(() => [...document.querySelectorAll('#findings tbody tr')].every((r) => r.dataset.type === 'tracking_before_consent'));
    assert.equal(await page.locator('#findings tbody tr').count(), findings.filter((f) => f.type === 'tracking_before_consent').length);

    // the token stays for this tab: a reload shows the data again
    await page.reload();
    await page.waitForSelector(`#chart rect.bar[data-day="${day}"]`);
    for (const r of ctx.apiRequests) assert.equal(r.auth, `Bearer ${collector.token}`, r.url);
    await assertClean(ctx);
  } finally {
    await ctx.context.close();
  }
});

test('HTML in a crafted report renders as text', { timeout: 60_000 }, async () => {
  const ctx = await openDashboard();
  try {
    const { page } = ctx;
    await signIn(page, stack.collector.token);
    await page.waitForSelector(`#site option[value="${xssSite}"]`, { state: 'attached' });
    await pickSite(page, xssSite);
    assert.equal(await page.locator('#findings tbody tr').count(), 1);
    assert.equal(await cellText(page, '#findings td.evidence'), `evil.example/${XSS}`);
    assert.equal(await cellText(page, '#findings td.url'), XSS_PAGE_STORED);
    assert.equal(await page.locator('#by-page tbody tr button').first().textContent(), XSS_PAGE_STORED);
    await page.click('#findings tbody tr button');
    await page.waitForSelector('#finding', { state: 'visible' });
    assert.equal(await cellText(page, '#finding-evidence tr[data-key="path"] td'), `/${XSS}`);
    assert.equal(await cellText(page, '#finding-what tr[data-key="page"] td'), XSS_PAGE_STORED);
    assert.equal(await cellText(page, '#finding-consent tr[data-key="gpc"] td'), 'on (Global Privacy Control)');
    // A report from a monitor before `consent.basis` is still valid and says so.
    assert.equal(await cellText(page, '#finding-consent tr[data-key="basis"] td'), 'not reported (a monitor before consent.basis)');
    // A per-service CMP's own choice about the vendor (`consent.vendor`).
    assert.equal(await cellText(page, '#finding-consent tr[data-key="intercom itself"] td'),
      "denied (the CMP's choice about this vendor's service, over its category)");
    assert.equal(await page.locator('img').count(), 0, 'no element from the data');
    assert.equal(await page.locator('script').count(), 1, 'only dashboard.js');
    await assertClean(ctx);
  } finally {
    await ctx.context.close();
  }
});
