// Renames wasm-bindgen's imports and exports to short names, in the wasm
// and its glue, and trims the glue of what the monitor never uses.
//
// wasm-bindgen names each import `__wbg_<method>_<16 hex hash>` and lists
// every name twice (the wasm import section and the glue's import object).
// Random hex compresses badly: on the shipped monitor this is ~2 KB of the
// gzip size. Emscripten ships minified import names for the same reason
// (binaryen's --minify-imports only handles the `env` module, so this does
// the same for wasm-bindgen's module). The exports (`monitor_consent_mode`,
// `__wbindgen_malloc`, …) are named in the export section and at each call
// in the glue: short names too, and the ones the trimmed glue never calls
// leave the module (wasm-opt then drops what only they kept). Measured in
// docs/benchmarks.md ("the glue trimmed"): −822 bytes gzip of the brain's
// JS and the wasm together.
//
// usage: node tools/minify-imports.mjs IN.wasm IN.js OUT.wasm OUT.js
import { readFileSync, writeFileSync } from 'node:fs';
import { exports, imports, leb, name, section, sections } from './wasm-bytes.mjs';

const [inWasm, inJs, outWasm, outJs] = process.argv.slice(2);
if (!outJs) {
  console.error('usage: node tools/minify-imports.mjs IN.wasm IN.js OUT.wasm OUT.js');
  process.exit(2);
}
const wasm = readFileSync(inWasm);
let js = readFileSync(inJs, 'utf8');

// Identifier-safe short names: a…z A…Z, then two letters.
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const shortName = (i) => (i < LETTERS.length ? '' : LETTERS[Math.floor(i / LETTERS.length) - 1]) + LETTERS[i % LETTERS.length];

// The glue's import module and its keys.
const moduleMatch = js.match(/"(\.\/[A-Za-z0-9_.-]+_bg\.js)": import0/);
if (!moduleMatch) throw new Error('glue layout not recognised: no `"./*_bg.js": import0`');
const moduleName = moduleMatch[1];

const out = [wasm.subarray(0, 8)];
const renames = new Map();
let exportAt = -1, exportStart = -1;
for (const { id, from, start, end } of sections(wasm)) {
  if (id !== 2) {
    if (id === 7) [exportAt, exportStart] = [out.length, start];
    out.push(wasm.subarray(from, end));
    continue;
  }
  const list = imports(wasm, start);
  const parts = [leb(list.length)];
  for (const { module: mod, field, desc } of list) {
    let newMod = mod, newField = field;
    if (mod === moduleName) {
      newMod = 'a';
      if (!renames.has(field)) renames.set(field, shortName(renames.size));
      newField = renames.get(field);
    }
    parts.push(name(newMod), name(newField), desc);
  }
  out.push(section(2, Buffer.concat(parts)));
}

// Rename the keys of the glue's import object; every name must be found.
for (const [from, to] of renames) {
  const key = new RegExp(`\\b${from}:`, 'g');
  const before = js;
  js = js.replace(key, `${to}:`);
  if (js === before) throw new Error(`import ${from} not found in the glue`);
}
js = js.replace(`"${moduleName}": import0`, '"a": import0');

// What the glue carries that the monitor never uses. Each cut must find
// its text (wasm-bindgen's layout changed otherwise: a build error, not a
// silently larger or broken glue).
function cut(re, what, to = '') {
  const before = js;
  js = js.replace(re, to);
  if (js === before) throw new Error(`minify-imports: glue layout not recognised (${what})`);
}
// Doc comments out first (terser drops them anyway): the checks below look
// for names in code, not in prose.
cut(/\n *\/\*\*\n(?: *\*.*\n)*? *\*\//g, 'doc comments');
// The monitor is the module's functions (src/lib.rs `exports`), not a
// wasm-bindgen class: no `free`, `FinalizationRegistry` or `Symbol.dispose`
// to cut; a class in the glue is a build error (its handle machinery is
// what the functions saved, docs/benchmarks.md, twelfth round).
if (/\bclass \w+ \{/.test(js)) throw new Error('minify-imports: the glue has a class (src/lib.rs exports functions)');
// A method's arguments are copied into the module one by one; when a copy
// throws (a trap in the allocator, an argument that is not a string: a
// bug of the caller) the glue frees the copies made before it and
// rethrows. The rethrow is what the caller sees either way (every call of
// the brain is guarded); without the cleanup those copies leak, which
// after a trap in the allocator is all that is safe anyway.
cut(/\n( *)try \{\n((?:\1    .*\n)+?)\1\} catch \(e\) \{\n(?:\1    if \(ptr\d+\) \{ wasm\.__wbindgen_free\(ptr\d+, len\d+ \* \d, \d\); \}\n)+\1    throw e;\n\1\}/g,
  'argument cleanup', (m, indent, body) => '\n' + body.replace(new RegExp(`^${indent}    `, 'gm'), indent).replace(/\n$/, ''));
// The text codecs. wasm-bindgen's glue copies every string into the module
// with `TextEncoder.prototype.encodeInto` and every string out of it (each
// report batch, each host call's argument) with `TextDecoder.prototype
// .decode`, looked up on the page's globals when it runs. In the snippet's
// brain that is after the page's `load`: a page, or a tag the monitor
// audits, that replaced or broke either before then would silence the
// monitor (a throwing `TextDecoder` constructor failed the whole module) or
// corrupt what it sends (a decoder that writes a visitor's e-mail into each
// report). So the glue trusts neither:
//   - out of the module, UTF-8 by its own loop (`getStringFromWasm0`), for
//     every string: they are short (a report batch is a few KB);
//   - into it, by an encoder it is given (`wasm_bindgen.encoder(f)`, f with
//     `encodeInto`'s contract: the brain gives the browser's own, taken by
//     the loader at parse time, www/loader.js), which it first checks on a
//     sample against its own loop (`encodeText`, the same contract by hand);
//     where none is given or the check fails, by that loop. Not the loop
//     always: the page's URLs and cookie jars are tens of KB a page view,
//     and the loop runs cold on the main thread (1.5 ms a `busy` page view,
//     docs/benchmarks.md, ninth round).
// Every string is passed with `realloc` (the branch without it is unused).
cut(/\n        if \(realloc === undefined\) \{\n[\s\S]*?\n        \}\n/, 'passStringToWasm0 without realloc', '\n');
cut(/\n    if \(!\('encodeInto' in cachedTextEncoder\)\) \{\n[\s\S]*?\n    \}\n/, 'encodeInto fallback', '\n');
cut(/\n    let cachedTextDecoder = new TextDecoder\('utf-8', \{ ignoreBOM: true \}\);\n    cachedTextDecoder\.decode\(\);\n    function decodeText\(bytes\) \{\n.*\n    \}\n\n    const cachedTextEncoder = new TextEncoder\(\);\n/,
  'TextDecoder and TextEncoder', '\n');
cut(/\n    function getStringFromWasm0\(ptr, len\) \{\n.*\n.*decodeText.*\n    \}\n/, 'getStringFromWasm0', `
    function getStringFromWasm0(ptr, len) {
        ptr = ptr >>> 0;
        const m = getUint8ArrayMemory0();
        let s = '';
        for (let end = ptr + len, c, n; ptr < end; s += String.fromCodePoint(c)) {
            c = m[ptr++];
            if (c > 127) {
                // A lead byte: 1, 2 or 3 more bytes, 6 bits each.
                n = c < 224 ? 1 : c < 240 ? 2 : 3;
                c &= 63 >> n;
                while (n--) c = c << 6 | m[ptr++] & 63;
            }
        }
        return s;
    }
`);
// A string is copied into the module by the encoder at once, not by a JS
// loop over its ASCII prefix first (that loop ran cold, interpreted, on
// the main thread: \`passStringToWasm0\`, 1.5 ms a \`busy\` page view,
// docs/benchmarks.md, ninth round). The same bytes: \`len\` units fit \`len\`
// bytes while they are ASCII; what is left after the first non-ASCII unit
// gets 3 bytes a unit (a surrogate pair, 2 units, is 4 bytes), as the glue
// did.
cut(/\n    function passStringToWasm0\(arg, malloc, realloc\) \{\n[\s\S]*?\n        WASM_VECTOR_LEN = offset;\n        return ptr;\n    \}\n/, 'passStringToWasm0', `
    function passStringToWasm0(arg, malloc, realloc) {
        let len = arg.length;
        let ptr = malloc(len, 1) >>> 0;
        let { read, written } = encodeInto(arg, bytes(wasm.memory, ptr, len), len);
        if (read < arg.length) {
            ptr = realloc(ptr, len, len = written + (arg.length - read) * 3, 1) >>> 0;
            written += encodeInto(arg.slice(read), bytes(wasm.memory, ptr + written, len - written), len - written).written;
            ptr = realloc(ptr, len, written, 1) >>> 0;
        }
        WASM_VECTOR_LEN = written;
        return ptr;
    }
    // \`TextEncoder.prototype.encodeInto(s, v)\` by hand: as much of \`s\` as
    // fits in \`v\`, whole characters, a lone surrogate as U+FFFD; \`v\`'s
    // length is given (\`size\`: the typed arrays' \`length\` is the page's).
    function encodeText(s, v, size) {
        let i = 0, p = 0;
        for (let c, n; i < s.length; i += c > 65535 ? 2 : 1) {
            c = s.codePointAt(i);
            if (c >> 11 === 27) c = 0xfffd;
            n = c < 128 ? 1 : c < 2048 ? 2 : c < 65536 ? 3 : 4;
            if (p + n > size) break;
            // The lead byte (110…, 1110…, 11110… before its bits), then 6 bits a byte.
            v[p++] = n > 1 ? 0xff00 >> n & 255 | c >> 6 * (n - 1) : c;
            while (--n) v[p++] = 128 | c >> 6 * (n - 1) & 63;
        }
        return { read: i, written: p };
    }
    let encodeInto = encodeText;
    // The page view id's randomness (src/lib.rs \`page_view_id\`):
    // \`Math.random\` as the loader took it, where one is given: a page that
    // installs a seeded generator as \`Math.random\` would give its visitors
    // the same page view id, and the collector merges findings by it.
    let random = function () { return Math.random(); };
    // The built-ins every call into the wasm leans on: [Uint8Array,
    // Float64Array, Reflect.apply, the getters of WebAssembly.Memory's
    // \`buffer\` and WebAssembly.Instance's \`exports\`, WebAssembly.Table's
    // \`set\`]. In the snippet's brain the loader's, taken at parse time
    // (\`exports.encoder\`): the brain starts after the page's \`load\`, and a
    // page (or a tag the monitor audits) that broke one of them by then
    // silenced the monitor (docs/hostile-pages.md). Elsewhere (the
    // extension's isolated world, the brain's warm-up worker) this realm's
    // own, taken when the module is instantiated. No typed-array method or
    // accessor is called
    // (\`subarray\`, \`set\`, \`length\`, \`byteLength\`: the page's prototype's),
    // nor DataView: views are made by the constructors (which read nothing
    // of the page's) and written by index.
    let U8, F64, bufferOf, exportsOf, tableSet;
    // Takes the built-ins from \`t\`, else this realm's as they are now.
    function builtins(t) {
        if (t) {
            const apply = t[2];
            U8 = t[0];
            F64 = t[1];
            bufferOf = (m) => apply(t[3], m, []);
            exportsOf = (instance) => apply(t[4], instance, []);
            tableSet = (table, i, v) => apply(t[5], table, [i, v]);
        } else {
            U8 = Uint8Array;
            F64 = Float64Array;
            bufferOf = (m) => m.buffer;
            exportsOf = (instance) => instance.exports;
            tableSet = (table, i, v) => table.set(i, v);
        }
    }
    // The bytes \`at\`…\`at + n\` of \`m\` (a WebAssembly.Memory).
    function bytes(m, at, n) {
        return new U8(bufferOf(m), at, n);
    }
    exports.bytes = bytes;
    exports.exportsOf = (instance) => exportsOf(instance);
    // What the loader took (the brain's \`start\`): \`given\` (optional) as the
    // built-ins above; takes \`f\` as the encoder when it writes a sample
    // (ASCII, 2, 3 and 4 bytes, a lone surrogate) as \`encodeText\` does,
    // else \`encodeText\`, and answers the one taken; \`rand\` (optional) as
    // \`random\`.
    exports.encoder = function (f, rand, given) {
        if (given || !U8) builtins(given);
        random = rand || random;
        const s = 'a\\u00e9\\u20ac\\ud83d\\ude00\\udc00', v = new U8(16), w = new U8(16);
        let ok = encodeText(s, v, 16).written;
        try {
            const r = f(s, w, 16);
            ok = r.read === s.length && r.written === ok;
            for (let i = 0; i < 16; i++) ok &= v[i] === w[i];
        } catch (e) { ok = 0; }
        return encodeInto = ok ? f : encodeText;
    };
`);
// The memory's views (the built-ins above: \`builtins\`). wasm-bindgen keeps a
// view per type and tells a stale one by its \`byteLength\` (0 once the
// memory grew and detached its buffer), reads the buffer with
// \`WebAssembly.Memory.prototype.buffer\`, copies arrays in with
// \`TypedArray.prototype.set\` and writes an \`Option\` an import answers (a
// number, a string) with a \`DataView\`: all the page's by the time the
// brain runs. Here a byte view and a float view of the buffer, made again
// when the buffer is another; arrays copied and \`Option\`s written by
// index (an \`i32\` as its 4 bytes, little-endian as wasm's memory; an
// \`f64\` where the module aligned it: \`Option<f64>\`'s value at +8, an
// \`&[f64]\` allocated with alignment 8, as wasm-bindgen's own view
// indexing assumes). The module takes no \`&[i32]\`: every number list
// crosses as \`&[f64]\` (src/lib.rs \`int32\`), so the glue has one array
// copy, not two (no \`Uint32Array\` view, no \`passArray32ToWasm0\`).
cut(/\n    let cachedDataViewMemory0 = null;\n    function getDataViewMemory0\(\) \{\n[\s\S]*?\n    \}\n/, 'cached DataView', '\n');
cut(/\n        cached\w+Memory0 = null;/g, 'cached views reset');
cut(/\n    let cachedFloat64ArrayMemory0 = null;\n    function getFloat64ArrayMemory0\(\) \{\n[\s\S]*?\n    \}\n/, 'Float64Array view', '\n');
cut(/\n    let cachedUint8ArrayMemory0 = null;\n    function getUint8ArrayMemory0\(\) \{\n[\s\S]*?\n    \}\n/, 'Uint8Array view', `
    let cachedBuffer = null, cachedUint8, cachedFloat64;
    function getUint8ArrayMemory0() {
        const b = bufferOf(wasm.memory);
        if (b !== cachedBuffer) {
            cachedBuffer = b;
            cachedUint8 = new U8(b);
            cachedFloat64 = new F64(b);
        }
        return cachedUint8;
    }
    function getFloat64ArrayMemory0() {
        getUint8ArrayMemory0();
        return cachedFloat64;
    }
    function setInt32(p, v) {
        const m = getUint8ArrayMemory0();
        m[p] = v;
        m[p + 1] = v >> 8;
        m[p + 2] = v >> 16;
        m[p + 3] = v >> 24;
    }
`);
cut(/\bgetDataViewMemory0\(\)\.setInt32\((.+?), (.+?), true\);/g, 'DataView setInt32', 'setInt32($1, $2);');
cut(/\bgetDataViewMemory0\(\)\.setFloat64\((.+?), (.+?), true\);/g, 'DataView setFloat64', 'getFloat64ArrayMemory0()[($1) / 8] = $2;');
cut(/\n    function passArrayF64ToWasm0\(arg, malloc\) \{\n[\s\S]*?\n    \}\n/, 'passArrayF64ToWasm0', `
    function passArrayF64ToWasm0(arg, malloc) {
        const n = arg.length, ptr = malloc(n * 8, 8) >>> 0, m = getFloat64ArrayMemory0();
        for (let i = 0; i < n; i++) m[ptr / 8 + i] = arg[i];
        WASM_VECTOR_LEN = n;
        return ptr;
    }
`);
cut(/\bwasm\.__wbindgen_externrefs\.set\(idx, obj\);/, 'externref table set', 'tableSet(wasm.__wbindgen_externrefs, idx, obj);');
// The externref table's start-up fill writes `null` into a slot of the
// table the module just made, whose slots all start as `null`
// (`ref.null extern`): that write is left out.
cut(/\n *table\.set\(\d+, null\);/, 'externref table null');
cut(/\btable\.set\((\d+), /g, 'externref table init', 'tableSet(table, $1, ');
cut(/\n        wasm = instance\.exports;/, 'instance exports', '\n        if (!U8) builtins();\n        wasm = exportsOf(instance);');
// `Reflect.get(o, k)` (the shell's reads of page objects, src/host.rs) as
// `o[k]`: the same value for an object (a getter runs either way), a throw
// for null and undefined; a primitive answers its wrapper's property
// instead of throwing, which the shell reads as absent all the same. A
// page that replaced `Reflect.get` (few pages use it) no longer decides
// what the monitor reads.
cut(/\bReflect\.get\(arg0, arg1\)/, 'Reflect.get', 'arg0[arg1]');
cut(/\bconst ret = Math\.random\(\);/, 'Math.random', 'const ret = random();');
// The instance and module kept in variables nothing reads.
cut(/\n        wasmInstance = instance;|\n        wasmModule = module;/g, 'instance and module kept');
cut(/let wasmModule, wasmInstance, wasm;/, 'instance and module variables', 'let wasm;');
// Each method converts its number arguments with `+x` before the call;
// the call converts them again (ToNumber for f64, ToInt32 for i32 after
// ToNumber: the same values), so the methods pass them as they came.
cut(/\n    function \w+\([^)]*\) \{\n[\s\S]*?\n    \}(?=\n)/g, 'number conversions', (method) => {
  for (const [line, val, arg] of method.matchAll(/\n *const (val\d+) = \+(\w+);/g)) {
    method = method.replace(line, '').replace(new RegExp(`\\b${val}\\b`, 'g'), arg);
  }
  return method;
});

// Every string and array is copied in with the module's own allocator:
// the copy functions call it by name (`wasm.w(…)`), not as two arguments
// at each of their ~25 calls nor as default parameters (−9 bytes of the
// brain's gzip, docs/benchmarks.md, fifteenth round).
cut(/\bpassStringToWasm0\((\w+), wasm\.__wbindgen_malloc, wasm\.__wbindgen_realloc\)/g, 'string copies\' allocator', 'passStringToWasm0($1)');
cut(/\bpassArrayF64ToWasm0\((\w+), wasm\.__wbindgen_malloc\)/g, 'array copies\' allocator', 'passArrayF64ToWasm0($1)');
cut(/\n    function passStringToWasm0\(arg, malloc, realloc\) \{\n/, 'passStringToWasm0 allocator', '\n    function passStringToWasm0(arg) {\n');
cut(/\brealloc\(ptr, len\b/g, 'realloc calls', 'wasm.__wbindgen_realloc(ptr, len');
cut(/\bmalloc\((len|n \* 8), /g, 'malloc calls', 'wasm.__wbindgen_malloc($1, ');
cut(/\n    function passArrayF64ToWasm0\(arg, malloc\) \{\n/g, 'passArray allocator', '\n    function passArrayF64ToWasm0(arg) {\n');
// An import that only reads a string out of the module (wasm-bindgen's
// cast of a `&str` to a JS value) is `getStringFromWasm0` itself, not a
// function around it.
cut(/\bfunction\(arg0, arg1\) \{\n *\/\/ Cast intrinsic for `Ref\(String\) -> Externref`\.\n *const ret = getStringFromWasm0\(arg0, arg1\);\n *return ret;\n *\}/g,
  'string casts', 'getStringFromWasm0');
// Each copy straight into the call's arguments (`wasm.c(passStringToWasm0(a),
// WASM_VECTOR_LEN, …)`), not into a pair of variables first: JavaScript
// evaluates arguments left to right, so each length is read right after
// its own copy, as before. terser cannot do this itself (it keeps a
// module-level variable's read where it was); −123 bytes of the brain's
// gzip (docs/benchmarks.md, fifteenth round).
cut(/\n    function \w+\([^)]*\) \{\n[\s\S]*?\n    \}(?=\n)/g, 'copies into the arguments', (method) => {
  const copies = [...method.matchAll(/\n *(?:const )?(ptr\d+) = (pass\w+\(\w+\));\n *(?:const )?(len\d+) = WASM_VECTOR_LEN;/g)];
  if (!copies.length) return method;
  const decl = /\n *let (?:ptr\d+, len\d+(?:, )?)+;/;
  method = method.replace(decl, '');
  const pairs = copies.map(([, ptr, , len]) => `${ptr}, ${len}`).join(', ');
  const call = method.match(/\bwasm\.\w+\(([^)]*)\)/);
  // The copies in the call's order, each pair once and nowhere else.
  if (!call || !call[1].includes(pairs)) throw new Error(`minify-imports: glue layout not recognised (copies in ${method.slice(0, 40)})`);
  let rest = method.replace(call[0], '');
  for (const [line] of copies) rest = rest.replace(line, '');
  if (/\b(ptr|len)\d+\b/.test(rest)) throw new Error(`minify-imports: a copy read elsewhere (${method.slice(0, 40)})`);
  let args = call[1];
  for (const [line, ptr, copy, len] of copies) {
    method = method.replace(line, '');
    args = args.replace(`${ptr}, ${len}`, `${copy}, WASM_VECTOR_LEN`);
  }
  return method.replace(call[1], args);
});

// An import that may throw (a host call into the page) is its function
// wrapped once (`c: handleError(function (…) {…})`), not a function that
// wraps it anew on each call (`c: function () { return handleError(
// function (…) {…}, arguments); }`): the same try and the same rethrow
// into the module, one closure fewer a host call (the sweeps' `present`,
// `script`, `value`, `send`) and −34 bytes of the brain's gzip
// (docs/benchmarks.md, fifteenth round).
cut(/\bfunction\(\) \{ return handleError\((function \([^)]*\) \{\n[\s\S]*?\n *\}), arguments\); \}/g, 'imports that catch',
  (m, f) => `handleError(${f})`);
cut(/\n    function handleError\(f, args\) \{\n        try \{\n            return f\.apply\(this, args\);\n        \} catch \(e\) \{\n([\s\S]*?)\n        \}\n    \}\n/,
  'handleError', (m, rethrow) => `
    function handleError(f) {
        return function () {
            try {
                return f.apply(this, arguments);
            } catch (e) {
${rethrow.replace(/^/gm, '    ')}
            }
        };
    }
`);
if (/handleError\([^)]*, arguments\)/.test(js)) throw new Error('minify-imports: an import still wraps handleError per call');

// Exports: the ones the glue calls get short names (`wasm.monitor_entries`
// → `wasm.a`), in the module and the glue; the ones it never names
// (`__wbg_monitor_free` now, wasm-bindgen's `__abort_handler` and
// `__instance_terminated` globals) are dropped, so wasm-opt drops what only
// they kept.
const exportRenames = new Map();
const dropped = [];
{
  const at = exportAt;
  if (at < 0) throw new Error('minify-imports: the module has no export section');
  const kept = [];
  for (const { field, desc } of exports(wasm, exportStart)) {
    if (!new RegExp(`\\b${field}\\b`).test(js)) { dropped.push(field); continue; }
    const to = shortName(exportRenames.size);
    exportRenames.set(field, to);
    kept.push(Buffer.concat([name(to), desc]));
  }
  out[at] = section(7, Buffer.concat([leb(kept.length), ...kept]));
}
for (const [from, to] of exportRenames) {
  js = js.replace(new RegExp(`\\bwasm\\.${from}\\b`, 'g'), `wasm.${to}`);
}
// Every export is named as `wasm.NAME` (renamed above): none reached another
// way. (The names themselves are also the glue's own functions now, and
// their parameters: `function cmp(cmp, …)`.)
if (/\bwasm\s*\[|\{[^}]*\}\s*=\s*wasm\b/.test(js)) throw new Error('minify-imports: the glue reads an export other than as wasm.NAME');
// The glue's functions become properties of a function (`wasm_bindgen`,
// tools/bundle.mjs `Object.assign`): a name `Function.prototype` has
// (`call`, `apply`, `bind`, …) cannot be assigned where a page froze it.
for (const [, k] of js.matchAll(/\n    exports\.(\w+) = /g)) {
  if (k in Function.prototype) throw new Error(`minify-imports: the glue's function \`${k}\` is a Function.prototype name (src/lib.rs exports)`);
}
writeFileSync(outWasm, Buffer.concat(out));
writeFileSync(outJs, js);
console.error(`minify-imports: ${renames.size} imports and ${exportRenames.size} exports renamed, ${dropped.length} exports dropped (${dropped.join(', ')})`);
