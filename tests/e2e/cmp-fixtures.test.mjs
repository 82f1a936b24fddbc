// Scenarios: consent read from the CMPs sites deploy most, reproduced as
// fixtures (tests/fixtures/pages/cmp/fake-*.js: NOT the vendors' code; their
// observable behaviour — cookies in the exact formats of docs/policy.md,
// globals, callbacks, events, banner element ids). Per CMP: refuse, accept,
// accept then withdraw in the CMP's own UI or API, returning visitor (flows
// in cmp-flows.mjs). No tagwatch('consent') call on these pages: the monitor
// reads the CMP.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { acceptFlow, refuseFlow, returningFlow, withdrawFlow } from './cmp-flows.mjs';
import { loadedWithoutConsent } from './expected.mjs';
import { APP_ID, assertExactFindings, runPageView, startStack } from './harness.mjs';

const CMPS = [
  {
    id: 'onetrust',
    page: 'cmp/onetrust.html',
    accept: (page) => page.click('#onetrust-accept-btn-handler'),
    refuse: (page) => page.click('#onetrust-reject-all-handler'),
    // The site's "Cookie Settings" button opens the preference center: "Reject All".
    withdraw: async (page) => { await page.click('#ot-sdk-btn'); await page.click('#onetrust-pc-sdk .ot-pc-refuse-all-handler'); },
  },
  {
    id: 'cookiebot',
    page: 'cmp/cookiebot.html',
    accept: (page) => page.click('#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll'),
    refuse: (page) => page.click('#CybotCookiebotDialogBodyButtonDecline'),
    // Cookiebot.renew() shows the dialog again: "Deny".
    withdraw: async (page) => { await page.evaluate(() => Cookiebot.renew()); await page.click('#CybotCookiebotDialogBodyButtonDecline'); },
  },
  {
    id: 'cookieyes',
    page: 'cmp/cookieyes.html',
    accept: (page) => page.click('.cky-consent-container .cky-btn-accept'),
    refuse: (page) => page.click('.cky-consent-container .cky-btn-reject'),
    // The floating "Consent Preferences" button, then "Reject All".
    withdraw: async (page) => { await page.click('.cky-btn-revisit'); await page.click('.cky-consent-container .cky-btn-reject'); },
  },
  {
    id: 'didomi',
    page: 'cmp/didomi.html',
    accept: (page) => page.click('#didomi-notice-agree-button'),
    refuse: (page) => page.click('#didomi-notice-disagree-button'),
    // Didomi's documented API.
    withdraw: (page) => page.evaluate(() => Didomi.setUserDisagreeToAll()),
  },
];

let stack;
before(async () => { stack = await startStack({ siteCount: 18 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

for (const cmp of CMPS) {
  test(`${cmp.id}: refused in the banner, the shop loads Intercom anyway → findings decided on ${cmp.id}`, { timeout: 90_000 }, () => refuseFlow(stack, cmp));
  test(`${cmp.id}: accepted in the banner, Intercom loads after the click → no findings`, { timeout: 90_000 }, () => acceptFlow(stack, cmp));
  test(`${cmp.id}: accepted, then withdrawn in the CMP, Intercom left running → withdrawal findings`, { timeout: 90_000 }, () => withdrawFlow(stack, cmp));
  test(`${cmp.id}: returning visitor, stored choice restored after Intercom loaded → no findings`, { timeout: 90_000 }, () => returningFlow(stack, cmp));
}

// Cookiebot's implied consent (`method: 'implied'`, applied without a click
// where the site enables it): its cookie and its live API both say so; the
// findings are judged with what it grants refused (policy.implied defaults
// to reject) and carry basis `implied`.
test('cookiebot: consent implied by Cookiebot on a returning visit → findings judged as refused, basis implied', { timeout: 90_000 }, async () => {
  const literal = "{stamp:'bXlTdGFtcA==',necessary:true,preferences:true,statistics:true,marketing:true,method:'implied',ver:1,utc:1764000000000,region:'gb'}";
  const value = literal.replace(/'/g, '%27').replace(/,/g, '%2C');
  const run = await runPageView(stack, 'cmp/cookiebot.html', {
    before: ({ context }) => context.addCookies([{ name: 'CookieConsent', value, domain: 'shop.example', path: '/' }]),
  });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'cookiebot implied, policy.implied reject');
  for (const f of run.findings) {
    assert.deepEqual([f.consent.source, f.consent.basis, f.consent.functional], ['cookiebot', 'implied', false], JSON.stringify(f));
  }
});
