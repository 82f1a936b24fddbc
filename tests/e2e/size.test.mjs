// Size budgets of what a site ships, gzip -9 (issue 11): the loader, the
// only monitor code on the page's critical path, and everything every page
// view downloads (the loader, the brain's script and wasm). On-demand pieces
// (dist/ondemand/) count only on the pages that fetch them; tools/sizes.mjs
// holds that rule and the budgets, and prints brotli beside gzip. Measured
// on the files in dist/ that `./build.sh build` made.
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { test } from 'node:test';
import { BUDGET, format, measure, served } from '../../tools/sizes.mjs';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { DIST_BRAIN, DIST_JS, DIST_WASM, REPO_ROOT } from './harness.mjs';

const sizes = () => {
  for (const f of [DIST_JS, DIST_BRAIN, DIST_WASM]) assert.ok(existsSync(f), `${f} missing: run ./build.sh build`);
  return measure();
};

test(`the loader stays within ${BUDGET.loaderGzip} bytes gzip`, () => {
  const m = sizes();
  assert.equal(BUDGET.loaderGzip, 3 * 1024);
  assert.ok(m.loader.gzip <= BUDGET.loaderGzip, `the loader is ${m.loader.gzip} bytes gzip:\n${format(m).join('\n')}`);
});

// Issue 11's budget, not met yet: its failure, printed on every run, gives
// today's size; docs/benchmarks.md ("Now" first) says where the bytes go
// and what is left to take out. The gate stays at 30 KB; `todo` keeps it
// from failing the suite until the issue is done: then remove the option.
const NOT_MET = 'issue 11 open: every page view is over the 30 KB gzip budget (docs/benchmarks.md)';
test(`what every page view downloads stays within ${BUDGET.everyPageViewGzip} bytes gzip`, { todo: NOT_MET }, () => {
  const m = sizes();
  assert.equal(BUDGET.everyPageViewGzip, 30 * 1024);
  assert.ok(m.everyPageView.gzip <= BUDGET.everyPageViewGzip, `every page view downloads ${m.everyPageView.gzip} bytes gzip:\n${format(m).join('\n')}`);
});

// The precompressed twins a server sends in a file's place (README,
// "Serve dist/"; tools/precompress): one stale twin would be a different
// loader, brain or wasm for the visitors of that server, which no other
// test would see (the test server sends the .br twin to Chromium).
test('every served file has .gz and .br twins that decompress to it, the .gz no larger than gzip -9', () => {
  const m = sizes();
  for (const abs of served()) {
    const bytes = readFileSync(abs);
    for (const [ext, decode] of [['.gz', gunzipSync], ['.br', brotliDecompressSync]]) {
      assert.ok(existsSync(abs + ext), `${abs}${ext} missing: ./build.sh build writes it (tools/precompress)`);
      assert.ok(decode(readFileSync(abs + ext)).equals(bytes), `${abs}${ext} is not ${abs}: stale, run ./build.sh build`);
    }
  }
  for (const f of m.files) assert.ok(f.zopfli <= f.gzip, `dist/${f.path}: the .gz twin (${f.zopfli}) is larger than gzip -9 (${f.gzip})`);
});

test('the shipped wasm is the optimised one (no debug or name sections)', () => {
  const bytes = readFileSync(DIST_WASM);
  assert.equal(bytes.subarray(0, 4).toString('latin1'), '\0asm');
  const mod = new WebAssembly.Module(bytes);
  const custom = ['name', '.debug_info', '.debug_str'].filter((n) => WebAssembly.Module.customSections(mod, n).length);
  assert.deepEqual(custom, [], 'wasm-opt --strip-debug did not run on the shipped file');
});

// Core code the page's wasm leaves out on purpose (core/src/lib.rs: one-
// character patterns written `[c]`), looked up in the symbol map the build
// writes for the shipped module (build.sh `monitor_wasm`).
test('the shipped wasm has no char searcher (one-character patterns are `[c]`)', () => {
  const map = join(REPO_ROOT, 'target/symbols/tagwatch_bg.wasm.symbols');
  assert.ok(existsSync(map), `${map} missing: run ./build.sh build`);
  const found = readFileSync(map, 'utf8').split('\n').filter((l) => /CharSearcher|::memr?chr|slice_index_fail/.test(l));
  assert.deepEqual(found, [], 'a `char` pattern (or a slice-index panic) is back in the page\'s wasm: write it `[c]`');
});

// Data the optimised code no longer reads (tools/dead-data.mjs, run by
// build.sh `monitor_wasm`): core::fmt's integer digit table, 225 bytes of
// the wasm's gzip. If this fails, the build printed why the tool left it
// (`dead-data: … left as it is (…)`): a formatter is alive again (find
// what formats a number: `twiggy paths` on target/wasm-bindgen/min_bg.wasm)
// or the table's layout changed.
test('the shipped wasm has no integer digit table (tools/dead-data.mjs)', () => {
  const digits = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''));
  assert.equal(readFileSync(DIST_WASM).indexOf(digits), -1, 'core::fmt\'s "00".."99" table is back in the page\'s wasm');
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

// The page's scripts meet browsers older than the Chromium the tests run:
// a syntax one of them lacks makes it refuse the whole script, and that
// SyntaxError reaches the page's `onerror`. Regular-expression lookbehind
// (`(?<=`, `(?<!`) is the one a minifier or a hand edit brings in most
// easily and the one a browser gained last (Safari 16.4, 2023).
test('the page\'s scripts use no regular-expression lookbehind', () => {
  for (const f of [DIST_JS, DIST_BRAIN, join(REPO_ROOT, 'dist/ondemand/cmp-api.js')]) {
    const src = readFileSync(f, 'utf8');
    const at = src.search(/\(\?<[=!]/);
    assert.equal(at, -1, `${f} has a lookbehind at ${at}: ${src.slice(Math.max(0, at - 40), at + 40)}`);
  }
});
