// Scenario: everything granted before the monitor and Intercom load
// (consent restored from storage counts from page start): no findings.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertExactFindings, runPageView, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('all granted before load: the collector stores nothing', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'granted.html', {
    expectReports: false,
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
  });
  assertExactFindings(run.findings, [], 'all granted');
  // if the monitor sent anything at all, it was accepted and holds no finding
  assert.ok(run.posts.length <= 1, `at most one request per page view, got ${run.posts.length}`);
  assert.deepEqual(run.reports.filter((r) => r.type === 'tagwatch-finding'), []);
  assert.deepEqual(run.reports.filter((r) => r.type === 'tagwatch-health'), [], 'the monitor ran (no health report)');
});
