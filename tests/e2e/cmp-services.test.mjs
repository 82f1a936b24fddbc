// Issue 14: a CMP's per-service choice is that vendor's consent, not its
// category's. The real vanilla-cookieconsent v3 (npm) with Google Analytics
// and Hotjar as two services of its analytics category
// (tests/fixtures/pages/cmp/cookieconsent-services.html); the visitor
// clicks the shop's "Google Analytics only" button, which accepts Google
// Analytics and refuses Hotjar through cookieconsent's own API
// (`acceptService`); the careless shop loads both in cookieconsent's
// onConsent callback, which runs before cookieconsent's `cc:onConsent`
// event: the choice counts from the click. The shipped monitor
// reads `getUserPreferences().acceptedServices / rejectedServices`, maps
// the service names through the core's table (`ga` → GA4, `hotjar` →
// Hotjar) and the real collector stores exactly Hotjar's finding, its
// `consent.vendor` false; GA4's hit is not a finding. A returning visitor
// with that choice restored: the same, in each order its readings arrive.
// Usercentrics the same way through its live APIs, which list each service
// with its name (tests/fixtures/pages/cmp/fake-usercentrics-api.js, the
// documented shapes, NOT its code): V3's `__ucCmp.getConsentDetails()`
// read on its `UC_CONSENT` event, V2's `UC_UI.getServicesBaseInfo()` for a
// returning visitor. Hostile Usercentrics APIs (throwing, wrong types,
// 10,000 services) never reach the page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertExactFindings, findingKey, runPageView, startStack } from './harness.mjs';

const PAGE = 'cmp/cookieconsent-services.html';
const UC_PAGE = 'cmp/usercentrics-services.html';
const UC_GA = 'HkocEodjb7';
const UC_HOTJAR = 'S1kgcNo_j-m';
const HOTJAR = findingKey({
  type: 'script_before_consent', vendor: 'hotjar',
  evidence: { kind: 'request', host: 'static.hotjar.com', path: '/c/hotjar-3000001.js', frame: 'top' },
});

let stack;
before(async () => { stack = await startStack({ siteCount: 13 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

/** The monitor runs and cookieconsent has applied a state. */
async function ready(page) {
  await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
}

/** Both tags' requests are in the page's Resource Timing. */
async function bothLoaded(page) {
  await page.waitForFunction(() => {
    const names = performance.getEntriesByType('resource').map((e) => e.name);
    return names.some((n) => n.includes('static.hotjar.com/c/hotjar-3000001.js'))
      && names.some((n) => n.includes('region1.google-analytics.com/g/collect'));
  }, null, { timeout: 15000, polling: 50 });
}

function assertHotjarOnly(run, label, source = 'vanilla-cookieconsent') {
  assertExactFindings(run.findings, [HOTJAR], label);
  const [f] = run.findings;
  assert.equal(f.consent.vendor, false, `Hotjar's own choice, refused: ${JSON.stringify(f.consent)}`);
  if (source === 'vanilla-cookieconsent') assert.equal(f.consent.analytics, true, 'its category is granted: the service choice decided');
  assert.equal(f.consent.source, source);
  const vendors = run.inventories.flatMap((r) => r.body.vendors.map((v) => v.vendor));
  assert.ok(vendors.includes('ga4'), `GA4's hit was seen (inventory: ${vendors.join(', ')})`);
}

test('Google Analytics accepted, Hotjar refused in one category → exactly Hotjar\'s finding is stored', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, PAGE, {
    bootIntercom: false,
    during: async ({ page }) => {
      await ready(page);
      assert.equal(await page.evaluate(() => window.TW_CMP.answers), 0, 'nothing answered before the choice');
      await page.click('#stats-ga-only');
      const prefs = await page.evaluate(() => CookieConsent.getUserPreferences());
      assert.deepEqual(prefs.acceptedServices.analytics, ['ga'], JSON.stringify(prefs));
      assert.deepEqual(prefs.rejectedServices.analytics, ['hotjar'], JSON.stringify(prefs));
      await bothLoaded(page);
    },
  });
  assertHotjarOnly(run, 'per-service choice');
});

// A returning visitor with that choice. cookieconsent runs the shop's
// onConsent callback (both tags) before its `cc:onConsent` event, and
// `cc_cookie` lists only the accepted services: the cookie reader grants
// analytics, and Hotjar's refusal comes only from the live API, read after
// the tags ran — a stored choice, in force from page start
// (`lastConsentTimestamp` before this page view), so the requests made
// under it are judged on it whenever it is read. Each order is forced,
// not raced: the adapters' request (www/cmp-api.js) is held until the
// monitor has judged the tags on the cookie reader's grant (Hotjar seen,
// no finding), then let through and the monitor waits for their read of
// `getUserPreferences()`.
async function returningVisit({ cmpAfterMonitor }) {
  let cookie = null;
  await runPageView(stack, PAGE, {
    bootIntercom: false,
    during: async ({ page, context }) => {
      await ready(page);
      await page.click('#stats-ga-only');
      await bothLoaded(page);
      cookie = (await context.cookies()).find((c) => c.name === 'cc_cookie');
    },
  });
  assert.ok(cookie, 'cookieconsent stored the choice');
  const stored = JSON.parse(decodeURIComponent(cookie.value));
  assert.deepEqual(stored.services, { necessary: [], analytics: ['ga'] }, 'the cookie lists the accepted services only');
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  return runPageView(stack, PAGE, {
    bootIntercom: false,
    extra: cmpAfterMonitor ? { defer: '1' } : {},
    before: async ({ context, page }) => {
      await context.addCookies([cookie]);
      await page.route('**/tagwatch/ondemand/cmp-api.js', async (route) => { await held; await route.continue(); });
    },
    during: async ({ page }) => {
      if (cmpAfterMonitor) {
        // The monitor runs, its consent adapters listening, before the
        // shop loads cookieconsent (`?defer=1`): its `cc:onConsent` is heard.
        await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { timeout: 15000, polling: 50 });
        await page.evaluate(() => {
          window.twHeard = 0;
          window.addEventListener('cc:onConsent', () => { window.twHeard++; });
          twLoadCmp();
        });
      }
      await ready(page);
      await bothLoaded(page);
      if (cmpAfterMonitor) assert.equal(await page.evaluate(() => window.twHeard), 1, 'cc:onConsent fired after the monitor started');
      // Judged on the cookie reader's grant of analytics: Hotjar seen, no finding.
      await page.waitForFunction(() => {
        const batch = window.tagwatch('findings');
        const seen = batch.some((r) => r.type === 'tagwatch-inventory' && r.body.vendors.some((v) => v.vendor === 'hotjar'));
        return seen && !batch.some((r) => r.body.vendor === 'hotjar' && r.body.finding);
      }, null, { timeout: 15000, polling: 50 });
      await page.evaluate(() => {
        const read = CookieConsent.getUserPreferences;
        window.twReads = 0;
        CookieConsent.getUserPreferences = function () { window.twReads++; return read.apply(this, arguments); };
      });
      release();
      await page.waitForFunction(() => window.twReads > 0, null, { timeout: 15000, polling: 50 });
    },
  });
}

test('returning visitor, cookieconsent before the monitor: the restored per-service choice, read last, decides the same', { timeout: 120_000 }, async () => {
  assertHotjarOnly(await returningVisit({ cmpAfterMonitor: false }), 'restored per-service choice');
});

test('returning visitor, cookieconsent after the monitor (its cc:onConsent heard): the restored choice counts from page start', { timeout: 120_000 }, async () => {
  assertHotjarOnly(await returningVisit({ cmpAfterMonitor: true }), 'restored per-service choice, event heard');
});

/** Usercentrics V3 (or V2) for this page view; `stored` the choice a
 * returning visitor made earlier (service id -> given). */
function usercentrics(version, stored = null) {
  return async ({ context }) => {
    await context.addInitScript(([v, choice]) => {
      window.TW_UC_VERSION = v;
      try { if (choice) localStorage.setItem('tw_uc_fixture', JSON.stringify({ given: choice })); } catch (e) { /* a frame without storage */ }
    }, [version, stored]);
  };
}

test('Usercentrics V3: Google Analytics accepted, Hotjar refused in one category (UC_CONSENT, getConsentDetails) → exactly Hotjar\'s finding', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, UC_PAGE, {
    bootIntercom: false,
    before: usercentrics(3),
    during: async ({ page }) => {
      await ready(page);
      assert.equal(await page.evaluate(() => window.TW_CMP.answers), 0, 'nothing answered before the choice');
      await page.click('#stats-ga-only');
      const d = await page.evaluate(() => __ucCmp.getConsentDetails());
      assert.equal(d.services[UC_GA].consent.given, true, JSON.stringify(d.services));
      assert.equal(d.services[UC_HOTJAR].consent.given, false, JSON.stringify(d.services));
      assert.equal(d.services[UC_GA].category, d.services[UC_HOTJAR].category, 'one category');
      await bothLoaded(page);
    },
  });
  assertHotjarOnly(run, 'Usercentrics V3 per-service choice', 'usercentrics');
});

test('Usercentrics V2: returning visitor, getServicesBaseInfo() gives Google Analytics accepted, Hotjar refused → exactly Hotjar\'s finding', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, UC_PAGE, {
    bootIntercom: false,
    before: usercentrics(2, { [UC_GA]: true, [UC_HOTJAR]: false }),
    during: async ({ page }) => {
      await ready(page);
      const list = await page.evaluate(() => UC_UI.getServicesBaseInfo());
      assert.deepEqual(list.map((s) => [s.name, s.consent.status]),
        [['Usercentrics Consent Management Platform', true], ['Google Analytics', true], ['Hotjar', false]]);
      await bothLoaded(page);
    },
  });
  assertHotjarOnly(run, 'Usercentrics V2 restored per-service choice', 'usercentrics');
});

// Usercentrics keeps a returning visitor's choice in its own storage, not a
// cookie: a page view that ends while the adapters that read its API are
// still on their way (here they never come) is held and reported
// `unmonitored` — judged without the choice, both tags the visitor allowed
// would be accused.
test('Usercentrics V2: returning visitor who allowed both, the page view ends before the adapters arrive → no finding, reported unmonitored', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, UC_PAGE, {
    bootIntercom: false,
    before: async (ctx) => {
      await usercentrics(2, { [UC_GA]: true, [UC_HOTJAR]: true })(ctx);
      await ctx.page.route('**/tagwatch/ondemand/cmp-api.js', () => {});
    },
    during: async ({ page }) => {
      await ready(page);
      await bothLoaded(page);
      // The monitor has seen both tags (its inventory names them).
      await page.waitForFunction(() => window.tagwatch('findings').some((r) => r.type === 'tagwatch-inventory'
        && ['hotjar', 'ga4'].every((v) => r.body.vendors.some((x) => x.vendor === v))), null, { timeout: 15000, polling: 50 });
    },
  });
  assert.deepEqual(run.findings, [], 'nothing judged without the choice Usercentrics\' API holds');
  const health = run.posts.flatMap((p) => JSON.parse(p.body)).filter((r) => r.type === 'tagwatch-health');
  assert.deepEqual(health.map((r) => [r.body.status, r.body.reason]), [['unmonitored', 'ondemand']]);
});

// Hostile Usercentrics APIs, put on the page before anything runs (the
// fixture then keeps them): no exception reaches the page (the harness
// asserts no page error), the monitor keeps running, and the last one —
// 10,000 services, Hotjar refused first — is still read.
const HOSTILE = {
  'getServicesBaseInfo throws': () => {
    window.UC_UI = { getServicesBaseInfo() { throw new Error('hostile'); } };
  },
  'getServicesBaseInfo returns a non-array': () => {
    window.UC_UI = { getServicesBaseInfo: () => ({ length: 1e9, 0: { name: 'Hotjar', consent: { status: false } } }) };
  },
  'names that are objects, throwing getters': () => {
    const evil = { toString() { throw new Error('hostile'); } };
    window.UC_UI = {
      getServicesBaseInfo: () => [
        { name: evil, categorySlug: evil, consent: { status: false } },
        { name: 'Hotjar', categorySlug: evil, consent: { status: false, history: evil } },
        Object.defineProperty({}, 'name', { get() { throw new Error('hostile'); } }),
        null, 7, 'Hotjar',
      ],
    };
  },
  'getConsentDetails throws, or resolves to garbage': () => {
    let n = 0;
    window.__ucCmp = {
      getConsentDetails() {
        n += 1;
        if (n === 1) throw new Error('hostile');
        if (n === 2) return 'not a promise';
        return Promise.resolve(n === 3 ? null : { consent: null, services: { a: { name: { x: 1 }, consent: { given: 'yes' } } } });
      },
    };
    setTimeout(() => window.dispatchEvent(new Event('UC_CONSENT')), 0);
    setTimeout(() => window.dispatchEvent(new Event('UC_CONSENT')), 0);
    setTimeout(() => window.dispatchEvent(new Event('UC_CONSENT')), 0);
  },
  '10,000 services': () => {
    const list = [{ name: 'Hotjar', categorySlug: 'marketing', consent: { status: false, history: [{ type: 'explicit' }] } }];
    for (let i = 0; i < 10_000; i++) list.push({ name: `Service ${i}`, categorySlug: `c${i % 50}`, consent: { status: i % 2 === 0 } });
    window.UC_UI = { getServicesBaseInfo: () => list };
  },
};

for (const [label, install] of Object.entries(HOSTILE)) {
  test(`hostile Usercentrics API: ${label} → nothing reaches the page`, { timeout: 90_000 }, async () => {
    const run = await runPageView(stack, UC_PAGE, {
      bootIntercom: false,
      expectReports: label === '10,000 services',
      before: async ({ context }) => { await context.addInitScript(install); },
      during: async ({ page }) => {
        await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && document.readyState === 'complete', null, { timeout: 15000, polling: 50 });
        // The adapters were asked for and ran against the hostile API.
        await page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => e.name.includes('cmp-api')),
          null, { timeout: 15000, polling: 50 });
        if (label === '10,000 services') {
          await page.evaluate(() => twScript('https://static.hotjar.com/c/hotjar-3000001.js?sv=6'));
          // Judged on the state the adapters read (until they have read
          // it, the page view's findings are held).
          await page.waitForFunction(() => window.tagwatch('findings').some((r) => r.body.vendor === 'hotjar'
            && r.body.consent && r.body.consent.source === 'usercentrics'), null, { timeout: 15000, polling: 50 });
        }
      },
    });
    if (label === '10,000 services') {
      const f = run.findings.find((x) => x.vendor === 'hotjar');
      assert.ok(f, `Hotjar's finding: ${JSON.stringify(run.findings)}`);
      assert.equal(f.consent.vendor, false, JSON.stringify(f.consent));
      assert.equal(f.consent.source, 'usercentrics');
    }
  });
}
