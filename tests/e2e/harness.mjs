// Helpers for the end-to-end scenarios: the fake Intercom over HTTPS, the
// real collector (target/release/tagwatch), a recording tap in front of it,
// and headless Chromium through playwright-core.
//
// Environment:
//   TAGWATCH_CHROMIUM   browser binary (default /usr/bin/chromium)
//   TAGWATCH_BIN        collector binary (default target/release/tagwatch)
//   TAGWATCH_E2E_DEBUG  1 = log fake-server requests and collector stderr
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { CANARIES, canaryNeedles } from '../fixtures/canaries.mjs';
import { SHOP_ORIGIN } from '../fixtures/fake-intercom/hosts.mjs';
import { REPO_ROOT, startFakeIntercom } from '../fixtures/fake-intercom/server.mjs';

export { CANARIES, REPO_ROOT, SHOP_ORIGIN };

const execFileP = promisify(execFile);
const DEBUG = process.env.TAGWATCH_E2E_DEBUG === '1';

export const CHROMIUM = process.env.TAGWATCH_CHROMIUM || '/usr/bin/chromium';
export const TAGWATCH_BIN = process.env.TAGWATCH_BIN || join(REPO_ROOT, 'target/release/tagwatch');
export const DIST_JS = join(REPO_ROOT, 'dist/tagwatch.js');
export const DIST_BRAIN = join(REPO_ROOT, 'dist/tagwatch_bg.js');
export const DIST_WASM = join(REPO_ROOT, 'dist/tagwatch_bg.wasm');
export const APP_ID = 'k9x2m4qa';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--no-default-browser-check',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * GET `url` for a test's read of the collector's API. An HTTP/1.1 client
 * reusing a kept-alive connection can race the server's close of it (the
 * request then fails on a closed socket before any answer: `TypeError:
 * fetch failed`, seen on a loaded machine); RFC 9112 §9.3.1 lets a client
 * send an idempotent request again then, as browsers do. Only that case is
 * retried, once: an answer, whatever its status, is returned as it is.
 */
export async function apiGet(url, init = {}) {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return fetch(url, init);
  }
}

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---- preconditions ------------------------------------------------------------

/** Fails (never skips) when the shipped monitor has not been built. */
export function requireMonitorBuilt() {
  const missing = [DIST_JS, DIST_BRAIN, DIST_WASM].filter((f) => !existsSync(f));
  assert.equal(
    missing.length, 0,
    `the monitor is not built: missing ${missing.join(', ')}. Run ./build.sh build (it makes dist/tagwatch.js, dist/tagwatch_bg.js and dist/tagwatch_bg.wasm) before the e2e tests.`,
  );
}

/** Fails (never skips) when the collector binary has not been built. */
export function requireCollectorBuilt() {
  assert.ok(
    existsSync(TAGWATCH_BIN) && statSync(TAGWATCH_BIN).isFile(),
    `the collector is not built: missing ${TAGWATCH_BIN}. Run ./build.sh build (cargo build --release -p tagwatch) first.`,
  );
}

export function requireChromium() {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set TAGWATCH_CHROMIUM)`);
}

// ---- fake Intercom ----------------------------------------------------------------

export async function startFake(options = {}) {
  return startFakeIntercom({ port: 0, log: DEBUG, ...options });
}

// ---- collector ----------------------------------------------------------------------

/**
 * Start the real collector on embedded SQLite with `siteCount` sites registered
 * for https://shop.example. Returns { url, token, sites, findings(site), stop() }.
 */
export async function startCollector({ siteCount = 8, origin = SHOP_ORIGIN, extraArgs = [] } = {}) {
  requireCollectorBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tagwatch-e2e-db-'));
  const db = `sqlite:${join(dir, 'tagwatch.db')}`;
  const token = `e2e-admin-${Math.random().toString(16).slice(2)}${Math.random().toString(16).slice(2)}`;
  const env = { ...process.env, TAGWATCH_ADMIN_TOKEN: token };

  const sites = [];
  for (let i = 0; i < siteCount; i++) {
    let out;
    try {
      out = await execFileP(TAGWATCH_BIN, ['site', 'add', '--origin', origin, '--db', db], { env, timeout: 30000 });
    } catch (e) {
      throw new Error(`tagwatch site add failed: ${e.stderr || e.message}`);
    }
    const key = out.stdout.trim();
    assert.match(key, /^[A-Za-z0-9_-]{1,64}$/, `tagwatch site add must print the site key alone on stdout, got ${JSON.stringify(out.stdout)}`);
    sites.push(key);
  }

  const child = spawn(TAGWATCH_BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db, ...extraArgs], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not print its listen line within 20 s; stderr:\n${stderr}`)), 20000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (DEBUG) process.stderr.write(`[collector] ${chunk}`);
      const m = /tagwatch: listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`collector exited early (${code ?? sig}); stderr:\n${stderr}`));
    });
  });

  return {
    url,
    ingestUrl: `${url}/r`,
    token,
    sites,
    db,
    stderr: () => stderr,
    async findings(site, params = {}) {
      const q = new URLSearchParams({ site, ...params });
      const res = await apiGet(`${url}/api/findings?${q}`, { headers: { Authorization: `Bearer ${token}` } });
      const text = await res.text();
      assert.equal(res.status, 200, `GET /api/findings answered ${res.status}: ${text}`);
      const json = JSON.parse(text);
      assert.ok(Array.isArray(json.findings), `GET /api/findings must answer {"findings":[…]}, got ${text.slice(0, 200)}`);
      return json.findings;
    },
    /** GET /api/inventory?site=… with the admin token. */
    async inventory(site, params = {}) {
      const q = new URLSearchParams({ site, ...params });
      const res = await apiGet(`${url}/api/inventory?${q}`, { headers: { Authorization: `Bearer ${token}` } });
      const text = await res.text();
      assert.equal(res.status, 200, `GET /api/inventory answered ${res.status}: ${text}`);
      const json = JSON.parse(text);
      assert.ok(Array.isArray(json.vendors) && Array.isArray(json.unclassified),
        `GET /api/inventory must answer {"vendors":[…],"unclassified":[…]}, got ${text.slice(0, 200)}`);
      return json;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- recording tap in front of the collector --------------------------------------

/**
 * The request a test's proxy makes upstream for `req` (same method, path and
 * headers; Host the upstream's). On a connection of its own: Node's global
 * agent would keep connections to the collector alive and send the next
 * request on one the collector is closing (its idle timeout), which fails
 * with `socket hang up` — a 502 in a test, seen on a loaded machine — and a
 * POST cannot be sent again. `Connection` is hop-by-hop: not forwarded.
 */
export function upstreamRequest(req, upstream, onAnswer) {
  const up = new URL(req.url, upstream);
  const { connection, ...headers } = req.headers;
  return httpRequest(up, { method: req.method, headers: { ...headers, host: up.host }, agent: false }, onAnswer);
}

/**
 * A transparent HTTP proxy on loopback that records every request the
 * collector receives (method, path, headers, body) and the collector's answer.
 * The page posts to the tap; the tap forwards byte for byte, Origin included.
 */
export async function startTap(upstream) {
  const posts = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const rec = {
        time: Date.now(),
        method: req.method,
        path: req.url,
        headers: { ...req.headers },
        body: body.toString('utf8'),
        status: null,
        response: null,
        done: false,
      };
      posts.push(rec);
      const preq = upstreamRequest(req, upstream, (pres) => {
        const out = [];
        pres.on('data', (c) => out.push(c));
        pres.on('end', () => {
          rec.status = pres.statusCode;
          rec.response = Buffer.concat(out).toString('utf8');
          rec.done = true;
          res.writeHead(pres.statusCode || 502, pres.headers);
          res.end(Buffer.concat(out));
        });
      });
      preq.on('error', (e) => {
        rec.status = 502;
        rec.response = String(e);
        rec.done = true;
        res.writeHead(502);
        res.end();
      });
      preq.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    ingestUrl: `${url}/r`,
    posts,
    /** Report POSTs (to /r) whose body names `site`. */
    reportPosts(site) {
      return posts.filter((p) => p.method === 'POST' && p.path.startsWith('/r') && p.body.includes(site));
    },
    close() {
      return new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}

// ---- browser --------------------------------------------------------------------------

export async function launchBrowser(fake, extraArgs = []) {
  requireChromium();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...fake.chromiumArgs, ...extraArgs],
  });
}

/**
 * A fresh context + page. Collects page errors (every frame), console errors,
 * and every request to the collector URL (with its body) as the browser saw it.
 * Options: gpc (navigator.globalPrivacyControl = true and Sec-GPC: 1),
 * collectorUrl (to record requests to it). No request interception (routing
 * would change CORS: Playwright answers preflights itself when routes exist);
 * to run pages without the monitor, start the fake with serveMonitor: false.
 */
/**
 * A page view of the demo shop (`www/demo/`) reporting to the stack's
 * collector as `site`, with more query parameters (`params`: release, tag,
 * canaries) and a `fragment`; resolves once Intercom's frame has sent its
 * metrics (the page's tags have run). The caller closes `ctx.context`.
 */
export async function openDemo(stack, site, { params = {}, fragment = '' } = {}) {
  const ctx = await openPage(stack.browser, { collectorUrl: stack.tap.url });
  try {
    const q = new URLSearchParams({ collector: stack.tap.ingestUrl, site, ...params });
    await ctx.page.goto(`https://shop.example/demo/?${q}${fragment ? `#${fragment}` : ''}`);
    await waitForFrameEntries(ctx.page, [/\/messenger\/web\/metrics$/]);
    return ctx;
  } catch (e) {
    await ctx.context.close();
    throw e;
  }
}

export async function openPage(browser, { gpc = false, collectorUrl = null } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    extraHTTPHeaders: gpc ? { 'Sec-GPC': '1' } : {},
    viewport: { width: 1200, height: 800 },
  });
  if (gpc) {
    // Chromium has no native GPC; define it in every realm (frames included)
    // before any page script runs.
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true, enumerable: true });
    });
  }
  const page = await context.newPage();
  const pageErrors = [];
  const consoleErrors = [];
  const collectorRequests = [];
  page.on('pageerror', (err) => pageErrors.push(String(err && err.stack || err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  const onRequest = (req) => {
    if (collectorUrl && req.url().startsWith(collectorUrl)) {
      collectorRequests.push({ url: req.url(), method: req.method(), headers: req.headers(), body: req.postData() || '' });
    }
  };
  context.on('request', onRequest);
  return { context, page, pageErrors, consoleErrors, collectorRequests };
}

/** `name` is a file under /pages/, or an absolute path on the shop ('/support/chat.html'). */
function pagePath(name) {
  return name.startsWith('/') ? name : `/pages/${name}`;
}

/** https://shop.example/pages/<name>?collector=…&site=…&<canary query>#<canary fragment> */
export function pageUrl(name, { collector, site, app = APP_ID, grace = 1000, extra = {}, canary = true } = {}) {
  const q = new URLSearchParams();
  if (collector) q.set('collector', collector);
  if (site) q.set('site', site);
  q.set('app', app);
  q.set('grace', String(grace));
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  if (canary) {
    q.set('ref', CANARIES.query);
    q.set('email', CANARIES.email);
  }
  return `${SHOP_ORIGIN}${pagePath(name)}?${q}${canary ? `#${CANARIES.fragment}` : ''}`;
}

/** The page URL the monitor must report: no query, no fragment. */
export function reportedPageUrl(name) {
  return `${SHOP_ORIGIN}${pagePath(name)}`;
}

/** Wait until the Messenger has booted (its metrics call is in #intercom-frame's timeline). */
export async function waitForIntercomBoot(page, { timeoutMs = 15000 } = {}) {
  await page.waitForFunction(() => Boolean(window.twIntercomBootedNow && window.twIntercomBootedNow()), null, {
    timeout: timeoutMs,
    polling: 50,
  });
}

/** Wait until the fake served the monitor's wasm (the monitor is loading). */
export async function waitForMonitorFetched(fake, { timeoutMs = 10000 } = {}) {
  return waitFor(
    () => fake.requests.find((r) => r.host === 'shop.example' && r.path === '/tagwatch/tagwatch_bg.wasm' && r.status !== null),
    { timeoutMs, what: 'the page to fetch /tagwatch/tagwatch_bg.wasm' },
  );
}

/**
 * End the page view the way a visitor does: navigate away, so that
 * visibilitychange/pagehide fire and the monitor sends its beacon.
 */
export async function endPageView(page) {
  await page.goto('about:blank');
}

/**
 * After the page view ended: wait until the tap has seen at least `minPosts`
 * completed report POSTs for `site`, then a short settle so that a (wrong)
 * second send would also be seen. Returns the posts.
 */
export async function waitForReports(tap, site, { minPosts = 1, timeoutMs = 10000, settleMs = 750 } = {}) {
  await waitFor(() => tap.reportPosts(site).filter((p) => p.done).length >= minPosts, {
    timeoutMs,
    what: `${minPosts} report POST(s) for site ${site} at the collector`,
  });
  await sleep(settleMs);
  await waitFor(() => tap.reportPosts(site).every((p) => p.done), { timeoutMs: 5000, what: 'in-flight report POSTs' });
  return tap.reportPosts(site);
}

// ---- findings ---------------------------------------------------------------------------

/** A finding as returned by GET /api/findings, flattened to its identity. */
export function findingKey(f) {
  const ev = f.evidence && typeof f.evidence === 'object' ? f.evidence : f;
  const type = f.type ?? f.finding;
  const parts = [type, f.vendor, ev.kind];
  if (ev.kind === 'request') parts.push(`${ev.host}${ev.path}`, `frame=${ev.frame ?? '?'}`);
  else if (ev.kind === 'cookie') parts.push(ev.cookie);
  else if (ev.kind === 'signal') parts.push(`${ev.signal}:${ev.claimed}`, `${ev.host ?? ''}${ev.path ?? ''}`);
  else parts.push(ev.name);
  return parts.join(' | ');
}

/** Expected-finding helpers producing the same keys as findingKey. */
export const expect = {
  request: (type, host, path, frame = 'top') => findingKey({ type, vendor: 'intercom', evidence: { kind: 'request', host, path, frame } }),
  cookie: (type, cookie) => findingKey({ type, vendor: 'intercom', evidence: { kind: 'cookie', cookie } }),
  global: (type, name) => findingKey({ type, vendor: 'intercom', evidence: { kind: 'global', name } }),
  dom: (type, name) => findingKey({ type, vendor: 'intercom', evidence: { kind: 'dom', name } }),
};

/** Assert that `findings` (from the collector) are exactly `expectedKeys`, once each. */
export function assertExactFindings(findings, expectedKeys, label = '') {
  const actual = findings.map(findingKey);
  const counts = new Map();
  for (const k of actual) counts.set(k, (counts.get(k) || 0) + 1);
  const dupes = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k}  ×${n}`);
  const want = new Set(expectedKeys);
  const missing = [...want].filter((k) => !counts.has(k));
  const unexpected = [...counts.keys()].filter((k) => !want.has(k));
  if (missing.length || unexpected.length || dupes.length) {
    const lines = [
      `findings${label ? ` (${label})` : ''} differ from the expected set`,
      ...(missing.length ? ['  missing:', ...missing.map((k) => `    - ${k}`)] : []),
      ...(unexpected.length ? ['  unexpected:', ...unexpected.map((k) => `    + ${k}`)] : []),
      ...(dupes.length ? ['  stored more than once:', ...dupes.map((k) => `    * ${k}`)] : []),
      '  all stored:',
      ...findings.map((f) => `    ${JSON.stringify(f)}`),
    ];
    assert.fail(lines.join('\n'));
  }
}

/** Parse the reports (W3C Reporting envelope) out of the recorded POSTs. */
export function reportsOf(posts) {
  const out = [];
  for (const p of posts) {
    let arr;
    try { arr = JSON.parse(p.body); } catch { assert.fail(`a report POST body is not JSON: ${p.body.slice(0, 200)}`); }
    assert.ok(Array.isArray(arr), 'a report POST body must be a JSON array');
    out.push(...arr);
  }
  return out;
}

/**
 * Wire-contract checks on every POST the collector received for a page view:
 * accepted (204), text/plain or JSON, Origin https://shop.example, at most
 * 64 KiB, envelope fields, URL without query/fragment, one page_view.
 */
export function assertReportPosts(posts, { site, page, maxPosts = 1 } = {}) {
  assert.ok(posts.length >= 1, 'the collector received no report');
  assert.ok(posts.length <= maxPosts, `one request per page view in normal operation: the collector received ${posts.length} POSTs`);
  const pageViews = new Set();
  for (const p of posts) {
    assert.equal(p.status, 204, `the collector refused a report (${p.status}): ${p.response}\nbody: ${p.body.slice(0, 2000)}`);
    assert.match(p.headers['content-type'] || '', /^(text\/plain|application\/json|application\/reports\+json)/i, 'report content type');
    assert.equal(p.headers.origin, SHOP_ORIGIN, 'the browser must send the page Origin');
    assert.ok(Buffer.byteLength(p.body) <= 65536, 'a report body must fit in 64 KiB');
  }
  for (const r of reportsOf(posts)) {
    assert.ok(['tagwatch-finding', 'tagwatch-health', 'tagwatch-inventory'].includes(r.type), `report type ${r.type}`);
    assert.ok(Number.isInteger(r.age) && r.age >= 0, 'age is a non-negative integer');
    assert.equal(typeof r.user_agent, 'string');
    assert.ok(!/[?#]/.test(r.url), `report url must have no query or fragment: ${r.url}`);
    // A health report carries the page's origin only (docs/report-format.md).
    if (page) assert.equal(r.url, r.type === 'tagwatch-health' ? `${new URL(page).origin}/` : page);
    assert.equal(r.body.schema, 1);
    if (site) assert.equal(r.body.site, site);
    if (r.type === 'tagwatch-finding') {
      assert.match(r.body.page_view, /^[0-9a-f]{16}$/);
      pageViews.add(r.body.page_view);
      const ev = r.body.evidence || {};
      if (ev.path !== undefined) assert.ok(!/[?#]/.test(ev.path), `evidence path with query/fragment: ${ev.path}`);
    }
    if (r.type === 'tagwatch-inventory') {
      assert.match(r.body.page_view, /^[0-9a-f]{16}$/);
      pageViews.add(r.body.page_view);
      assert.ok(Array.isArray(r.body.vendors) && Array.isArray(r.body.unclassified), 'inventory body has vendors and unclassified');
    }
  }
  assert.ok(pageViews.size <= 1, `one page view, one page_view id; got ${[...pageViews].join(', ')}`);
}

/**
 * No canary (identity, query, fragment, cookie values, event metadata) in any
 * body the collector received, nor in any collector-bound request the browser
 * made. `cookieValues` adds the values actually set during the run.
 */
export function assertNoCanaries(bodies, cookieValues = []) {
  const needles = canaryNeedles(cookieValues.filter((v) => v && v.length >= 8));
  for (const body of bodies) {
    const hay = body.toLowerCase();
    for (const n of needles) {
      assert.ok(!hay.includes(n.toLowerCase()), `a value that must never leave the page reached the collector: ${JSON.stringify(n)}\nin: ${body.slice(0, 2000)}`);
    }
  }
}

/** Every cookie value in the context (to use as canaries after the fact). */
export async function cookieValues(context) {
  return (await context.cookies()).map((c) => c.value);
}

/** Run `fn` with a browser page and always close its context. */
export async function withPage(browser, options, fn) {
  const p = await openPage(browser, options);
  try {
    return await fn(p);
  } finally {
    await p.context.close().catch(() => {});
  }
}

// ---- the whole stack, per test file ---------------------------------------------------

/**
 * Fake Intercom + collector (with `siteCount` sites, `tagwatch serve` given
 * `collectorArgs` too) + tap + Chromium. Fails with a clear message when
 * dist/ or the collector binary is missing.
 */
export async function startStack({ siteCount = 8, collectorArgs = [] } = {}) {
  requireMonitorBuilt();
  requireCollectorBuilt();
  requireChromium();
  const stack = { fake: null, collector: null, tap: null, browser: null };
  try {
    stack.fake = await startFake();
    stack.collector = await startCollector({ siteCount, extraArgs: collectorArgs });
    stack.fake.setCollectorUpstream(stack.collector.url);
    stack.tap = await startTap(stack.collector.url);
    stack.browser = await launchBrowser(stack.fake);
  } catch (e) {
    await stopStack(stack);
    throw e;
  }
  let next = 0;
  stack.nextSite = () => {
    assert.ok(next < stack.collector.sites.length, 'startStack: not enough sites registered for this file');
    return stack.collector.sites[next++];
  };
  stack.stop = () => stopStack(stack);
  return stack;
}

async function stopStack(stack) {
  await stack.browser?.close().catch(() => {});
  await stack.tap?.close().catch(() => {});
  await stack.collector?.stop().catch(() => {});
  await stack.fake?.close().catch(() => {});
}

/** Wait until every regex matches some resource entry in #intercom-frame's timeline. */
export async function waitForFrameEntries(page, patterns, { timeoutMs = 15000 } = {}) {
  const sources = patterns.map((r) => r.source);
  await page.waitForFunction((srcs) => {
    const f = document.getElementById('intercom-frame');
    if (!f || !f.contentWindow) return false;
    const names = f.contentWindow.performance.getEntriesByType('resource').filter((e) => e.responseEnd > 0).map((e) => e.name);
    return srcs.every((s) => names.some((n) => new RegExp(s).test(n)));
  }, sources, { timeout: timeoutMs, polling: 50 });
}

/**
 * One page view of a scenario page, end to end:
 *   open `name` with collector = the tap and a fresh site key, wait for the
 *   monitor's wasm to be fetched and for Intercom to boot (and for the frame
 *   entries in `waitFrame`), run `during(ctx)`, let observers settle, end the
 *   page view, wait for the collector to receive the report(s), read the
 *   stored findings, and run the checks every scenario shares: no page
 *   errors, the wire contract on every POST, no canary in anything the
 *   collector received.
 * Options: gpc, extra (query params), grace (policy.grace_ms, 1000),
 *   before(ctx) (runs in the fresh browser context before the page opens:
 *   an earlier visit that stored a consent choice, say),
 *   expectReports (false: expect none), maxPosts (1),
 *   waitFrame ([/\/metrics$/]), bootIntercom (true), settleMs (500),
 *   collector (the page's collector URL; default the tap's /r — another URL
 *   must still reach the tap, e.g. https://collector.example/r with the fake's
 *   upstream set to the tap), page (the page URL reports must carry; default
 *   `reportedPageUrl(name)`), minPosts (report POSTs to wait for, 1).
 * `name` is a file under /pages/ or an absolute shop path ('/support/x.html').
 * The result's `reports` are the finding and health reports the collector
 * received; `inventories` the tagwatch-inventory reports.
 */
export async function runPageView(stack, name, {
  gpc = false,
  extra = {},
  grace = 1000,
  during = null,
  before = null,
  expectReports = true,
  maxPosts = 1,
  waitFrame = [/\/messenger\/web\/metrics$/],
  bootIntercom = true,
  settleMs = 500,
  collector: pageCollector = null,
  page: reportedPage = reportedPageUrl(name),
  minPosts = 1,
} = {}) {
  const site = stack.nextSite();
  const { fake, tap, collector, browser } = stack;
  const seq0 = fake.requests.length ? fake.requests[fake.requests.length - 1].seq : 0;
  const ingestUrl = pageCollector || tap.ingestUrl;
  const ctx = await openPage(browser, { gpc, collectorUrl: new URL(ingestUrl).origin });
  ctx.site = site;
  ctx.url = pageUrl(name, { collector: ingestUrl, site, extra, grace });
  try {
    if (before) await before(ctx);
    const resp = await ctx.page.goto(ctx.url);
    assert.equal(resp.status(), 200, `GET ${ctx.url} answered ${resp.status()}`);
    await waitFor(
      () => fake.requests.find((r) => r.seq > seq0 && r.path === '/tagwatch/tagwatch_bg.wasm' && r.status !== null),
      { timeoutMs: 15000, what: 'the monitor to fetch /tagwatch/tagwatch_bg.wasm' },
    );
    if (bootIntercom) {
      await waitForIntercomBoot(ctx.page);
      if (waitFrame.length) await waitForFrameEntries(ctx.page, waitFrame);
    }
    if (during) await during(ctx);
    await sleep(settleMs);
    ctx.cookieValues = await cookieValues(ctx.context);
    await endPageView(ctx.page);
    let posts;
    if (expectReports) {
      posts = await waitForReports(tap, site, { minPosts });
    } else {
      await sleep(2000);
      posts = tap.reportPosts(site);
    }
    ctx.posts = posts;
    const all = reportsOf(posts);
    ctx.reports = all.filter((r) => r.type !== 'tagwatch-inventory');
    ctx.inventories = all.filter((r) => r.type === 'tagwatch-inventory');
    ctx.findings = await collector.findings(site);

    assert.deepEqual(ctx.pageErrors, [], 'the page must throw no errors (monitor and fake alike)');
    for (const f of ctx.findings) {
      if (f.site !== undefined) assert.equal(f.site, site, 'stored finding site');
      if (f.page !== undefined) assert.equal(f.page, reportedPage, 'stored finding page: no query, no fragment');
    }
    if (expectReports) assertReportPosts(posts, { site, page: reportedPage, maxPosts });
    for (const p of posts) assert.equal(p.status, 204, `collector answered ${p.status}: ${p.response}`);
    assertNoCanaries(
      [...posts.map((p) => p.body + '\n' + p.path), ...ctx.collectorRequests.map((r) => r.body + '\n' + r.url)],
      ctx.cookieValues,
    );
    return ctx;
  } finally {
    await ctx.context.close().catch(() => {});
  }
}

/** Poll GET /api/findings until `pred(findings)` holds (bounded). */
export async function pollFindings(collector, site, pred, { timeoutMs = 10000 } = {}) {
  let last = [];
  try {
    await waitFor(async () => pred((last = await collector.findings(site))), { timeoutMs, intervalMs: 200, what: `findings for ${site}` });
  } catch (e) {
    e.message += `\nlast findings: ${JSON.stringify(last)}`;
    throw e;
  }
  return last;
}

/** GET /api/findings?site=… with the admin token (same as collector.findings). */
export function fetchFindings(collector, site, params = {}) {
  return collector.findings(site, params);
}
