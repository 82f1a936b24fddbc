// Hostile pages (issue 10): the monitor runs on pages whose scripts it
// audits, and some of them break, wrap or fight what it leans on. Each
// scenario is the no-consent page (tests/fixtures/pages/hostile.html) served
// under /account/<e-mail>/, with its Referer policy at `unsafe-url`, plus
// what tests/fixtures/pages/hostile.js breaks (`granted` and
// `lifetime-policy` there restore the page's consent to everything, the
// latter with cookie_max_days 30: the unharmed pages of the GPC and clock
// attacks). For each:
//   - no page error (any frame);
//   - the exact findings wherever the page still allows them, and the exact
//     health reports (`tampered` names the API, nothing else);
//   - no canary — the e-mail in the path included — in anything the
//     collector received (bodies, paths, headers: the Referer) or stored
//     (GET /api/findings, GET /api/health).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withdrawFlow } from './cmp-flows.mjs';
import { cookieLifetimeExceeded, gpcIgnored, loadedWithoutConsent } from './expected.mjs';
import {
  APP_ID, CANARIES, SHOP_ORIGIN, apiGet, assertExactFindings, assertNoCanaries, expect, findingKey, openPage, pollFindings, runPageView,
  startStack, waitFor,
} from './harness.mjs';

const EMAIL = CANARIES.pathEmail;
// Its local part alone, raw and encoded, is a canary too.
const EMAIL_PARTS = [EMAIL.split('@')[0], encodeURIComponent(EMAIL.split('@')[0])];
const FRAME_ENTRIES = [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/];

let stack;
before(async () => { stack = await startStack({ siteCount: 50 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

async function getJson(path) {
  const res = await apiGet(`${stack.collector.url}${path}`, { headers: { Authorization: `Bearer ${stack.collector.token}` } });
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${path} answered ${res.status}: ${text}`);
  return text;
}

/**
 * One page view of `file` under /account/<e-mail>/ with `attack`; the
 * checks every scenario shares beyond runPageView's. Returns the run with
 * `health` (the health reports received, as [status, reason]) and `stored`
 * (GET /api/health rows).
 */
async function hostile(attack, { file = 'hostile.html', referrer = 'unsafe-url', ...options } = {}) {
  const run = await runPageView(stack, `/account/${EMAIL}/${file}`, {
    extra: { attack, referrer },
    page: `${SHOP_ORIGIN}/account/:id/${file}`,
    waitFrame: FRAME_ENTRIES,
    ...options,
  });
  const site = run.site;
  // Everything the collector got for this page view (the config GET too), headers included.
  const received = stack.tap.posts.filter((p) => p.path.includes(site) || p.body.includes(site));
  assert.ok(received.length >= 1, 'the collector heard nothing from the page');
  const stored = await getJson(`/api/health?site=${encodeURIComponent(site)}`);
  assertNoCanaries([
    ...received.map((p) => `${p.method} ${p.path}\n${JSON.stringify(p.headers)}\n${p.body}`),
    ...run.collectorRequests.map((r) => `${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`),
    JSON.stringify(run.findings),
    stored,
  ], [...run.cookieValues, ...EMAIL_PARTS]);
  run.health = run.reports.filter((r) => r.type === 'tagwatch-health').map((r) => [r.body.status, r.body.reason]);
  run.stored = JSON.parse(stored).health;
  for (const h of run.stored) assert.equal(h.page, `${SHOP_ORIGIN}/`, 'stored health page: the origin only');
  return run;
}

const everything = () => loadedWithoutConsent({ fake: stack.fake, app: APP_ID });

// Where fetch is broken, XMLHttpRequest and sendBeacon carry the monitor's
// requests, and they follow the page's Referrer-Policy: these pages keep the
// default one (a cross-origin collector gets the origin only), not `unsafe-url`.
test('fetch replaced by a throwing function before the loader: config, module and reports go around it; one `tampered` report', { timeout: 90_000 }, async () => {
  const run = await hostile('fetch-throws', { referrer: '', minPosts: 2, maxPosts: 2 });
  assertExactFindings(run.findings, everything(), 'fetch throws');
  assert.deepEqual(run.health, [['tampered', 'fetch']]);
  assert.deepEqual(run.stored.map((h) => [h.status, h.reason]), [['tampered', 'fetch']]);
});

test('fetch rejecting and sendBeacon throwing before the loader: XMLHttpRequest carries all; one `tampered` report', { timeout: 90_000 }, async () => {
  const expected = everything();
  const run = await hostile('network-rejects', {
    referrer: '',
    minPosts: 2,
    maxPosts: 3,
    // XMLHttpRequest, the last way, does not outlive the page: flush first.
    during: async ({ page, site }) => {
      await page.evaluate(() => tagwatch('flush'));
      await pollFindings(stack.collector, site, (f) => f.length >= expected.length);
    },
  });
  assertExactFindings(run.findings, expected, 'network rejects');
  assert.deepEqual(run.health, [['tampered', 'fetch']]);
});

test('fetch, sendBeacon, XMLHttpRequest and WebAssembly broken right after the loader ran: the monitor runs on what it took', { timeout: 90_000 }, async () => {
  const run = await hostile('network-after');
  assertExactFindings(run.findings, everything(), 'network broken after');
  assert.deepEqual(run.health, []);
});

test('XMLHttpRequest and WebAssembly streaming broken before the loader: no need of them', { timeout: 90_000 }, async () => {
  const run = await hostile('xhr-streaming-before');
  assertExactFindings(run.findings, everything(), 'xhr and streaming broken before');
  assert.deepEqual(run.health, []);
});

test('WebAssembly.instantiate throwing before the loader: compiled and instantiated apart; one `tampered` report', { timeout: 90_000 }, async () => {
  const run = await hostile('wasm-instantiate-throws', { minPosts: 2, maxPosts: 2 });
  assertExactFindings(run.findings, everything(), 'instantiate throws');
  assert.deepEqual(run.health, [['tampered', 'WebAssembly.instantiate']]);
});

// The brain's warm-up worker (www/brain.js `warmer`) is an optimisation:
// without it the start compiles as it runs.
test('Worker throwing before the loader: the monitor starts without its warm-up worker, every finding', { timeout: 90_000 }, async () => {
  const run = await hostile('worker-throws');
  assertExactFindings(run.findings, everything(), 'worker throws');
  assert.deepEqual(run.health, []);
});

test('a Worker that never answers: the start goes on after its bounded wait, every finding', { timeout: 90_000 }, async () => {
  const run = await hostile('worker-silent');
  assertExactFindings(run.findings, everything(), 'worker silent');
  assert.deepEqual(run.health, []);
});

test('document.cookie throws when the monitor reads it: the Cookie Store API has the cookies', { timeout: 90_000 }, async () => {
  const run = await hostile('cookie-throws');
  assertExactFindings(run.findings, everything(), 'cookie throws');
  assert.deepEqual(run.health, []);
});

test('document.cookie throws for the monitor and cookieStore.getAll throws: every finding but the cookies', { timeout: 90_000 }, async () => {
  const run = await hostile('cookie-throws,cookie-store-throws');
  const cookieFindings = new Set(['id', 'device-id', 'session'].map((k) => expect.cookie('cookie_before_consent', `intercom-${k}-${APP_ID}`)));
  assertExactFindings(run.findings, everything().filter((k) => !cookieFindings.has(k)), 'cookies hidden');
  assert.deepEqual(run.health, []);
});

test('180 cookies of 4 KB: exact findings, no value reported', { timeout: 90_000 }, async () => {
  const run = await hostile('many-cookies');
  assert.ok(run.cookieValues.filter((v) => v.length > 4000).length >= 170, 'the big cookies were planted');
  assertExactFindings(run.findings, everything(), '180 cookies');
  assert.deepEqual(run.health, []);
});

test('read-only window.tagwatch: the queue is read, live calls through the stub arrive', { timeout: 90_000 }, async () => {
  const run = await hostile('tagwatch-readonly', {
    maxPosts: 3,
    during: async ({ page, site }) => {
      assert.equal(await page.evaluate(() => tagwatch.loaded === true && typeof tagwatch.q.push), 'function');
      // A live call made through the page's stub (the global stays the stub).
      await page.evaluate(() => tagwatch('flush'));
      await waitFor(() => stack.tap.reportPosts(site).some((p) => p.done), { what: 'the flush through the stub' });
    },
  });
  assertExactFindings(run.findings, everything(), 'read-only tagwatch');
  assert.deepEqual(run.health, []);
});

test('window.tagwatch a getter and setter that throw: the script tag\'s data- attributes still start the monitor', { timeout: 90_000 }, async () => {
  const run = await hostile('tagwatch-getter-throws');
  // The queued consent is out of reach: nothing was consented to.
  const consent = new Set(run.reports.filter((r) => r.type === 'tagwatch-finding').map((r) => JSON.stringify([r.body.consent.functional, r.body.consent.marketing])));
  assert.deepEqual([...consent], ['[null,null]']);
  assertExactFindings(run.findings, everything(), 'tagwatch getter throws');
  assert.deepEqual(run.health, []);
});

test('queued calls whose arguments throw (getter, Proxy, a throwing queue entry) and live ones: each alone, start-up unharmed', { timeout: 90_000 }, async () => {
  const run = await hostile('queued-args-throw', {
    during: async ({ page }) => {
      // Once the monitor runs (it starts after the page's load).
      await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
      const answer = await page.evaluate(() => {
        const trap = () => { throw new Error('hostile proxy'); };
        const proxy = new Proxy({}, { get: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap });
        tagwatch('consent', proxy);
        tagwatch('consent', { get functional() { throw new Error('hostile getter'); } });
        tagwatch('config', proxy);
        tagwatch('config', { policy: proxy });
        tagwatch(proxy, proxy);
        return Array.isArray(tagwatch('findings'));
      });
      assert.equal(answer, true, 'the monitor runs and answers');
    },
  });
  assertExactFindings(run.findings, everything(), 'queued arguments throw');
  assert.deepEqual(run.health, [], 'no wasm_unavailable: the wasm ran');
});

test('built-ins overridden before the loader (JSON, toJSON, Object.defineProperty, Array methods, call/apply, Promise then)', { timeout: 90_000 }, async () => {
  const run = await hostile('builtins-overridden');
  assertExactFindings(run.findings, everything(), 'built-ins overridden');
  assert.deepEqual(run.health, []);
});

test('entry lists broken before the loader: no error reaches the page, cookies and markers still judged', { timeout: 90_000 }, async () => {
  // PerformanceObserverEntryList.prototype.getEntries throws: every
  // observer callback (the loader's, the frames') gets nothing from its
  // list, and must not throw into the page for it. What an observer still
  // holds when a report is built (takeRecords) may be judged, so the
  // request findings are not pinned: each must be one of the no-consent set.
  const run = await hostile('entry-lists-broken');
  const keys = new Set(everything());
  for (const f of run.findings) assert.ok(keys.has(findingKey(f)), `unexpected finding ${findingKey(f)}`);
  const markers = everything().filter((k) => /\| (cookie|global|dom) \|/.test(k));
  for (const k of markers) assert.ok(run.findings.some((f) => findingKey(f) === k), `missing ${k}`);
  assert.deepEqual(run.health, []);
});

// The text codecs (issue 11 item 7): the monitor copies strings into its
// wasm and out of it (every report) with the glue's own UTF-8 loops, never
// with the page's TextEncoder / TextDecoder, which a page (or a tag the
// monitor audits) may replace before the snippet or after it, before the
// brain starts. The glue decodes with its own loop always, and encodes
// with the browser's encoder as the loader took it at parse time once it
// wrote a sample right, else with its own loop (tools/minify-imports.mjs).
// Each attack (tests/fixtures/pages/hostile.js `CODEC`), both times: the
// findings of the unharmed page, nothing thrown into the page, no canary in
// anything the collector got (the lying codecs' e-mail), and the page's
// codecs as the page set them once the monitor runs (it repairs nothing);
// one `tampered` report (TextEncoder) where the loader took a broken
// encoder (before the snippet), none after.
for (const [attack, what] of [
  ['codec-throws', 'TextEncoder.encodeInto / encode and TextDecoder.decode throwing'],
  ['codec-lies', 'TextEncoder.encodeInto and TextDecoder.decode lying on every string (an e-mail in and the vendor hidden; an e-mail in every URL out)'],
  ['codec-globals', 'TextEncoder replaced (its instances throw) and TextDecoder throwing when constructed'],
]) {
  for (const [suffix, when] of [['', 'before the snippet'], ['-after', 'right after the loader ran']]) {
    test(`${what}, ${when}: every finding, nothing thrown, no canary, the page's codecs left as it set them`, { timeout: 90_000 }, async () => {
      const run = await hostile(attack + suffix, {
        // Before the snippet the `tampered` report is a request of its own.
        ...(suffix ? {} : { minPosts: 2, maxPosts: 2 }),
        during: async ({ page }) => {
          // Once the monitor runs (it starts after the page's load).
          await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
          const state = await page.evaluate(() => ({
            kept: twCodecNow().map((v, i) => v === twCodecSet[i]),
            escaped: twEscaped,
          }));
          assert.deepEqual(state.kept, [true, true, true, true, true], 'the page\'s TextEncoder, TextDecoder, encodeInto, encode, decode as it set them');
          assert.deepEqual(state.escaped, [], 'nothing thrown into the page (error, unhandledrejection)');
        },
      });
      assertExactFindings(run.findings, everything(), `${attack}${suffix}`);
      assert.deepEqual(run.health, suffix ? [] : [['tampered', 'TextEncoder']]);
    });
  }
}

// What the monitor calls after the page's `load`, broken for the monitor
// alone (a function that throws when the monitor's scripts are on the stack):
// the loader takes them at parse time (docs/hostile-pages.md).
test('performance.now and URL throwing for the monitor right after the loader ran: every finding', { timeout: 90_000 }, async () => {
  const run = await hostile('clock-url-after');
  assertExactFindings(run.findings, everything(), 'clock and URL after');
  assert.deepEqual(run.health, []);
});

test('requestIdleCallback and setTimeout throwing for the monitor right after the loader ran: nothing thrown into the page, every finding at the page view\'s end', { timeout: 90_000 }, async () => {
  const run = await hostile('timers-after');
  assertExactFindings(run.findings, everything(), 'timers after');
  assert.deepEqual(run.health, []);
});

test('Math.random repeating itself for the monitor right after the loader ran: the page view id is not drawn from it', { timeout: 90_000 }, async () => {
  const run = await hostile('random-after');
  assertExactFindings(run.findings, everything(), 'random after');
  const ids = new Set(run.reports.map((r) => r.body.page_view));
  assert.equal(ids.size, 1, 'one page view');
  // 0.5 for each of the 16 hex digits.
  assert.notEqual([...ids][0], '8888888888888888', 'the page view id came from the page\'s Math.random');
  assert.deepEqual(run.health, []);
});

// What wasm-bindgen's glue uses at every call into the wasm (issue 11 item
// 7): a page that broke it after the snippet, before the brain starts,
// once silenced the monitor. The loader takes what the glue needs at parse
// time (www/loader.js, tools/minify-imports.mjs); the attacks are
// tests/fixtures/pages/hostile.js `typed-arrays-after` (every typed-array
// method and accessor the glue called, DataView's setters, the memory's
// `buffer`, the instance's `exports` and the table's `set` throwing) and
// `typed-arrays-lie-after` (the constructors throwing, the memory's
// `buffer` a copy, `subarray` a view one byte off). Each: the findings of
// the unharmed page, no health report, nothing thrown into the page, the
// page's built-ins as it set them.
for (const [attack, what] of [
  ['typed-arrays-after', 'typed-array, DataView and WebAssembly methods and accessors throwing'],
  ['typed-arrays-lie-after', 'typed-array constructors throwing, the memory\'s buffer a copy and subarray one byte off'],
]) {
  test(`${what} right after the loader ran: every finding, nothing thrown, the page's built-ins left as it set them`, { timeout: 90_000 }, async () => {
    const run = await hostile(attack, {
      during: async ({ page }) => {
        // Once the monitor runs (it starts after the page's load).
        await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
        const state = await page.evaluate(() => ({
          kept: twTypedNow().map((v, i) => v === twTypedSet[i]),
          escaped: twEscaped,
        }));
        assert.ok(state.kept.every(Boolean), `the page's typed arrays, DataView and WebAssembly members as it set them: ${state.kept}`);
        assert.deepEqual(state.escaped, [], 'nothing thrown into the page (error, unhandledrejection)');
      },
    });
    assertExactFindings(run.findings, everything(), attack);
    assert.deepEqual(run.health, []);
  });
}

test('encodeURIComponent throwing for the monitor right after the loader ran: the start asks for /config/KEY all the same, every finding', { timeout: 90_000 }, async () => {
  const run = await hostile('uri-after');
  assertExactFindings(run.findings, everything(), 'encodeURIComponent after');
  assert.deepEqual(run.health, []);
  assert.equal(run.collectorRequests.filter((r) => new URL(r.url).pathname === `/config/${run.site}`).length, 1, 'one GET /config/<site>');
});

test('URL throwing for the monitor right after the loader ran, OneTrust\'s consent only in its cookies: the CMP cookie reader still comes, every finding', { timeout: 90_000 }, async () => {
  const seq0 = stack.fake.requests.at(-1)?.seq ?? 0;
  const run = await hostile('onetrust-cookies,clock-url-after');
  assert.deepEqual(stack.fake.requests.filter((r) => r.seq > seq0 && r.path.startsWith('/tagwatch/ondemand/')).map((r) => [r.path, r.status]),
    [['/tagwatch/ondemand/cmp-cookies.wasm', 200]]);
  // Without the piece the page view would be held (an `unmonitored`
  // health report, no finding): judged without OneTrust's consent, its
  // findings could be false.
  assertExactFindings(run.findings, everything(), 'URL after, OneTrust cookies');
  assert.deepEqual(run.health, []);
});

// What the brain reads after `load` and the wasm judges by, hidden or
// skewed for the monitor after its snippet (docs/hostile-pages.md): the
// loader takes Global Privacy Control and `Date.now` at parse time. Each
// attack comes with its unharmed page (`granted` / `lifetime-policy`:
// hostile.js restores consent to everything and sets cookie_max_days 30),
// whose findings are those of gpc.test.mjs and cookie-lifetime.test.mjs.
const nothingEscaped = async ({ page }) => {
  // Once the monitor runs (it starts after the page's load).
  await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
  assert.deepEqual(await page.evaluate(() => window.twEscaped || []), [], 'nothing thrown into the page (error, unhandledrejection)');
};
for (const [attack, what] of [['', 'the unharmed page'], ['gpc-hidden-after', 'GPC hidden (false on Navigator.prototype, undefined on navigator) right after the loader ran']]) {
  test(`GPC on, everything granted, ${what}: gpc_ignored as on gpc.test.mjs's page`, { timeout: 90_000 }, async () => {
    const run = await hostile(['granted', attack].filter(Boolean).join(','), { gpc: true, during: nothingEscaped });
    assertExactFindings(run.findings, gpcIgnored({ app: APP_ID }), `GPC ${attack || 'unharmed'}`);
    for (const r of run.reports.filter((x) => x.type === 'tagwatch-finding')) assert.equal(r.body.consent.gpc, true, 'the finding carries gpc: true');
    assert.deepEqual(run.health, []);
  });
}
for (const [attack, what] of [
  ['', 'the unharmed page'],
  ['date-far-after', 'Date.now ten years ahead for the monitor right after the loader ran'],
  ['date-throws-after', 'Date.now throwing for the monitor right after the loader ran'],
  // The expiry dates come from the Cookie Store's list alone.
  ['cookie-store-filtered-after', 'the Cookie Store\'s getAll leaving out Intercom\'s cookies right after the loader ran'],
]) {
  test(`cookie_max_days 30, ${what}: the 9-month Intercom cookies judged as on cookie-lifetime.test.mjs's page`, { timeout: 90_000 }, async () => {
    const run = await hostile(['lifetime-policy', attack].filter(Boolean).join(','), { settleMs: 1500, during: nothingEscaped });
    assertExactFindings(run.findings, cookieLifetimeExceeded({ app: APP_ID }), `cookie lifetime ${attack || 'unharmed'}`);
    for (const f of run.findings) {
      assert.ok(Number.isInteger(f.evidence.days) && f.evidence.days >= 200 && f.evidence.days <= 270,
        `${f.evidence.cookie}: evidence.days ${f.evidence.days} is the remaining lifetime in whole days`);
    }
    assert.deepEqual(run.health, []);
  });
}

// The URLs the start asks for, and the user agent every report carries,
// changed for the monitor after its snippet (docs/hostile-pages.md): the
// loader makes the URLs when the config is known (the snippet's: while it
// runs) and reads the user agent when it runs.
test('URL objects\' href and toString throwing for the monitor right after the loader ran: the start asks for the brain, the wasm and /config/KEY all the same, every finding', { timeout: 90_000 }, async () => {
  const run = await hostile('url-href-after', { during: nothingEscaped });
  assertExactFindings(run.findings, everything(), 'URL href after');
  assert.deepEqual(run.health, []);
  assert.equal(run.collectorRequests.filter((r) => new URL(r.url).pathname === `/config/${run.site}`).length, 1, 'one GET /config/<site>');
});
// A config the page gives only after the loader ran, after breaking what
// the loader makes its URLs with (docs/hostile-pages.md): the URLs are made
// then, with the `URL`, `encodeURIComponent` and URL serialiser the loader
// took when it ran.
for (const [attack, what] of [
  ['url-href-after,config-late', 'URL objects\' href and toString throwing for the monitor'],
  ['clock-url-after,config-late', 'URL and performance.now throwing for the monitor'],
  ['uri-after,config-late', 'encodeURIComponent throwing for the monitor'],
]) {
  test(`the config given only after the loader ran, ${what} before it: the start asks for the brain, the wasm and /config/KEY all the same, every finding`, { timeout: 90_000 }, async () => {
    const run = await hostile(attack, { during: nothingEscaped });
    assertExactFindings(run.findings, everything(), attack);
    assert.deepEqual(run.health, []);
    assert.equal(run.collectorRequests.filter((r) => new URL(r.url).pathname === `/config/${run.site}`).length, 1, 'one GET /config/<site>');
  });
}
for (const [attack, what, options, health] of [
  ['user-agent-after', '', {}, []],
  // fetch throwing before the snippet: a `tampered` report, written by the
  // loader when the brain starts (after the user agent changed).
  ['fetch-throws,user-agent-after', ', fetch throwing before the snippet (a `tampered` health report)', { referrer: '', minPosts: 2, maxPosts: 2 }, [['tampered', 'fetch']]],
]) {
  test(`navigator.userAgent another browser's right after the loader ran${what}: every report carries the browser's own`, { timeout: 90_000 }, async () => {
    let browsers;
    const run = await hostile(attack, {
      ...options,
      during: async (ctx) => {
        await nothingEscaped(ctx);
        browsers = await ctx.page.evaluate(() => [window.twUserAgent, navigator.userAgent]);
      },
    });
    assert.notEqual(browsers[0], browsers[1], 'the page changed the user agent');
    assertExactFindings(run.findings, everything(), attack);
    assert.deepEqual(run.health, health);
    const reports = [...run.reports, ...run.inventories];
    assert.ok(reports.length > 0);
    for (const r of reports) assert.equal(r.user_agent, browsers[0], `a ${r.type} report's user agent`);
  });
}

// A tag that hides what it does without breaking the page (issue 11 item
// 7, docs/hostile-pages.md): the built-ins below are read by few page
// scripts, so one that filters them, or drops a kind of listener, harms
// nothing but the monitor. The loader takes them at parse time. Each
// attack, right after the loader ran: the findings of the unharmed page,
// nothing thrown into the page, no health report.
test('entry lists and takeRecords leaving out Intercom\'s entries right after the loader ran, in the top document and each frame: every request finding', { timeout: 90_000 }, async () => {
  // One more request, made while the monitor runs by a synchronous
  // XMLHttpRequest: its entry is in the timeline when the call returns, and
  // `findings` in the same task judges it from what the top observer holds
  // undelivered (`takeRecords`: no delivery can come in between).
  const probe = expect.request('script_before_consent', 'widget.intercom.io', '/widget/probe', 'top');
  let answered;
  const run = await hostile('entries-filtered-after', {
    during: async (ctx) => {
      await nothingEscaped(ctx);
      answered = await ctx.page.evaluate(() => {
        const x = new XMLHttpRequest();
        x.open('GET', 'https://widget.intercom.io/widget/probe', false);
        x.send();
        return tagwatch('findings').filter((r) => r.type === 'tagwatch-finding')
          .map((r) => ({ type: r.body.finding, vendor: r.body.vendor, evidence: r.body.evidence }));
      });
    },
  });
  assert.ok(answered.some((f) => findingKey(f) === probe), `the probe judged from takeRecords: ${answered.map(findingKey).join('; ')}`);
  assertExactFindings(run.findings, [...everything(), probe], 'entries filtered after');
  assert.deepEqual(run.health, []);
});
for (const [attack, what] of [['first-party-loader', 'the unharmed page'],
  ['first-party-loader,entries-by-name-after', 'performance.getEntriesByName leaving out Intercom\'s entries right after the loader ran']]) {
  test(`Intercom loaded from a first-party path by its npm loader's <script id>, ${what}: the loader's request is Intercom's`, { timeout: 90_000 }, async () => {
    const run = await hostile(attack, { during: nothingEscaped });
    assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID, loader: 'first-party' }), attack);
    assert.deepEqual(run.health, []);
  });
}
test('addEventListener dropping pagehide and visibilitychange listeners right after the loader ran: the page view\'s end still reports everything', { timeout: 90_000 }, async () => {
  const run = await hostile('page-end-listeners-after', { during: nothingEscaped });
  assertExactFindings(run.findings, everything(), 'page-end listeners after');
  assert.deepEqual(run.health, []);
});

// The CMPs' consent events (OneTrust's `OneTrustGroupsUpdated`, …) dropped
// by a wrapped `addEventListener` after the snippet: the consent adapters
// listen through the loader's `on` (www/consent.js, www/cmp-api.js). The
// visitor accepts in OneTrust, then withdraws; Intercom keeps running: the
// withdrawal findings of cmp-fixtures.test.mjs's OneTrust page.
test('addEventListener dropping the CMPs\' consent events right after the loader ran: a OneTrust acceptance (then a withdrawal) is still heard', { timeout: 90_000 }, async () => {
  await withdrawFlow(stack, {
    id: 'onetrust',
    page: 'cmp/onetrust.html',
    extra: { attack: 'cmp-events-dropped-after' },
    accept: (page) => page.click('#onetrust-accept-btn-handler'),
    withdraw: async (page) => { await page.click('#ot-sdk-btn'); await page.click('#onetrust-pc-sdk .ot-pc-refuse-all-handler'); },
  });
});

test('Reflect.get hiding `user_hash` from the monitor before the snippet: no false identity finding (the glue reads page objects by `o[k]`)', { timeout: 90_000 }, async () => {
  const run = await hostile('reflect-get');
  assertExactFindings(run.findings, everything(), 'Reflect.get');
  assert.deepEqual(run.health, []);
});

test('built-ins frozen before the loader', { timeout: 90_000 }, async () => {
  const run = await hostile('builtins-frozen');
  assertExactFindings(run.findings, everything(), 'built-ins frozen');
  assert.deepEqual(run.health, []);
});

test("CSP without 'wasm-unsafe-eval' on a path with an e-mail: one health report, its URL redacted", { timeout: 90_000 }, async () => {
  const run = await hostile('', { file: 'hostile-csp.html' });
  assert.equal(run.posts.length, 1, 'exactly one request: the health report');
  assert.deepEqual(run.health, [['wasm_unavailable', 'CompileError']]);
  assert.deepEqual(Object.keys(run.reports[0].body).sort(), ['reason', 'schema', 'site', 'status'], 'no detail beyond the status');
  assert.deepEqual(run.stored.map((h) => [h.status, h.reason]), [['wasm_unavailable', 'CompileError']]);
  assertExactFindings(run.findings, [], 'CSP');
});

test("CSP without 'wasm-unsafe-eval' and a toJSON on the prototypes (as Prototype.js did): the health report still holds", { timeout: 90_000 }, async () => {
  const run = await hostile('tojson', { file: 'hostile-csp.html' });
  assert.deepEqual(run.health, [['wasm_unavailable', 'CompileError']]);
  assert.deepEqual(run.stored.map((h) => [h.status, h.reason]), [['wasm_unavailable', 'CompileError']]);
});

test('whatever the page made of window.tagwatch, loading the monitor throws nothing', { timeout: 90_000 }, async () => {
  // Each variant in its own frame (its own window), then the shipped loader.
  const VARIANTS = {
    'read-only, not configurable': `Object.defineProperty(window, 'tagwatch', { value: stub, writable: false, configurable: false });`,
    'a getter that throws': `Object.defineProperty(window, 'tagwatch', { get: boom, configurable: true });`,
    'a getter, and a setter that throws': `Object.defineProperty(window, 'tagwatch', { get: () => stub, set: boom, configurable: true });`,
    'a Proxy that throws on every trap': `window.tagwatch = new Proxy(stub, { get: boom, has: boom, set: boom, defineProperty: boom, getOwnPropertyDescriptor: boom });`,
    'a queue with a huge length and throwing entries': `stub.q = new Proxy([], { get: (t, k) => k === 'length' ? 1e9 : boom() }); window.tagwatch = stub;`,
    'a frozen stub': `Object.freeze(stub); window.tagwatch = stub;`,
    '`loaded` a getter that throws': `Object.defineProperty(stub, 'loaded', { get: boom }); window.tagwatch = stub;`,
    'not a function': `window.tagwatch = 'tagwatch';`,
  };
  await withBlankPage(async ({ page, pageErrors }) => {
    for (const [name, setup] of Object.entries(VARIANTS)) {
      const [errors] = await loaderInFrame(page, `var stub = function () { (stub.q = stub.q || []).push(arguments); };
        stub('config', { site: 'tw_nothing' }); stub('consent', { necessary: true });
        ${setup}`);
      assert.deepEqual(errors, [], `${name}: the loader threw into the page`);
    }
    assert.deepEqual(pageErrors, [], 'no page error in any frame');
  });
});

// The loader reads the calls queued on a watched vendor's stub
// (`Intercom.q`) before it hooks the global, without an exception where
// there is no stub (www/loader.js `hook`, `first`): whatever the page made
// of the global, that read throws nothing into it, and the loader is
// installed.
test('whatever the page made of a watched vendor\'s global before the loader, loading it throws nothing', { timeout: 90_000 }, async () => {
  const VARIANTS = {
    'no global': ``,
    'an accessor whose getter throws': `Object.defineProperty(window, 'Intercom', { get: boom, configurable: true });`,
    'an accessor, not configurable, whose getter throws': `Object.defineProperty(window, 'Intercom', { get: boom, configurable: false });`,
    'a stub whose queue is a getter that throws': `var ic = function () {}; Object.defineProperty(ic, 'q', { get: boom }); window.Intercom = ic;`,
    'a queue with a huge length and throwing entries': `var ic = function () {}; ic.q = new Proxy([], { get: (t, k) => k === 'length' ? 1e9 : boom() }); window.Intercom = ic;`,
    'a queue of things that are not calls': `var ic = function () {}; ic.q = [null, 1, 'boot', { 0: 'boot' }, [boom]]; window.Intercom = ic;`,
    'a Proxy that throws on every trap': `window.Intercom = new Proxy(function () {}, { get: boom, has: boom, set: boom, defineProperty: boom, getOwnPropertyDescriptor: boom, apply: boom });`,
    'not configurable, not a function': `Object.defineProperty(window, 'Intercom', { value: 5, writable: false, configurable: false });`,
  };
  await withBlankPage(async ({ page, pageErrors }) => {
    for (const [name, setup] of Object.entries(VARIANTS)) {
      const [errors, loaded] = await loaderInFrame(page, `var stub = function () { (stub.q = stub.q || []).push(arguments); };
        window.tagwatch = stub;
        stub('config', { site: 'tw_nothing' });
        ${setup}`);
      assert.deepEqual(errors, [], `${name}: the loader threw into the page`);
      assert.equal(loaded, true, `${name}: the loader is installed`);
    }
    assert.deepEqual(pageErrors, [], 'no page error in any frame');
  });
});

/** In a new frame of `page` (its own window): runs `setup` (with `boom`,
 * a function that throws, defined), then loads the shipped loader; answers
 * the errors that reached the frame's window and whether the loader
 * installed itself (`tagwatch.loaded`). */
async function loaderInFrame(page, setup) {
  return page.evaluate(async (code) => {
    const f = document.createElement('iframe');
    document.body.appendChild(f);
    const w = f.contentWindow;
    const errs = [];
    w.addEventListener('error', (e) => errs.push(String(e.message)));
    w.addEventListener('unhandledrejection', (e) => errs.push(`unhandled rejection ${e.reason}`));
    w.eval(`var boom = function () { throw new Error('hostile'); };\n${code}`);
    await new Promise((resolve) => {
      const s = w.document.createElement('script');
      s.src = '/tagwatch/tagwatch.js';
      s.onload = s.onerror = resolve;
      w.document.head.appendChild(s);
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    let loaded = false;
    try { loaded = w.tagwatch.loaded === true; } catch (e) { /* a hostile global */ }
    return [errs, loaded];
  }, setup);
}

async function withBlankPage(fn) {
  const ctx = await openPage(stack.browser);
  try {
    await ctx.page.goto(`${SHOP_ORIGIN}/pages/blank.html`);
    await fn(ctx);
  } finally {
    await ctx.context.close().catch(() => {});
  }
}
