// Attribution of a V8 CPU profile (DevTools `Profiler.stop`) to the monitor,
// for tools/bench-page.mjs: which sampled main-thread time is the monitor's,
// in which of its functions, and under which of its entry points.
//
// A sample is the monitor's when its leaf frame is the monitor's ("own":
// a script served under the monitor's URL prefix, or a wasm frame — the
// bench pages run no other wasm), or when the leaf is a browser function
// with no script URL (a DOM getter, `fetch`, a wasm<->JS trampoline) whose
// nearest caller with a URL is the monitor's ("called"). Everything else —
// the page's scripts, `(program)` (parsing, layout, style), `(garbage
// collector)`, `(idle)` — is not. A sample lasts until the next one.
//
// Names: wasm frames are `wasm-function[N]` (the shipped wasm has no name
// section) and the shipped JS is minified. When the build leaves name maps
// in target/symbols/ — `<file>.symbols` beside each wasm path in dist/
// (`wasm-opt --symbolmap`: "index:name" lines) and `<file>.map` for each JS
// file (a source map) — functions are shown by their source names.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

// Rust symbol hashes (`::h0123456789abcdef`) say nothing to a reader.
const RUST_HASH = /::h[0-9a-f]{16}$/;
// Binding glue between JS and wasm (closure invokers, shims, allocation),
// skipped when naming what an entry point ran.
const BINDING_GLUE = /^(<?wasm_bindgen|<?js_sys|<?web_sys|__wbindgen|__externref)|externref shim|^wasm-function\[/;
// Longest function label printed.
const MAX_LABEL = 120;
// Monitor JS frames named in a path (outermost first): the entry point and
// the calls under it, deep enough to tell the brain's start steps apart
// (`next` › `run1` › `replay`).
const PATH_DEPTH = 4;

/** Samples of `profile` with their times (µs, the browser's monotonic clock) and durations. */
export function prepare(profile) {
  const byId = new Map();
  const parent = new Map();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const samples = profile.samples || [];
  const deltas = profile.timeDeltas || [];
  const times = new Array(samples.length);
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] || 0;
    times[i] = t;
  }
  const durations = times.map((ti, i) => Math.max(0, (i + 1 < times.length ? times[i + 1] : profile.endTime) - ti));
  return { byId, parent, samples, times, durations };
}

/**
 * Classifies every node once: { kind: 'own' | 'called' | null, fn (the
 * monitor frame the time belongs to), entry (the outermost monitor frame
 * on the stack), entryWasm (the outermost wasm frame, when it is not the
 * entry and not binding glue: what a JS entry point ran) }. `isMonitor(url)`
 * says which script URLs are the monitor's; `name` labels frames (names()).
 */
export function classifier(p, isMonitor, name = (cf) => cf.functionName) {
  const cache = new Map();
  const own = (n) => isMonitor(n.callFrame.url);
  return function classify(id) {
    if (cache.has(id)) return cache.get(id);
    const leaf = p.byId.get(id);
    let kind = null;
    let fn = null;
    if (own(leaf)) {
      kind = 'own';
      fn = leaf;
    } else if (!leaf.callFrame.url && !/^\(.*\)$/.test(leaf.callFrame.functionName)) {
      let up = p.parent.get(id);
      while (up !== undefined && !p.byId.get(up).callFrame.url) up = p.parent.get(up);
      if (up !== undefined && own(p.byId.get(up))) {
        kind = 'called';
        fn = p.byId.get(up);
      }
    }
    let entry = null;
    let entryWasm = null;
    const js = [];   // the monitor's JS frames on the stack, innermost first
    if (kind) {
      for (let up = id; up !== undefined; up = p.parent.get(up)) {
        const n = p.byId.get(up);
        if (own(n)) entry = n;
        if (own(n) && !n.callFrame.url.startsWith('wasm://')) js.push(n);
        if (n.callFrame.url.startsWith('wasm://') && !BINDING_GLUE.test(name(n.callFrame))) entryWasm = n;
      }
    }
    const path = kind
      ? js.reverse().slice(0, PATH_DEPTH).map((n) => name(n.callFrame).replace(/ \(.*$/, '')).join(' › ') +
        (entryWasm ? ` › ${name(entryWasm.callFrame)}` : '')
      : null;
    const out = { kind, fn, entry, entryWasm: entryWasm !== entry ? entryWasm : null, leaf, path };
    cache.set(id, out);
    return out;
  };
}

/**
 * Sums the monitor's time (ms) in [fromUs, toUs): own, called, per script
 * (file label), per function, per entry point (labels from `name`; an
 * entry point is "JS entry › outermost wasm function" when it ran wasm)
 * and per path (the outermost PATH_DEPTH monitor JS frames, then the
 * outermost wasm function).
 */
export function attribute(p, classify, name, fromUs = -Infinity, toUs = Infinity) {
  const out = { own: 0, called: 0, files: new Map(), fns: new Map(), entries: new Map(), paths: new Map() };
  const add = (m, k, v) => m.set(k, (m.get(k) || 0) + v);
  for (let i = 0; i < p.samples.length; i++) {
    const t = p.times[i];
    if (t < fromUs || t >= toUs) continue;
    const c = classify(p.samples[i]);
    if (!c.kind) continue;
    const ms = p.durations[i] / 1000;
    out[c.kind] += ms;
    add(out.files, c.kind === 'called' ? 'browser functions it called' : fileLabel(c.fn.callFrame.url), ms);
    add(out.fns, c.kind === 'called' ? `${name(c.fn.callFrame)} → ${c.leaf.callFrame.functionName || '(native)'}` : name(c.fn.callFrame), ms);
    add(out.paths, c.path || '(wasm only)', ms);
    add(out.entries, c.entryWasm ? `${name(c.entry.callFrame)} › ${name(c.entryWasm.callFrame)}` : name(c.entry.callFrame), ms);
  }
  return out;
}

/** The monitor's time (ms) inside each [startUs, endUs) interval. */
export function timeIn(p, classify, intervals) {
  return intervals.map(([a, b]) => {
    let ms = 0;
    for (let i = 0; i < p.samples.length; i++) {
      if (p.times[i] >= a && p.times[i] < b && classify(p.samples[i]).kind) ms += p.durations[i] / 1000;
    }
    return ms;
  });
}

function fileLabel(url) {
  if (url.startsWith('wasm://')) return 'wasm';
  try { return new URL(url).pathname; } catch { return url; }
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/**
 * A function-name resolver for profile call frames. `symbolsDir` holds the
 * name maps (see the top comment); `prefix` is the monitor's URL prefix,
 * whose rest is the file's path in dist/. Returns { name(callFrame), notes }.
 */
export function names(symbolsDir, prefix) {
  const notes = [];
  const wasmMaps = walk(symbolsDir).filter((f) => f.endsWith('.symbols'));
  let wasmNames = null;
  if (wasmMaps.length === 1) {
    wasmNames = new Map();
    for (const line of readFileSync(wasmMaps[0], 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) wasmNames.set(Number(line.slice(0, i)), line.slice(i + 1).replace(RUST_HASH, ''));
    }
    notes.push(`wasm names: ${relative(process.cwd(), wasmMaps[0])}`);
  } else if (wasmMaps.length > 1) {
    notes.push(`wasm names: ${wasmMaps.length} symbol maps in ${symbolsDir}, which wasm module a frame is from is unknown: indices shown`);
  } else {
    notes.push(`wasm names: no ${symbolsDir}/*.symbols (wasm-opt --symbolmap): indices shown`);
  }
  const maps = new Map();
  function sourceMap(url) {
    if (!url.startsWith(prefix)) return null;
    const rel = url.slice(prefix.length);
    if (!maps.has(rel)) {
      const f = join(symbolsDir, `${rel}.map`);
      maps.set(rel, existsSync(f) ? decodeSourceMap(JSON.parse(readFileSync(f, 'utf8'))) : null);
      notes.push(maps.get(rel) ? `JS names: ${relative(process.cwd(), f)}` : `JS names: no ${f}: minified names shown`);
    }
    return maps.get(rel);
  }
  function name(cf) {
    let label;
    const wasm = /^wasm-function\[(\d+)\]$/.exec(cf.functionName);
    if (wasm) {
      label = wasmNames?.get(Number(wasm[1])) || cf.functionName;
    } else {
      const map = sourceMap(cf.url);
      const at = map && map.lookup(cf.lineNumber, cf.columnNumber);
      const file = cf.url.startsWith(prefix) ? basename(cf.url) : cf.url;
      const fn = at?.name || cf.functionName;
      label = at
        ? `${fn || '(anonymous)'} (${basename(at.source)}:${at.line + 1})${fn ? '' : ` ${at.text}`}`
        : `${fn || '(anonymous)'} (${file}:${cf.lineNumber + 1}:${cf.columnNumber + 1})`;
    }
    return label.length > MAX_LABEL ? `${label.slice(0, MAX_LABEL - 1)}…` : label;
  }
  return { name, notes };
}

const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));

/**
 * Decodes a source map (v3) into a lookup(line, column) → { source, line,
 * column (0-based), name, text (the source there) }. V8 gives a function's
 * position as where its parameter list starts: the segment at or before it
 * is the function's.
 */
export function decodeSourceMap(map) {
  const lines = [];
  let src = 0, sLine = 0, sCol = 0, nameIdx = 0;
  for (const text of String(map.mappings || '').split(';')) {
    const segs = [];
    let col = 0;
    for (const seg of text.split(',')) {
      if (!seg) continue;
      const v = [];
      let value = 0, shift = 0;
      for (const ch of seg) {
        const digit = B64.get(ch);
        if (digit === undefined) break;
        value += (digit & 31) << shift;
        if (digit & 32) { shift += 5; continue; }
        v.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0; shift = 0;
      }
      col += v[0];
      const s = { col };
      if (v.length >= 4) {
        src += v[1]; sLine += v[2]; sCol += v[3];
        Object.assign(s, { src, line: sLine, column: sCol });
        if (v.length >= 5) { nameIdx += v[4]; s.name = nameIdx; }
      }
      segs.push(s);
    }
    lines.push(segs);
  }
  return {
    lookup(line, column) {
      const segs = lines[line] || [];
      let best = null;
      for (const s of segs) {
        if (s.col > column) break;
        if (s.src !== undefined) best = s;
      }
      if (!best) return null;
      // An anonymous function is told by its source: its line and the next
      // (a glue import's wrapper line, then what it does).
      const text = String(map.sourcesContent?.[best.src] ?? '').split('\n').slice(best.line, best.line + 2)
        .join(' ').replace(/\s+/g, ' ').trim();
      return {
        source: map.sources?.[best.src] ?? '?',
        line: best.line,
        column: best.column,
        name: best.name !== undefined ? map.names?.[best.name] : undefined,
        text: `"${text.slice(0, 72)}"`,
      };
    },
  };
}
