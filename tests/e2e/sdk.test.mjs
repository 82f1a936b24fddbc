// Scenario: Intercom installed through the real @intercom/messenger-js-sdk
// from npm, no consent. With widgetUrl the loader comes from a first-party
// path (https://shop.example/intercom-shim.js): no Intercom host on the top
// page, yet the frame's bundles, the cookies and the globals give it away.
import { after, before, test } from 'node:test';
import { loadedWithoutConsent } from './expected.mjs';
import { APP_ID, assertExactFindings, runPageView, startStack } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); }, { timeout: 120_000 });
after(async () => { await stack?.stop(); }, { timeout: 30_000 });

test('real SDK, default loader (widget.intercom.io), US API', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'sdk.html', {
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
  });
  assertExactFindings(run.findings, loadedWithoutConsent({ fake: stack.fake, app: APP_ID }), 'SDK default');
});

test('real SDK, widgetUrl first-party loader, EU API: detected by frame, cookies and globals', { timeout: 90_000 }, async () => {
  const run = await runPageView(stack, 'sdk.html', {
    extra: { loader: 'first-party', region: 'eu' },
    waitFrame: [/\/messenger\/web\/metrics$/, /\/messenger\/web\/events$/],
  });
  assertExactFindings(
    run.findings,
    loadedWithoutConsent({ fake: stack.fake, app: APP_ID, api: 'api-iam.eu.intercom.io', loader: 'first-party' }),
    'SDK widgetUrl',
  );
});
