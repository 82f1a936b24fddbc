// Scenario: Global Privacy Control on (navigator.globalPrivacyControl = true
// in every realm, Sec-GPC: 1), the banner says "all granted": Intercom's
// marketing-purpose requests are gpc_ignored, and nothing else is reported.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { gpcIgnored } from './expected.mjs';
import { APP_ID, assertExactFindings, runPageView, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('GPC on, everything granted: gpc_ignored for ping, metrics and events only', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'granted.html', {
    gpc: true,
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
  });
  assertExactFindings(run.findings, gpcIgnored({ app: APP_ID }), 'GPC');
  for (const r of run.reports) {
    assert.equal(r.body.consent.gpc, true, 'the finding carries gpc: true');
    assert.equal(r.body.consent.marketing, true, 'the banner state is reported as it was');
    assert.equal(r.body.category, 'marketing');
  }
});
