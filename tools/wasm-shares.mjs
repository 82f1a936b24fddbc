#!/usr/bin/env node
// Where a shipped wasm module's compressed bytes are: its function bodies
// grouped by Rust module (names from the symbol map `./build.sh build`
// writes to target/symbols/), each group's raw size, its gzip -9 on its
// own, and its marginal share (gzip of all bodies and data, less gzip of
// the same without the group: what the module would lose without it).
//   node tools/wasm-shares.mjs [dist/tagwatch_bg.wasm] [--depth 2] [--top 30]
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { cursor, imports, sections } from './wasm-bytes.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : dflt; };
const depth = Number(opt('--depth', 2));
const top = Number(opt('--top', 30));
const file = args[0] || 'dist/tagwatch_bg.wasm';
const bytes = readFileSync(file);
const names = new Map(readFileSync(`target/symbols/${basename(file)}.symbols`, 'utf8')
  .split('\n').filter(Boolean).map((l) => { const i = l.indexOf(':'); return [Number(l.slice(0, i)), l.slice(i + 1)]; }));

let imported = 0;
const bodies = [];
let data = Buffer.alloc(0);
for (const { id, start, end } of sections(bytes)) {
  if (id === 2) {
    imported = imports(bytes, start).filter((i) => i.kind === 0).length;
  } else if (id === 10) {
    const r = cursor(bytes, start);
    for (let n = r.leb(), i = 0; i < n; i++) {
      const len = r.leb();
      bodies.push({ index: imported + i, body: bytes.subarray(r.pos, r.pos + len) });
      r.pos += len;
    }
  } else if (id === 11) {
    data = bytes.subarray(start, end);
  }
}

const gz = (parts) => gzipSync(Buffer.concat(parts), { level: 9, strategy: constants.Z_DEFAULT_STRATEGY }).length;
// The group of a symbol: its crate and `depth - 1` module levels, without
// hashes, generics or trait-impl brackets.
function group(name) {
  if (!name) return '(unnamed)';
  let n = name.replace(/\[[0-9a-f]+\]/g, '').replace(/::h[0-9a-f]{16}$/, '');
  const impl = /^<(.+?)(?: as .*)?>::/.exec(n);
  if (impl) n = impl[1].replace(/^&(mut )?/, '') + '::' + n.slice(impl[0].length);
  n = n.replace(/<.*$/, '');
  const path = n.split('::');
  // Drop the item names (capitalised types, functions) after the modules.
  const mods = [];
  for (const p of path) { if (mods.length && /^[A-Z_]/.test(p)) break; mods.push(p); }
  return mods.slice(0, depth).join('::');
}

const groups = new Map();
for (const b of bodies) {
  const g = group(names.get(b.index));
  if (!groups.has(g)) groups.set(g, []);
  groups.get(g).push(b);
}
const all = gz([...bodies.map((b) => b.body), data]);
const rows = [...groups].map(([g, list]) => {
  const set = new Set(list);
  return {
    g, n: list.length,
    raw: list.reduce((s, b) => s + b.body.length, 0),
    alone: gz(list.map((b) => b.body)),
    marginal: all - gz([...bodies.filter((b) => !set.has(b)).map((b) => b.body), data]),
  };
}).sort((a, b) => b.marginal - a.marginal);
rows.push({ g: '(data: catalog, strings)', n: 0, raw: data.length, alone: gz([data]), marginal: all - gz(bodies.map((b) => b.body)) });
console.log(`${file}: ${bytes.length} bytes, gzip -9 ${gz([bytes])}; ${bodies.length} functions, code ${bodies.reduce((s, b) => s + b.body.length, 0)} + data ${data.length}, bodies and data gzip ${all}`);
console.log(`${'group'.padEnd(44)} ${'fns'.padStart(4)} ${'raw'.padStart(7)} ${'gz alone'.padStart(9)} ${'gz share'.padStart(9)}`);
for (const r of rows.slice(0, top)) console.log(`${r.g.slice(0, 44).padEnd(44)} ${String(r.n).padStart(4)} ${String(r.raw).padStart(7)} ${String(r.alone).padStart(9)} ${String(r.marginal).padStart(9)}`);
