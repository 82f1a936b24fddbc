// A second figure for the monitor's main-thread time, next to the sampled
// one of tools/cpu-profile.mjs: the same attribution (which samples are
// the monitor's), weighed by the thread's own CPU clock. A Chrome trace
// taken with the profile (the same monotonic clock) has each main-thread
// task (`RunTask`) with its wall time (`dur`) and the thread's CPU time in
// it (`tdur`). A sample's duration is the wall time to the next sample, so
// a renderer descheduled while a monitor frame was on its stack, or a
// sampler that fell behind, gives one sample milliseconds of "monitor
// time" (docs/benchmarks.md: half the sampled figure on a loaded
// machine). Here each task's CPU time is shared by its samples' count: a
// task of 2 ms CPU whose 10 samples are 4 the monitor's counts 0.8 ms,
// however long the gaps between them were. A task no sample fell in (under
// ~100 µs) counts when a call it made (`FunctionCall`, `EvaluateScript`,
// `v8.compile`, …) names a monitor script: those calls' CPU time.
//
// Also what the long samples are made of: for each of the monitor's
// samples longer than LONG_SAMPLE_US, how its gap splits into the thread
// running a task (and which innermost trace event: V8's compile or GC, a
// layout, the page's parse), the thread descheduled inside a task (wall
// minus CPU), and no task at all (the thread idle, the sampler late).
// Method and results: docs/benchmarks.md.

// A sample longer than this (µs) is "long": three sampling intervals at
// the bench's 100 µs (the ninth round's cap).
export const LONG_SAMPLE_US = 300;
// The trace categories the figure needs: the tasks (`toplevel`), the
// calls into scripts and what V8 does inside them (`devtools.timeline`,
// `v8`: compile, GC), the thread names (metadata, always on).
export const CATEGORIES = ['toplevel', 'devtools.timeline', 'v8', 'disabled-by-default-v8.compile'];
// Events that name the script they run (args.data.url).
const CALLS = new Set(['FunctionCall', 'EvaluateScript', 'v8.compile', 'v8.compileModule', 'v8.evaluateModule', 'TimerFire', 'FireIdleCallback']);

const urlOf = (e) => (e.args && e.args.data && (e.args.data.url || e.args.data.fileName)) || (e.args && e.args.fileName) || '';

/**
 * The page's main thread in `events` (a trace's traceEvents): the renderer
 * main thread that evaluated a script `isMonitor` names (the loader's top
 * level), else the one with the most tasks. Returns its complete events
 * (ph 'X'), sorted by start, or [].
 */
export function mainThread(events, isMonitor) {
  const mains = new Set();
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name' && e.args && e.args.name === 'CrRendererMain') mains.add(`${e.pid}:${e.tid}`);
  const by = new Map();
  for (const e of events) {
    const k = `${e.pid}:${e.tid}`;
    if (e.ph !== 'X' || !mains.has(k)) continue;
    if (!by.has(k)) by.set(k, []);
    by.get(k).push(e);
  }
  let best = null;
  let bestScore = -1;
  for (const [k, list] of by) {
    const evaluated = list.some((e) => CALLS.has(e.name) && isMonitor(urlOf(e)));
    const score = (evaluated ? 1e9 : 0) + list.length;
    if (score > bestScore) { best = k; bestScore = score; }
  }
  return best ? by.get(best).sort((a, b) => a.ts - b.ts || b.dur - a.dur) : [];
}

/**
 * The outermost tasks of a main thread's events: [{ ts, end, dur, tdur,
 * events }] (events: those inside it). A task is an outermost event of the
 * `toplevel` category: `ThreadControllerImpl::RunTask`, and the microtask
 * checkpoint Blink runs after it (`BlinkScheduler_PerformMicrotaskCheckpoint`,
 * where promise callbacks run) as one of its own.
 */
export function tasks(thread) {
  const out = [];
  for (const e of thread) {
    const last = out[out.length - 1];
    if (last && e.ts < last.end) { last.events.push(e); continue; }
    if (e.name !== 'RunTask' && !String(e.cat).split(',').includes('toplevel')) continue;
    out.push({ ts: e.ts, end: e.ts + (e.dur || 0), dur: e.dur || 0, tdur: e.tdur ?? e.dur ?? 0, events: [] });
  }
  return out;
}

/**
 * The monitor's main-thread CPU time (ms) in [fromUs, toUs), by the trace's
 * tasks: { cpuMs, wallMs, tasks (how many tasks had the monitor in them),
 * long: { samples, ms, inTaskRunningMs, inTaskDescheduledMs, outsideMs,
 * running: Map(innermost event name → ms) } }. `p` and `classify` are
 * tools/cpu-profile.mjs's for the profile taken with the trace.
 */
export function traceFigure(thread, p, classify, isMonitor, fromUs = -Infinity, toUs = Infinity) {
  const all = tasks(thread);
  const ts = all.filter((t) => t.ts >= fromUs && t.ts < toUs);
  const out = { cpuMs: 0, wallMs: 0, tasks: 0, long: { samples: 0, ms: 0, inTaskRunningMs: 0, inTaskDescheduledMs: 0, outsideMs: 0, running: new Map() } };
  // samples by time: one pass over both sorted lists
  let i = 0;
  for (const t of ts) {
    while (i < p.samples.length && p.times[i] < t.ts) i++;
    let all = 0;
    let mine = 0;
    for (let j = i; j < p.samples.length && p.times[j] < t.end; j++) {
      const leaf = p.byId.get(p.samples[j]);
      if (leaf && leaf.callFrame.functionName === '(idle)') continue;
      all++;
      if (classify(p.samples[j]).kind) mine++;
    }
    let cpu = 0;
    let wall = 0;
    if (all) {
      cpu = (t.tdur * mine) / all;
      wall = (t.dur * mine) / all;
    } else {
      // no sample in it: the CPU time of its outermost calls into the monitor's scripts
      let end = -Infinity;
      for (const e of t.events) {
        if (e.ts < end || !CALLS.has(e.name) || !isMonitor(urlOf(e))) continue;
        end = e.ts + (e.dur || 0);
        cpu += e.tdur ?? e.dur ?? 0;
        wall += e.dur || 0;
      }
    }
    if (cpu > 0 || wall > 0) out.tasks++;
    out.cpuMs += cpu / 1000;
    out.wallMs += wall / 1000;
  }
  // the long samples: where their gaps went
  for (let j = 0; j < p.samples.length; j++) {
    const a = p.times[j];
    const d = p.durations[j];
    if (a < fromUs || a >= toUs || d <= LONG_SAMPLE_US || !classify(p.samples[j]).kind) continue;
    const b = a + d;
    out.long.samples++;
    out.long.ms += d / 1000;
    let covered = 0;
    for (const t of all) {
      if (t.end <= a) continue;
      if (t.ts >= b) break;
      const over = Math.min(b, t.end) - Math.max(a, t.ts);
      covered += over;
      const running = t.dur ? over * Math.min(1, t.tdur / t.dur) : over;
      out.long.inTaskRunningMs += running / 1000;
      out.long.inTaskDescheduledMs += (over - running) / 1000;
      // what ran: the innermost events over the gap, by overlap (the
      // rest of the task's time in the gap: its own, "task")
      const inner = new Map();
      for (const e of t.events) {
        const o = Math.min(b, e.ts + (e.dur || 0)) - Math.max(a, e.ts);
        if (o > 0) inner.set(e, o);
      }
      let named = 0;
      const overlapping = [...inner.keys()];
      for (const [e, o] of inner) {
        // innermost: no other event over the gap inside it (every event
        // in `inner` is over the gap)
        const hasChild = overlapping.some((c) => c !== e && c.ts >= e.ts && c.ts + (c.dur || 0) <= e.ts + (e.dur || 0));
        if (hasChild) continue;
        named += o;
        out.long.running.set(e.name, (out.long.running.get(e.name) || 0) + (o * running) / over / 1000);
      }
      if (over > named) out.long.running.set('(the task itself)', (out.long.running.get('(the task itself)') || 0) + ((over - named) * running) / over / 1000);
    }
    out.long.outsideMs += (d - covered) / 1000;
  }
  return out;
}
