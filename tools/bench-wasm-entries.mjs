// The shipped wasm's cost of the busy page's entries in V8, as a stable
// figure: instructions counted by valgrind's callgrind for Node running
// page views of the wasm module through the build's own glue — each a new
// `Monitor`, the `consent` command granting analytics (as
// tools/bench-engine.mjs's page views), `start`, and the busy page's 300
// entries (tools/busy-entries.mjs) in one `entries` delivery. Node runs
// with `--no-liftoff` (the wasm compiled by TurboFan at once: the code a
// busy page runs once tiered up, and the same code on every run) and
// `--single-threaded`. Each module runs FEW and MANY page views; the
// difference over MANY − FEW is one page view's instructions, start-up
// excluded. Modules are measured in turn, ROUNDS times, so a change of
// the machine's load touches each alike (instructions barely move with
// load; V8's garbage collection and compilation still make them vary by
// ≈ 1–2 % from run to run).
//
// Where tools/bench-engine.mjs counts the core's work natively, this
// counts what the shipped module does, after wasm-opt, with the glue's
// string copies: an A/B of two builds of the same Rust code (e.g. two
// wasm-opt settings; they share the glue, target/wasm-bindgen/min.js,
// which must match the modules' import and export names).
//
//   node tools/bench-wasm-entries.mjs [A.wasm [B.wasm …]]   (default dist/tagwatch_bg.wasm)
//   FEW=20 MANY=120 ROUNDS=3 node tools/bench-wasm-entries.mjs main.wasm dist/tagwatch_bg.wasm
//
// Needs valgrind and ./build.sh build (the glue).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeInstructions } from './node-callgrind.mjs';
import { busyEntries } from './busy-entries.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const GLUE = `${ROOT}/target/wasm-bindgen/min.js`;
const ENTRIES = busyEntries();

/** Child: `views` page views of the module at `wasm` (run under callgrind). */
function child(wasm, views) {
  const wb = new Function(`${readFileSync(GLUE, 'utf8')}\nreturn wasm_bindgen;`)();
  wb.initSync({ module: new WebAssembly.Module(readFileSync(wasm)) });
  const urls = ENTRIES.map((e) => e.url).join('\n');
  const initiators = ENTRIES.map((e) => e.initiator).join('\n');
  // startTime, transfer and encoded sizes, duration: four numbers an entry.
  const numbers = new Float64Array(ENTRIES.flatMap((e) => [e.start, 300, 280, 12]));
  const host = { send() {}, present() { return ''; }, script() {}, value() {} };
  for (let i = 0; i < views; i++) {
    // A new monitor each page view (src/lib.rs `exports`: it replaces the last).
    wb.monitor(host, 'bench', 'https://collector.example/c', 'https://shop.example/p/1', 'bench', 1);
    const m = wb;
    m.consent(1, 0, 1, 0, 0);
    m.start(10);
    m.entries(urls, initiators, numbers, 'top');
  }
}

/** Instructions of `views` page views of `wasm` (callgrind's summary). */
function count(wasm, views) {
  return nodeInstructions(fileURLToPath(import.meta.url), ['--child', resolve(wasm), String(views)], wasm);
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]));
} else {
  const FEW = Number(process.env.FEW || 20);
  const MANY = Number(process.env.MANY || 120);
  const ROUNDS = Number(process.env.ROUNDS || 2);
  const files = process.argv.length > 2 ? process.argv.slice(2) : [`${ROOT}/dist/tagwatch_bg.wasm`];
  const per = new Map(files.map((f) => [f, []]));
  console.log(`callgrind, node --no-liftoff: ${FEW} and ${MANY} page views of ${ENTRIES.length} entries, ${ROUNDS} rounds`);
  for (let r = 0; r < ROUNDS; r++) {
    for (const f of r % 2 ? [...files].reverse() : files) {
      per.get(f).push((count(f, MANY) - count(f, FEW)) / (MANY - FEW));
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const n = (x) => Math.round(x).toLocaleString('en');
  for (const [f, v] of per) {
    console.log(`  ${f}: ${n(median(v))} instructions a page view (median; runs ${v.map(n).join(', ')}), ${n(median(v) / ENTRIES.length)} an entry`);
  }
}
