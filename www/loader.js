/* tagwatch loader: the only file a page embeds (dist/tagwatch.js), the
 * only monitor code on the page's critical path. tools/bundle.mjs wraps it
 * with www/host.js in one strict function scope inside one `try`, so the
 * page gets exactly one global, `tagwatch(cmd, arg)`, and nothing it did to
 * its built-ins makes this script throw into it.
 *
 * What it does when it runs, and nothing more:
 *   - takes the browser's own network and WebAssembly functions before the
 *     page's later scripts (the audited ones) can replace them (www/host.js),
 *     and what the brain needs of the page's built-ins after `load`: the text
 *     encoder, the clocks, `URL` and its serialiser (for the URLs it asks
 *     for, once the config is known), `Math.random`, the typed arrays,
 *     Global Privacy Control, the user agent, the entry lists'
 *     `getEntries`, `takeRecords`, `performance.getEntriesByName`, the
 *     Cookie Store's `getAll` and `addEventListener` (docs/hostile-pages.md);
 *   - installs the command queue: `config`, `consent`, `flush`, `findings`;
 *     every call's argument is read at once, one property at a time (a read
 *     that throws counts as missing), and timed (a `policy` is kept as the
 *     page's value: the brain writes it as lines when it starts);
 *   - keeps, with their times, what the monitor must judge from its real
 *     time but could miss by starting later: every Resource Timing entry of
 *     the page (a buffered `PerformanceObserver`: nothing lost past the
 *     250-entry buffer, whose size it leaves alone), the cookies as they
 *     are now (the Cookie Store's list where there is one: reading
 *     `document.cookie` can hold the page) and each `change` after, the calls to the vendor
 *     APIs the catalog watches for identities (`Intercom('update', …)`: the
 *     global becomes an accessor that wraps what the tag assigns), and the
 *     times of the visitor's trusted clicks and key presses (a consent
 *     choice made before the monitor started keeps its real time).
 * It never waits on the network before the page's `load`. After `load`, in
 * idle time (at once when this script runs after `load`; at most
 * LOAD_WAIT_MS after navigation when `load` never comes), it asks for the
 * brain (dist/tagwatch_bg.js: the wasm glue, consent adapters and the page
 * host), the wasm (compiled while it downloads) and the collector's
 * `/config/KEY`, all at once, and hands everything kept to the brain. A page
 * view that ends first is judged at once when the brain is there, else
 * counted in one `unmonitored` health report that carries no page data
 * (the site's release, when it has one). */

// Calls read from the queue the page filled before this script ran: a real
// one holds a few; a hostile `length` must not hold the page.
var MAX_QUEUED = 1000;
// What is kept for the brain before it runs (entry lists, cookie changes,
// API calls, gestures, commands): a busy page makes a few hundred.
var MAX_EARLY = 5000;
// The latest the brain starts after navigation when `load` never fires (a
// hanging image or a stuck request holds it), in ms.
var LOAD_WAIT_MS = 10000;
// The longest an idle callback may wait after `load`, in ms.
var IDLE_WAIT_MS = 2000;
// The vendor APIs watched for identity calls: [vendor, global, verbs],
// from the catalog's `[identity]` rules (filled in by tools/bundle.mjs).
var APIS = /* APIS */[];

var script = pick(document, 'currentScript');
var previous = pick(window, 'tagwatch');

if (!pick(previous, 'loaded')) (function () {
  var W = window;
  var D = document;
  var apply = pick(pick(W, 'Reflect'), 'apply');
  var perf = pick(W, 'performance');
  var clock = pick(perf, 'now');
  var later = pick(W, 'setTimeout');
  var parse = pick(pick(W, 'JSON'), 'parse');
  var define = pick(pick(W, 'Object'), 'defineProperty');
  var describe = pick(pick(W, 'Object'), 'getOwnPropertyDescriptor');
  // The browser's addEventListener (EventTarget's), for every listener the
  // loader and the brain add (`on`): a tag that later wraps it to drop the
  // page view's end (`pagehide`, `visibilitychange`) drops none of ours.
  var listen = pick(W, 'addEventListener');
  // (No `sample` or `policy` until the page gives them: schedule() draws
  // with 1 where there is no number, the brain reads no policy as none.)
  var config = { collector: attr('data-collector'), site: attr('data-site'), release: attr('data-release') };
  var early = [];   // [kind, time, data] kept until the brain runs
  var brain = null; // the brain's receiver once it runs: brain(kind, time, data)
  var state = 0;    // 0 waiting for config, 1 waiting for load, 2 loading, 3 running, 4 off
  var told = '';    // the first network API found broken (www/host.js)
  var onTamper = null;  // the brain's `tampered` report, once it runs
  var net = host(W, function (api) {
    if (told) return;
    told = api;
    if (onTamper) onTamper(api);
  });
  var gesture = -1; // the trusted click / key press being handled, else -1
  var drawn = false;
  var urls;       // the brain's, the wasm's and the config's, made in schedule()
  var got, compiled, answered;   // what load() has: the brain, the module (or why it failed), the config's answer
  var WA = pick(W, 'WebAssembly');
  // Taken now as well: the brain is asked for after `load`, and the page
  // view id is drawn then (a seeded generator installed as Math.random
  // later would repeat it across visitors); the user agent the reports
  // carry (a page can change what `navigator.userAgent` answers later).
  var URL = pick(W, 'URL');
  var escape = pick(W, 'encodeURIComponent');
  var random = pick(pick(W, 'Math'), 'random');
  var base = pick(script, 'src');
  var agent = String(pick(pick(W, 'navigator'), 'userAgent'));
  // [compile, compileStreaming, instantiate, Instance, Module]: an array,
  // as the brain gets it (www/brain.js `run`).
  var wasm = [pick(WA, 'compile'), pick(WA, 'compileStreaming'), pick(WA, 'instantiate'), pick(WA, 'Instance'), pick(WA, 'Module')];

  // The browser's TextEncoder.encodeInto, bound now (a later change to the
  // page's TextEncoder or Function.prototype does not reach it), for the
  // brain's glue, which checks it; and what the glue leans on at every call
  // into the wasm: the typed-array constructors it makes its views with,
  // the wasm memory's `buffer`, the instance's `exports`, the table's `set`
  // (tools/minify-imports.mjs `builtins`); then, for the brain, the clock
  // cookie lifetimes are judged by (`Date.now`), Global Privacy Control
  // as the browser sends it (a page can hide it from the monitor later),
  // `performance.getEntriesByName` with its `performance` (a vendor's
  // `<script id>` marker) and the Cookie Store's `getAll` with the store
  // (the cookies' expiry dates): few page scripts call either, and a tag
  // could filter its own out of what they answer.
  var store = pick(W, 'cookieStore');
  var encode, taken, href;
  try {
    href = URL.prototype.toJSON;
    taken = [W.Uint8Array, W.Float64Array, apply, describe(WA.Memory.prototype, 'buffer').get,
      describe(WA.Instance.prototype, 'exports').get, WA.Table.prototype.set, Date.now, navigator.globalPrivacyControl, perf.getEntriesByName, perf, pick(store, 'getAll'), store];
    var te = new W.TextEncoder();
    encode = te.encodeInto.bind(te);
  } catch (e) { /* the glue's own then */ }

  function now() { try { return apply(clock, perf, []); } catch (e) { return 0; } }
  var t0 = now();
  function attr(name) { try { return script.getAttribute(name) || undefined; } catch (e) { /* no script */ } }
  function str(v) { try { return v === undefined ? v : String(v); } catch (e) { /* a throwing toString */ } }
  function tri(v) { return v === true ? 1 : v === false ? 0 : -1; }
  // A URL's text by the serialiser taken when this script ran (`toJSON`
  // answers what the `href` getter does, and names it in fewer bytes).
  function url(u, b) { return apply(href, new URL(u, b), []); }
  function on(target, type, fn, capture) { try { apply(listen, target, [type, fn, capture]); } catch (e) { /* no such target */ } }
  function keep(kind, t, data) {
    if (brain) {
      try { return brain(kind, t, data); } catch (e) { /* that call only */ }
    } else if (early.length < MAX_EARLY) early.push([kind, t, data]);
  }

  // A JSON string, escaped by hand: the page may have replaced JSON.stringify.
  // (What JSON requires: `"`, `\` and the control characters.)
  function quote(v) {
    return '"' + String(v).replace(/[\\"\u0000-\u001f]/g, function (c) {
      return '\\u' + (c.charCodeAt() + 65536).toString(16).slice(1);
    }) + '"';
  }
  // A call's argument as plain values: `consent` the four categories (1, 0
  // or -1), `config` its keys.
  function read(cmd, arg) {
    if (!arg || typeof arg !== 'object') return null;
    if (cmd === 'consent') {
      return [tri(pick(arg, 'necessary')), tri(pick(arg, 'functional')), tri(pick(arg, 'analytics')), tri(pick(arg, 'marketing'))];
    }
    if (cmd !== 'config') return null;
    // The policy as the page's value: the brain writes it as lines when it
    // starts (www/brain.js `policyLines`), not on the page's critical path.
    return { collector: str(pick(arg, 'collector')), site: str(pick(arg, 'site')), release: str(pick(arg, 'release')), sample: pick(arg, 'sample'), policy: pick(arg, 'policy') };
  }

  // ---- what must run first ----
  // With the browser's `getEntries` of the lists it delivers and
  // `takeRecords` (the brain's drain, and every same-origin frame's
  // observer: they serve other realms' lists too): few page scripts call
  // them, and a tag that filtered its own requests out of what they answer
  // would silence the request findings while the page works.
  var observer, entries, records;   // none where the browser has no Resource Timing (the brain checks)
  try {
    entries = W.PerformanceObserverEntryList.prototype.getEntries;
    observer = new W.PerformanceObserver(function (list) {
      try { keep('e', 0, apply(entries, list, [])); } catch (e) { /* a page that broke entry lists */ }
    });
    records = observer.takeRecords;
    observer.observe({ type: 'resource', buffered: true });
  } catch (e) { /* no Resource Timing */ }
  // The cookies as they are now, then each change with its time. Where
  // there is a Cookie Store, from its list, whose answer comes without
  // holding the page: reading `document.cookie` is a synchronous round trip
  // to the browser's cookie store, measured at 50-200 ms while a busy page
  // loads. A change heard before the answer is replayed after it, to the
  // same effect.
  // (Where the store refuses, an opaque origin, `document.cookie` throws
  // too: the brain's first read is then the first snapshot.)
  var cookie;   // the Cookie Store's list or `document.cookie`, once known (the brain reads either)
  try { store.getAll().then(function (list) { cookie = list; }); } catch (e) {
    try { cookie = D.cookie; } catch (x) { /* as refused */ }
  }
  // (Not on no store: `addEventListener` called on nothing adds to `window`,
  // where every form field's `change` bubbles.)
  if (store) on(store, 'change', function (e) { keep('c', e.timeStamp, [e.changed, e.deleted]); });
  function mark(e) {
    if (!e.isTrusted) return;
    gesture = e.timeStamp;
    keep('g', gesture);
    later(function () { gesture = -1; }, 0);
  }
  on(W, 'click', mark, true);
  on(W, 'keydown', mark, true);

  // Wraps a vendor's API function so that calls with `verbs` are kept (the
  // brain reads only which identity fields their argument has). The wrapper
  // keeps the original's properties (queue, `booted`), always calls through
  // and never throws for itself.
  function wrap(vendor, fn, verbs) {
    if (typeof fn !== 'function' || fn.__tagwatch) return fn;
    var wrapped = function () {
      try { if (verbs.indexOf(arguments[0]) >= 0) keep('a', now(), [vendor, arguments[0], arguments[1]]); } catch (e) { /* never in the tag's way */ }
      return apply(fn, this, arguments);
    };
    Object.assign(wrapped, fn).__tagwatch = true;
    return wrapped;
  }
  // The global becomes an accessor that wraps whatever the tag assigns, at
  // once (its loader replaces the stub, and the page may call `update`
  // right after). An accessor already there (a consent manager may hold
  // the tag with one; the tagwatch extension's page world hooks the global
  // too) is chained to, never replaced: an assignment still reaches its
  // setter, and what its getter returns is wrapped (one wrapper per
  // function). Replacing it would leave every function the tag assigns
  // afterwards to us alone. Whether ours is still in place is asked of the
  // global itself (reading it runs our getter) each time the brain's sweeps
  // call `hook` again: a page that redefined the global is hooked again,
  // and two hooks that chain never re-wrap each other. Where the global
  // cannot be redefined, the function is wrapped in place.
  var hooks = {};   // api -> our accessor's state, while installed
  function hook(vendor, api, verbs, first) {
    try {
      var mine = hooks[api];
      if (mine) {
        mine.read = 0;
        void W[api];   // a getter above ours that throws: left alone
        if (mine.read) return;
      }
      var desc = describe(W, api);
      // The first time (`first`, as this script runs): the calls the page
      // queued on the tag's stub before (`Intercom('boot', …)`; the tag
      // drains its queue when it loads). Only a data property is read (no
      // getter runs). No stub is no exception: a thrown one, even caught,
      // cost the loader's run 1.5 ms of CPU (V8 making its message; in
      // the trace, this function parsed again; docs/benchmarks.md,
      // sixteenth round).
      if (first) try {
        var calls = desc?.value?.q;
        for (var c = 0; c < calls?.length && c < 100; c++) {
          if (verbs.indexOf(calls[c][0]) >= 0) keep('a', now(), [vendor, calls[c][0], calls[c][1]]);
        }
      } catch (e) { /* nothing queued */ }
      var below = desc && (desc.get || desc.set) ? desc : null;
      if (!desc || desc.configurable) {
        var state = {};
        var current = below ? 0 : wrap(vendor, desc && desc.value, verbs);
        var last, lastWrapped;   // what the accessor below returned, and our wrapper of it
        try {
          define(W, api, {
            configurable: true, enumerable: desc ? desc.enumerable : true,
            get: function () {
              state.read = 1;
              if (!below) return current;
              var v = below.get ? apply(below.get, this, []) : undefined;
              if (v !== last) { last = v; lastWrapped = wrap(vendor, v, verbs); }
              return lastWrapped;
            },
            // A getter-only accessor keeps refusing assignments.
            set: below && !below.set ? undefined : function (fn) {
              if (below) apply(below.set, this, [fn]);
              else current = wrap(vendor, fn, verbs);
            }
          });
          hooks[api] = state;
          return;
        } catch (e) { /* a plain assignment then */ }
      }
      var fn = W[api];
      var wrapped = wrap(vendor, fn, verbs);
      if (wrapped !== fn) W[api] = wrapped;
    } catch (e) { /* read-only: left alone */ }
  }
  function hookAll(first) { for (var i = 0; i < APIS.length; i++) hook(APIS[i][0], APIS[i][1], APIS[i][2], first); }
  hookAll(1);

  // ---- the brain ----
  // The site's release, as the brain's reports carry it (core
  // `report::release`) when it needs no cleaning: no white space around it,
  // at most 128 UTF-16 units, no control character; else none (the core's
  // trimming and cutting do not fit in the loader's budget). No lookbehind
  // in the pattern: a browser without it (Safari before 16.4) refuses the
  // whole script, and its SyntaxError reaches the page.
  function release(r) {
    return r && /^(?!\s)[^\0-\x1f\x7f-\x9f]{0,127}[^\s\0-\x1f\x7f-\x9f]$/.test(r) ? ',"release":' + quote(r) : '';
  }
  // One report without the monitor (the loader's, and the brain's through
  // it): no page data, the page URL is the origin's.
  function health(status, reason) {
    try {
      net.send(config.collector, '[{"type":"tagwatch-health","age":0,"url":' + quote(pick(location, 'origin') + '/') +
        ',"user_agent":' + quote(agent.slice(0, 512)) +
        ',"body":{"schema":1,"site":' + quote(config.site) + ',"status":"' + status + '","reason":' + quote(String(reason || '').slice(0, 200)) +
        release(config.release) + '}}]');
    } catch (e) { /* nothing more we can do quietly */ }
  }

  // Waits for the page (a collector and a site are known by now). The
  // URLs load() asks for are made now, with the `URL`, its serialiser and
  // `encodeURIComponent` taken when this script ran: a page that breaks
  // them after the snippet, even one that gives its config only then, does
  // not stop the start. Where they cannot be made, load() reports why.
  function schedule() {
    if (state || !config.collector || !config.site) return;
    state = 1;
    try {
      urls = [url('tagwatch_bg.js', base), url('tagwatch_bg.wasm', base),
        url('/config/' + escape(config.site), url(config.collector, location.href))];
    } catch (e) { /* load() reports it: wasm_unavailable */ }
    var sample = config.sample;
    drawn = random() < (typeof sample === 'number' ? sample : 1);
    if (D.readyState === 'complete') return later(load, 0);
    on(W, 'load', function () {
      var idle = pick(W, 'requestIdleCallback');
      try { idle(load, { timeout: IDLE_WAIT_MS }); } catch (e) { later(load, 0); }
    });
    later(load, LOAD_WAIT_MS - now());
    on(W, 'pagehide', function () {
      if (state < 3 && drawn && !begin(true)) health('unmonitored');
    });
  }

  // Asks for the brain, the wasm and the site's settings at once.
  function load() {
    if (state !== 1) return;
    if (!drawn) { state = 4; return; }
    state = 2;
    try {
      // The wasm's request carries no Referer (its host learns nothing of
      // the page), and the page's cookies as any of its files would: one
      // without them would not share the page's connection to its host.
      var bare = { referrerPolicy: 'no-referrer' };
      import(urls[0]).then(function (m) { got = m; begin(); }, function () {
        state = 4;
        health('wasm_unavailable', 'BrainUnavailable');
      });
      // Compiled while it downloads; where streaming cannot be had (a
      // broken `compileStreaming`, a server that does not say
      // application/wasm) from the bytes.
      var bytes = function () {
        return net.get(urls[1], bare).then(function (b) {
          if (!b) throw { name: 'NetworkError' };
          return apply(wasm[0], WA, [b]);
        });
      };
      var compiling;
      try {
        compiling = apply(wasm[1], WA, [net.fetch(urls[1], bare)]).then(null, function (e) {
          if (pick(e, 'name') === 'CompileError') throw e;
          return bytes();
        });
      } catch (e) { compiling = bytes(); }
      compiling.then(function (m) { compiled = m; begin(); }, function (e) { compiled = e || {}; begin(); });
      net.get(urls[2], { credentials: 'omit', referrerPolicy: 'no-referrer' }, true).then(function (text) {
        var c = null;
        try { c = parse(text); } catch (e) { /* not JSON: as no answer */ }
        // Off, or not drawn by the collector's sample: quiet.
        if (c && (c.enabled === false || (typeof c.sample === 'number' && !(random() < c.sample)))) state = 4;
        answered = 1;
        begin();
      });
    } catch (e) { state = 4; health('wasm_unavailable', pick(e, 'name')); }
  }

  // Hands everything over once the brain, the module and the settings are
  // there; `sync` (the page view ends) only when the brain can start at
  // once. An array, in the order www/brain.js `run` names them (an object's
  // property names cost 67 bytes of this file's gzip).
  function begin(sync) {
    if (state !== 2 || !got || !compiled || !(answered || sync)) return false;
    state = 3;
    got.start([
      config, net, wasm, compiled, early, cookie, sync, encode, taken,
      t0, now, random, observer, entries, records, health, parse, agent, on,
      function (fn) { onTamper = fn; if (told) fn(told); },
      function () { return gesture; },
      hookAll,
      function (fn) { brain = fn; early = []; }
    ]);
    return true;
  }

  function tagwatch(cmd, arg, queued) {
    try {
      var a = read(cmd, arg);
      if (cmd === 'config' && a) {
        for (var k in a) if (a[k] !== undefined && a[k] !== '') config[k] = a[k];
      }
      if (brain) return brain('k', now(), [cmd, a]);
      // -1: before this script ran (the first `consent` is the state the page restored).
      if (state < 4 && cmd !== 'findings') keep('k', queued ? -1 : now(), [cmd, a]);
      schedule();
    } catch (e) { /* a guest never breaks its host */ }
  }

  // The queue the page's stub filled, read before anything else changes it.
  var queue = pick(previous, 'q');
  var queued = [];
  for (var i = 0; i < pick(queue, 'length') && i < MAX_QUEUED; i++) {
    var call = pick(queue, i);
    queued[i] = [pick(call, 0), pick(call, 1)];
  }
  var api = function (cmd, arg) { return tagwatch(cmd, arg); };
  api.loaded = true;
  // Calls through the page's stub arrive on its queue: where the global
  // could not be replaced (read-only, a setter that throws) and where the
  // page kept a reference to the stub, its `push` hands them over.
  api.q = { push: function (c) { tagwatch(pick(c, 0), pick(c, 1)); } };
  // (None on a page without a stub: no exception thrown for nothing.)
  if (previous) try { previous.q = api.q; previous.loaded = true; } catch (e) { /* a frozen stub: calls through it are lost */ }
  try { W.tagwatch = api; } catch (e) { /* read-only: the stub's queue above */ }
  for (i = 0; i < queued.length; i++) tagwatch(queued[i][0], queued[i][1], true);
  schedule();
})();
