// No browser: the measuring tools of issue 11 measure what they say.
//   * tools/cpu-profile.mjs: which profile samples are the monitor's (own
//     frames, browser functions it called, nothing of the page's), entry
//     points, time windows; its source-map decoder against terser's encoder.
//   * tools/sizes.mjs: the every-page-view naming rule (loader, brain files,
//     on-demand pieces, files pages never get) and the compressed sizes.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { constants, gzipSync } from 'node:zlib';
import { minify } from 'terser';
import { attribute, classifier, decodeSourceMap, prepare, timeIn } from '../../tools/cpu-profile.mjs';
import { mainThread, traceFigure } from '../../tools/cpu-trace.mjs';
import { measure } from '../../tools/sizes.mjs';

const MON = 'https://shop.example/tagwatch/';
const isMonitor = (url) => url.startsWith(MON) || url.startsWith('wasm://');
const frame = (functionName, url = '') => ({ functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 });

// root ─ (program) | (idle) | (garbage collector)
//      ├ page.js pageMain ─ fetch (native)          page work calling the browser
//      │                  └ loader.js wrapped ─ page.js tagFn   the page's code under the monitor's wrapper
//      ├ loader.js start ─ wasm monitor_start ─ wasm read ─ get cookie (native)
//      └ loader.js observer ─ js-to-wasm ─ wasm judge_all
const NODES = [
  [1, frame('(root)'), [2, 3, 4, 5, 6, 10]],
  [2, frame('(program)'), []],
  [3, frame('(idle)'), []],
  [4, frame('(garbage collector)'), []],
  [5, frame('pageMain', 'https://shop.example/pages/page.js'), [7, 8]],
  [6, frame('start', `${MON}tagwatch.js`), [11]],
  [7, frame('fetch'), []],
  [8, frame('wrapped', `${MON}tagwatch.js`), [9]],
  [9, frame('tagFn', 'https://shop.example/pages/page.js'), []],
  [10, frame('observer', `${MON}brain.js`), [14]],
  [11, frame('wasm-function[3]', 'wasm://wasm/0008722e'), [12]],
  [12, frame('wasm-function[7]', 'wasm://wasm/0008722e'), [13]],
  [13, frame('get cookie'), []],
  [14, frame('js-to-wasm'), [15]],
  [15, frame('wasm-function[9]', 'wasm://wasm/0008722e'), []],
];
const profile = (samples, startTime = 1_000_000) => ({
  nodes: NODES.map(([id, callFrame, children]) => ({ id, callFrame, children })),
  startTime,
  // one sample every 1,000 µs; each lasts until the next (the last until endTime)
  samples: samples,
  timeDeltas: samples.map(() => 1000),
  endTime: startTime + (samples.length + 1) * 1000,
});
const names = { 3: 'monitor_start', 7: 'observe::read', 9: 'judge_all' };
const nameOf = (cf) => {
  const m = /^wasm-function\[(\d+)\]$/.exec(cf.functionName);
  return m ? names[m[1]] : cf.functionName;
};

test('cpu-profile: own frames, browser functions the monitor called, nothing of the page\'s', () => {
  // each sample 1 ms: (program), idle, GC, page's fetch, page's tag under the wrapper,
  // wasm read, its cookie getter, the brain's observer, its trampoline, judge_all
  const p = prepare(profile([2, 3, 4, 7, 9, 12, 13, 10, 14, 15]));
  const classify = classifier(p, isMonitor, nameOf);
  const a = attribute(p, classify, nameOf);
  assert.equal(a.own, 3, 'read, observer, judge_all');
  assert.equal(a.called, 2, 'the cookie getter and the trampoline');
  assert.deepEqual(Object.fromEntries(a.files), { wasm: 2, '/tagwatch/brain.js': 1, 'browser functions it called': 2 });
  assert.deepEqual(Object.fromEntries(a.fns), {
    'observe::read': 1, 'observe::read → get cookie': 1, observer: 1, 'observer → js-to-wasm': 1, judge_all: 1,
  });
  assert.deepEqual(Object.fromEntries(a.entries), {
    'start › monitor_start': 2, // the outermost wasm function under the JS entry point
    observer: 2, // js-to-wasm is not the monitor's wasm function; judge_all is
    'observer › judge_all': 1,
  }, 'entry points');
  assert.deepEqual(Object.fromEntries(a.paths), {
    'start › monitor_start': 2, // the monitor's JS frames from the outermost, then the outermost wasm function
    observer: 2,
    'observer › judge_all': 1,
  }, 'paths');
});

test('cpu-profile: time windows and time inside intervals', () => {
  const p = prepare(profile([12, 12, 2, 15, 15, 15], 5_000_000));
  const classify = classifier(p, isMonitor, nameOf);
  // samples at 5,001,000 … 5,006,000 µs
  assert.equal(attribute(p, classify, nameOf, 5_002_000, 5_005_000).own, 2, '[2 ms, 5 ms): read, (program), judge_all');
  assert.deepEqual(timeIn(p, classify, [[5_000_000, 5_002_500], [5_003_000, 5_010_000]]), [2, 3]);
});

test('cpu-trace: each task\'s CPU time shared by its samples; long samples split into running, descheduled, outside', () => {
  // samples at 5,001,000 … 5,006,000 µs, 1 ms each: read, read, (program), judge_all, judge_all, (idle)
  const p = prepare(profile([12, 12, 2, 15, 15, 3], 5_000_000));
  const classify = classifier(p, isMonitor, nameOf);
  const meta = (pid, tid, name) => ({ ph: 'M', name: 'thread_name', pid, tid, args: { name } });
  const x = (name, ts, dur, tdur, args, pid = 1, tid = 1) => ({ ph: 'X', name, ts, dur, tdur, pid, tid, args: args || {} });
  const events = [
    meta(1, 1, 'CrRendererMain'), meta(2, 1, 'CrRendererMain'), meta(1, 2, 'DedicatedWorker thread'),
    // another renderer, busier, that never ran the monitor's scripts
    ...[0, 1, 2, 3, 4].map((i) => x('RunTask', 5_000_000 + i * 100, 50, 50, {}, 2, 1)),
    // a worker thread's task: not the main thread
    x('RunTask', 5_000_000, 9_000, 9_000, {}, 1, 2),
    // task A, 5,000,500–5,003,500: samples read, read, (program); 2 ms of CPU in 3 ms of wall time
    x('RunTask', 5_000_500, 3_000, 2_000),
    x('EvaluateScript', 5_000_600, 1_000, 900, { data: { url: `${MON}tagwatch.js` } }),
    x('V8.GC_SCAVENGER', 5_002_100, 400, 400),
    // task B, 5,003,900–5,005,500: samples judge_all, judge_all; all CPU
    x('RunTask', 5_003_900, 1_600, 1_600),
    // task C, no sample in it: a monitor timer of 50 µs CPU, and the page's
    x('RunTask', 5_005_600, 80, 80),
    x('FunctionCall', 5_005_610, 60, 50, { data: { url: `${MON}brain.js` } }),
    x('RunTask', 5_005_700, 80, 80),
    x('FunctionCall', 5_005_710, 60, 50, { data: { url: 'https://shop.example/pages/page.js' } }),
  ];
  const thread = mainThread(events, isMonitor);
  assert.ok(thread.length && thread.every((e) => e.pid === 1 && e.tid === 1), 'the renderer that evaluated the loader');
  const t = traceFigure(thread, p, classify, isMonitor);
  assert.equal(t.tasks, 3, 'A, B and C');
  assert.ok(Math.abs(t.cpuMs - (2 * 2 / 3 + 1.6 + 0.05)) < 1e-9, `A: 2 of 3 samples of 2 ms; B whole; C's call (${t.cpuMs})`);
  assert.ok(Math.abs(t.wallMs - (3 * 2 / 3 + 1.6 + 0.06)) < 1e-9);
  assert.equal(t.long.samples, 4, 'the monitor\'s samples of 1 ms are long (> 300 µs)');
  assert.equal(traceFigure(thread, p, classify, isMonitor, 5_003_000, 5_006_000).tasks, 2, 'a window: B and C');

  // one long sample: `read` at 5,001,000 lasting until 5,004,000 (the next sample 3 ms later)
  const q = prepare({ ...profile([12, 15, 3], 5_000_000), timeDeltas: [1000, 3000, 200], endTime: 5_004_400 });
  const long = traceFigure(thread, q, classifier(q, isMonitor, nameOf), isMonitor).long;
  assert.equal(long.samples, 1);
  assert.equal(long.ms, 3);
  // its gap: A's 2.5 ms (2/3 of it running), 0.4 ms outside any task, B's first 0.1 ms
  assert.ok(Math.abs(long.inTaskRunningMs - (2.5 * 2 / 3 + 0.1)) < 1e-9, String(long.inTaskRunningMs));
  assert.ok(Math.abs(long.inTaskDescheduledMs - 2.5 / 3) < 1e-9);
  assert.ok(Math.abs(long.outsideMs - 0.4) < 1e-9);
  assert.ok(long.running.get('V8.GC_SCAVENGER') > 0, 'the GC inside the gap is named');
  assert.ok(long.running.get('(the task itself)') > 0);
});

test('cpu-profile: the source-map decoder finds what terser mapped', async () => {
  const source = [
    'function readCookies(doc) {',
    '  return doc.cookie.split(";").length;',
    '}',
    'var probe = function (w, name) { return w[name]; };',
    'window.out = [readCookies(document), probe(window, "x")];',
  ].join('\n');
  const out = await minify({ 'www/src.js': source }, { sourceMap: { includeSources: true }, mangle: { toplevel: true }, compress: false });
  const map = decodeSourceMap(JSON.parse(out.map));
  // where V8 puts a function: its parameter list
  const find = (re) => {
    const m = re.exec(out.code);
    assert.ok(m, `${re} in ${out.code}`);
    return m.index + m[0].length - 1;
  };
  const named = map.lookup(0, find(/function \w+\(/));
  assert.equal(named.source, 'www/src.js');
  assert.equal(named.line, 0);
  assert.equal(named.name, 'readCookies');
  const anon = map.lookup(0, find(/=function\(/));
  assert.equal(anon.line, 3);
  assert.match(anon.text, /var probe = function/);
  assert.equal(map.lookup(7, 0), null, 'no such line');
});

test('sizes: every page view is dist/ but on-demand pieces and what pages never get', () => {
  const dist = mkdtempSync(join(tmpdir(), 'tagwatch-sizes-'));
  try {
    const put = (rel, text) => {
      mkdirSync(join(dist, rel, '..'), { recursive: true });
      writeFileSync(join(dist, rel), text);
    };
    put('tagwatch.js', 'loader '.repeat(50));
    put('brain.js', 'brain '.repeat(80));
    put('brain_bg.wasm', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff)));
    put('ondemand/cmp-cookies.js', 'cmp '.repeat(60));
    put('ondemand/gpp/us.js', 'gpp '.repeat(30));
    put('ondemand/gpp/us_bg.wasm', 'wasm '.repeat(30));
    put('extension/manifest.json', '{}');
    put('tagwatch-extension.zip', 'zip');
    put('tagwatch.js.map', '{}');
    put('brain_bg.wasm.symbols', '0:x');
    // Precompressed twins are their file in another encoding, not files.
    put('tagwatch.js.gz', 'g'.repeat(7));
    put('tagwatch.js.br', 'b'.repeat(5));
    const m = measure(dist);
    const roles = Object.fromEntries(m.files.map((f) => [f.path, f.role]));
    assert.deepEqual(roles, {
      'brain.js': 'every-page-view',
      'brain_bg.wasm': 'every-page-view',
      'ondemand/cmp-cookies.js': 'ondemand',
      'ondemand/gpp/us.js': 'ondemand',
      'ondemand/gpp/us_bg.wasm': 'ondemand',
      'tagwatch.js': 'loader',
    });
    assert.deepEqual(m.pieces.map((p) => [p.name, p.files.length]), [['cmp-cookies.js', 1], ['gpp', 2]]);
    const gz = (rel) => m.files.find((f) => f.path === rel).gzip;
    assert.equal(gz('brain.js'), gzipSync(Buffer.from('brain '.repeat(80)), { level: constants.Z_BEST_COMPRESSION }).length);
    assert.equal(m.everyPageView.gzip, gz('tagwatch.js') + gz('brain.js') + gz('brain_bg.wasm'));
    assert.equal(m.pieces[1].gzip, gz('ondemand/gpp/us.js') + gz('ondemand/gpp/us_bg.wasm'));
    assert.equal(m.loader.path, 'tagwatch.js');
    assert.equal(m.loader.zopfli, 7, 'the .gz twin\'s size');
    assert.equal(m.everyPageView.zopfli, null, 'a total with a file without its twin is unknown');
    for (const f of m.files) assert.ok(f.brotli > 0 && f.brotli <= f.raw + 16, `${f.path}: brotli ${f.brotli}`);
  } finally {
    rmSync(dist, { recursive: true, force: true });
  }
});

test('sizes: a dist/ without the loader is an error that says what to run', () => {
  const dist = mkdtempSync(join(tmpdir(), 'tagwatch-sizes-'));
  try {
    assert.throws(() => measure(dist), /tagwatch\.js missing: run \.\/build\.sh build/);
  } finally {
    rmSync(dist, { recursive: true, force: true });
  }
});
