// Issue 3, region_not_allowed: the policy allows only the EU. Intercom on its
// default (US) API host is a finding for every request to that host; the same
// page on Intercom's EU host is not. Everything is granted, so only region
// findings can appear.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { regionNotAllowed } from './expected.mjs';
import { assertExactFindings, runPageView, startStack } from './harness.mjs';

const WAIT = [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/];

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('regions: [eu], Intercom on api-iam.intercom.io (US): region_not_allowed per US request', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'region-us.html', { waitFrame: WAIT });
  assert.ok(stack.fake.requestsTo('api-iam.intercom.io', '/messenger/web/ping').length >= 1, 'the Messenger used the US host');
  assertExactFindings(run.findings, regionNotAllowed({ api: 'api-iam.intercom.io' }), 'US region');
  for (const f of run.findings) {
    assert.equal(f.evidence.region, 'us', `evidence.region of ${f.evidence.host}${f.evidence.path}`);
    assert.equal(f.evidence.host, 'api-iam.intercom.io');
    assert.equal(f.consent.functional, true, 'decided with everything granted');
    assert.equal(f.consent.marketing, true);
  }
});

test('regions: [eu], Intercom on api-iam.eu.intercom.io: no finding', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'region-eu.html', { waitFrame: WAIT });
  assert.ok(stack.fake.requestsTo('api-iam.eu.intercom.io', '/messenger/web/ping').length >= 1, 'the Messenger used the EU host');
  assert.equal(run.posts.length, 1, 'one request per page view (the inventory)');
  assertExactFindings(run.findings, [], 'EU region');
});
