// Scenarios: the CMPs whose state the monitor reads without a cookie parser
// doing the work on the page — Usercentrics (its `consent_status` event; the
// choice lives in localStorage) and Osano (its `Osano.cm` API and events) —
// reproduced as fixtures (tests/fixtures/pages/cmp/fake-usercentrics.js,
// fake-osano.js: NOT the vendors' code). Flows as in cmp-fixtures.test.mjs.
import { after, before, test } from 'node:test';
import { refuseFlow, returningFlow, withdrawFlow } from './cmp-flows.mjs';
import { startStack } from './harness.mjs';

const CMPS = [
  {
    id: 'usercentrics',
    page: 'cmp/usercentrics.html',
    accept: (page) => page.click('[data-testid=uc-accept-all-button]'),
    refuse: (page) => page.click('[data-testid=uc-deny-all-button]'),
    withdraw: (page) => page.evaluate(() => UC_UI.denyAllConsents()),
  },
  {
    id: 'osano',
    page: 'cmp/osano.html',
    accept: (page) => page.click('.osano-cm-dialog .osano-cm-accept-all'),
    refuse: (page) => page.click('.osano-cm-dialog .osano-cm-denyAll'),
    withdraw: async (page) => { await page.evaluate(() => Osano.cm.showDrawer()); await page.click('.osano-cm-dialog .osano-cm-denyAll'); },
  },
];

let stack;
before(async () => { stack = await startStack({ siteCount: 8 }); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

for (const cmp of CMPS) {
  test(`${cmp.id}: refused, the shop loads Intercom anyway → findings decided on ${cmp.id}`, { timeout: 90_000 }, () => refuseFlow(stack, cmp));
  test(`${cmp.id}: accepted, then withdrawn in the CMP, Intercom left running → withdrawal findings`, { timeout: 90_000 }, () => withdrawFlow(stack, cmp));
  test(`${cmp.id}: returning visitor, stored choice restored after Intercom loaded → no findings`, { timeout: 90_000 }, () => returningFlow(stack, cmp));
}
