// The Chromium MV3 extension (dist/extension, made by ./build.sh dist): the
// same monitor as the snippet, on any site, plus what only an extension sees.
// Chromium runs headless (new headless) with the unpacked extension loaded,
// the fake Intercom behind the host-resolver rules.
//
// Environment: TAGWATCH_EXTENSION (default dist/extension),
// TAGWATCH_SCREENSHOT=1 to refresh docs/extension-popup.png (otherwise the
// popup's screenshot goes to target/extension-popup.png).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { chromium } from 'playwright-core';
import { loadedWithoutConsent } from './expected.mjs';
import {
  APP_ID, CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, SHOP_ORIGIN, TAGWATCH_BIN, assertExactFindings, assertNoCanaries,
  expect, findingKey, pageUrl, requireChromium, sleep, startCollector, startFake, waitFor, waitForFrameEntries, waitForIntercomBoot,
} from './harness.mjs';

const EXTENSION = process.env.TAGWATCH_EXTENSION || join(REPO_ROOT, 'dist/extension');
const SCREENSHOT = join(REPO_ROOT, process.env.TAGWATCH_SCREENSHOT === '1' ? 'docs' : 'target', 'extension-popup.png');
const GA_VALUE = 'GA1.1.424242424.1700000000';   // the HttpOnly _ga value ext-frames.html's response sets
const FRAMES = '/pages/ext-frames.html';

let fake;
let context;
let profile;
let extensionId;
const pageErrors = [];

before(async () => {
  requireChromium();
  assert.ok(existsSync(join(EXTENSION, 'manifest.json')) && existsSync(join(EXTENSION, 'content.js')),
    `the extension is not built: missing ${EXTENSION}. Run ./build.sh dist (it makes dist/extension/) first.`);
  fake = await startFake();
  profile = mkdtempSync(join(tmpdir(), 'tagwatch-e2e-extension-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false,   // the new headless mode, by flag: it loads extensions
    ignoreHTTPSErrors: true,
    viewport: { width: 1200, height: 800 },
    args: [
      '--headless=new', ...CHROMIUM_ARGS, ...fake.chromiumArgs,
      `--disable-extensions-except=${EXTENSION}`, `--load-extension=${EXTENSION}`,
    ],
  });
  context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e && e.stack || e}`)));
  const sw = await worker();
  extensionId = new URL(sw.url()).host;
}, { timeout: 120_000 });

after(async () => {
  await context?.close().catch(() => {});
  await fake?.close().catch(() => {});
  if (profile) rmSync(profile, { recursive: true, force: true });
}, { timeout: 30_000 });

// One browser profile for the file: every scenario starts without cookies.
beforeEach(async () => { await context.clearCookies(); });

/** The extension's service worker (started again if Chromium stopped it). */
async function worker() {
  const [sw] = context.serviceWorkers();
  return sw || context.waitForEvent('serviceworker', { timeout: 15_000 });
}
const inWorker = async (fn, arg) => (await worker()).evaluate(fn, arg);

async function tabIdOf(page) {
  const url = page.url();
  const tabs = await inWorker(() => chrome.tabs.query({}));
  const tab = tabs.find((t) => t.url === url);
  assert.ok(tab, `no tab for ${url}`);
  return tab.id;
}

/** The content script's answer to the popup: report batch, consent, how vendors were seen. */
async function auditOf(tabId) {
  const audit = await inWorker((id) => chrome.tabs.sendMessage(id, { t: 'audit' }, { frameId: 0 }), tabId);
  assert.ok(audit, 'the content script answered');
  audit.reports = JSON.parse(audit.findings);
  audit.found = audit.reports.filter((r) => r.type === 'tagwatch-finding').map((r) => r.body);
  audit.inventory = (audit.reports.find((r) => r.type === 'tagwatch-inventory') || {}).body;
  return audit;
}

/** Poll the audit until `pred` holds; fail with the last one seen. */
async function waitForAudit(tabId, pred, what) {
  let last = null;
  try {
    await waitFor(async () => pred((last = await auditOf(tabId))), { timeoutMs: 15_000, intervalMs: 250, what });
  } catch (e) {
    e.message += `\nlast audit: ${JSON.stringify(last && { ...last, findings: undefined, reports: undefined, inventory: undefined, found: last.found.map(findingKey) }, null, 1)}`;
    throw e;
  }
  return last;
}

const sameKeys = (expected) => (a) => a.running && a.found.length === expected.length
  && expected.every((k) => a.found.some((f) => findingKey(f) === k));
const badgeOf = (tabId) => inWorker((id) => chrome.action.getBadgeText({ tabId: id }), tabId);
const setOptions = (o) => inWorker((v) => chrome.storage.local.set(v), o);
const clearOptions = () => inWorker(() => chrome.storage.local.clear());

/** The popup, opened as a page for `tabId`, once it rendered an audit. */
async function openPopup(tabId) {
  const popup = await context.newPage();
  await popup.setViewportSize({ width: 720, height: 900 });
  await popup.goto(`chrome-extension://${extensionId}/popup.html?tab=${tabId}`);
  await popup.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
  return popup;
}

/** Report-format checks on a batch the extension produced. */
function assertBatch(reports, page) {
  assert.ok(Array.isArray(reports) && reports.length > 0);
  for (const r of reports) {
    assert.ok(['tagwatch-finding', 'tagwatch-inventory'].includes(r.type), r.type);
    assert.equal(r.url, page, 'the page URL without query or fragment');
    assert.ok(Number.isInteger(r.age) && r.age >= 0);
    assert.equal(r.body.schema, 1);
    assert.equal(r.body.site, 'extension', 'no site key configured');
    assert.match(r.body.page_view, /^[0-9a-f]{16}$/);
  }
}

test('no consent: the same findings as the snippet, the badge counts them, the popup shows them', { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  try {
    // No collector in the URL: the page's own snippet stays idle, the extension alone watches.
    await page.goto(pageUrl('no-consent.html'));
    await waitForIntercomBoot(page);
    await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/]);
    const tabId = await tabIdOf(page);
    const expected = loadedWithoutConsent({ fake, app: APP_ID });
    const audit = await waitForAudit(tabId, sameKeys(expected), 'the snippet\'s findings');
    assertExactFindings(audit.found, expected, 'extension, no consent');
    assert.equal(audit.engine, 'wasm');
    assertBatch(audit.reports, `${SHOP_ORIGIN}/pages/no-consent.html`);
    for (const f of audit.found) {
      assert.equal(f.consent.source, 'default', 'nothing decided on the page');
      assert.equal(f.consent.functional, null);
    }
    const { necessary, functional, analytics, marketing, source } = audit.consent;
    assert.deepEqual({ necessary, functional, analytics, marketing, source },
      { necessary: true, functional: null, analytics: null, marketing: null, source: 'default' }, 'consent in force: necessary only, nothing decided');
    assert.deepEqual(audit.globals, [['intercom', 'Intercom.booted']]);
    assert.deepEqual(audit.dom, [['intercom', '#intercom-frame']]);
    const intercom = audit.inventory.vendors.find((v) => v.vendor === 'intercom');
    assert.ok(intercom.requests >= 7 && intercom.script_requests === 3 && intercom.transfer_bytes > 0, JSON.stringify(intercom));

    await waitFor(async () => (await badgeOf(tabId)) === String(expected.length), { what: `badge ${expected.length}` });

    // Nothing of the page's private values in what the extension holds or shows.
    const values = (await context.cookies(SHOP_ORIGIN)).map((c) => c.value);
    assertNoCanaries([audit.findings, JSON.stringify(audit.globals)], values);
    // Nothing of the extension in the page's world but the hooks.
    const leaked = await page.evaluate(() => Object.keys(window).filter((k) => /wasm|tagwatch(?!$)|catalog|nonce/i.test(k)));
    assert.deepEqual(leaked, [], 'no extension globals in the page');

    const popup = await openPopup(tabId);
    try {
      assert.equal(await popup.textContent('#count'), String(expected.length));
      assert.equal(await popup.locator('#findings tr').count(), expected.length + 1, 'a row per finding, and the header');
      const findingsText = await popup.textContent('#findings');
      for (const t of ['script_before_consent', 'tracking_before_consent', 'cookie_before_consent', 'widget.intercom.io/widget/' + APP_ID,
        'api-iam.intercom.io/messenger/web/ping', `cookie intercom-id-${APP_ID}`, 'global Intercom.booted', 'element #intercom-frame']) {
        assert.ok(findingsText.includes(t), `findings table shows ${t}`);
      }
      const vendorRow = popup.locator('#vendors tr', { hasText: 'Intercom' });
      assert.deepEqual(await vendorRow.locator('.chip').allTextContents().then((c) => c.slice(0, 4)), ['network', 'cookie', 'global', 'DOM']);
      assert.match(await vendorRow.textContent(), /250 KB, 2 req/, 'declared weight from the catalog');
      const cookieRow = popup.locator('#cookies tr', { hasText: `intercom-id-${APP_ID}` });
      assert.match(await cookieRow.textContent(), /Intercom.*messenger → functional.*(269|270) days \(declared 270\)/);
      assert.match(await popup.textContent('#consent'), /necessary: granted.*functional: unknown.*source: default.*basis: none/);
      const html = await popup.content();
      assertNoCanaries([html], values);
      await popup.screenshot({ path: SCREENSHOT, fullPage: true });

      // Export: the report batch, as a file.
      const [download] = await Promise.all([popup.waitForEvent('download'), popup.click('#export')]);
      assert.match(download.suggestedFilename(), /^tagwatch-shop\.example-\d{8}T\d{4}\.json$/);
      const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
      assertBatch(exported, `${SHOP_ORIGIN}/pages/no-consent.html`);
      assertExactFindings(exported.filter((r) => r.type === 'tagwatch-finding').map((r) => r.body), expected, 'export');
      assertNoCanaries([JSON.stringify(exported)], values);
    } finally {
      await popup.close();
    }
    assert.deepEqual(pageErrors, []);
  } finally {
    await page.close();
  }
});

test('a frame bundle that finishes after a later one was already read: the extension judges both, once', { timeout: 90_000 }, async () => {
  // As in frames.test.mjs: frame-modern is held until the monitor has judged
  // vendor-modern (started after it, finished before it).
  const gate = fake.hold('js.intercomcdn.com', new URL(fake.frameSrc).pathname);
  const vendorPath = new URL(fake.vendorSrc).pathname;
  const page = await context.newPage();
  try {
    await page.goto(pageUrl('no-consent.html'));
    await gate.arrived;
    const tabId = await tabIdOf(page);
    await waitForAudit(tabId, (a) => a.running && a.found.some((f) => f.evidence.path === vendorPath), 'vendor-modern judged');
    gate.release();
    await waitForIntercomBoot(page);
    await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/]);
    const expected = loadedWithoutConsent({ fake, app: APP_ID });
    const audit = await waitForAudit(tabId, sameKeys(expected), 'the snippet\'s findings');
    assertExactFindings(audit.found, expected, 'extension, bundles finishing out of order');
    for (const src of [fake.frameSrc, fake.vendorSrc]) {
      const f = audit.found.find((x) => x.evidence.path === new URL(src).pathname);
      assert.equal(f.count, 1, `${f.evidence.path} judged ${f.count} times`);
    }
    assert.deepEqual(pageErrors, []);
  } finally {
    gate.release();
    await page.close();
  }
});

test('beyond the page: a sandboxed cross-origin frame, a WebSocket and an HttpOnly cookie', { timeout: 90_000 }, async () => {
  await setOptions({ policy: { cookie_max_days: 395 } });
  const page = await context.newPage();
  try {
    await page.goto(`${SHOP_ORIGIN}${FRAMES}`);
    const tabId = await tabIdOf(page);
    const viaFrame = 'cross-origin:opaque';
    const expected = [
      findingKey({ type: 'cookie_before_consent', vendor: 'ga4', evidence: { kind: 'cookie', cookie: '_ga' } }),
      findingKey({ type: 'cookie_lifetime_exceeds_policy', vendor: 'ga4', evidence: { kind: 'cookie', cookie: '_ga' } }),
      expect.request('script_before_consent', 'widget.intercom.io', `/widget/${APP_ID}`, viaFrame),
      expect.request('tracking_before_consent', 'api-iam.intercom.io', '/messenger/web/ping', viaFrame),
    ];
    const audit = await waitForAudit(tabId, sameKeys(expected), 'webRequest and chrome.cookies findings');
    assertExactFindings(audit.found, expected, 'extension only');
    // The page itself sees none of it.
    assert.equal(await page.evaluate(() => document.cookie.includes('_ga')), false, '_ga is HttpOnly');
    assert.equal(await page.evaluate(() => performance.getEntriesByType('resource').some((e) => /intercom/.test(e.name))), false);
    // chrome.cookies gave the expiry: Chromium caps Max-Age at 400 days.
    const lifetime = audit.found.find((f) => f.finding === 'cookie_lifetime_exceeds_policy');
    assert.ok(lifetime.evidence.days > 395 && lifetime.evidence.days <= 400, `days ${lifetime.evidence.days}`);
    // The WebSocket is in the inventory (Intercom's realtime host), its query is not.
    const intercom = audit.inventory.vendors.find((v) => v.vendor === 'intercom');
    assert.ok(intercom.hosts.includes('nexus-websocket-a.intercom.io'), JSON.stringify(intercom));
    assert.ok(!audit.findings.includes(GA_VALUE) && !audit.findings.includes('X-Nexus'), 'no cookie value, no query');
    await waitFor(async () => (await badgeOf(tabId)) === '4', { what: 'badge 4' });

    const popup = await openPopup(tabId);
    try {
      const row = popup.locator('#cookies tr', { hasText: '_ga' });
      assert.match(await row.textContent(), /Google Analytics 4.*tracking → analytics.*(399|400) days.*HttpOnly/);
      assert.ok(!(await popup.content()).includes(GA_VALUE));
    } finally {
      await popup.close();
    }
    assert.deepEqual(pageErrors, []);
  } finally {
    await page.close();
    await clearOptions();
  }
});

test("consent from the page's CMP: the page-world adapters hand OneTrust's restored choice to the monitor", { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  try {
    await page.goto(pageUrl('ext-consent.html'));
    await waitForIntercomBoot(page);
    await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/]);
    const tabId = await tabIdOf(page);
    // functional (C0003) granted: the Messenger may load; marketing refused: its tracking may not.
    const expected = [
      expect.request('tracking_before_consent', 'api-iam.intercom.io', '/messenger/web/ping', '#intercom-frame'),
      expect.request('tracking_before_consent', 'api-iam.intercom.io', '/messenger/web/metrics', '#intercom-frame'),
    ];
    const audit = await waitForAudit(tabId, sameKeys(expected), 'tracking findings only');
    assertExactFindings(audit.found, expected, 'OneTrust: functional only');
    const { necessary, functional, analytics, marketing, source } = audit.consent;
    assert.deepEqual({ necessary, functional, analytics, marketing, source },
      { necessary: true, functional: true, analytics: false, marketing: false, source: 'onetrust' });
    for (const f of audit.found) {
      assert.deepEqual([f.consent.source, f.consent.since, f.consent.functional, f.consent.marketing], ['onetrust', 0, true, false],
        'restored from storage: in force from page start');
    }
    const popup = await openPopup(tabId);
    try {
      assert.match(await popup.textContent('#consent'), /necessary: granted.*functional: granted.*analytics: refused.*marketing: refused.*source: onetrust.*basis: explicit/);
    } finally {
      await popup.close();
    }
    assert.deepEqual(pageErrors, []);
  } finally {
    await page.close();
  }
});

test('identity: which fields intercomSettings and Intercom(\'update\') carry crosses from the page world, never their values', { timeout: 90_000 }, async () => {
  const identity = (a) => a.found.filter((f) => f.finding === 'identity_unverified');
  for (const [mode, where] of [['unverified', 'intercomSettings'], ['update', "Intercom('update')"], ['verified', null]]) {
    const page = await context.newPage();
    try {
      await page.goto(pageUrl('identity.html', { extra: { identity: mode } }));
      await waitForIntercomBoot(page);
      if (mode === 'update') await page.evaluate(() => window.twIdentifyLater());
      const tabId = await tabIdOf(page);
      if (where) {
        const audit = await waitForAudit(tabId, (a) => identity(a).length > 0, `identity_unverified at ${where}`);
        assertExactFindings(identity(audit), [expect.global('identity_unverified', where)], mode);
        assertNoCanaries([audit.findings], []);
      } else {
        await waitForAudit(tabId, (a) => a.found.length >= 9, 'the page view\'s other findings');
        await sleep(1500);
        assert.deepEqual(identity(await auditOf(tabId)), [], 'user_hash present: verified');
      }
    } finally {
      await page.close();
    }
  }
  assert.deepEqual(pageErrors, []);
});

// The site runs its own tagwatch snippet too (reports to the fake's collector
// host, which answers 502: only its in-page monitor matters here). Both hook
// `window.Intercom`; whichever hooks first, each must see the identity call
// the page makes after Intercom's loader replaced its stub. Holds order the
// three (the extension's hook, the snippet's, the loader's replacement).
const SITE_SNIPPET = { collector: 'https://collector.example/r', site: 'tw_extension_coexist' };
const SHOP_HOST = new URL(SHOP_ORIGIN).host;
const identityFindings = (found) => found.filter((f) => f.finding === 'identity_unverified');
/** The page's own snippet runs: `findings` answers only then, and each call sweeps, which hooks the vendor APIs. */
const siteSnippetRunning = (page) => page.waitForFunction(() => Array.isArray(window.tagwatch('findings')), null, { polling: 50, timeout: 15_000 });
const siteSnippetFindings = async (page) => (await page.evaluate(() => window.tagwatch('findings')))
  .filter((r) => r.type === 'tagwatch-finding').map((r) => r.body);

/** After the identity call: the extension and the site's snippet both have it, at Intercom('update'). */
async function assertBothSawUpdate(page) {
  const where = [expect.global('identity_unverified', "Intercom('update')")];
  const tabId = await tabIdOf(page);
  const audit = await waitForAudit(tabId, (a) => identityFindings(a.found).length > 0, 'the extension\'s identity_unverified');
  assertExactFindings(identityFindings(audit.found), where, 'the extension');
  assertNoCanaries([audit.findings], []);
  await waitFor(async () => identityFindings(await siteSnippetFindings(page)).length > 0, { what: 'the site snippet\'s identity_unverified' });
  assertExactFindings(identityFindings(await siteSnippetFindings(page)), where, 'the site\'s snippet');
}

test("identity with the site's own snippet, which hooks Intercom after the extension did: both see Intercom('update')", { timeout: 90_000 }, async () => {
  const wasm = fake.hold(SHOP_HOST, '/tagwatch/tagwatch_bg.wasm');
  const widget = fake.hold('widget.intercom.io', `/widget/${APP_ID}`);
  const page = await context.newPage();
  try {
    await page.goto(pageUrl('identity.html', { ...SITE_SNIPPET, extra: { identity: 'update' } }));
    // Loaded: the extension hooked Intercom at document_start, the stub went through it; the snippet's monitor waits for its wasm.
    await wasm.arrived;
    assert.equal(await page.evaluate(() => typeof Object.getOwnPropertyDescriptor(window, 'Intercom').get), 'function',
      'the extension hooked the stub');
    wasm.release();
    await siteSnippetRunning(page);   // its hook is on top of the extension's now
    await widget.arrived;
    widget.release();                 // Intercom's loader replaces its stub: through both hooks
    await waitForIntercomBoot(page);
    await page.evaluate(() => window.twIdentifyLater());
    await assertBothSawUpdate(page);
    assert.deepEqual(pageErrors, []);
  } finally {
    wasm.release();
    widget.release();
    await page.close();
  }
});

test("identity with the site's own snippet and the extension, both hooked before the tag exists: the stub and the loader assigned through both, both see Intercom('update')", { timeout: 90_000 }, async () => {
  const widget = fake.hold('widget.intercom.io', `/widget/${APP_ID}`);
  const page = await context.newPage();
  try {
    await page.goto(pageUrl('identity.html', { ...SITE_SNIPPET, extra: { identity: 'later' } }));
    await siteSnippetRunning(page);
    // The extension's accessor went on at document_start, the snippet's loader
    // chained on top of it: nothing behind either yet.
    assert.deepEqual(await page.evaluate(() => {
      const d = Object.getOwnPropertyDescriptor(window, 'Intercom');
      return [typeof d.get, typeof window.Intercom];
    }), ["function", "undefined"], "an accessor on window.Intercom, no Intercom yet");
    await page.evaluate(() => window.twInstallLater());   // the stub, assigned through both hooks
    await widget.arrived;
    widget.release();                                      // Intercom's loader replaces it, through both hooks
    await waitForIntercomBoot(page);
    await page.evaluate(() => window.twIdentifyLater());
    await assertBothSawUpdate(page);
    assert.deepEqual(pageErrors, []);
  } finally {
    widget.release();
    await page.close();
  }
});

test("strict CSP (csp.html): the page refuses wasm, the extension runs the same monitor compiled to JavaScript", { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  try {
    await page.goto(pageUrl('csp.html'));
    await waitForIntercomBoot(page);
    assert.equal(await page.evaluate(() => window.twProbeWasm()), 'CompileError', "the page's CSP refuses wasm");
    const tabId = await tabIdOf(page);
    const expected = loadedWithoutConsent({ fake, app: APP_ID, events: false });
    const audit = await waitForAudit(tabId, sameKeys(expected), 'findings on the strict-CSP page');
    assertExactFindings(audit.found, expected, 'extension on strict CSP');
    assert.equal(audit.engine, 'js', 'content scripts obey the page CSP for wasm: the wasm2js build runs');
    assert.equal(audit.failed, '');
    await waitFor(async () => (await badgeOf(tabId)) === String(expected.length), { what: `badge ${expected.length}` });
    assert.deepEqual(pageErrors, []);
  } finally {
    await page.close();
  }
});

test('a collector set on the options page gets the page view: Send to collector, then nothing twice', { timeout: 90_000 }, async () => {
  assert.ok(existsSync(TAGWATCH_BIN), `the collector is not built: ${TAGWATCH_BIN} (./build.sh build)`);
  const collector = await startCollector({ siteCount: 1 });
  const [site] = collector.sites;
  const page = await context.newPage();
  try {
    const options = await context.newPage();
    await options.goto(`chrome-extension://${extensionId}/options.html`);
    await options.fill('#collector', collector.ingestUrl);
    await options.fill('#site', site);
    await options.click('button[type=submit]');
    await options.waitForSelector('#saved:has-text("Reports go to")');
    await options.close();
    assert.deepEqual(await inWorker(() => chrome.storage.local.get(['collector', 'site'])), { collector: collector.ingestUrl, site });

    await page.goto(pageUrl('no-consent.html'));
    await waitForIntercomBoot(page);
    await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/]);
    const tabId = await tabIdOf(page);
    const expected = loadedWithoutConsent({ fake, app: APP_ID });
    const audit = await waitForAudit(tabId, sameKeys(expected), 'the findings');
    assert.equal(audit.reports[0].body.site, site, 'reports carry the configured site key');
    const values = (await context.cookies(SHOP_ORIGIN)).map((c) => c.value);

    const popup = await openPopup(tabId);
    try {
      await popup.click('#send');   // the monitor's flush: a text/plain POST from the page's origin
      await popup.waitForSelector('#status:has-text("Sent what was new")');
    } finally {
      await popup.close();
    }
    await waitFor(async () => (await collector.findings(site)).length >= expected.length, { what: 'findings at the collector' });
    await page.goto('about:blank');   // pagehide: only what is new (the inventory), no finding twice
    await sleep(1000);
    const stored = await collector.findings(site);
    assertExactFindings(stored, expected, 'collector');
    for (const f of stored) assert.equal(f.page, `${SHOP_ORIGIN}/pages/no-consent.html`);
    assertNoCanaries([JSON.stringify(stored)], values);
  } finally {
    await page.close();
    await clearOptions();
    await collector.stop();
  }
});

test('first-visit audit: the popup deletes the site\'s cookies and storage, then reloads the tab', { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  try {
    await page.goto(`${SHOP_ORIGIN}${FRAMES}`);
    await context.addCookies([
      { name: 'tw_returning', value: 'yes', domain: '.shop.example', path: '/', secure: true, httpOnly: true, sameSite: 'Lax', expires: Date.now() / 1000 + 3600 },
      { name: 'tw_host_only', value: 'yes', url: SHOP_ORIGIN },
    ]);
    await page.evaluate(() => { localStorage.setItem('tw_returning', '1'); sessionStorage.setItem('tw_returning', '1'); });
    const tabId = await tabIdOf(page);
    await waitForAudit(tabId, (a) => a.running, 'the monitor');
    const before = (await context.cookies(SHOP_ORIGIN)).map((c) => c.name);
    assert.ok(before.includes('tw_returning') && before.includes('tw_host_only') && before.includes('_ga'), before.join(', '));

    const popup = await openPopup(tabId);
    try {
      const reloaded = page.waitForEvent('load', { timeout: 15_000 });
      await popup.click('#first-visit');
      await popup.waitForSelector('body[data-reset="done"]', { timeout: 15_000 });
      await reloaded;
      assert.match(await popup.textContent('#status'), /shop\.example deleted/);
    } finally {
      await popup.close();
    }
    const after = (await context.cookies(SHOP_ORIGIN)).map((c) => c.name);
    assert.ok(!after.includes('tw_returning') && !after.includes('tw_host_only'), `cookies left: ${after.join(', ')}`);
    assert.equal(await page.evaluate(() => localStorage.getItem('tw_returning')), null, 'localStorage cleared');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tw_returning')), null, 'sessionStorage cleared');
    // The reloaded page view is audited from a first visit: its HttpOnly _ga is new again.
    const audit = await waitForAudit(tabId, (a) => a.found.some((f) => f.finding === 'cookie_before_consent'), 'the new page view');
    assert.ok(audit.found.every((f) => f.consent.source === 'default'));
    assert.deepEqual(pageErrors, []);
  } finally {
    await page.close();
  }
});
