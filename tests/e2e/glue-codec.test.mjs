// The glue's own text codec (tools/minify-imports.mjs): the brain copies
// strings into the wasm by `encodeText` wherever the browser's encoder, as
// the loader took it, is missing or fails its check, and every string out
// of the wasm by `getStringFromWasm0`'s own loop, never by the page's
// TextEncoder / TextDecoder (a page may have replaced them: hostile.test.mjs).
// Both must give exactly the bytes and strings the browser's codecs give —
// for every string a page can hold (lone surrogates included), and, for
// `encodeText`, with `encodeInto`'s contract on a view too small (as much
// as fits, whole characters) — and `wasm_bindgen.encoder` must take a sound
// encoder and refuse one that throws or lies. The arrays of numbers go in
// by index, as their bytes (not by the page's `TypedArray.prototype.set`,
// hostile.test.mjs): the bytes `set` writes (every number list crosses as
// `f64`s; the module reads the id lists' as an `Int32Array` would hold
// them, src/lib.rs `int32`). Run on the built glue,
// target/wasm-bindgen/min.js (`./build.sh build`), in Node, whose
// TextEncoder / TextDecoder are the reference.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

const GLUE = new URL('../../target/wasm-bindgen/min.js', import.meta.url);
// Random strings per kind; fixed seed, so a failure repeats.
const RANDOM_STRINGS = 3000;

function glue() {
  assert.ok(existsSync(GLUE), 'target/wasm-bindgen/min.js is missing: run ./build.sh build first');
  const js = readFileSync(GLUE, 'utf8');
  // A function of the glue's IIFE by its name, up to its closing brace.
  const fn = (name) => {
    const at = js.indexOf(`\n    function ${name}(`);
    assert.ok(at >= 0, `the glue has no function ${name}: tools/minify-imports.mjs and this test disagree`);
    return js.slice(at, js.indexOf('\n    }\n', at) + 7);
  };
  const at = js.indexOf('\n    exports.encoder = ');
  assert.ok(at >= 0, 'the glue has no exports.encoder');
  const encoder = js.slice(at, js.indexOf('\n    };\n', at) + 8);
  // A wasm memory stand-in: a bump allocator over one buffer.
  const memory = new Uint8Array(1 << 22);
  let top = 8;
  const malloc = (n) => { const p = top; top += n + 8; return p; };
  const realloc = (p, old, n) => { const q = malloc(n); memory.copyWithin(q, p, p + Math.min(old, n)); return q; };
  // The glue's views of the memory (`bytes`, `getFloat64ArrayMemory0`)
  // over the stand-in; its built-ins (`builtins`) this realm's.
  // The copy functions call the module's allocator by its short export
  // names (tools/minify-imports.mjs): the stand-in's, under those names.
  const alloc = fn('passStringToWasm0');
  const names = [/\bwasm\.(\w+)\(len, 1\)/, /\bwasm\.(\w+)\(ptr, len, /].map((re) => alloc.match(re)?.[1]);
  assert.ok(names[0] && names[1], 'passStringToWasm0 calls no wasm.MALLOC(len, 1) and wasm.REALLOC(ptr, len, …)');
  const make = new Function('getUint8ArrayMemory0', 'getFloat64ArrayMemory0', 'bytes', 'malloc', 'realloc', `
    let WASM_VECTOR_LEN = 0, U8 = Uint8Array;
    const builtins = () => {};
    const exports = {}, wasm = { ${names[0]}: malloc, ${names[1]}: realloc };
    ${fn('passStringToWasm0')}${fn('encodeText')}${fn('getStringFromWasm0')}${fn('setInt32')}${fn('passArrayF64ToWasm0')}
    let encodeInto = encodeText, random;
    ${encoder}
    return {
      pass: (s) => { const p = passStringToWasm0(s); return [p, WASM_VECTOR_LEN]; },
      passF64: (a) => { const p = passArrayF64ToWasm0(a); return [p, WASM_VECTOR_LEN]; },
      get: getStringFromWasm0, encodeText, encoder: exports.encoder,
    };`);
  const g = make(() => memory, () => new Float64Array(memory.buffer), (m, at, n) => new Uint8Array(memory.buffer, at, n),
    (n, align) => { top = Math.ceil(top / (align || 1)) * (align || 1); return malloc(n); }, realloc);
  g.memory = memory;
  g.reset = () => { top = 8; };
  return g;
}

function strings() {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const out = ['', 'a', 'abc', '\u00e9', 'a\u00e9', '\u20acuro', '\u{1F600}', 'x\u{1F600}y', '\ud800', 'a\udc00b', '\ud800\ud800\udc00',
    'ab\ud83d', '\udbff\udfff', '\uffff\u0800\u07ff\u0080\u007f\u0000', '\ufeffbom', 'https://x.example/a?b=1\n'.repeat(500)];
  for (let i = 0; i < RANDOM_STRINGS; i++) {
    let s = '';
    for (let n = rand() * 40 | 0; n > 0; n--) {
      const r = rand();
      s += r < 0.4 ? String.fromCharCode(rand() * 128 | 0)
        : r < 0.6 ? String.fromCodePoint(0x10000 + (rand() * 0xfffff | 0))
          : String.fromCharCode(rand() * 65536 | 0);   // lone surrogates too
    }
    out.push(s);
  }
  return out;
}

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { ignoreBOM: true });

test('into the wasm and back, by the glue\'s own loops and by a sound encoder: the browser\'s bytes and strings', () => {
  const g = glue();
  for (const [label, taken] of [['the glue\'s own', g.encodeText], ['the browser\'s', (s, v) => te.encodeInto(s, v)]]) {
    assert.equal(g.encoder(taken), taken, `${label} encoder is taken`);
    for (const s of strings()) {
      g.reset();
      const [p, n] = g.pass(s);
      const want = te.encode(s);
      assert.deepEqual(g.memory.slice(p, p + n), want, `${label}: the bytes of ${JSON.stringify(s)}`);
      assert.equal(g.get(p, n), td.decode(want), `the glue's decoder on ${JSON.stringify(s)}`);
    }
  }
});

test('encodeText keeps encodeInto\'s contract on a view too small: as much as fits, whole characters', () => {
  const { encodeText } = glue();
  for (const s of strings()) {
    for (const room of [0, 1, 2, 3, 5, 8]) {
      const a = new Uint8Array(room);
      const b = new Uint8Array(room);
      assert.deepEqual(encodeText(s, b, room), te.encodeInto(s, a), `read / written for ${JSON.stringify(s)} in ${room}`);
      assert.deepEqual(b, a, `bytes for ${JSON.stringify(s)} in ${room}`);
    }
  }
});

test('an encoder that throws, lies or is missing is refused: the glue\'s own is used, with the same bytes', () => {
  const g = glue();
  const liars = {
    missing: undefined,
    throws: () => { throw new TypeError('disabled by this page'); },
    'prepends a canary': (s, v) => te.encodeInto(`canary.mail.7f3a91@customer.example${s}`, v),
    'answers the right counts, writes nothing': (s) => te.encodeInto(s, new Uint8Array(64)),
    'drops the non-ASCII': (s, v) => te.encodeInto(s.replace(/[^\0-\x7f]/g, ''), v),
    'not an object': () => 7,
  };
  for (const [label, f] of Object.entries(liars)) {
    assert.equal(g.encoder(f), g.encodeText, `an encoder that ${label}: refused`);
    g.reset();
    const [p, n] = g.pass('shop \u00e9t\u00e9 \u{1F600}');
    assert.deepEqual(g.memory.slice(p, p + n), te.encode('shop \u00e9t\u00e9 \u{1F600}'), `after refusing one that ${label}`);
  }
});

test('arrays of numbers into the wasm by index: the bytes TypedArray.prototype.set writes', () => {
  const g = glue();
  const values = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 32 + 5, -(2 ** 40) - 3, 1.5, -1.5, 0.1, 1e300, -0, NaN, Infinity, -Infinity,
    true, false, null, undefined, '7', 255, 256, 65535, 65536, 2 ** 53];
  for (const list of [[], [1], values, values.slice().reverse()]) {
    g.reset();
    const [p, n] = g.passF64(list);
    assert.equal(n, list.length);
    assert.equal(p % 8, 0, 'f64s aligned');
    const f64 = new Uint8Array(8 * list.length);
    new Float64Array(f64.buffer).set(list);
    assert.deepEqual(g.memory.slice(p, p + 8 * n), f64, `f64s of ${list}`);
  }
});
