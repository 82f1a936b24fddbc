// The monitor's on-demand pieces (src/pieces.rs): the consent decoders only
// some pages need are fetched by those pages only, and used for real.
//   - CMP cookie reader (dist/ondemand/cmp-cookies.wasm): a returning
//     visitor's OneTrust cookies on a page view where OneTrust's script
//     never loads (tests/fixtures/pages/cmp-cookie-only.html); only the
//     cookies tell the consent, and the findings are decided on it.
//   - GPP US decoder (dist/ondemand/gpp-us.wasm): the @iabgpp/cmpapi page
//     (usnat), opt-out refused in the banner (as in cmp-npm.test.mjs).
//   - The adapters of IAB TCF and GPP and of the CMPs' own APIs
//     (dist/ondemand/cmp-api.js, from www/cmp-api.js): Cookiebot's page,
//     choice refused in its banner; the findings are decided on the state
//     its API gives; OneTrust refused while they are still on their way:
//     read when they come; Didomi left alone while they never come: judged,
//     not held (nothing waits); a TCF page whose adapters never come: held.
//   - A page with none of these fetches none.
//   - A page view that ends while its piece is still on its way is held:
//     no finding judged without that consent, an `unmonitored` health
//     report instead (reason `ondemand`).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { refuseFlow } from './cmp-flows.mjs';
import { loadedWithoutConsent, trackingWithoutConsent } from './expected.mjs';
import {
  APP_ID, assertExactFindings, runPageView, startStack, waitForFrameEntries, waitForIntercomBoot,
} from './harness.mjs';

let stack;
before(async () => { stack = await startStack({ siteCount: 12 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

/** The on-demand pieces the fake server served since `seq0`. */
function piecesServed(seq0) {
  return stack.fake.requests
    .filter((r) => r.seq > seq0 && r.path.startsWith('/tagwatch/ondemand/'))
    .map((r) => [r.path.slice('/tagwatch/ondemand/'.length), r.status]);
}
const lastSeq = () => stack.fake.requests.at(-1)?.seq ?? 0;

test('CMP cookies only, choice refused: the cookie reader is fetched, findings decided on OneTrust', { timeout: 90_000 }, async () => {
  const seq0 = lastSeq();
  const run = await runPageView(stack, 'cmp-cookie-only.html', { waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/] });
  assert.deepEqual(piecesServed(seq0), [['cmp-cookies.wasm', 200]]);
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'OneTrust cookie: refused');
  for (const f of run.reports) {
    assert.equal(f.body.consent.source, 'onetrust', `decided on the cookie's state: ${JSON.stringify(f.body)}`);
    assert.equal(f.body.consent.functional, false);
  }
});

test('CMP cookies only, choice granted: restored from page start, no findings', { timeout: 90_000 }, async () => {
  const seq0 = lastSeq();
  const run = await runPageView(stack, 'cmp-cookie-only.html', { extra: { choice: 'granted' } });
  assert.deepEqual(piecesServed(seq0), [['cmp-cookies.wasm', 200]]);
  assertExactFindings(run.findings, [], 'OneTrust cookie: granted before Intercom ran');
  const vendors = run.inventories.flatMap((r) => r.body.vendors.map((v) => v.vendor));
  assert.ok(vendors.includes('intercom'), 'the monitor saw Intercom run');
});

test('CMP cookies only, consent implied by CookieYes: findings say so, judged as refused by default', { timeout: 90_000 }, async () => {
  const seq0 = lastSeq();
  const run = await runPageView(stack, 'cmp-cookie-only.html', { extra: { choice: 'implied' }, waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/] });
  assert.deepEqual(piecesServed(seq0), [['cmp-cookies.wasm', 200]]);
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'CookieYes implied, policy.implied reject');
  for (const f of run.reports) {
    const c = f.body.consent;
    assert.deepEqual([c.source, c.basis, c.functional, c.marketing], ['cookieyes', 'implied', false, false], JSON.stringify(f.body));
  }
  // Stored and served as the monitor sent it.
  for (const f of run.findings) assert.equal(f.consent.basis, 'implied', JSON.stringify(f));
});

test('CMP cookies only, consent implied, policy.implied accept: as CookieYes says, no findings', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'cmp-cookie-only.html', { extra: { choice: 'implied', implied: 'accept' } });
  assertExactFindings(run.findings, [], 'CookieYes implied, policy.implied accept');
});

test('GPP usnat opt-out: the GPP adapter and the GPP US decoder are fetched, findings decided on GPP', { timeout: 90_000 }, async () => {
  const seq0 = lastSeq();
  await refuseFlow(stack, {
    id: 'gpp',
    page: 'cmp/gpp.html',
    refuse: (page) => page.click('#gpp-opt-out'),
    refused: () => trackingWithoutConsent(),
    refusedCategories: ['marketing'],
  });
  // The adapter that registers GPP's listener (www/cmp-api.js) first, then
  // the decoder of the string it read.
  assert.deepEqual(piecesServed(seq0), [['cmp-api.js', 200], ['gpp-us.wasm', 200]]);
});

test('a CMP with a live API: its adapters are fetched, findings decided on its state', { timeout: 90_000 }, async () => {
  const seq0 = lastSeq();
  await refuseFlow(stack, {
    id: 'cookiebot',
    page: 'cmp/cookiebot.html',
    refuse: (page) => page.click('#CybotCookiebotDialogBodyButtonDecline'),
  });
  const served = piecesServed(seq0);
  assert.ok(served.some(([f, status]) => f === 'cmp-api.js' && status === 200), `cmp-api.js fetched: ${JSON.stringify(served)}`);
});

test('a choice made while the CMP adapters are on their way: read when they come', { timeout: 90_000 }, async () => {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const run = await runPageView(stack, 'cmp/onetrust.html', {
    // The adapters' request waits until the visitor has refused.
    before: (ctx) => ctx.page.route('**/tagwatch/ondemand/cmp-api.js', async (route) => { await gate; await route.continue(); }),
    bootIntercom: false,
    during: async ({ page }) => {
      await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
      await page.click('#onetrust-reject-all-handler');
      await waitForIntercomBoot(page);
      await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/]);
      // Count the adapters' reads of OneTrust, then let them come.
      await page.evaluate(() => {
        const ot = window.OneTrust;
        const read = ot.GetDomainData;
        window.twReads = 0;
        ot.GetDomainData = function () { window.twReads++; return read.apply(this, arguments); };
      });
      release();
      await page.waitForFunction(() => window.twReads > 0, null, { timeout: 15000, polling: 50 });
    },
  });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'OneTrust: refused before its adapters came');
  for (const f of run.findings) {
    assert.equal(f.consent.source, 'onetrust', `decided on OneTrust's state: ${JSON.stringify(f)}`);
    assert.equal(f.consent.functional, false);
  }
  const health = run.posts.flatMap((p) => JSON.parse(p.body)).filter((r) => r.type === 'tagwatch-health');
  assert.deepEqual(health, [], 'not held once the adapters came');
});

test('no CMP cookie, no GPP, no CMP API: no piece is fetched', { timeout: 90_000 }, async () => {
  const seq0 = lastSeq();
  const run = await runPageView(stack, 'no-consent.html', { waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/] });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'no consent');
  assert.deepEqual(piecesServed(seq0), []);
});

// A page view that ends while the adapters (www/cmp-api.js) are on their
// way, after the visitor chose: a CMP's API event, or IAB TCF, which tells
// of a choice only through the listener its adapter registers.
for (const [what, file, button] of [
  ['the CMP adapters', 'cmp/cookiebot.html', '#CybotCookiebotDialogBodyButtonDecline'],
  ['the IAB TCF adapters', 'cmp/tcf.html', '#tcf-reject'],
]) {
  test(`the page view ends before ${what} arrive: findings held, reported unmonitored`, { timeout: 90_000 }, async () => {
    const run = await runPageView(stack, file, {
      // The adapters never come (a request that hangs).
      before: (ctx) => ctx.page.route('**/tagwatch/ondemand/cmp-api.js', () => {}),
      bootIntercom: false,
      during: async ({ page }) => {
        await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
        await page.click(button);
        await waitForIntercomBoot(page);
        await waitForFrameEntries(page, [/\/messenger\/web\/metrics$/]);
      },
    });
    assert.deepEqual(run.findings, [], `nothing judged without the state ${what} would read`);
    const health = run.posts.flatMap((p) => JSON.parse(p.body)).filter((r) => r.type === 'tagwatch-health');
    assert.deepEqual(health.map((r) => [r.body.status, r.body.reason]), [['unmonitored', 'ondemand']]);
  });
}

test('the CMP adapters still on their way, no choice heard: the page view is judged, not held', { timeout: 90_000 }, async () => {
  // A new visitor who leaves Didomi's banner alone (`?lazy=1`: Intercom on
  // load, the CMP after it): nothing waits for the adapters, which never
  // come. (OneTrust would not do: it sends its groups event at start,
  // which may be a choice, and is waited for.)
  const run = await runPageView(stack, 'cmp/didomi.html', {
    extra: { lazy: '1' },
    before: (ctx) => ctx.page.route('**/tagwatch/ondemand/cmp-api.js', () => {}),
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
    during: async ({ page }) => {
      await page.waitForFunction(() => Array.isArray(window.tagwatch('findings')) && window.TW_CMP.ready, null, { timeout: 15000, polling: 50 });
    },
  });
  const health = run.posts.flatMap((p) => JSON.parse(p.body)).filter((r) => r.type === 'tagwatch-health');
  assert.deepEqual(health, [], 'not held');
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'no choice: judged without one');
});

test('the page view ends before the cookie reader arrives: findings held, reported unmonitored', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'cmp-cookie-only.html', {
    // The piece never comes (a request that hangs).
    before: (ctx) => ctx.page.route('**/tagwatch/ondemand/**', () => {}),
    waitFrame: [/\/messenger\/web\/metrics$/],
  });
  assert.deepEqual(run.findings, [], 'nothing judged without the consent the cookie reader would read');
  const health = run.posts.flatMap((p) => JSON.parse(p.body)).filter((r) => r.type === 'tagwatch-health');
  assert.deepEqual(health.map((r) => [r.body.status, r.body.reason]), [['unmonitored', 'ondemand']]);
});
