// Scenario: the collector refuses a report batch (503 with `Retry-After`:
// its events store is unavailable, docs/scale.md; or 429: over its
// limits). A refused batch was not stored: the monitor sends it once more
// within the page's lifetime — after `Retry-After` while the page stays,
// at once when the visitor leaves before that — and never more than once.
//
// Batches leave when the page is hidden or left, and when the page calls
// `tagwatch('flush')` (docs/report-format.md#transport): the tests flush
// once the monitor holds Intercom's script finding, so that the page stays.
//
// A front in the path refuses POST /r as the collector does (503,
// `Retry-After`, the CORS headers a registered origin gets) for the batches
// a test chooses, and passes everything else on to the real collector.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import {
  endPageView, openPage, pageUrl, pollFindings, startStack, upstreamRequest, waitFor, waitForIntercomBoot,
} from './harness.mjs';

let stack;
let front;
// Holds every request until the test releases it (`held`): the page's own
// keepalive requests, on connections of their own (another port).
let sink;
// How the front answers the next POST /r: a Retry-After in seconds to
// refuse it, null to pass it on. Set per test.
let refuse = () => null;
// Whether the front holds its refusal of a POST /r (body) until the test
// releases it (`held`): the page is left while its send waits for the answer.
let hold = () => false;
const held = [];
const seen = [];   // every POST /r body the front got, and what it did

before(async () => {
  stack = await startStack({ siteCount: 6 });
  front = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const wait = req.method === 'POST' && req.url.startsWith('/r') ? refuse(body.toString()) : null;
      if (req.method === 'POST' && req.url.startsWith('/r')) {
        // How it came (a failure message says): fetch is `cors`, sendBeacon
        // `no-cors`; the socket's port and how many requests it carried.
        const s = req.socket;
        s.requests = (s.requests || 0) + 1;
        seen.push({
          body: body.toString(),
          refused: wait !== null,
          how: `${req.headers['sec-fetch-mode']} port ${s.remotePort} request ${s.requests} at ${Date.now() % 100000}`,
        });
      }
      if (wait !== null) {
        if (hold(body.toString())) {
          held.push(() => refuseWith(res, req, wait));
          return;
        }
        refuseWith(res, req, wait);
        return;
      }
      const preq = upstreamRequest(req, stack.tap.url, (pres) => {
        res.writeHead(pres.statusCode || 502, pres.headers);
        pres.pipe(res);
      });
      preq.on('error', () => { res.writeHead(502); res.end(); });
      preq.end(body);
    });
  });
  await new Promise((r) => front.listen(0, '127.0.0.1', r));
  sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => held.push(() => { res.writeHead(204, { 'Access-Control-Allow-Origin': '*' }); res.end(); }));
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
}, { timeout: 120_000 });

after(async () => {
  front?.closeAllConnections();
  sink?.closeAllConnections();
  await new Promise((r) => (sink ? sink.close(() => r()) : r()));
  await new Promise((r) => (front ? front.close(() => r()) : r()));
  await stack?.stop();
}, { timeout: 30_000 });

/** The front's refusal, as the collector answers (503, Retry-After, CORS). */
function refuseWith(res, req, wait) {
  res.writeHead(503, {
    'Retry-After': String(wait),
    'Access-Control-Allow-Origin': req.headers.origin || '*',
    'Access-Control-Expose-Headers': 'Retry-After',
    Vary: 'Origin',
    'Content-Type': 'application/json',
  });
  res.end('{"error":"unavailable","message":"the events store is unavailable"}');
}

const collector = () => `http://127.0.0.1:${front.address().port}/r`;
const forSite = (site) => seen.filter((s) => s.body.includes(`"site":"${site}"`));

/** Refuses the first batch of `site` that carries a finding, with `wait`. */
function refuseFirstFinding(site, wait) {
  let done = false;
  refuse = (body) => {
    if (done || !body.includes(`"site":"${site}"`) || !body.includes('"type":"tagwatch-finding"')) return null;
    done = true;
    return wait;
  };
}

/** Once the monitor holds Intercom's script finding, the page sends it. */
async function flushFinding(page) {
  await page.waitForFunction(() => {
    const f = window.tagwatch('findings');
    return Array.isArray(f) && f.some((x) => x.body.finding === 'script_before_consent' && x.body.vendor === 'intercom');
  }, null, { timeout: 30_000, polling: 100 });
  await page.evaluate(() => window.tagwatch('flush'));
}

/** After time for a (wrong) third send: no body of `site` came more than twice. */
async function assertEachAtMostTwice(site) {
  // The time of one more Retry-After.
  await new Promise((r) => setTimeout(r, 2500));
  const counts = new Map();
  for (const p of forSite(site)) counts.set(p.body, (counts.get(p.body) || 0) + 1);
  for (const [body, n] of counts) {
    const how = forSite(site).filter((p) => p.body === body).map((p) => p.how).join('; ');
    assert.ok(n <= 2, `a batch sent ${n} times (${how}): ${body.slice(0, 120)}`);
  }
}

function assertOnceMore(site) {
  const posts = forSite(site);
  const refused = posts.filter((p) => p.refused);
  assert.equal(refused.length, 1, 'one batch refused');
  const again = posts.filter((p) => !p.refused && p.body === refused[0].body);
  assert.equal(again.length, 1, 'the refused batch is sent once more, exactly once');
}

test('a refused batch is sent again after Retry-After, while the page stays', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  refuseFirstFinding(site, 1);
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector()).origin });
  try {
    await ctx.page.goto(pageUrl('no-consent.html', { collector: collector(), site }));
    await waitForIntercomBoot(ctx.page);
    await flushFinding(ctx.page);
    // The page stays open: the retry comes from the page's own timer.
    await waitFor(() => forSite(site).some((p) => p.refused)
      && forSite(site).some((p) => !p.refused && p.body === forSite(site).find((q) => q.refused).body),
    { timeoutMs: 30_000, what: 'the refused batch sent again' });
    await pollFindings(stack.collector, site, (f) => f.some((x) => x.type === 'script_before_consent' && x.vendor === 'intercom'));
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close().catch(() => {});
  }
  assertOnceMore(site);
});

test('a refused batch whose Retry-After outlasts the page view is sent as the visitor leaves', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  refuseFirstFinding(site, 3600);   // far beyond the page view (and the cap)
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector()).origin });
  try {
    await ctx.page.goto(pageUrl('no-consent.html', { collector: collector(), site }));
    await waitForIntercomBoot(ctx.page);
    await flushFinding(ctx.page);
    await waitFor(() => forSite(site).some((p) => p.refused), { timeoutMs: 30_000, what: 'a refused batch' });
    await endPageView(ctx.page);
    await waitFor(() => forSite(site).some((p) => !p.refused && p.body === forSite(site).find((q) => q.refused).body),
      { timeoutMs: 30_000, what: 'the refused batch sent at pagehide' });
    await pollFindings(stack.collector, site, (f) => f.some((x) => x.type === 'script_before_consent' && x.vendor === 'intercom'));
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close().catch(() => {});
  }
  assertOnceMore(site);
});

test('a collector that keeps refusing gets each batch twice at most', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  refuse = (body) => (body.includes(`"site":"${site}"`) ? 1 : null);
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector()).origin });
  try {
    await ctx.page.goto(pageUrl('no-consent.html', { collector: collector(), site }));
    await waitForIntercomBoot(ctx.page);
    await flushFinding(ctx.page);
    await waitFor(() => {
      const posts = forSite(site);
      return posts.length >= 2 && posts.some((p, i) => posts.findIndex((q) => q.body === p.body) !== i);
    }, { timeoutMs: 30_000, what: 'a batch sent twice' });
    await endPageView(ctx.page);
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close().catch(() => {});
  }
  await assertEachAtMostTwice(site);
});

// The race behind the test above's one failure in ~80 runs (a third copy by
// sendBeacon 26 ms after the resend): the page is left while the resend's
// keepalive fetch waits for its answer. The browser still carries that
// request; the leaving document sees its fetch fail, and a fallback then
// would deliver the batch a third time. Here the front holds its answer to
// the resend until the page is gone, so the race is taken every time.
test('a resend still waiting for its answer as the page is left is not sent again by another way', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  const sent = new Map();
  refuse = (body) => (body.includes(`"site":"${site}"`) ? 1 : null);
  hold = (body) => {
    if (!body.includes(`"site":"${site}"`)) return false;
    sent.set(body, (sent.get(body) || 0) + 1);
    return sent.get(body) === 2;
  };
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector()).origin });
  try {
    await ctx.page.goto(pageUrl('no-consent.html', { collector: collector(), site }));
    await waitForIntercomBoot(ctx.page);
    await flushFinding(ctx.page);
    await waitFor(() => held.length > 0, { timeoutMs: 30_000, what: 'a resend whose answer the front holds' });
    await endPageView(ctx.page);
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    hold = () => false;
    await ctx.context.close().catch(() => {});
  }
  for (const answer of held.splice(0)) answer();
  await assertEachAtMostTwice(site);
});

// The other side of the rule above: a batch's first send whose fetch fails
// while the page stays goes another way — here over Chromium's 64 KiB of
// keepalive bodies in flight (the page's own requests, held elsewhere),
// which sendBeacon shares, so XMLHttpRequest carries it — also after fetch
// has carried batches before.
test('a batch whose fetch fails while the page stays goes another way, once', { timeout: 90_000 }, async () => {
  const site = stack.nextSite();
  refuse = () => null;
  const ctx = await openPage(stack.browser, { collectorUrl: new URL(collector()).origin });
  try {
    await ctx.page.goto(pageUrl('no-consent.html', { collector: collector(), site }));
    await waitForIntercomBoot(ctx.page);
    await flushFinding(ctx.page);
    await pollFindings(stack.collector, site, (f) => f.some((x) => x.type === 'script_before_consent'));
    // The page's own keepalive requests, held by the sink (or queued for
    // one of its connections), fill the quota to less than 500 bytes,
    // whatever the page had in flight already: those over it fail.
    await ctx.page.evaluate((u) => {
      for (let i = 0; i < 140; i++) {
        fetch(`${u}/hold`, { method: 'POST', body: 'x'.repeat(500), keepalive: true, mode: 'no-cors' }).catch(() => {});
      }
    }, `http://127.0.0.1:${sink.address().port}`);
    await waitFor(() => held.length > 0, { timeoutMs: 10_000, what: "the page's keepalive request at the front" });
    await ctx.page.evaluate(() => {
      document.cookie = 'intercom-id-quota1=v; path=/';
      window.tagwatch('flush');
    });
    await pollFindings(stack.collector, site, (f) => f.some((x) => x.type === 'cookie_before_consent' && JSON.stringify(x).includes('intercom-id-quota1')));
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    for (const answer of held.splice(0)) answer();
    await ctx.context.close().catch(() => {});
  }
  const carried = forSite(site).filter((p) => p.body.includes('intercom-id-quota1'));
  assert.equal(carried.length, 1, `the batch once: ${carried.map((p) => p.how).join('; ')}`);
});
