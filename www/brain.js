/* tagwatch brain (dist/tagwatch_bg.js): the ES module the loader imports
 * after the page's `load`. tools/bundle.mjs makes it from wasm-bindgen's
 * glue, www/consent.js, www/observe.js and this file, in one
 * module scope that exports `start` only (nothing reaches the page's
 * globals).
 *
 * `start(h)` gets what the loader has: the compiled wasm module (or why it
 * failed), the page's config, the network and WebAssembly functions, the
 * text encoder, the clocks, Math.random, the glue's built-ins, Global
 * Privacy Control and the user agent taken before the page's scripts ran
 * (docs/hostile-pages.md), and everything kept before (entries,
 * cookies, API calls, gestures, commands, with their times). It
 * instantiates the monitor (meanwhile a worker made from this script
 * compiles the start's wasm functions: `warmer`) and starts it in short
 * steps, each in an idle
 * callback: replays what was kept and takes the loader's events live
 * (observing the page: www/observe.js), attaches the consent adapters
 * (www/consent.js), then takes the first sweep. It implements the snippet's host (src/host.rs) on
 * `window`. Its health reports carry the page's origin only, as the
 * loader's do (no page data). The on-demand pieces the monitor asks for (src/pieces.rs:
 * the CMP cookie reader, the GPP US decoder) are fetched from `ondemand/`
 * beside the wasm, instantiated and handed to it. */

// The start's steps run in idle callbacks; one more runs in the same
// callback only while this much idle time is left, in ms.
var STEP_MS = 4;
// The longest a step waits for idle time, in ms.
var STEP_WAIT_MS = 1000;
// The longest the monitor's start waits for the consent adapters the
// consent step asked for (`begin`), in ms: they are one small file beside
// this one; a request that never answers must not keep the sweeps off.
var ADAPTERS_WAIT_MS = 2000;

// The glue instantiates through `WebAssembly.*`: in this module the name is
// the browser's functions as the loader took them (set in `start`).
var WebAssembly;

// The wasm's functions are compiled lazily, each on its first call, on the
// thread that calls it: most of the start's steps on the main thread were
// that (docs/benchmarks.md, "the start's wasm compiled in a worker"). A
// compiled module's code is one for every thread that has the module, so
// a dedicated worker made from this same script (`warm`) instantiates it
// and makes the start's calls once on sample data, with a host that sees
// everything and sends nothing, while the main thread instantiates; the
// first step waits for it at most WARM_WAIT_MS and finds those functions
// compiled. Where no worker can be made (the brain served from another
// origin than the page, a CSP without it, no module workers) or it fails,
// the steps compile as they run, as before. Nothing the worker does
// reaches the page view.
var WARM_WAIT_MS = 1000;
// The sample: a catalog vendor with a watched API: [vendor, verb, one of
// its hosts, one of its cookie names] (filled in by tools/bundle.mjs).
var WARM = /* WARM */[];

// The site's `policy` as lines, one per value (`Policy::from_lines`
// reads them: no JSON scanner in the page): the keys leading to it, each
// and a TAB (an array's item: an empty key), then `"` and the text, `b`,
// `n` (null) or `[` (an array begins); none for no policy. Written here,
// when the brain starts, from the value the page gave `config` (the loader
// keeps it as it is: the line writer is no work on the page's critical
// path): own enumerable data only, at most 8 levels and 1000 items a
// level; a TAB or line break in a key or a text becomes a space; a read
// that throws drops the whole policy (`policyLines`).
function lines(v, path, depth) {
  var t = typeof v;
  if (t === 'string' || t === 'number') return path + '"' + flat(v) + '\n';
  if (t === 'boolean') return path + 'b\n';
  if (!v || t !== 'object' || depth > 8) return path && path + 'n\n';
  var list = Array.isArray(v);
  var keys = list ? v : Object.keys(v);
  var out = list ? path + '[\n' : '';
  for (var i = 0; i < keys.length && i < 1000; i++) {
    out += lines(v[list ? i : keys[i]], path + (list ? '' : flat(keys[i])) + '\t', depth + 1);
  }
  return out;
}
function flat(v) { return String(v).replace(/[\t\n\r]/g, ' '); }
function policyLines(v) { try { return lines(v, '', 0); } catch (e) { return ''; } }

export function start(h) {
  try { run(h); } catch (e) { /* a guest never breaks its host */ }
}

// In the worker `warmer` makes, this script is the worker's own: it waits
// for the module and runs `warm`.
if (typeof window === 'undefined' && typeof self === 'object') {
  self.onmessage = function (e) {
    var done = function () { self.postMessage(1); };
    try { warm(e.data).then(done, done); } catch (x) { done(); }
  };
}

// The start's calls into the monitor once, on the sample: compiles them.
function warm(d) {
  WebAssembly = globalThis.WebAssembly;
  return wasm_bindgen(d.module).then(function () {
    var yes = function (list) { return list ? list.split('\n').map(function () { return '1'; }).join('') : ''; };
    var url = 'https://' + WARM[2] + '/a.js';
    var m = wasm_bindgen;
    m.monitor({
      send: function () {},
      present: function (globals, ids, scripts) { return yes(globals) + yes(ids) + yes(scripts); },
      script: function () { return { name: url, startTime: 1, initiatorType: 'script' }; },
      value: function () { return {}; }
    }, d.site, 'https://collector.invalid/', 'https://page.invalid/a?b#c', String(navigator.userAgent), 0);
    if (d.policy) m.policy(d.policy);
    m.release('1');
    m.gpc(false);
    m.cookies('a=1; ' + WARM[3] + '=1', 0);
    m.entries(url + '\nhttps://other.invalid/b.png\nhttps://page.invalid/c.css', 'script\nimg\nlink', new Float64Array(12), 'top');
    m.api_call(WARM[0], WARM[1], {}, 1);
    m.gesture(1);
    m.consent(1, 0, 0, 0, -1);
    m.wants_expiry();
    m.wanted();
    m.start(2);
    m.cookies('a=2; ' + WARM[3] + '=2', 3);
    m.tick(4);
    m.cmp('onetrust', 'C0002', [1], 1, 5, 0);
    m.tcf(1, 'useractioncomplete', [1], [1], 6);
    m.consent_mode('update', 'analytics_storage', 'granted', 7);
    m.consent(1, 1, 1, 1, 8);
    m.tick(9);
    m.flush(10);
    m.findings(11);
  });
}

// Starts the worker that compiles the start's wasm (`warm`, above);
// answers `after(fn)`: fn once the worker is done, failed, or
// WARM_WAIT_MS passed, at once where there is no worker.
function warmer(module, site, policy) {
  var W = window;
  var waiting = null;
  var worker;
  var timer;
  function end() {
    if (!worker) return;
    try { worker.terminate(); W.clearTimeout(timer); } catch (e) { /* gone */ }
    worker = null;
    if (waiting) waiting();
  }
  try {
    worker = new W.Worker(import.meta.url, { type: 'module' });
    worker.onmessage = worker.onerror = end;
    worker.postMessage({ module: module, site: site, policy: policy });
    timer = W.setTimeout(end, WARM_WAIT_MS);
  } catch (e) { end(); worker = null; }
  return function (fn) {
    if (worker) waiting = fn;
    else fn();
  };
}

// What the loader hands over (www/loader.js `begin`), in this order: an
// array, not an object (its property names were 67 of the loader's 3,072
// bytes of gzip). The page's config; the network (www/host.js); the
// WebAssembly functions as the loader took them ([compile,
// compileStreaming, instantiate, Instance, Module]); the compiled module,
// or why there is none; what the loader kept ([kind, time, data]); the
// cookies when it ran (the Cookie Store's list or `document.cookie`);
// `sync`: the page view ends, start at once; the browser's encodeInto and
// the glue's built-ins (`taken`: the six the glue leans on, `Date.now`,
// Global Privacy Control, `performance.getEntriesByName` and the
// `performance` it belongs to, the Cookie Store's `getAll` and the store);
// the time the loader ran, its clock and Math.random; its
// PerformanceObserver and the browser's `getEntries` of entry lists and
// `takeRecords` of observers; its health report writer; its JSON.parse;
// the user agent when it ran; its `on(target, type, fn, options)` (the
// browser's addEventListener); then `tampered(fn)` (fn hears of
// a network API found broken), `gesture()` (the trusted click or key press
// being handled, else -1), `hook()` (the vendor APIs hooked again) and
// `receive(fn)` (fn gets what the loader hears from then on).
function run([config, net, [, , instantiate, Instance, Module], module, early, cookie, sync, encodeInto, taken, t0, now, random,
  observer, entries, records, report, parse, agent, on, tampered, gesture, hook, receiveLive]) {
  var W = window;
  var D = document;
  var told = {};
  var m;
  var page;

  function name(e) { try { return String(e.name); } catch (x) { return 'Error'; } }

  // One report without the monitor, once per status: the loader's writer
  // (the page's origin only, as every health report).
  function health(status, reason) {
    if (told[status]) return;
    told[status] = 1;
    report(status, reason);
  }
  tampered(function (api) { health('tampered', api); });
  // Strings go into the wasm by the browser's encoder as the loader took it,
  // once the glue found it sound, else by the glue's own; the page view id
  // from the loader's Math.random; the typed arrays and WebAssembly members
  // every call into the wasm leans on as the loader took them
  // (tools/minify-imports.mjs `builtins`).
  var encode = wasm_bindgen.encoder(encodeInto, random, taken);
  if (encode !== encodeInto) health('tampered', 'TextEncoder');
  // Global Privacy Control, the clock cookie lifetimes are judged by
  // (`Date.now`), `performance.getEntriesByName` (a vendor's `<script id>`
  // marker) and the Cookie Store's `getAll` (the cookies' expiry dates) as
  // the loader took them at parse time (`taken`, after the glue's six),
  // else as they are now: the brain starts after `load`, and a page that
  // hid GPC, skewed the clock or filtered the entries or the cookies by
  // then would change the findings. What the loader took is called through
  // its `Reflect.apply` (`taken[2]`), as the glue calls its built-ins.
  var took = taken || [0, 0, Reflect.apply, 0, 0, 0, Date.now, navigator.globalPrivacyControl,
    performance.getEntriesByName, performance, (W.cookieStore || 0).getAll, W.cookieStore];
  var call = took[2];
  var store = took[11];

  // What the glue (tools/bundle.mjs `__wbg_start`) and `piece` use: no
  // `Module` (the module comes compiled).
  WebAssembly = {
    Instance: Instance,
    // The browser's own never throws (it rejects): one that does was
    // replaced before the loader ran; instantiate apart.
    instantiate: function (module, imports) {
      try { return instantiate(module, imports); } catch (e) {
        health('tampered', 'WebAssembly.instantiate');
        return Promise.resolve(new Instance(module, imports));
      }
    }
  };
  if (!Module) return health('wasm_unavailable', 'NoWebAssembly');
  if (!(module instanceof Module)) return health('wasm_unavailable', name(module));
  var host = windowHost(net.send, function (url) { return call(took[8], took[9], [url]); }, on);   // www/observe.js
  var policy = policyLines(config.policy);
  var warmed = function (fn) { fn(); };


  // The start in steps, each in an idle callback (a busy page's start in
  // one task was a long task): the monitor and the replay of what the
  // loader kept, the consent adapters, then the first sweep. The adapters
  // attach before the start (`m.start`), while the gestures and cookie
  // changes still go to the evidence that dates what they find
  // (src/prestart.rs). A page view that ends, and a `flush` or `findings`
  // command, finish the start at once (`rest`) before anything is read.
  // (No step waits for the network but `begin`, for the consent adapters
  // at most ADAPTERS_WAIT_MS: each reads what is there.)
  var steps = [];
  var step = 0;
  var paused = 0;   // `begin` waits for the consent adapters
  function run1() {
    try { steps[step++](); } catch (e) { /* that step only */ }
  }
  function next(deadline) {
    do run1();
    while (step < steps.length && !paused && deadline.timeRemaining() >= STEP_MS);
    if (step < steps.length && !paused) idle();
  }
  function rest() {
    while (step < steps.length) run1();
  }
  function idle() {
    try { W.requestIdleCallback(next, { timeout: STEP_WAIT_MS }); } catch (e) {
      // Neither (a page that broke both): the rest at the page view's end.
      try { W.setTimeout(function () { next({ timeRemaining: function () { return 0; } }); }, 0); } catch (x) { /* as above */ }
    }
  }

  function go() {
    steps = [replay, consent, begin];
    if (sync) return rest();
    // The page view ends (or is hidden) before the last step: the rest at
    // once, then what the page view's end does (www/observe.js), whose own
    // listener is not there yet when the end comes before the first step.
    var end = function () {
      if (step < steps.length) try { rest(); page.exit(); } catch (e) { /* as far as it got */ }
    };
    on(W, 'pagehide', end);
    on(D, 'visibilitychange', function () { if (D.visibilityState === 'hidden') end(); });
    warmed(function () { if (step < steps.length) idle(); });
  }

  var poll = function () {};
  var flush = false;
  // The entry lists the observers deliver (the loader's for the top
  // document, observe.js's for each same-origin frame) are held until the
  // next other call into the monitor and judged then, consecutive lists of
  // one document together, in one crossing (`m.entries`, at most
  // MAX_BATCH entries): a busy page's resources come one or two a
  // delivery, dozens of deliveries before the start and after it, each a
  // crossing of its own when judged alone. Every call on `m` judges what is
  // held first (`gated`): the engine gets the same inputs in the same
  // order, consecutive lists merged. The sweeps (a full one within
  // SWEEP_SOON_MS of a list held: `page.wake()`) and the page view's end
  // are such calls: nothing held is left unjudged.
  var kept = [];   // entries of one document, in order
  var keptOff, keptLabel;
  function judgeKept() {
    var list = kept;
    kept = [];
    if (list.length) page.judge(list, keptOff, keptLabel);
  }
  function hold(list, off, label) {
    if (off !== keptOff || label !== keptLabel) judgeKept();
    keptOff = off;
    keptLabel = label;
    if (page) page.wake();
    for (var j = 0; j < list.length && j < MAX_BATCH; j++) {
      try { kept.push(list[j]); } catch (x) { /* a forged entry: skipped */ }
      if (kept.length >= MAX_BATCH) judgeKept();
    }
  }
  function replay() {
    wasm_bindgen.monitor(host, String(config.site), String(config.collector), String(location.href),
      agent, t0);
    m = gated(wasm_bindgen, judgeKept);
    if (policy) m.policy(policy);
    if (config.release) m.release(config.release);
    m.gpc(took[7] === true);
    page = observe(m, {
      store: store && { getAll: function () { return call(took[10], store, []); } },
      events: !!store,
      cookies: function (header) { return header; },
      entries: function () { /* the loader's observer, through `receive` */ },
      drain: function () {
        try { hold(call(records, observer, []), 0, 'top'); } catch (e) { /* no observer */ }
      },
      list: function (list) { return call(entries, list, []); },
      records: function (obs) { return call(records, obs, []); },
      on: on,
      poll: function () { hook(); poll(); },
      check: host,
      hold: hold,
      held: held,
      now: now,
      date: took[6]
    });
    // What was kept, in order: cookies as they were when the loader ran
    // (the Cookie Store's list, else `document.cookie`), then each change;
    // entries; calls; gestures; commands.
    var jar = null;
    try {
      var c = cookie;
      if (typeof c === 'string') jar = c;
      else if (c) jar = c.map(function (c) { return c.name + '=' + c.value; }).join('; ');
    } catch (e) { /* unknown: the first read below is the first snapshot */ }
    if (jar !== null) m.cookies(jar, t0);
    // Cookie changes in the same ms are one snapshot (the monitor's clock
    // is in ms: the same result) unless one deletes or rewrites a cookie
    // another set: each snapshot is judged whole.
    var pending = -1;
    var names;
    function snapshot() {
      if (pending >= 0) m.cookies(jar, pending);
      pending = -1;
      names = Object.create(null);
    }
    snapshot();
    for (var n = 0; n < early.length; n++) {
      try {
        var r = early[n];
        if (r[0] === 'c' && jar !== null) {
          var set = r[2][0] || [];
          var joins = pending === Math.floor(r[1]) && !(r[2][1] || []).length;
          for (var k = 0; k < set.length && joins; k++) joins = !names[set[k].name];
          if (!joins) snapshot();
          for (k = 0; k < set.length; k++) names[set[k].name] = 1;
          jar = changed(jar, r[2][0], r[2][1]);
          pending = Math.floor(r[1]);
          continue;
        }
        snapshot();
        if (r[0] === 'k' && r[2][0] === 'flush') flush = true;
        else if (r[0] === 'g') m.gesture(r[1]);
        else if (r[0] !== 'c') receive(r[0], r[1], r[2]);
      } catch (e) { /* that one only */ }
    }
    snapshot();
    receiveLive(function (kind, t, data) {
      page.wake();
      if (kind === 'c') { page.cookies(t); need(); }
      else if (kind === 'g') m.gesture(t);   // before the start only (src/prestart.rs)
      else return receive(kind, t, data);
    });
    // The loader's snapshot and its changes are the cookies now; read them
    // again only where there was none (or for the expiry dates the policy
    // asks for).
    if (jar === null || m.wants_expiry()) page.cookies(now());
    need();
  }

  // The consent adapters; each signal after a fresh read of the cookies.
  var coming = null;   // the adapters' import, asked for in this step
  function consent() {
    var sink = {};
    ['cmp', 'tcf', 'gpp', 'consent_mode'].forEach(function (k) {
      sink[k] = function () { page.cookies(now()); m[k].apply(m, arguments); need(); };
    });
    // The adapters of IAB TCF, GPP and the CMPs' own APIs (www/cmp-api.js)
    // come on demand, beside the wasm.
    var watch = watchConsent(sink, gesture, function (ok, fail) {
      coming = import(beside('ondemand/cmp-api.js')).then(function (x) { ok(x.cmpReaders); }, fail);
    }, { parse: parse, now: now, on: on });
    // While a CMP's event waits for them the page view's findings are held,
    // as for a wasm piece (judged without that choice they could be false).
    var send = m.flush;
    m.flush = function (t) { return watch.waiting() ? false : send.call(m, t); };
    poll = function () { watch(); need(); };
  }

  // The monitor starts (`m.start`: from then on a state read at -1 is
  // dated from the gestures and cookie changes kept until then,
  // src/prestart.rs) once the adapters the consent step asked for came,
  // failed or ADAPTERS_WAIT_MS passed: IAB TCF and GPP tell of a choice
  // only through the listener they register, and their first callback
  // (the state found) is dated so. A page view that ends, and `rest()`,
  // start at once (this step again, nothing to wait for).
  function begin() {
    var c = coming;
    if (c) {
      coming = null;
      step--;
      paused = 1;
      var on = function () {
        if (paused && step < steps.length) idle();
        paused = 0;
      };
      c.then(on, on);
      W.setTimeout(on, ADAPTERS_WAIT_MS);
      return;
    }
    page.start();
    if (flush) receive('k', 0, ['flush']);
  }

  // The page view ends while a piece it needs is still on its way: its
  // findings are held (judged without that consent they could be false).
  function held() { health('unmonitored', 'ondemand'); }

  // The pieces the monitor asks for, each fetched once (a piece that does
  // not come leaves its consent unread, as before the monitor had it).
  function need() {
    var wanted = m.wanted();
    if (wanted & 1) piece(1, 'cmp-cookies');
    if (wanted & 2) piece(2, 'gpp-us');
  }
  function piece(kind, file) {
    net.get(beside('ondemand/' + file + '.wasm'), { referrerPolicy: 'no-referrer' }).then(function (b) {
      return b && WebAssembly.instantiate(b, {});
    }).then(function (r) {
      if (!r) return;
      var x = wasm_bindgen.exportsOf(r.instance);
      // The piece's ABI (pieces/*/src/lib.rs): text written at `input(len)`
      // (room for its UTF-8: at most 3 bytes a UTF-16 unit), its length
      // passed. Its memory's bytes through the glue (the built-ins the
      // loader took).
      m.piece(kind, { call: function (f, s, n) {
        var room = 3 * s.length;
        var p = x.input(room);
        return x[f](encode(s, wasm_bindgen.bytes(x.memory, p, room), room).written, n) >>> 0;
      } });
      page.wake();
    }).then(null, function () { /* unread, as without the piece */ });
  }

  // An event kept or forwarded by the loader.
  function receive(kind, t, d) {
    if (kind === 'e') hold(d, 0, 'top');
    else if (kind === 'a') m.api_call(d[0], d[1], d[2], t);
    else if (kind === 'k') {
      var a = d[1];
      if (d[0] === 'consent' && a) {
        if (t >= 0) page.cookies(t);
        m.consent(a[0], a[1], a[2], a[3], t);
      } else if (d[0] === 'config' && a) {
        var policy = policyLines(a.policy);
        if (policy) m.policy(policy);
        if (a.release) m.release(a.release);
      } else if (d[0] === 'flush') {
        rest();
        page.settle();
        m.flush(now());
      } else if (d[0] === 'findings') {
        rest();
        page.settle();
        return parse(m.findings(now()));
      }
    }
  }

  // Only a failed instantiation is `wasm_unavailable`: what fails after it
  // stays in the page view (every call is guarded).
  // wasm_bindgen(module, sync): the glue as tools/bundle.mjs trims it.
  if (sync) {
    try { wasm_bindgen(module, true); } catch (e) { return health('wasm_unavailable', name(e)); }
    go();
    page.exit();   // read all, one batch sent, `held` where a piece is missing
  } else {
    warmed = warmer(module, String(config.site), policy);
    wasm_bindgen(module).then(go, function (e) { health('wasm_unavailable', name(e)); });
  }
}

// The URL of `path` beside this module (the on-demand pieces): by hand,
// not with the page's `URL`, which a page may have broken by the time the
// brain runs. The loader imports this module by a URL it resolved (no
// query, no fragment: www/loader.js `schedule`).
function beside(path) {
  var here = import.meta.url;
  return here.slice(0, here.lastIndexOf('/') + 1) + path;
}

// `raw` (the glue's functions: the monitor's, src/lib.rs `exports`) with
// each calling `first()` before it.
function gated(raw, first) {
  var g = {};
  Object.keys(raw).forEach(function (k) {
    g[k] = function () { first(); return raw[k].apply(raw, arguments); };
  });
  return g;
}

// A `Cookie` header after a Cookie Store change: `set` cookies replaced or
// added, `deleted` ones removed.
function changed(header, set, deleted) {
  var jar = Object.create(null);
  var order = [];
  function put(k, v) {
    if (!(k in jar)) order.push(k);
    jar[k] = v;
  }
  header.split('; ').forEach(function (pair) {
    var at = pair.indexOf('=');
    put(at < 0 ? '' : pair.slice(0, at), pair.slice(at + 1));
  });
  (set || []).forEach(function (c) { put(String(c.name), String(c.value)); });
  (deleted || []).forEach(function (c) { put(String(c.name), null); });
  return order.filter(function (k) { return jar[k] !== null && (k || jar[k]); })
    .map(function (k) { return k ? k + '=' + jar[k] : jar[k]; }).join('; ');
}
