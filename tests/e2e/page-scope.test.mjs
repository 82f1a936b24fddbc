// Issue 3, page_out_of_scope: the policy lets Intercom run only under
// /support/*. On a pricing page it is one finding (one per vendor and page
// view); on /support/chat.html none. Everything is granted.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertExactFindings, runPageView, startStack } from './harness.mjs';

const WAIT = [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/];

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test("pages: {intercom: ['/support/*']}, Intercom on /pages/scope-pricing.html: exactly one page_out_of_scope", { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'scope-pricing.html', { waitFrame: WAIT });
  const all = JSON.stringify(run.findings, null, 1);
  assert.equal(run.findings.length, 1, `exactly one finding; stored: ${all}`);
  const [f] = run.findings;
  assert.equal(f.type, 'page_out_of_scope', all);
  assert.equal(f.vendor, 'intercom');
  assert.equal(f.page, 'https://shop.example/pages/scope-pricing.html');
  assert.ok(['request', 'global', 'dom'].includes(f.evidence.kind), `evidence of the vendor running: ${JSON.stringify(f.evidence)}`);
  assert.ok(!JSON.stringify(f.evidence).includes('scope-pricing'), 'the evidence is the vendor, not the page');
});

test("pages: {intercom: ['/support/*']}, Intercom on /support/chat.html: no finding", { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, '/support/chat.html', { waitFrame: WAIT });
  assert.equal(run.posts.length, 1);
  assertExactFindings(run.findings, [], 'in scope');
  assert.ok(run.reports.every((r) => r.url === 'https://shop.example/support/chat.html'));
});
