// The core engine's cost per Resource Timing entry on a busy page, as a
// stable figure: instructions counted by valgrind's callgrind for the
// native program bench/src/bin/engine-page.rs, which runs page views of the
// busy page's entries (the plan of tests/fixtures/fake-intercom/busy.mjs:
// 293 resources from 27 hosts, and Intercom's 7 from its 3: 300 from 30;
// the page's consent grants analytics, so GA4, Hotjar, Clarity, Segment and
// Optimizely are allowed and Intercom refused). The program runs twice,
// with FEW and MANY page views; the difference divided by MANY − FEW is
// one page view (a new engine, its consent, every entry), start-up
// excluded, and that over the entries is the cost of one. It runs again
// on each class of entries alone (the allowed vendors', the refused
// vendor's, the hosts the catalog does not know) to show where it goes,
// and on 300 allowed requests with distinct paths (the passed list full).
// Instructions executed do not depend on the machine's load, unlike times.
//
// The program is built with the `wasm` profile (opt-level "z", as the
// shipped wasm), natively: the instructions are x86's, not V8's, but the
// code is the same and so are its loops and allocations.
//
//   node tools/bench-engine.mjs
//   FEW=5 MANY=25 PROFILE=release node tools/bench-engine.mjs
//
// Needs valgrind. Files (entries, callgrind.out.*) in target/bench-engine/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyEntries } from './busy-entries.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FEW = Number(process.env.FEW || 5);
const MANY = Number(process.env.MANY || 25);
const PROFILE = process.env.PROFILE || 'wasm';
const OUT = `${ROOT}/target/bench-engine`;

function write(name, list) {
  const file = `${OUT}/${name}.tsv`;
  writeFileSync(file, list.map((e) => `${e.start}\t${e.initiator}\t${e.url}\n`).join(''));
  return file;
}

/** Instructions of one run of `views` page views of `file`. */
function run(bin, file, views, tag) {
  const out = `${OUT}/callgrind.out.${tag}-${views}`;
  execFileSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, bin, file, String(views)],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const summary = readFileSync(out, 'utf8').match(/^summary: (\d+)/m);
  if (!summary) throw new Error(`no summary in ${out}`);
  return Number(summary[1]);
}

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const args = ['build', '-q', '--profile', PROFILE, '-p', 'tagwatch-bench', '--bin', 'engine-page'];
execFileSync('cargo', args, { cwd: ROOT, stdio: 'inherit' });
const bin = `${ROOT}/target/${PROFILE}/engine-page`;

const all = busyEntries();
const sets = [
  ['page', all],
  ['allowed', all.filter((e) => e.cls === 'allowed')],
  ['refused', all.filter((e) => e.cls === 'refused')],
  ['unknown', all.filter((e) => e.cls === 'unknown')],
  // Not the busy page: 300 allowed requests with as many distinct paths
  // (past MAX_PASSED, the engine's bound on what consent let pass), the
  // worst case of the passed list's lookups.
  ['distinct', Array.from({ length: 300 }, (_, i) => ({
    initiator: 'script', url: `https://static.hotjar.com/c/hotjar-${i}.js`, cls: 'allowed', start: 40 + i * 7,
  }))],
  ['none', []],
];
console.log(`callgrind, ${bin} (profile ${PROFILE}), ${FEW} and ${MANY} page views`);
const perView = {};
for (const [name, list] of sets) {
  const file = write(name, list);
  const few = run(bin, file, FEW, name);
  const many = run(bin, file, MANY, name);
  perView[name] = (many - few) / (MANY - FEW);
  const hosts = new Set(list.map((e) => new URL(e.url).host)).size;
  const per = list.length ? ` = ${Math.round(perView[name] / list.length).toLocaleString('en')} a entry` : '';
  console.log(`  ${name.padEnd(8)} ${String(list.length).padStart(3)} entries, ${String(hosts).padStart(2)} hosts: ` +
    `${Math.round(perView[name]).toLocaleString('en')} instructions a page view${per}`);
}
const setup = perView.none;
const net = (name) => (perView[name] - setup) / sets.find(([n]) => n === name)[1].length;
console.log(`per entry, the page view's start (${Math.round(setup).toLocaleString('en')}: engine, consent) taken out:`);
for (const name of ['page', 'allowed', 'refused', 'unknown', 'distinct']) {
  console.log(`  ${name.padEnd(8)} ${Math.round(net(name)).toLocaleString('en')}`);
}
