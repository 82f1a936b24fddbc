// Packs the Chromium MV3 extension: extension/ sources, the monitor's
// optimised wasm and its no-modules glue (the same files the snippet ships),
// www/consent.js and the catalog facts the scripts need, into
// dist/extension/ (load it unpacked) and dist/tagwatch-extension.zip.
//
//   node tools/pack-extension.mjs [--wasm dist/tagwatch_bg.wasm] [--glue target/wasm-bindgen/min.js]
//       [--raw target/wasm32-unknown-unknown/wasm/tagwatch_monitor.wasm] [--cli target/release/tagwatch] [--out dist]
//
// Built files:
//   content.js  isolated world: (glue + wasm as base64 + catalog + www/host.js + www/observe.js
//               + extension/content.js) in one scope
//   fallback.js the same monitor compiled to JavaScript (wasm2js), injected only into pages whose
//               own CSP refuses wasm: a content script's WebAssembly obeys the page's CSP in Chromium
//   page.js     page world: (catalog + www/cmp-api.js + www/consent.js + extension/page.js) in one scope: no global leaks
//   catalog.js  what the popup shows about vendors (names, weights, cookie rules)
//   icons/      drawn here (PNG), so the repository holds no binaries
// The catalog comes from `tagwatch catalog list/show --json` (the compiled
// catalog/*.toml), so the extension and the engine never disagree.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';
import { leb, name as wasmName, readLeb, section as wasmSection, sections } from './wasm-bytes.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = {
  wasm: 'dist/tagwatch_bg.wasm', glue: 'target/wasm-bindgen/min.js', cli: 'target/release/tagwatch', out: 'dist',
  raw: 'target/wasm32-unknown-unknown/wasm/tagwatch_monitor.wasm',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args) || process.argv[i + 1] === undefined) {
    console.error('usage: node tools/pack-extension.mjs [--wasm F] [--glue F] [--raw F] [--cli F] [--out DIR]');
    process.exit(2);
  }
  args[k] = process.argv[i + 1];
}
const at = (p) => resolve(ROOT, p);
for (const k of ['wasm', 'glue', 'raw', 'cli']) {
  if (!existsSync(at(args[k]))) {
    console.error(`pack-extension: ${args[k]} is missing; run ./build.sh build first`);
    process.exit(1);
  }
}
const SRC = join(ROOT, 'extension');
const OUT = join(at(args.out), 'extension');
const ZIP = join(at(args.out), 'tagwatch-extension.zip');

// ---- the catalog, from the CLI ----------------------------------------------
const cli = (...a) => execFileSync(at(args.cli), ['catalog', ...a], { encoding: 'utf8' });
const vendors = cli('list', '--json').trim().split('\n').map((line) => JSON.parse(cli('show', JSON.parse(line).id, '--json')));
const identity = (v) => v.identity && { settings: v.identity.settings, api: v.identity.api, verbs: v.identity.verbs, ids: v.identity.ids, proofs: v.identity.proofs };
// Page world: what to look for in the page's globals.
const pageCatalog = vendors.filter((v) => v.globals.length || v.identity).map((v) => ({ id: v.id, globals: v.globals, identity: identity(v) }));
// Isolated world: what to accept from the page world, and DOM markers for the popup.
const contentCatalog = vendors.map((v) => ({ id: v.id, globals: v.globals, dom_ids: v.dom_ids, identity: identity(v) }));
// Popup: names, weights, purposes and cookie rules, in the engine's matching order.
const popupCatalog = vendors.map((v) => ({
  id: v.id, name: v.name, owner: v.owner, category: v.category,
  weight: v.weight ? { script_kb: v.weight.script_kb, requests: v.weight.requests } : null,
  purposes: Object.fromEntries(Object.entries(v.purposes).map(([k, p]) => [k, p.consent])),
  cookies: v.cookies.map((c) => ({ name: c.name, match: c.match, purpose: c.purpose, days: c.lifetime_days ?? null })),
}));

// ---- dist/extension ---------------------------------------------------------
rmSync(OUT, { recursive: true, force: true });
mkdirSync(join(OUT, 'icons'), { recursive: true });
const read = (p) => readFileSync(p, 'utf8');
const scope = (parts) => `(function () {\n'use strict';\n${parts.join('\n')}\n})();\n`;
const wasm = readFileSync(at(args.wasm));

writeFileSync(join(OUT, 'content.js'), scope([
  '/* wasm-bindgen no-modules glue (target/wasm-bindgen/min.js) */',
  read(at(args.glue)),
  `/* the monitor (dist/tagwatch_bg.wasm, ${wasm.length} bytes) */`,
  `var WASM = '${wasm.toString('base64')}';`,
  `var CATALOG = ${JSON.stringify(contentCatalog)};`,
  read(join(ROOT, 'www/host.js')),
  read(join(ROOT, 'www/observe.js')),
  read(join(SRC, 'content.js')),
]));
// The page world's script runs in the page's realm: whatever happens, nothing may reach the page.
writeFileSync(join(OUT, 'page.js'), scope([
  'try {',
  `var CATALOG = ${JSON.stringify(pageCatalog)};`,
  read(join(ROOT, 'www/cmp-api.js')),
  read(join(ROOT, 'www/consent.js')),
  read(join(SRC, 'page.js')),
  '} catch (e) { /* never the page\'s problem */ }',
]));
writeFileSync(join(OUT, 'catalog.js'), `/* generated by tools/pack-extension.mjs from catalog/*.toml */\nvar TAGWATCH_CATALOG = ${JSON.stringify(popupCatalog)};\n`);
for (const f of ['manifest.json', 'background.js', 'popup.html', 'popup.js', 'popup.css', 'options.html', 'options.js']) {
  cpSync(join(SRC, f), join(OUT, f));
}
for (const size of [16, 32, 48, 128]) writeFileSync(join(OUT, 'icons', `${size}.png`), icon(size));
writeFileSync(join(OUT, 'fallback.js'), fallback(at(args.raw)));

// ---- dist/tagwatch-extension.zip --------------------------------------------
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
})(OUT);
writeFileSync(ZIP, zip(files.map((p) => [relative(OUT, p).split('\\').join('/'), readFileSync(p)])));
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.error(`pack-extension: ${relative(ROOT, OUT)}/ (${files.length} files), ${relative(ROOT, ZIP)} ${kb(statSync(ZIP).size)}`);

// ---- helpers ----------------------------------------------------------------

/**
 * The monitor as JavaScript, for pages whose CSP refuses wasm. The same
 * rustc output as the shipped wasm, through wasm-bindgen without externref
 * and multi-value (wasm2js handles neither: the `target_features` section
 * says so), binaryen's lowering of the newer instructions, then wasm2js.
 * The result calls `self.tagwatchFallback(wasm_bindgen, engine)` in the
 * isolated world, where content.js instantiates `engine(imports)` in place
 * of a WebAssembly instance.
 */
function fallback(raw) {
  const tmp = join(ROOT, 'target/extension-fallback');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'raw.wasm'), withoutFeatures(readFileSync(raw), ['reference-types', 'multivalue']));
  const run = (cmd, a) => execFileSync(cmd, a, { stdio: ['ignore', 'ignore', 'inherit'] });
  run('wasm-bindgen', ['--target', 'no-modules', '--no-typescript', '--out-dir', tmp, '--out-name', 'monitor', join(tmp, 'raw.wasm')]);
  const bin = (n) => join(ROOT, 'node_modules/.bin', n);
  const features = ['--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals'];
  run(bin('wasm-opt'), [join(tmp, 'monitor_bg.wasm'), ...features, '--llvm-nontrapping-fptoint-lowering', '--signext-lowering',
    '--llvm-memory-copy-fill-lowering', '-Oz', '--strip-debug', '-o', join(tmp, 'lowered.wasm')]);
  run(bin('wasm2js'), [join(tmp, 'lowered.wasm'), '-Oz', '-o', join(tmp, 'engine.mjs')]);
  let glue = read(join(tmp, 'monitor.js'));
  let engine = read(join(tmp, 'engine.mjs'));
  // Without reference types the crate still asks where its fixed JS value
  // slots end; the glue's heap reserves the same ones (`dropObject`).
  const reserved = /function dropObject\(idx\) \{\s*if \(idx < (\d+)\) return;/.exec(glue);
  const statics = /const (\w+) = require\("__wbindgen_externref_xform__"\);/.exec(glue);
  if (!reserved || !statics) throw new Error('pack-extension: wasm-bindgen glue layout not recognised (dropObject / externref statics)');
  glue = glue.replace(statics[0], `const ${statics[1]} = { __wbindgen_externref_statics_end: function () { return ${reserved[1]}; } };`);
  // wasm2js grows memory into a new ArrayBuffer; wasm-bindgen's glue notices
  // growth by the old buffer being detached, as a wasm memory's is.
  const grow = 'buffer = newBuffer;';
  if (!engine.includes(grow) || !/^function asmFunc\(imports\) \{$/m.test(engine)) {
    throw new Error('pack-extension: wasm2js output layout not recognised');
  }
  engine = engine.replace(grow, 'var detached = buffer; buffer = newBuffer; '
    + 'if (detached.transfer) detached.transfer(0); else structuredClone(detached, { transfer: [detached] });');
  engine = engine.replace(/^import .*$/gm, '').replace(/^var retasmFunc[\s\S]*$/m, '');
  return scope([
    '/* tagwatch monitor as JavaScript (wasm2js), for pages whose CSP refuses wasm. Generated by tools/pack-extension.mjs. */',
    glue,
    `function engine(imports) {\n${engine}\nreturn asmFunc(imports);\n}`,
    "if (typeof self.tagwatchFallback === 'function') self.tagwatchFallback(wasm_bindgen, engine);",
  ]);
}

/** `wasm` with the named features dropped from its `target_features` section. */
function withoutFeatures(wasm, drop) {
  const out = [wasm.subarray(0, 8)];
  let found = false;
  for (const { id, from, start, end } of sections(wasm)) {
    let section = wasm.subarray(from, end);
    if (id === 0) {
      const [len, p] = readLeb(wasm, start);
      if (wasm.subarray(p, p + len).toString() === 'target_features') {
        found = true;
        let [n, q] = readLeb(wasm, p + len);
        const kept = [];
        for (let i = 0; i < n; i++) {
          const prefix = wasm[q];
          const [l, r] = readLeb(wasm, q + 1);
          const feature = wasm.subarray(r, r + l).toString();
          if (!drop.includes(feature)) kept.push(Buffer.concat([Buffer.from([prefix]), wasmName(feature)]));
          q = r + l;
        }
        section = wasmSection(0, Buffer.concat([wasmName('target_features'), leb(kept.length), ...kept]));
      }
    }
    out.push(section);
  }
  if (!found) throw new Error('pack-extension: the raw wasm has no target_features section');
  return Buffer.concat(out);
}

/** A zip archive (deflate, fixed timestamps so the same input gives the same bytes). */
function zip(entries) {
  const DOS_TIME = 0;            // 00:00:00
  const DOS_DATE = (46 << 9) | (1 << 5) | 1;   // 2026-01-01
  const locals = [];
  const central = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const packed = deflateRawSync(data, { level: 9 });
    const crc = crc32(data);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);           // version needed
    head.writeUInt16LE(0x0800, 6);       // UTF-8 names
    head.writeUInt16LE(8, 8);            // deflate
    head.writeUInt16LE(DOS_TIME, 10);
    head.writeUInt16LE(DOS_DATE, 12);
    head.writeUInt32LE(crc, 14);
    head.writeUInt32LE(packed.length, 18);
    head.writeUInt32LE(data.length, 22);
    head.writeUInt16LE(nameBuf.length, 26);
    head.writeUInt16LE(0, 28);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(0x0314, 4);        // made by: unix, 2.0
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x0800, 8);
    dir.writeUInt16LE(8, 10);
    dir.writeUInt16LE(DOS_TIME, 12);
    dir.writeUInt16LE(DOS_DATE, 14);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(packed.length, 20);
    dir.writeUInt32LE(data.length, 24);
    dir.writeUInt16LE(nameBuf.length, 28);
    dir.writeUInt32LE((0o100644 << 16) >>> 0, 38);   // -rw-r--r--
    dir.writeUInt32LE(offset, 42);
    locals.push(head, nameBuf, packed);
    central.push(dir, nameBuf);
    offset += head.length + nameBuf.length + packed.length;
  }
  const centralBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, centralBuf, end]);
}

/** The toolbar icon: an eye (a ring and a pupil) on a dark blue disc, as a PNG. */
function icon(size) {
  const px = Buffer.alloc(size * size * 4);
  const c = (size - 1) / 2;
  const R = size / 2;
  const ss = 4;   // supersampling per axis
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let disc = 0, white = 0, pupil = 0;
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const dx = x + (sx + 0.5) / ss - 0.5 - c;
          const dy = y + (sy + 0.5) / ss - 0.5 - c;
          const d = Math.hypot(dx, dy) / R;
          // the eye: two arcs meeting at the sides
          const eye = Math.abs(dy) / R < 0.48 * Math.sqrt(Math.max(0, 1 - (dx / (0.78 * R)) ** 2));
          if (d <= 1) disc++;
          if (d <= 1 && eye) white++;
          if (d < 0.24) pupil++;
        }
      }
      const n = ss * ss;
      const i = (y * size + x) * 4;
      const a = disc / n, wv = white / n, pv = pupil / n;
      // disc #1e3a8a, eye white, pupil #1e3a8a
      const mix = (base, top, t) => base * (1 - t) + top * t;
      let r = 0x1e, g = 0x3a, b = 0x8a;
      const wEye = a > 0 ? Math.min(1, wv / a) : 0;
      r = mix(r, 255, wEye); g = mix(g, 255, wEye); b = mix(b, 255, wEye);
      const wPupil = a > 0 ? Math.min(1, pv / a) : 0;
      r = mix(r, 0x1e, wPupil); g = mix(g, 0x3a, wPupil); b = mix(b, 0x8a, wPupil);
      px[i] = Math.round(r); px[i + 1] = Math.round(g); px[i + 2] = Math.round(b); px[i + 3] = Math.round(a * 255);
    }
  }
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) px.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 6;   // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', Buffer.alloc(0)),
  ]);
}
