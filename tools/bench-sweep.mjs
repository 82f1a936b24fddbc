// What one idle sweep of a quiet page does, as figures that do not move
// with the machine's load (issue 11, "≤ 1 ms of the monitor's time per
// 5 s on a quiet page"): the page has no vendor at all, so every sweep
// finds nothing. Two kinds of sweep (www/observe.js `tick`):
//
//   * a full sweep: what a sweep did on every back-off step before the
//     tenth round, and still does after an event — the brain's
//     `m.wanted()` and `m.tick(now)` through the build's glue, the wasm
//     asking the snippet's host (`windowHost`, www/observe.js, on a
//     stand-in `window` with no vendor global and a `document` with no
//     element) which of the catalog's globals, ids and loader scripts are
//     there;
//   * a check (the fallback when nothing happened since the last sweep):
//     the host asked the same lists again in JavaScript (`windowHost`'s
//     `same()`), no call into the wasm.
//
// Printed for each: the JS→wasm calls, the host's calls and the items it
// reads (one page property read or `getElementById` each), the bytes of
// text crossing the boundary, and — under valgrind's callgrind, Node with
// `--no-liftoff --single-threaded` — the instructions of one sweep: FEW
// and MANY sweeps of one page view, the difference over MANY − FEW (the
// monitor's start-up and V8's compilation excluded; ≈ 1–2 % run to run).
// The consent adapters' poll and the loader's `hook` (JS over the page's
// globals, on full sweeps only) are not in these figures: their reads are
// counted in docs/benchmarks.md from the code.
//
//   node tools/bench-sweep.mjs            (dist/tagwatch_bg.wasm, target/wasm-bindgen/min.js)
//   FEW=20 MANY=220 node tools/bench-sweep.mjs
//
// Needs valgrind and ./build.sh build (the glue and the wasm must be one build's).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeInstructions } from './node-callgrind.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const GLUE = `${ROOT}/target/wasm-bindgen/min.js`;
const WASM = `${ROOT}/dist/tagwatch_bg.wasm`;

/** A page view on a stand-in window; returns { m, host, counts }. */
function pageView() {
  // A page's window with some globals of its own, none a vendor's.
  const win = {};
  for (let i = 0; i < 60; i++) win[`app${i}`] = { ready: true };
  const doc = { getElementById() { return null; } };
  const windowHost = new Function('window', 'document',
    `${readFileSync(`${ROOT}/www/observe.js`, 'utf8')}\nreturn windowHost;`)(win, doc);
  const host = windowHost(() => undefined);
  const counts = { present: 0, items: 0, bytes: 0, script: 0, value: 0 };
  const present = host.present;
  host.present = function (g, i, s) {
    counts.present++;
    counts.bytes += g.length + i.length + s.length;
    for (const l of [g, i, s]) counts.items += l ? l.split('\n').length : 0;
    return present.call(this, g, i, s);
  };
  for (const k of ['script', 'value']) {
    const f = host[k];
    host[k] = function (x) { counts[k]++; return f.call(this, x); };
  }
  const wb = new Function(`${readFileSync(GLUE, 'utf8')}\nreturn wasm_bindgen;`)();
  wb.initSync({ module: new WebAssembly.Module(readFileSync(WASM)) });
  wb.monitor(host, 'bench', 'https://collector.example/c', 'https://shop.example/about', 'bench', 1);
  const m = wb;
  m.consent(1, 0, 0, 0, 0);
  m.cookies('_session=1; theme=dark', 1);
  m.start(10);
  return { m, host, counts };
}

function full(m, t) { m.wanted(); return m.tick(t); }

/** Child: one page view, then `n` sweeps of `kind` (run under callgrind). */
function child(kind, n) {
  const { m, host } = pageView();
  // Two full sweeps first: the lists asked are the idle page's.
  full(m, 1000);
  full(m, 2000);
  for (let i = 0; i < n; i++) {
    if (kind === 'full') full(m, 3000 + i);
    else if (!host.same()) throw new Error('an idle check found a change');
  }
}

function count(kind, n) {
  return nodeInstructions(fileURLToPath(import.meta.url), ['--child', kind, String(n)]);
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]));
} else {
  const FEW = Number(process.env.FEW || 20);
  const MANY = Number(process.env.MANY || 220);
  const n = (x) => Math.round(x).toLocaleString('en');
  // The structure of one idle full sweep.
  const { m, host, counts } = pageView();
  full(m, 1000);
  full(m, 2000);
  for (const k in counts) counts[k] = 0;
  full(m, 3000);
  console.log(`one idle full sweep: 2 JS→wasm calls (wanted, tick); host: ${counts.present} present call(s) reading ` +
    `${counts.items} items, ${counts.script} script, ${counts.value} value calls; ${counts.bytes} bytes of text into JS`);
  if (typeof host.same === 'function') console.log(`one idle check: 0 JS→wasm calls; the host reads the same ${counts.items} items, no text crosses`);
  console.log(`callgrind, node --no-liftoff: ${FEW} and ${MANY} sweeps of one page view`);
  for (const kind of typeof host.same === 'function' ? ['full', 'check'] : ['full']) {
    const per = (count(kind, MANY) - count(kind, FEW)) / (MANY - FEW);
    console.log(`  ${kind}: ${n(per)} instructions a sweep`);
  }
}
