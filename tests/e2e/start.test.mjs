// When the monitor starts, and what it still judges from its real time.
// The loader is the only monitor code before the page's `load`; the brain
// (script + wasm) comes after it, in idle time (www/loader.js). Each
// scenario forces one way the start can differ from that, without timing:
//   - the snippet added after `load` (a tag manager): the brain starts at
//     once, and what happened before the loader ran is judged at its time;
//   - a `load` that never comes (an image whose response the fake holds):
//     the brain starts after the loader's bounded wait and reports;
//   - the visitor leaves before that: one `unmonitored` health report,
//     carrying no page data;
//   - the loader's first cookie snapshot comes from the Cookie Store's
//     list, never from a synchronous `document.cookie` read;
//   - a consent choice made in the CMP's banner before the brain started
//     (the wasm held by the fake until after the click): it counts from the
//     click, not from page start as a restored choice would;
//   - the visitor leaves while the brain's start is still in its steps
//     (each waits for an idle callback: the page's `requestIdleCallback`
//     holds them here): the rest runs at once and the page view is
//     reported whole, once;
//   - the brain's warm-up worker (the start's wasm compiled there first):
//     made from the brain's own script, it sends nothing, and the page
//     view's findings and reports are the same;
//   - the entry lists the loader delivers after the start are held and
//     judged together at the next call into the monitor: a `findings`
//     command made right after a delivery sees its entries, each judged
//     once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import {
  APP_ID, SHOP_ORIGIN, assertExactFindings, assertNoCanaries, assertReportPosts, cookieValues, endPageView, openPage,
  pageUrl, reportedPageUrl, reportsOf, runPageView, startStack, waitFor, waitForFrameEntries, waitForIntercomBoot, waitForReports,
} from './harness.mjs';

let stack;
// One site per page view of this file.
before(async () => { stack = await startStack({ siteCount: 16 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

const running = (page) => page.evaluate(() => Array.isArray(window.tagwatch('findings')));
/** Waits until the monitor runs: `tagwatch('findings')` answers once it does. */
async function monitorRunning(page, timeout = 30_000) {
  await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout, polling: 100 });
}

test('the snippet added after load: the brain starts at once; what came before counts from its time', { timeout: 90_000 }, async () => {
  let injectedAt = 0;
  const run = await runPageView(stack, 'late-snippet.html', {
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
    during: async ({ page }) => {
      await monitorRunning(page);
      assert.equal(await page.evaluate(() => window.twSnippetAdded), true, 'the snippet was added after load');
      // When the page added the loader: its own request's start.
      injectedAt = await page.evaluate(() => performance.getEntriesByName(location.origin + '/tagwatch/tagwatch.js')[0].startTime);
    },
  });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'snippet added late');
  // Intercom's loader (requested on `load`, before the tag manager's turn)
  // is dated at its real start, before the loader was added.
  const widget = run.reports.find((r) => r.body.evidence && r.body.evidence.path === `/widget/${APP_ID}`);
  assert.ok(widget && widget.body.at < injectedAt, `the widget at ${widget?.body.at}, its real start, before the loader was added at ${injectedAt}`);
});

/**
 * One page view of `name` (under /pages/) whose `hold` path the fake keeps
 * unanswered until the page view ends; `during(page, gate)` runs once the
 * held request was sent. Ends the page view; returns the report POSTs, the
 * reports, and the stored findings, after the checks every scenario shares
 * (accepted, no page error, no canary).
 */
async function pageView(name, { hold, extra = {}, during }) {
  const { fake, tap, collector, browser } = stack;
  const site = stack.nextSite();
  const gate = fake.hold('shop.example', hold);
  const ctx = await openPage(browser, { collectorUrl: new URL(tap.ingestUrl).origin });
  try {
    await ctx.page.goto(pageUrl(name, { collector: tap.ingestUrl, site, extra }), { waitUntil: 'domcontentloaded' });
    await gate.arrived;
    await during(ctx.page, gate);
    const values = await cookieValues(ctx.context);
    await endPageView(ctx.page);
    const posts = await waitForReports(tap, site);
    for (const p of posts) assert.equal(p.status, 204, `the collector refused a report (${p.status}): ${p.response}`);
    assert.deepEqual(ctx.pageErrors, []);
    assertNoCanaries([...posts.map((p) => p.body + '\n' + p.path), ...ctx.collectorRequests.map((r) => r.body + '\n' + r.url)], values);
    return { posts, reports: reportsOf(posts), findings: await collector.findings(site), site };
  } finally {
    gate.release();
    await ctx.context.close().catch(() => {});
  }
}

/** load-never.html: its `load` held back by an image the fake never answers. */
function hangingPageView(during, extra = {}) {
  return pageView('load-never.html', {
    hold: '/pages/hanging.svg',
    extra,
    during: async (page) => {
      await waitForIntercomBoot(page);
      await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/]);
      assert.notEqual(await page.evaluate(() => document.readyState), 'complete', 'the page has not loaded');
      await during(page);
    },
  });
}

test('the loader holds the page on no cookie read: document.cookie is not read by it where a Cookie Store answers', { timeout: 90_000 }, async () => {
  // Reading `document.cookie` is a synchronous round trip to the browser's
  // cookie store, which a busy page's loading can hold for tens of ms; the
  // loader (on the page's critical path) takes its first snapshot from the
  // Cookie Store's list instead. Every read of the getter is logged with
  // whether its stack has the loader's script; the monitor must still judge
  // the cookies from that snapshot.
  const run = await runPageView(stack, 'no-consent.html', {
    before: ({ page }) => page.addInitScript(() => {
      const desc = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
      window.twCookieReads = [];
      Object.defineProperty(Document.prototype, 'cookie', {
        configurable: true, enumerable: desc.enumerable, set: desc.set,
        get() {
          // The loader's own: its script on the stack, the brain's not (the
          // brain, after load, reads it when the loader hands it a change).
          const stack = String(new Error().stack);
          window.twCookieReads.push(/\/tagwatch\/tagwatch\.js:/.test(stack) && !/\/tagwatch_bg\.js:/.test(stack) ? 'loader' : 'other');
          return desc.get.call(this);
        },
      });
    }),
    during: async ({ page }) => {
      await monitorRunning(page);
      assert.equal(await page.evaluate(() => typeof window.cookieStore), 'object', 'Chromium has a Cookie Store');
      assert.deepEqual(await page.evaluate(() => window.twCookieReads.filter((r) => r === 'loader')), [], 'the loader never read document.cookie');
    },
  });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'cookies from the Cookie Store snapshot');
});

// An exception V8 throws, even one the loader catches, is not free: V8
// makes its message (in a trace, the loader's whole function parsed again)
// — 1.5 ms of the loader's 3.8 ms of CPU on the quiet page, which has no
// Intercom stub (docs/benchmarks.md, sixteenth round). Every exception
// thrown in the monitor's scripts in a page view is caught here by the
// DevTools debugger (pause on all exceptions, resumed at once): on a page
// without a watched vendor's stub, the loader's run and the brain's start
// throw none; nor on one whose snippet is a bare script tag (no `tagwatch`
// stub before it: quiet-bare.html).
for (const file of ['quiet.html', 'quiet-bare.html']) {
  test(`no exception is thrown in the monitor's scripts on a page without a watched vendor's stub (${file})`, { timeout: 90_000 }, async () => {
    const thrown = [];
    await runPageView(stack, file, {
      bootIntercom: false,
      before: async ({ page }) => {
        const cdp = await page.context().newCDPSession(page);
        const scripts = new Map();
        cdp.on('Debugger.scriptParsed', (e) => scripts.set(e.scriptId, e.url));
        cdp.on('Debugger.paused', (e) => {
          const at = e.callFrames[0];
          thrown.push(`${scripts.get(at?.location.scriptId) || '?'} ${at?.functionName}: ${e.data?.description?.split('\n')[0]}`);
          cdp.send('Debugger.resume').catch(() => {});
        });
        await cdp.send('Debugger.enable');
        await cdp.send('Debugger.setPauseOnExceptions', { state: 'all' });
      },
      during: async ({ page }) => {
        await monitorRunning(page);
        assert.equal(await page.evaluate(() => typeof window.Intercom), 'undefined', 'no Intercom stub on the page');
      },
    });
    assert.deepEqual(thrown.filter((t) => /\/tagwatch\//.test(t)), [], 'no exception in the loader or the brain');
  });
}

test('the brain\'s warm-up worker is made from its own script; it sends nothing, the page view is judged as always', { timeout: 90_000 }, async () => {
  const seq0 = stack.fake.requests.at(-1)?.seq ?? 0;
  const worker = () => stack.fake.requests.find((r) => r.seq > seq0 && r.path === '/tagwatch/tagwatch_bg.js' &&
    r.headers['sec-fetch-dest'] === 'worker');
  const run = await runPageView(stack, 'no-consent.html', {
    during: () => waitFor(worker, { what: 'the warm-up worker\'s request for the brain' }),
  });
  assert.equal(worker().status, 200);
  assertReportPosts(run.posts, { site: run.site, page: reportedPageUrl('no-consent.html') });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'with the warm-up worker');
});

// The brain holds the loader's deliveries after the start and judges them
// in one crossing at the next call into the monitor, whatever it is
// (www/brain.js `gated`). Here the next input is a `findings` command
// made in the task that delivered a new vendor script's entry (the page's
// observer, made after the loader's, is called after it in that task):
// the entry must be in the answer. A monitor that held it without judging
// it first would answer without it.
test('entries delivered after the start are judged before the next input reaches the monitor, each once', { timeout: 90_000 }, async () => {
  const paths = ['/twheld-a.js', '/twheld-b.js', '/twheld-c.js'];
  const run = await runPageView(stack, 'no-consent.html', {
    during: async ({ page }) => {
      await monitorRunning(page);
      for (const path of paths) {
        const seen = await page.evaluate((path) => new Promise((resolve) => {
          const url = 'https://js.intercomcdn.com' + path;
          const obs = new PerformanceObserver((list) => {
            if (!list.getEntries().some((e) => e.name === url)) return;
            obs.disconnect();
            const batch = window.tagwatch('findings');
            resolve(batch.some((r) => r.body && r.body.evidence && r.body.evidence.path === path));
          });
          obs.observe({ type: 'resource' });
          const s = document.createElement('script');
          s.src = url;
          document.head.appendChild(s);
        }), path);
        assert.equal(seen, true, `${path}: judged before the findings command that came after its delivery`);
      }
    },
  });
  const late = run.findings.filter((f) => paths.includes(f.evidence?.path));
  assert.deepEqual(late.map((f) => [f.evidence.path, f.type ?? f.finding, f.count]).sort(),
    paths.map((p) => [p, 'script_before_consent', 1]), 'each late script judged once');
  assertExactFindings(run.findings.filter((f) => !paths.includes(f.evidence?.path)),
    loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'the page view around them');
});

test('a page whose load never fires: the monitor starts after a bounded wait and reports', { timeout: 90_000 }, async () => {
  const run = await hangingPageView(async (page) => {
    await monitorRunning(page);
    assert.notEqual(await page.evaluate(() => document.readyState), 'complete', 'started without load');
  });
  assertReportPosts(run.posts, { site: run.site, page: reportedPageUrl('load-never.html') });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'load never fired');
});

// The loader's report carries the site's release as the brain's reports
// would (quotes and non-ASCII as set), and none for one the core would have
// to clean (white space around it, a control character, over 128 characters).
for (const [release, sent] of [['shop-7 "β" \'x\'', 'shop-7 "β" \'x\''], [' padded', undefined], ['a\u0085b', undefined],
  ['r'.repeat(129), undefined]]) {
  test(`a page view that ends before the monitor started: one unmonitored health report, no page data (release ${JSON.stringify(release)?.slice(0, 20)})`, { timeout: 90_000 }, async () => {
    const run = await hangingPageView(async (page) => {
      assert.equal(await running(page), false, 'the monitor has not started yet');
    }, { release });
    assert.deepEqual(run.findings, []);
    assert.equal(run.posts.length, 1, 'one request: the health report');
    assert.deepEqual(run.reports.map((r) => [r.type, r.url, r.body.status, r.body.site, r.body.page_view, r.body.release]),
      [['tagwatch-health', `${SHOP_ORIGIN}/`, 'unmonitored', run.site, undefined, sent]]);
  });
}

test('a consent choice made before the monitor started counts from the click, not from page start', { timeout: 90_000 }, async () => {
  // The returning-visitor layout (`?lazy=1`: Intercom on load, the CMP once
  // Intercom booted) for a new visitor, who accepts in the banner while the
  // fake holds the wasm: the monitor starts after the click, and finds
  // OneTrust's cookie and state already there, as a restored choice would be.
  const run = await pageView('cmp/onetrust.html', {
    hold: '/tagwatch/tagwatch_bg.wasm',
    extra: { lazy: '1' },
    during: async (page, gate) => {
      await waitForIntercomBoot(page);
      await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/]);
      await page.waitForFunction(() => window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
      assert.equal(await running(page), false, 'the monitor has not started yet');
      await page.click('#onetrust-accept-btn-handler');
      await page.waitForFunction(() => window.OneTrust.IsAlertBoxClosed(), null, { timeout: 15000, polling: 50 });
      gate.release();
      await monitorRunning(page);
    },
  });
  // What Intercom did before the click, judged on the state before it;
  // its globals and frame, first seen after the start, are consented.
  const before = loadedWithoutConsent({ fake: stack.fake, app: APP_ID }).filter((k) => !/\| (global|dom) \|/.test(k));
  assertExactFindings(run.findings, before, 'accepted before the monitor started');
  for (const f of run.findings) assert.equal(f.consent.functional, null, `judged on the state before the click: ${JSON.stringify(f)}`);
});

/**
 * Holds every idle callback after the first (the loader's, after `load`):
 * the brain's start steps wait in `window.twIdle` until the test runs them.
 * Only the monitor asks for idle callbacks on these pages.
 */
function holdIdleSteps({ page }) {
  return page.addInitScript(() => {
    const real = window.requestIdleCallback;
    const held = [];
    let n = 0;
    Object.defineProperty(window, 'twIdle', { value: held });
    window.requestIdleCallback = function (fn, options) {
      if (n++ === 0) return real.call(window, fn, options);
      held.push(fn);
      return 0;
    };
  });
}

for (const [ran, what] of [[0, 'before its first step'], [1, 'after its first step (the replay)']]) {
  test(`a page view that ends while the brain's start waits ${what}: the rest at once, the page view reported whole`, { timeout: 90_000 }, async () => {
    const run = await runPageView(stack, 'no-consent.html', {
      before: holdIdleSteps,
      during: async ({ page }) => {
        for (let i = 0; i < ran; i++) {
          await page.waitForFunction((k) => window.twIdle.length > k, i, { timeout: 15000, polling: 50 });
          await page.evaluate((k) => window.twIdle[k]({ didTimeout: true, timeRemaining: () => 0 }), i);
        }
        await page.waitForFunction((k) => window.twIdle.length > k, ran, { timeout: 15000, polling: 50 });
        // `findings` would finish the start: asked only where it cannot reach the brain yet.
        if (!ran) assert.equal(await running(page), false, 'the monitor has not replayed yet');
      },
    });
    assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), `ended ${what}`);
  });
}
