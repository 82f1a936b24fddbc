// Renames wasm-bindgen's imports to short names, in the wasm and its glue.
//
// wasm-bindgen names each import `__wbg_<method>_<16 hex hash>` and lists
// every name twice (the wasm import section and the glue's import object).
// Random hex compresses badly: on the shipped monitor this is ~2 KB of the
// gzip size. Emscripten ships minified import names for the same reason
// (binaryen's --minify-imports only handles the `env` module, so this does
// the same for wasm-bindgen's module).
//
// usage: node tools/minify-imports.mjs IN.wasm IN.js OUT.wasm OUT.js
import { readFileSync, writeFileSync } from 'node:fs';

const [inWasm, inJs, outWasm, outJs] = process.argv.slice(2);
if (!outJs) {
  console.error('usage: node tools/minify-imports.mjs IN.wasm IN.js OUT.wasm OUT.js');
  process.exit(2);
}
const wasm = readFileSync(inWasm);
let js = readFileSync(inJs, 'utf8');

function readLeb(buf, pos) {
  let result = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, pos];
}
function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}
const name = (s) => Buffer.concat([leb(Buffer.byteLength(s)), Buffer.from(s)]);
// Identifier-safe short names: a…z A…Z, then two letters.
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const shortName = (i) => (i < LETTERS.length ? '' : LETTERS[Math.floor(i / LETTERS.length) - 1]) + LETTERS[i % LETTERS.length];

// The glue's import module and its keys.
const moduleMatch = js.match(/"(\.\/[A-Za-z0-9_.-]+_bg\.js)": import0/);
if (!moduleMatch) throw new Error('glue layout not recognised: no `"./*_bg.js": import0`');
const moduleName = moduleMatch[1];

const out = [wasm.subarray(0, 8)];
const renames = new Map();
let pos = 8;
while (pos < wasm.length) {
  const id = wasm[pos];
  const [size, start] = readLeb(wasm, pos + 1);
  const end = start + size;
  if (id !== 2) {
    out.push(wasm.subarray(pos, end));
    pos = end;
    continue;
  }
  let [count, p] = readLeb(wasm, start);
  const parts = [leb(count)];
  for (let i = 0; i < count; i++) {
    let len;
    [len, p] = readLeb(wasm, p);
    const mod = wasm.toString('utf8', p, p + len);
    p += len;
    [len, p] = readLeb(wasm, p);
    const field = wasm.toString('utf8', p, p + len);
    p += len;
    const descStart = p;
    const kind = wasm[p++];
    if (kind === 0) [, p] = readLeb(wasm, p); // func: type index
    else if (kind === 1 || kind === 2) { // table (reftype + limits) / memory (limits)
      if (kind === 1) p++;
      const flags = wasm[p++];
      [, p] = readLeb(wasm, p);
      if (flags & 1) [, p] = readLeb(wasm, p);
    } else if (kind === 3) p += 2; // global: valtype, mutability
    else if (kind === 4) { p++; [, p] = readLeb(wasm, p); } // tag
    else throw new Error(`unknown import kind ${kind}`);
    let newMod = mod, newField = field;
    if (mod === moduleName) {
      newMod = 'a';
      if (!renames.has(field)) renames.set(field, shortName(renames.size));
      newField = renames.get(field);
    }
    parts.push(name(newMod), name(newField), wasm.subarray(descStart, p));
  }
  const body = Buffer.concat(parts);
  out.push(Buffer.from([2]), leb(body.length), body);
  pos = end;
}

// Rename the keys of the glue's import object; every name must be found.
for (const [from, to] of renames) {
  const key = new RegExp(`\\b${from}:`, 'g');
  const before = js;
  js = js.replace(key, `${to}:`);
  if (js === before) throw new Error(`import ${from} not found in the glue`);
}
js = js.replace(`"${moduleName}": import0`, '"a": import0');
writeFileSync(outWasm, Buffer.concat(out));
writeFileSync(outJs, js);
console.error(`minify-imports: ${renames.size} imports renamed`);
