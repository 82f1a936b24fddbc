// Scenario: real Chromium sends CSP violation reports to the collector's
// POST /csp/<site>, once with the legacy report-uri (application/csp-report)
// and once with report-to + Reporting-Endpoints (application/reports+json,
// after a CORS preflight). The page runs Intercom under the
// Content-Security-Policy-Report-Only that docs/collector.md recommends, plus
// an unknown widget and a GA beacon the policy does not allow. The collector
// stores csp_blocked findings for those two, classified by the catalog, with
// no query string (the blocked URLs carry canaries), and none for Intercom.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  CANARIES, CHROMIUM, CHROMIUM_ARGS, endPageView, openPage, pageUrl, pollFindings, reportedPageUrl,
  sleep, startStack, waitFor, waitForIntercomBoot,
} from './harness.mjs';

let stack;
let browser;
before(async () => {
  stack = await startStack({ siteCount: 4 });
  // collector.example → tap → collector: the test sees what the browser sent.
  stack.fake.setCollectorUpstream(stack.tap.url);
  // Reporting API uploads are batched for up to a minute; this switch makes
  // Chromium send them after 100 ms.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...stack.fake.chromiumArgs, '--short-reporting-delay'],
  });
}, { timeout: 120_000 });
after(async () => {
  await browser?.close().catch(() => {});
  await stack?.stop();
}, { timeout: 30_000 });

const cspPosts = (site) => stack.tap.posts.filter((p) => p.method === 'POST' && p.path === `/csp/${site}`);

async function scenario(page, contentType) {
  const site = stack.nextSite();
  const ctx = await openPage(browser, {});
  try {
    const resp = await ctx.page.goto(pageUrl(page, { collector: stack.tap.ingestUrl, site }));
    assert.equal(resp.status(), 200);
    await waitForIntercomBoot(ctx.page);
    await waitFor(() => cspPosts(site).filter((p) => p.done).length >= 1, { timeoutMs: 20_000, what: `a CSP report POST for ${site}` });
    await sleep(1000);
    await endPageView(ctx.page);
    assert.deepEqual(ctx.pageErrors, [], 'report-only: nothing breaks');
  } finally {
    await ctx.context.close().catch(() => {});
  }
  const findings = await pollFindings(stack.collector, site, (fs) => {
    const hosts = new Set(fs.filter((f) => f.type === 'csp_blocked').map((f) => f.evidence.host));
    return hosts.has('cdn.unknown-widget.example') && hosts.has('www.google-analytics.com');
  }, { timeoutMs: 20_000 });

  const posts = cspPosts(site);
  for (const p of posts) {
    assert.equal(p.status, 204, `the collector refused a CSP report (${p.status}): ${p.response}\n${p.body.slice(0, 500)}`);
    assert.match(p.headers['content-type'] || '', contentType);
  }
  const sent = posts.map((p) => p.body).join('\n');
  assert.ok(sent.includes(CANARIES.query), 'the browser put the blocked URL with its query in the report');

  const csp = findings.filter((f) => f.type === 'csp_blocked');
  const widget = csp.find((f) => f.evidence.host === 'cdn.unknown-widget.example' && f.evidence.path === '/widget.js');
  assert.ok(widget, `no csp_blocked finding for the widget script: ${JSON.stringify(csp)}`);
  assert.equal(widget.vendor, 'unclassified');
  assert.match(widget.evidence.directive, /^script-src/);
  assert.equal(widget.evidence.disposition, 'report');
  assert.equal(widget.page, reportedPageUrl(page));
  assert.equal(widget.consent, null);
  const ga = csp.find((f) => f.evidence.host === 'www.google-analytics.com');
  assert.equal(ga.vendor, 'ga4');
  assert.equal(ga.evidence.path, '/g/collect');
  assert.equal(ga.evidence.directive, 'img-src');
  assert.equal(ga.category, 'analytics');
  assert.ok(ga.count >= 1);
  const intercom = csp.filter((f) => f.vendor === 'intercom');
  assert.deepEqual(intercom, [], 'the recommended policy covers everything Intercom loads');

  const stored = JSON.stringify(findings);
  for (const needle of [CANARIES.query, CANARIES.email, 'G-TW', '?']) {
    assert.ok(!stored.includes(needle), `${needle} reached the stored findings: ${stored.slice(0, 1500)}`);
  }
  return { site, posts };
}

test('legacy report-uri: application/csp-report reports become csp_blocked findings', { timeout: 90_000 }, async () => {
  await scenario('csp-report.html', /^application\/csp-report/);
});

test('report-to (Reporting API): application/reports+json after a preflight', { timeout: 90_000 }, async () => {
  const { site } = await scenario('csp-report-to.html', /^application\/reports\+json/);
  const preflights = stack.tap.posts.filter((p) => p.method === 'OPTIONS' && p.path === `/csp/${site}`);
  for (const p of preflights) assert.equal(p.status, 204, `preflight answered ${p.status}: ${p.response}`);
});
