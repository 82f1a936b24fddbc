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
let pos = 8;
const leb = () => { let r = 0, s = 0, b; do { b = bytes[pos++]; r += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80); return r; };
const encode = (n, signed) => {
  const out = [];
  for (;;) {
    const b = n & 0x7f;
    n = signed ? n >> 7 : n >>> 7;
    const done = signed ? (n === 0 && !(b & 0x40)) || (n === -1 && (b & 0x40)) : n === 0;
    out.push(done ? b : b | 0x80);
    if (done) return Buffer.from(out);
  }
};
// The module's sections [id, start, end] and its data segments: passive
// ones as they are, active ones of memory 0 with an `i32.const` offset as
// { address, at (file offset of the bytes), len }.
const sections = [];
const segments = [];
while (pos < bytes.length) {
  const start = pos;
  const id = bytes[pos++];
  const size = leb();
  const end = pos + size;
  sections.push([id, start, end]);
  if (id === 11) {
    for (let n = leb(); n > 0; n--) {
      const from = pos;
      const flags = leb();
      if (flags === 1) { const len = leb(); pos += len; segments.push({ raw: bytes.subarray(from, pos) }); continue; }
      if (flags !== 0) leave(`a data segment with flags ${flags}`);
      if (bytes[pos++] !== 0x41) leave('a data segment whose offset is not i32.const');
      let address = 0, shift = 0, b;
      do { b = bytes[pos++]; address |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
      if (bytes[pos++] !== 0x0b) leave('a data segment offset of more than one instruction');
      const len = leb();
      segments.push({ address: address >>> 0, at: pos, len });
      pos += len;
    }
  }
  pos = end;
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
  return Buffer.concat([Buffer.from([0, 0x41]), encode(address | 0, true), Buffer.from([0x0b]), encode(data.length), data]);
}
const section = (id, body) => Buffer.concat([Buffer.from([id]), encode(body.length), body]);
const out = [bytes.subarray(0, 8)];
for (const [id, from, to] of sections) {
  if (id === 11) out.push(section(11, Buffer.concat([encode(kept.length), ...kept])));
  else if (id === 12) out.push(section(12, encode(kept.length)));
  else out.push(bytes.subarray(from, to));
}
writeFileSync(file, Buffer.concat(out));
console.error(`dead-data: ${file}: the integer digit table at ${start} (${LUT.length} bytes), read by no code, left out of the data`);
