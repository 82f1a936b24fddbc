// Main-thread cost of the monitor in a page view, measured in headless
// Chromium on the test pages, with the monitor and without it in the same
// run (a second fake server answers 404 for /tagwatch/; page views of the
// two variants alternate, so that the machine's load drifts over both),
// RUNS page views of each. Per page:
//
//   * the monitor's own main-thread time in the first WINDOW_MS of a page
//     view (from navigation start), from V8's sampling profiler (DevTools
//     Profiler, SAMPLING_US interval, started before navigation): samples
//     in the monitor's scripts (everything served under /tagwatch/) and
//     wasm, plus the browser functions they called (tools/cpu-profile.mjs);
//     and where it goes: per file, top functions, top entry points, top paths (the outermost
//     monitor JS frames: the brain's start steps apart);
//   * the page's total main-thread task and script time at WINDOW_MS
//     (DevTools Performance.getMetrics TaskDuration, ScriptDuration), with
//     vs without, and whether the difference is within run-to-run noise (a
//     bootstrap 90% interval of the difference of medians that contains 0);
//   * long tasks (>= 50 ms, the page's own `longtask` PerformanceObserver,
//     added before any page script) in the window, and how many of them
//     contain samples of the monitor (and its time inside them);
//   * on the quiet page, the steady state: the monitor's time and the
//     page's task and script time per 5 s from STEADY_FROM_MS to STEADY_TO_MS
//     (and, with STEADY_ALSO_TO_MS, the same for STEADY_FROM_MS to it, from
//     the same page views: e.g. STEADY_TO_MS=70000 STEADY_ALSO_TO_MS=30000
//     gives the long window's average beside the default window's).
//
// Pages (PAGES, comma-separated): no-consent (Intercom before consent, the
// scenario page), busy-images (120 third-party images from 12 hosts, 25
// cookies, Intercom before consent), busy (300 resources from 30 hosts,
// 25 cookies, Intercom before consent), quiet (nothing happens after load).
//
//   node tools/bench-page.mjs          (also run by ./build.sh bench)
//   RUNS=15 PAGES=busy,quiet node tools/bench-page.mjs
//   BENCH_JSON=target/bench-page.json  also writes every page view's numbers
//   PROFILES=target/profiles   also keeps every page view's CPU profile
//                              (<page>-<with|without>-<n>.cpuprofile: open it in DevTools)
//   DIST=dir                   the "with" variant serves the monitor built in dir
//                              (default dist/: a copy keeps a run's build fixed
//                              while the next one is built); SYMBOLS=dir its name
//                              maps (default target/symbols/)
//   BASELINE_DIST=dir          the "without" variant serves the monitor built in
//                              dir (another build's dist/) instead of none: two
//                              builds compared in the same run, under the same
//                              load ("without" is then the baseline's cost)
//   TRACE=1                    also takes a Chrome trace of each page view's first
//                              WINDOW_MS (tools/cpu-trace.mjs): a second figure, the
//                              monitor's main-thread CPU time (each task's thread
//                              CPU time shared by the profile's samples in it: no
//                              descheduled gap counts), the tasks it ran in, and
//                              what its long samples (> 300 µs) were made of;
//                              TRACES=dir keeps the traces (<page>-<variant>-<n>.json)
//   WITH_ARGS=flags, WITHOUT_ARGS=flags  extra Chromium flags for one variant's
//                              browser (space-separated; a diagnostic such as
//                              --js-flags=--no-wasm-lazy-compilation, which no
//                              page can set: it bounds what a cost is made of)
//
// The profiler costs both variants alike (more samples, more overhead);
// medians and same-run differences, not absolute numbers, are the result.
// Method and results: docs/benchmarks.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import {
  REPO_ROOT, SHOP_ORIGIN, launchBrowser, pageUrl, requireChromium, requireCollectorBuilt, requireMonitorBuilt, sleep,
  startCollector, startFake,
} from '../tests/e2e/harness.mjs';
import { attribute, classifier, names, prepare, timeIn } from './cpu-profile.mjs';
import { CATEGORIES, LONG_SAMPLE_US, mainThread, traceFigure } from './cpu-trace.mjs';

const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? process.env[k] : d);
const RUNS = Number(env('RUNS', 9));
const PAGES = env('PAGES', 'no-consent,busy-images,busy,quiet').split(',').map((s) => s.trim()).filter(Boolean);
const SAMPLING_US = Number(env('SAMPLING_US', 100));
const WINDOW_MS = Number(env('WINDOW_MS', 8000));
const STEADY_FROM_MS = Number(env('STEADY_FROM_MS', 10000));
const STEADY_TO_MS = Number(env('STEADY_TO_MS', 30000));
const STEADY_ALSO_TO_MS = Number(env('STEADY_ALSO_TO_MS', 0));
const TOP = Number(env('TOP', 12));
const JSON_OUT = env('BENCH_JSON', '');
const PROFILES = env('PROFILES', '');
const BASELINE_DIST = env('BASELINE_DIST', '');
const DIST = env('DIST', '');
const TRACES = env('TRACES', '');
const TRACE = TRACES !== '' || env('TRACE', '') !== '';
const ARGS = { with: env('WITH_ARGS', '').split(' ').filter(Boolean), without: env('WITHOUT_ARGS', '').split(' ').filter(Boolean) };
// The long-task line (the Long Tasks API's threshold).
const LONG_TASK_MS = 50;
// Pages whose steady state is measured after the page-view window.
const STEADY_PAGES = new Set(['quiet']);
// The monitor's files: everything the shop serves under this prefix.
const MONITOR_PREFIX = `${SHOP_ORIGIN}/tagwatch/`;
const SYMBOLS_DIR = env('SYMBOLS', join(REPO_ROOT, 'target/symbols'));
// Bootstrap resamples for the noise interval (fixed seed: the same data give the same verdict).
const BOOTSTRAP = 2000;

const isMonitor = (url) => url.startsWith(MONITOR_PREFIX) || url.startsWith('wasm://');

// The page's long tasks, and when the monitor's wasm arrived, recorded
// before any page script runs; the properties are not enumerable so that
// nothing scanning `window` sees them.
function longTaskRecorder() {
  if (window !== window.top) return;
  const tasks = [];
  Object.defineProperty(window, '__twBenchLongTasks', { value: tasks });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) tasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch { /* no Long Tasks API: none recorded */ }
  // When the monitor's wasm arrived (an observer: a busy page fills the
  // 250-entry buffer before it is asked for).
  const wasm = [];
  Object.defineProperty(window, '__twBenchWasm', { value: wasm });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (/\/tagwatch\/[^/]*\.wasm$/.test(e.name)) wasm.push(e.responseEnd);
    }).observe({ type: 'resource', buffered: true });
  } catch { /* no Resource Timing */ }
}

async function metrics(cdp) {
  const { metrics: m } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(m.map((x) => [x.name, x.value]));
}

/** Sleeps until the browser's monotonic clock reads `tickS` (seconds). */
async function sleepUntil(cdp, tickS) {
  const now = (await metrics(cdp)).Timestamp;
  if (tickS > now) await sleep((tickS - now) * 1000);
}

/** One page view; returns its measures. */
async function pageView({ browser, fake, collector, page: name, monitor, nameOf, n }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
  try {
    await context.addInitScript(longTaskRecorder);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable', { timeDomain: 'timeTicks' });
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: SAMPLING_US });
    const seq0 = fake.requests.length ? fake.requests[fake.requests.length - 1].seq : 0;
    const before = (await metrics(cdp)).Timestamp;
    if (TRACE) await browser.startTracing(page, { categories: CATEGORIES });
    await cdp.send('Profiler.start');
    await page.goto(pageUrl(`${name}.html`, { collector: collector.ingestUrl, site: collector.sites[0] }), { waitUntil: 'commit' });
    let nav = (await metrics(cdp)).NavigationStart;
    for (let i = 0; i < 50 && !(nav >= before); i++) {
      await sleep(20);
      nav = (await metrics(cdp)).NavigationStart;
    }
    if (!(nav >= before)) throw new Error(`${name}: no navigation start after the navigation`);
    const steady = STEADY_PAGES.has(name);
    await sleepUntil(cdp, nav + WINDOW_MS / 1000);
    const atWindow = await metrics(cdp);
    const trace = TRACE ? await browser.stopTracing() : null;
    let steadyFrom = null, steadyTo = null, steadyAlso = null;
    if (steady) {
      await sleepUntil(cdp, nav + STEADY_FROM_MS / 1000);
      steadyFrom = await metrics(cdp);
      if (STEADY_ALSO_TO_MS) {
        await sleepUntil(cdp, nav + STEADY_ALSO_TO_MS / 1000);
        steadyAlso = await metrics(cdp);
      }
      await sleepUntil(cdp, nav + STEADY_TO_MS / 1000);
      steadyTo = await metrics(cdp);
    }
    const { profile } = await cdp.send('Profiler.stop');
    const longTasks = await page.evaluate(() => window.__twBenchLongTasks || []).catch(() => []);
    // When the monitor's wasm had arrived (the brain starts after it): a
    // page view whose `load` came late on a loaded machine has its start
    // after the window, and measures less.
    const wasmMs = await page.evaluate(() => (window.__twBenchWasm || [])[0] ?? null).catch(() => null);
    if (TRACES) writeFileSync(join(TRACES, `${name}-${monitor ? 'with' : 'without'}-${n}.json`), trace);
    if (PROFILES) writeFileSync(join(PROFILES, `${name}-${monitor ? 'with' : 'without'}-${n}.cpuprofile`), JSON.stringify(profile));

    const navUs = nav * 1e6;
    const p = prepare(profile);
    const classify = classifier(p, isMonitor, nameOf);
    const win = attribute(p, classify, nameOf, navUs, navUs + WINDOW_MS * 1000);
    const inWindow = longTasks.filter(([s]) => s < WINDOW_MS);
    const ltMonitor = timeIn(p, classify, inWindow.map(([s, d]) => [navUs + s * 1000, navUs + (s + d) * 1000]));
    const out = {
      page: name,
      monitor,
      wasmMs,
      monitorLoaded: fake.requests.some((r) => r.seq > seq0 && r.path.startsWith('/tagwatch/') && r.path.endsWith('.wasm') && r.status === 200),
      errors,
      // the window actually measured (the metrics are read when the sleep ends)
      windowMs: (atWindow.Timestamp - nav) * 1000,
      profiledFromMs: (profile.startTime - navUs) / 1000,
      monitorMs: win.own + win.called,
      monitorOwnMs: win.own,
      monitorCalledMs: win.called,
      files: Object.fromEntries(win.files),
      fns: Object.fromEntries(win.fns),
      entries: Object.fromEntries(win.entries),
      paths: Object.fromEntries(win.paths),
      taskMs: atWindow.TaskDuration * 1000,
      scriptMs: atWindow.ScriptDuration * 1000,
      longTasks: inWindow.map(([s, d], i) => ({ startMs: s, durationMs: d, monitorMs: ltMonitor[i] })),
    };
    if (trace) {
      const thread = mainThread(JSON.parse(trace.toString()).traceEvents || [], isMonitor);
      const t = traceFigure(thread, p, classify, isMonitor, navUs, navUs + WINDOW_MS * 1000);
      out.trace = { ...t, long: { ...t.long, running: Object.fromEntries(t.long.running) } };
    }
    if (steadyAlso) {
      const per5s = 5000 / (STEADY_ALSO_TO_MS - STEADY_FROM_MS);
      const st = attribute(p, classify, nameOf, navUs + STEADY_FROM_MS * 1000, navUs + STEADY_ALSO_TO_MS * 1000);
      out.steadyAlso = {
        monitorMsPer5s: (st.own + st.called) * per5s,
        taskMsPer5s: (steadyAlso.TaskDuration - steadyFrom.TaskDuration) * 1000 * per5s,
        scriptMsPer5s: (steadyAlso.ScriptDuration - steadyFrom.ScriptDuration) * 1000 * per5s,
      };
    }
    if (steady) {
      const per5s = 5000 / (STEADY_TO_MS - STEADY_FROM_MS);
      const st = attribute(p, classify, nameOf, navUs + STEADY_FROM_MS * 1000, navUs + STEADY_TO_MS * 1000);
      out.steady = {
        monitorMsPer5s: (st.own + st.called) * per5s,
        monitorOwnMsPer5s: st.own * per5s,
        taskMsPer5s: (steadyTo.TaskDuration - steadyFrom.TaskDuration) * 1000 * per5s,
        scriptMsPer5s: (steadyTo.ScriptDuration - steadyFrom.ScriptDuration) * 1000 * per5s,
        fns: Object.fromEntries([...st.fns].map(([k, v]) => [k, v * per5s])),
        longTasks: longTasks.filter(([s]) => s >= STEADY_FROM_MS && s < STEADY_TO_MS).length,
      };
    }
    return out;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---- statistics ---------------------------------------------------------------

const sorted = (xs) => [...xs].sort((a, b) => a - b);
function median(xs) {
  const s = sorted(xs);
  const n = s.length;
  return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN;
}
function lcg(seed) {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
/** 90% bootstrap interval of median(b) - median(a). */
function diffInterval(a, b) {
  const rnd = lcg(0x7a9);
  const pick = (xs) => Array.from(xs, () => xs[Math.floor(rnd() * xs.length)]);
  const d = sorted(Array.from({ length: BOOTSTRAP }, () => median(pick(b)) - median(pick(a))));
  return [d[Math.floor(BOOTSTRAP * 0.05)], d[Math.floor(BOOTSTRAP * 0.95)]];
}

// ---- report ---------------------------------------------------------------------

const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : '—');
const cell = (xs) => `${f1(median(xs))} [${f1(Math.min(...xs))}–${f1(Math.max(...xs))}]`;
const sgn = (v) => (v >= 0 ? `+${f1(v)}` : f1(v));

function table(rows, widths) {
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
}

function compareRow(label, a, b) {
  const [lo, hi] = diffInterval(a, b);
  const verdict = lo > 0 ? 'larger with' : hi < 0 ? 'smaller with' : 'within noise';
  return [label, cell(a), cell(b), sgn(median(b) - median(a)), `[${sgn(lo)}, ${sgn(hi)}]`, verdict];
}

/** Mean per page view of the `key` maps of `runs`, top `n`. */
function top(runs, key, n) {
  const sum = new Map();
  for (const r of runs) for (const [k, v] of Object.entries(key(r) || {})) sum.set(k, (sum.get(k) || 0) + v);
  return [...sum].map(([k, v]) => [k, v / runs.length]).sort((x, y) => y[1] - x[1]).slice(0, n);
}

function report(name, runs) {
  const without = runs.filter((r) => !r.monitor);
  const withM = runs.filter((r) => r.monitor);
  const col = (rs, k) => rs.map((r) => r[k]);
  console.log(`\n## ${name}.html — ${withM.length} page views with the monitor, ${without.length} without; first ${WINDOW_MS / 1000} s of each; median [min–max], ms`);
  const notLoaded = withM.filter((r) => !r.monitorLoaded).length;
  if (notLoaded) console.log(`!! the monitor's wasm was not fetched in ${notLoaded} of ${withM.length} page views with it`);
  const late = (rs) => rs.filter((r) => r.monitorLoaded && !(r.wasmMs < WINDOW_MS)).length;
  if (late(withM) || (BASELINE_DIST && late(without))) {
    console.log(`!! the monitor's wasm arrived after the window (its start not measured) in ${late(withM)} of ${withM.length} page views with it` +
      (BASELINE_DIST ? `, ${late(without)} of ${without.length} of the baseline` : ''));
  }
  const errs = runs.reduce((n, r) => n + r.errors.length, 0);
  if (errs) console.log(`!! ${errs} page errors: ${[...new Set(runs.flatMap((r) => r.errors))].slice(0, 3).join(' | ')}`);
  const lt = (rs) => rs.map((r) => r.longTasks.length);
  const ltMon = (rs) => rs.map((r) => r.longTasks.filter((t) => t.monitorMs > 0).length);
  const ltMonMs = (rs) => rs.map((r) => r.longTasks.reduce((s, t) => s + t.monitorMs, 0));
  const longest = (rs) => rs.map((r) => Math.max(0, ...r.longTasks.map((t) => t.durationMs)));
  table([
    ['metric', 'without', 'with', 'difference', '90% interval', 'verdict'],
    ['monitor\'s main-thread time (own + calls)', cell(col(without, 'monitorMs')), cell(col(withM, 'monitorMs')), '', '', ''],
    ['  own frames (its JS and wasm)', cell(col(without, 'monitorOwnMs')), cell(col(withM, 'monitorOwnMs')), '', '', ''],
    ['  browser functions it called', cell(col(without, 'monitorCalledMs')), cell(col(withM, 'monitorCalledMs')), '', '', ''],
    compareRow('page: all main-thread tasks', col(without, 'taskMs'), col(withM, 'taskMs')),
    compareRow('page: script', col(without, 'scriptMs'), col(withM, 'scriptMs')),
    compareRow(`long tasks >= ${LONG_TASK_MS} ms (count)`, lt(without), lt(withM)),
    ['  longest long task', cell(longest(without)), cell(longest(withM)), '', '', ''],
    ['  long tasks with monitor samples (count)', cell(ltMon(without)), cell(ltMon(withM)), '', '', ''],
    ['  monitor time inside long tasks', cell(ltMonMs(without)), cell(ltMonMs(withM)), '', '', ''],
  ], [42, 20, 20, 10, 18, 12]);
  if (withM.some((r) => r.trace)) {
    const tr = (rs, k) => rs.filter((r) => r.trace).map((r) => r.trace[k]);
    const lg = (rs, k) => rs.filter((r) => r.trace).map((r) => r.trace.long[k]);
    console.log(`\n  the second figure (a Chrome trace with each profile: tasks' thread CPU time shared by their samples):`);
    table([
      ['metric', 'without', 'with'],
      ['monitor\'s main-thread CPU time', cell(tr(without, 'cpuMs')), cell(tr(withM, 'cpuMs'))],
      ['  the same, wall time of its tasks\' share', cell(tr(without, 'wallMs')), cell(tr(withM, 'wallMs'))],
      ['  tasks the monitor ran in (count)', cell(tr(without, 'tasks')), cell(tr(withM, 'tasks'))],
      [`monitor samples > ${LONG_SAMPLE_US} µs (count)`, cell(lg(without, 'samples')), cell(lg(withM, 'samples'))],
      ['  their sampled time', cell(lg(without, 'ms')), cell(lg(withM, 'ms'))],
      ['  of it: the thread running a task', cell(lg(without, 'inTaskRunningMs')), cell(lg(withM, 'inTaskRunningMs'))],
      ['  of it: descheduled inside a task', cell(lg(without, 'inTaskDescheduledMs')), cell(lg(withM, 'inTaskDescheduledMs'))],
      ['  of it: outside any task', cell(lg(without, 'outsideMs')), cell(lg(withM, 'outsideMs'))],
    ], [42, 20, 20]);
    table([['  what ran in the long samples\' gaps, innermost trace event (mean ms per page view with it)', 'ms'],
      ...top(withM.filter((r) => r.trace), (r) => r.trace.long.running, 8).map(([k, v]) => [`    ${k}`, v.toFixed(2)])], [122, 8]);
  }
  console.log(`  (window measured: ${f1(median(col(runs, 'windowMs')))} ms median; profile from ${f1(median(col(runs, 'profiledFromMs')))} ms after navigation start)`);

  console.log(`\n  where the monitor's ${f1(median(col(withM, 'monitorMs')))} ms go (mean per page view with it):`);
  table([['  by file', 'ms'], ...top(withM, (r) => r.files, 10).map(([k, v]) => [`    ${k}`, f1(v)])], [70, 8]);
  table([['  top functions (self time)', 'ms'], ...top(withM, (r) => r.fns, TOP).map(([k, v]) => [`    ${k}`, f1(v)])], [122, 8]);
  table([['  top entry points (outermost monitor frame)', 'ms'], ...top(withM, (r) => r.entries, TOP).map(([k, v]) => [`    ${k}`, f1(v)])], [122, 8]);
  table([['  top paths (outermost monitor JS frames › outermost wasm function)', 'ms'], ...top(withM, (r) => r.paths, TOP).map(([k, v]) => [`    ${k}`, f1(v)])], [122, 8]);

  if (withM.some((r) => r.steady)) {
    const s = (rs, k) => rs.map((r) => r.steady[k]);
    console.log(`\n  steady state, ${STEADY_FROM_MS / 1000}–${STEADY_TO_MS / 1000} s after navigation, per 5 s:`);
    table([
      ['metric', 'without', 'with', 'difference', '90% interval', 'verdict'],
      ['monitor\'s main-thread time (own + calls)', cell(s(without, 'monitorMsPer5s')), cell(s(withM, 'monitorMsPer5s')), '', '', ''],
      ['  own frames', cell(s(without, 'monitorOwnMsPer5s')), cell(s(withM, 'monitorOwnMsPer5s')), '', '', ''],
      compareRow('page: all main-thread tasks', s(without, 'taskMsPer5s'), s(withM, 'taskMsPer5s')),
      compareRow('page: script', s(without, 'scriptMsPer5s'), s(withM, 'scriptMsPer5s')),
      ['long tasks (count)', cell(s(without, 'longTasks')), cell(s(withM, 'longTasks')), '', '', ''],
    ], [42, 20, 20, 10, 18, 12]);
    if (withM.some((r) => r.steadyAlso)) {
      const a = (rs, k) => rs.map((r) => r.steadyAlso[k]);
      console.log(`\n  steady state, ${STEADY_FROM_MS / 1000}–${STEADY_ALSO_TO_MS / 1000} s after navigation (the same page views), per 5 s:`);
      table([
        ['metric', 'without', 'with', 'difference', '90% interval', 'verdict'],
        ['monitor\'s main-thread time (own + calls)', cell(a(without, 'monitorMsPer5s')), cell(a(withM, 'monitorMsPer5s')), '', '', ''],
        compareRow('page: all main-thread tasks', a(without, 'taskMsPer5s'), a(withM, 'taskMsPer5s')),
        compareRow('page: script', a(without, 'scriptMsPer5s'), a(withM, 'scriptMsPer5s')),
      ], [42, 20, 20, 10, 18, 12]);
    }
    table([['  top functions, steady state (per 5 s)', 'ms'], ...top(withM, (r) => r.steady.fns, 8).map(([k, v]) => [`    ${k}`, v.toFixed(2)])], [122, 8]);
  }
}

// ---- main -------------------------------------------------------------------------

requireMonitorBuilt();
requireCollectorBuilt();
requireChromium();
if (PROFILES) mkdirSync(PROFILES, { recursive: true });
if (TRACES) mkdirSync(TRACES, { recursive: true });
const started = new Date();
const load0 = loadavg();
const fakes = {
  with: await startFake(DIST ? { serveMonitor: true, distDir: DIST } : { serveMonitor: true }),
  without: await startFake(BASELINE_DIST ? { serveMonitor: true, distDir: BASELINE_DIST } : { serveMonitor: false }),
};
const collector = await startCollector({ siteCount: 1, extraArgs: ['--rate', '0', '--client-rate', '0'] });
const browsers = { with: await launchBrowser(fakes.with, ARGS.with), without: await launchBrowser(fakes.without, ARGS.without) };
const { name: nameOf, notes } = names(SYMBOLS_DIR, MONITOR_PREFIX);
const all = [];
try {
  console.log(`page cost: ${RUNS} page views per page and variant, alternating; profiler every ${SAMPLING_US} µs; ` +
    `Chromium ${browsers.with.version()}; ${cpus().length} CPUs; load average ${load0.map((v) => v.toFixed(2)).join(' ')}; ${started.toISOString()}`);
  if (DIST) console.log(`"with" is the monitor built in ${DIST} (DIST)`);
  if (BASELINE_DIST) console.log(`"without" is the monitor built in ${BASELINE_DIST} (BASELINE_DIST), not the page alone`);
  for (const v of ['with', 'without']) if (ARGS[v].length) console.log(`"${v}" runs Chromium with ${ARGS[v].join(' ')}`);
  for (const page of PAGES) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      for (const variant of i % 2 ? ['with', 'without'] : ['without', 'with']) {
        const r = await pageView({ browser: browsers[variant], fake: fakes[variant], collector, page, monitor: variant === 'with', nameOf, n: i + 1 });
        runs.push(r);
        process.stderr.write(`${page} ${variant} #${i + 1}: monitor ${f1(r.monitorMs)} ms, tasks ${f1(r.taskMs)} ms, long tasks ${r.longTasks.length}\n`);
      }
    }
    all.push(...runs);
    report(page, runs);
  }
  console.log(`\nnames: ${[...new Set(notes)].join('; ')}`);
  console.log(`load average at the end: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  if (JSON_OUT) {
    writeFileSync(JSON_OUT, JSON.stringify({ started, load: [load0, loadavg()], runs: RUNS, samplingUs: SAMPLING_US, windowMs: WINDOW_MS, results: all }, null, 1));
    console.log(`every page view: ${JSON_OUT}`);
  }
} finally {
  for (const b of Object.values(browsers)) await b.close().catch(() => {});
  await collector.stop();
  for (const f of Object.values(fakes)) await f.close();
}
