// Scenarios: consent read from real CMP code from npm (issue 4 item 7), served
// by the fake shop from node_modules (/npm/…): the IAB Tech Lab's TCF
// (@iabtechlabtcf/cmpapi + core: __tcfapi, TC strings encoded by
// TCString.encode) and GPP (@iabgpp/cmpapi: __gpp, usnat) reference
// libraries under a minimal banner, Klaro and vanilla-cookieconsent v3.
// Per CMP: refuse, accept, accept then withdraw, returning visitor (flows in
// cmp-flows.mjs). No tagwatch('consent') call on these pages: the monitor
// reads the CMP.
import { after, before, test } from 'node:test';
import { acceptFlow, refuseFlow, returningFlow, withdrawFlow } from './cmp-flows.mjs';
import { trackingWithdrawnAndIgnored, trackingWithoutConsent } from './expected.mjs';
import { startStack } from './harness.mjs';

const CMPS = [
  {
    id: 'tcf',
    page: 'cmp/tcf.html',
    accept: (page) => page.click('#tcf-accept'),
    refuse: (page) => page.click('#tcf-reject'),
    // "Privacy settings" re-opens the banner (cmpuishown), then "Reject all".
    withdraw: async (page) => { await page.click('#tcf-settings'); await page.click('#tcf-reject'); },
  },
  {
    id: 'gpp',
    page: 'cmp/gpp.html',
    accept: (page) => page.click('#gpp-ok'),
    refuse: (page) => page.click('#gpp-opt-out'),
    withdraw: (page) => page.click('#gpp-do-not-sell'),
    refused: () => trackingWithoutConsent(),
    refusedCategories: ['marketing'],
    withdrawn: () => trackingWithdrawnAndIgnored(),
  },
  {
    id: 'klaro',
    page: 'cmp/klaro.html',
    accept: (page) => page.click('#klaro .cookie-notice .cm-btn-success'),
    refuse: (page) => page.click('#klaro .cookie-notice .cn-decline'),
    // Klaro's own API, what its modal's "decline" does: every service off, saved.
    withdraw: (page) => page.evaluate(() => {
      const m = klaro.getManager();
      m.changeAll(false);
      m.saveAndApplyConsents('decline');
    }),
  },
  {
    id: 'vanilla-cookieconsent',
    page: 'cmp/cookieconsent.html',
    accept: (page) => page.click('#cc-main .cm__btn[data-role="all"]'),
    refuse: (page) => page.click('#cc-main .cm__btn[data-role="necessary"]'),
    // cookieconsent's API: only the read-only category left accepted.
    withdraw: (page) => page.evaluate(() => CookieConsent.acceptCategory([])),
  },
];

let stack;
before(async () => { stack = await startStack({ siteCount: 16 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

for (const cmp of CMPS) {
  test(`${cmp.id}: refused in the banner, the shop loads Intercom anyway → findings decided on ${cmp.id}`, { timeout: 90_000 }, () => refuseFlow(stack, cmp));
  test(`${cmp.id}: accepted in the banner, Intercom loads after the click → no findings`, { timeout: 90_000 }, () => acceptFlow(stack, cmp));
  test(`${cmp.id}: accepted, then withdrawn in the CMP, Intercom left running → withdrawal findings`, { timeout: 90_000 }, () => withdrawFlow(stack, cmp));
  test(`${cmp.id}: returning visitor, stored choice restored after Intercom loaded → no findings`, { timeout: 90_000 }, () => returningFlow(stack, cmp));
}
