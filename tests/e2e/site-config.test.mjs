// Scenario: the collector's per-site settings (`tagwatch site set KEY
// --disable | --sample S`, served at GET /config/KEY). After the page's
// load the loader asks for them while it fetches the brain and the wasm (in
// parallel: the answer is cacheable): a disabled site, or a page view not
// drawn by the sample, never starts the monitor (no report, no page error);
// a page whose own sample is 0 fetches nothing. If the collector cannot
// answer, the page's own config decides (fail open).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import {
  TAGWATCH_BIN, endPageView, openPage, pageUrl, pollFindings, sleep, startStack, upstreamRequest, waitFor,
  waitForIntercomBoot,
} from './harness.mjs';

const execFileP = promisify(execFile);

let stack;
let failingProxy;
let slowProxy;

/** A collector front that forwards to the tap, doing `onConfig` with /config/* requests. */
async function front(onConfig) {
  const server = createServer((req, res) => {
    const forward = () => {
      const preq = upstreamRequest(req, stack.tap.url, (pres) => {
        res.writeHead(pres.statusCode || 502, pres.headers);
        pres.pipe(res);
      });
      preq.on('error', () => { res.writeHead(502); res.end(); });
      req.pipe(preq);
    };
    if (req.url.startsWith('/config/')) onConfig(req, forward);
    else forward();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

before(async () => {
  stack = await startStack({ siteCount: 5 });
  // /config/* breaks (connection reset).
  failingProxy = await front((req) => req.socket.destroy());
  // /config/* answers after 1.5 s, as a far-away collector might: the tags
  // have loaded (and drained their stubs' queues) before the monitor starts.
  slowProxy = await front((req, forward) => setTimeout(forward, 1500));
}, { timeout: 120_000 });
after(async () => {
  for (const p of [failingProxy, slowProxy]) {
    p?.closeAllConnections();
    await new Promise((r) => (p ? p.close(() => r()) : r()));
  }
  await stack?.stop();
}, { timeout: 30_000 });

async function siteSet(site, ...args) {
  await execFileP(TAGWATCH_BIN, ['site', 'set', site, ...args, '--db', stack.collector.db], { timeout: 30_000 });
}

/** One page view of no-consent.html; what the monitor did. */
async function visit(site, collector = stack.tap.ingestUrl) {
  const seq0 = stack.fake.requests.length ? stack.fake.requests[stack.fake.requests.length - 1].seq : 0;
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector).origin });
  try {
    const resp = await ctx.page.goto(pageUrl('no-consent.html', { collector, site }));
    assert.equal(resp.status(), 200);
    await waitForIntercomBoot(ctx.page);
    // Until the collector answered /config (the monitor runs, or the
    // loader decided not to start it).
    await waitFor(() => stack.tap.posts.some((p) => p.method === 'GET' && p.path === `/config/${site}` && p.done)
      || collector !== stack.tap.ingestUrl, { what: 'the /config answer' });
    await sleep(800);
    const running = await ctx.page.evaluate(() => Array.isArray(window.tagwatch('findings')));
    await endPageView(ctx.page);
    await sleep(1500);
    const wasmFetched = stack.fake.requests.some((r) => r.seq > seq0 && r.path === '/tagwatch/tagwatch_bg.wasm');
    return {
      running,
      wasmFetched,
      configGets: stack.tap.posts.filter((p) => p.method === 'GET' && p.path === `/config/${site}`),
      reportPosts: stack.tap.reportPosts(site),
      pageErrors: ctx.pageErrors,
    };
  } finally {
    await ctx.context.close().catch(() => {});
  }
}

test('an enabled site: the loader reads /config/KEY, then monitors', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  const run = await visit(site);
  assert.deepEqual(run.pageErrors, []);
  assert.equal(run.configGets.length, 1, 'one GET /config/<site> per page view');
  assert.equal(run.configGets[0].status, 200);
  assert.deepEqual(JSON.parse(run.configGets[0].response), { sample: 1, enabled: true });
  assert.equal(run.configGets[0].headers.origin, 'https://shop.example', 'a CORS fetch from the page');
  assert.ok(run.wasmFetched, 'the monitor loaded');
  assert.ok(run.running, 'the monitor runs');
  await waitFor(() => run.reportPosts.length >= 1 || stack.tap.reportPosts(site).length >= 1, { what: 'a report' });
});

test('a disabled site, and a sample of 0: quiet, the monitor never starts, no report', { timeout: 90_000 }, async () => {
  const off = stack.nextSite();
  await siteSet(off, '--disable');
  let run = await visit(off);
  assert.deepEqual(run.pageErrors, []);
  assert.equal(run.configGets.length, 1);
  assert.deepEqual(JSON.parse(run.configGets[0].response), { sample: 1, enabled: false });
  assert.equal(run.running, false, 'a disabled site must not start the monitor');
  assert.equal(run.reportPosts.length, 0, 'no report from a disabled site');

  const unsampled = stack.nextSite();
  await siteSet(unsampled, '--sample', '0');
  run = await visit(unsampled);
  assert.deepEqual(run.pageErrors, []);
  assert.equal(run.running, false, 'sample 0: never drawn');
  assert.equal(run.reportPosts.length, 0);
});

test('the collector cannot answer /config: the page config decides (fail open)', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  await siteSet(site, '--disable');   // would stop it, if the loader could read it
  const run = await visit(site, `http://127.0.0.1:${failingProxy.address().port}/r`);
  assert.deepEqual(run.pageErrors, []);
  assert.ok(run.wasmFetched, 'fail open: the monitor loads');
  await waitFor(() => stack.tap.reportPosts(site).some((p) => p.done && p.status === 204), { what: 'the report through the proxy' });
});

test("a slow /config answer: Intercom('boot') queued before Intercom loaded still counts", { timeout: 90_000 }, async () => {
  // The loader keeps the calls queued on tag stubs when it ran and hands
  // them to the monitor, which here starts well after Intercom's loader
  // drained its queue.
  const site = stack.nextSite();
  const collector = `http://127.0.0.1:${slowProxy.address().port}/r`;
  const seq0 = stack.fake.requests.length ? stack.fake.requests[stack.fake.requests.length - 1].seq : 0;
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector).origin });
  try {
    await ctx.page.goto(pageUrl('identity.html', { collector, site, extra: { identity: 'boot' } }));
    await waitForIntercomBoot(ctx.page);
    await waitFor(() => stack.fake.requests.some((r) => r.seq > seq0 && r.path === '/tagwatch/tagwatch_bg.wasm' && r.status !== null), { what: 'the wasm fetch' });
    // The monitor starts once /config answered.
    await ctx.page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
    await endPageView(ctx.page);
    const findings = await pollFindings(stack.collector, site, (f) => f.length >= 1);
    assert.deepEqual(findings.map((f) => [f.type, f.evidence.name]), [['identity_unverified', "Intercom('boot')"]]);
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close().catch(() => {});
  }
});
