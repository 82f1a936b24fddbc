// Scenario: a Content-Security-Policy without 'wasm-unsafe-eval' (the page
// is otherwise fine, Intercom runs). The loader cannot instantiate the wasm:
// it sends one tagwatch-health report (wasm_unavailable, CompileError),
// throws nothing into the page, and goes quiet. And a CSP that refuses
// workers only: the brain's warm-up worker cannot be made, the monitor runs
// as without it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import { APP_ID, assertExactFindings, assertReportPosts, reportedPageUrl, runPageView, sleep, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test("CSP without 'wasm-unsafe-eval': one health report, no findings, no page errors", { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'csp.html', {
    during: async ({ page }) => {
      // the queue keeps working (and throwing nothing) after the failure
      await page.evaluate(() => {
        tagwatch('consent', { functional: true });
        tagwatch('flush');
      });
      await sleep(300);
    },
  });
  assert.equal(run.posts.length, 1, 'exactly one request: the health report');
  assert.equal(run.reports.length, 1);
  const [h] = run.reports;
  assert.equal(h.type, 'tagwatch-health');
  assert.equal(h.body.schema, 1);
  assert.equal(h.body.site, run.site);
  assert.equal(h.body.status, 'wasm_unavailable');
  assert.equal(h.body.reason, 'CompileError');
  assert.deepEqual(Object.keys(h.body).sort(), ['reason', 'schema', 'site', 'status'], 'no error message or other detail');
  assertExactFindings(run.findings, [], 'CSP');
});

test("CSP refusing workers (worker-src 'none'): no warm-up worker, every finding, no page errors", { timeout: 90_000 }, async () => {
  const seq0 = stack.fake.requests.at(-1)?.seq ?? 0;
  const run = await runPageView(stack, 'csp-workers.html');
  assertReportPosts(run.posts, { site: run.site, page: reportedPageUrl('csp-workers.html') });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'workers refused');
  assert.ok(!stack.fake.requests.some((r) => r.seq > seq0 && r.headers['sec-fetch-dest'] === 'worker'), 'no worker was fetched');
  assert.deepEqual(run.reports.filter((r) => r.type === 'tagwatch-health'), []);
});
