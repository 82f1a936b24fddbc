// Leaves out of an optimised wasm module's data segments what only code
// that wasm-opt removed read: core::fmt's two-digit table for integers
// (`"00" … "99"`, 200 bytes, 225 bytes of the shipped module's gzip).
//
// Why it is there: `alloc`'s default allocation error handler formats the
// size it failed on, so the linker keeps `<u32 as Display>::fmt` and its
// table (on stable Rust that handler cannot be replaced). The shipped
// module's panic handler traps without reading the message, so wasm-opt
// removes every read of the table (the formatter is left a stub); a data
// segment is not code, and no optimiser can tell that no pointer reaches
// it, so its bytes stay.
//
// What makes leaving it out safe, checked here on every build (else the module
// is left as it is and the build says why): the table is found by its
// content exactly once; no instruction of the optimised code names an
// address inside it (the formatter reads it as `load16_u offset=TABLE`, so
// a formatter still alive would name it), and no 4-byte word of the data
// (a pointer in a static) points inside it. Memory starts zeroed, so the
// table's bytes simply leave the data segment that held them. (A second
// `wasm-opt --memory-packing` over zeroed bytes would do the same but
// re-encodes the module: +69 bytes gzip.)
//
//   node tools/dead-data.mjs MODULE.wasm     (rewrites MODULE.wasm; exit 0)
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cursor, leb, section, sections as moduleSections, sleb } from './wasm-bytes.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const file = process.argv[2];
if (!file) {
  console.error('usage: node tools/dead-data.mjs MODULE.wasm');
  process.exit(2);
}
const bytes = readFileSync(file);
const LUT = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''));

function leave(why) {
  console.error(`dead-data: ${file} left as it is (${why})`);
  process.exit(0);
}
// The module's sections and its data segments: passive ones as they are,
// active ones of memory 0 with an `i32.const` offset as
// { address, at (file offset of the bytes), len }.
const sections = moduleSections(bytes);
const segments = [];
for (const { id, start } of sections) {
  if (id !== 11) continue;
  const r = cursor(bytes, start);
  for (let n = r.leb(); n > 0; n--) {
    const from = r.pos;
    const flags = r.leb();
    if (flags === 1) { const len = r.leb(); r.pos += len; segments.push({ raw: bytes.subarray(from, r.pos) }); continue; }
    if (flags !== 0) leave(`a data segment with flags ${flags}`);
    if (r.byte() !== 0x41) leave('a data segment whose offset is not i32.const');
    const address = r.sleb();
    if (r.byte() !== 0x0b) leave('a data segment offset of more than one instruction');
    const len = r.leb();
    segments.push({ address: address >>> 0, at: r.pos, len });
    r.pos += len;
  }
}

const found = [];
for (const seg of segments) {
  if (seg.raw) continue;
  const data = bytes.subarray(seg.at, seg.at + seg.len);
  for (let i = data.indexOf(LUT); i >= 0; i = data.indexOf(LUT, i + 1)) found.push([seg, i]);
}
if (found.length !== 1) leave(`the integer digit table found ${found.length} times`);
const [[lutSeg, lutAt]] = found;
const start = lutSeg.address + lutAt;
const inside = (n) => n >= start && n < start + LUT.length;

// Every constant and memory offset the code names (binaryen's text form).
const wat = execFileSync(resolve(ROOT, 'node_modules/.bin/wasm-dis'), [file], { encoding: 'utf8', maxBuffer: 64 << 20 });
const code = wat.split('\n').filter((l) => !l.startsWith(' (data ')).join('\n');
for (const m of code.matchAll(/i32\.const (-?\d+)|offset=(\d+)/g)) {
  const n = Number(m[1] ?? m[2]) >>> 0;
  if (inside(n)) leave(`the code names ${n}, inside the table at ${start}`);
}
for (const seg of segments) {
  if (seg.raw) continue;
  for (let i = seg.at; i + 4 <= seg.at + seg.len; i++) {
    if (inside(bytes.readUInt32LE(i))) leave(`a data word at file offset ${i} points inside the table at ${start}`);
  }
}

// Memory starts zeroed: the table's bytes leave the segment that holds
// them (the segment goes if nothing else is in it, else is cut or split).
const kept = [];
for (const seg of segments) {
  if (seg !== lutSeg) { kept.push(seg.raw ?? active(seg.address, bytes.subarray(seg.at, seg.at + seg.len))); continue; }
  const before = bytes.subarray(seg.at, seg.at + lutAt);
  const after = bytes.subarray(seg.at + lutAt + LUT.length, seg.at + seg.len);
  if (before.length) kept.push(active(seg.address, before));
  if (after.length) kept.push(active(start + LUT.length, after));
}
function active(address, data) {
  return Buffer.concat([Buffer.from([0, 0x41]), sleb(address | 0), Buffer.from([0x0b]), leb(data.length), data]);
}
const out = [bytes.subarray(0, 8)];
for (const { id, from, end } of sections) {
  if (id === 11) out.push(section(11, Buffer.concat([leb(kept.length), ...kept])));
  else if (id === 12) out.push(section(12, leb(kept.length)));
  else out.push(bytes.subarray(from, end));
}
writeFileSync(file, Buffer.concat(out));
console.error(`dead-data: ${file}: the integer digit table at ${start} (${LUT.length} bytes), read by no code, left out of the data`);
