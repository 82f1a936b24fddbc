// Size budget of what a site ships: the loader, the brain and the
// optimised wasm (what every page view downloads), gzip -9. Measured on the
// files in dist/ that `./build.sh build` made.
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync, constants } from 'node:zlib';
import { DIST_BRAIN, DIST_JS, DIST_WASM } from './harness.mjs';

// 36 KB is the engine, catalog and loader; about 31 KB the consent readers
// (CMP cookies and names, GPP US sections, Consent Mode, TCF, the page
// adapters in www/consent.js). Breakdown and history: docs/benchmarks.md.
const BUDGET_GZIP = 70 * 1024;

const gz = (file) => gzipSync(readFileSync(file), { level: constants.Z_BEST_COMPRESSION }).length;

test(`shipped loader + brain + wasm stay within ${BUDGET_GZIP} bytes gzip`, () => {
  for (const f of [DIST_JS, DIST_BRAIN, DIST_WASM]) assert.ok(existsSync(f), `${f} missing: run ./build.sh build`);
  const [js, brain, wasm] = [DIST_JS, DIST_BRAIN, DIST_WASM].map(gz);
  const total = js + brain + wasm;
  assert.ok(total <= BUDGET_GZIP, `loader ${js} + brain ${brain} + wasm ${wasm} = ${total} bytes gzip, over the ${BUDGET_GZIP} budget`);
});

test('the shipped wasm is the optimised one (no debug or name sections)', () => {
  const bytes = readFileSync(DIST_WASM);
  assert.equal(bytes.subarray(0, 4).toString('latin1'), '\0asm');
  const mod = new WebAssembly.Module(bytes);
  const custom = ['name', '.debug_info', '.debug_str'].filter((n) => WebAssembly.Module.customSections(mod, n).length);
  assert.deepEqual(custom, [], 'wasm-opt --strip-debug did not run on the shipped file');
});

test('the loader exposes only the tagwatch global', () => {
  const src = readFileSync(DIST_JS, 'utf8');
  const sandbox = { document: { currentScript: null }, location: { href: 'https://x.example/' } };
  sandbox.window = sandbox;
  sandbox.navigator = { userAgent: 'test' };
  const before = new Set(Object.keys(sandbox));
  new Function('window', 'document', 'navigator', 'location', src).call(sandbox, sandbox, sandbox.document, sandbox.navigator, sandbox.location);
  const added = Object.keys(sandbox).filter((k) => !before.has(k));
  assert.deepEqual(added, ['tagwatch']);
  assert.equal(typeof sandbox.tagwatch, 'function');
  assert.doesNotThrow(() => sandbox.tagwatch('consent', { functional: true }));
});
