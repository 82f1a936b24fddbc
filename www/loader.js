/* tagwatch loader. build.sh wraps this file, www/host.js, www/url.js,
 * www/consent.js, www/policy.js and wasm-bindgen's no-modules glue in one
 * strict function scope inside one `try`, so the page gets exactly one
 * global: `tagwatch(cmd, arg)`. It never throws into the page, whatever the
 * page did to its globals: the page's objects (`window.tagwatch`, its
 * queue, every call's argument) are read one property at a time, a read
 * that throws counts as missing, and every command runs on its own.
 *
 * What the monitor needs from the browser is taken when this script runs,
 * before the page's later scripts (the ones it audits) can replace it:
 * fetch, sendBeacon and XMLHttpRequest (www/host.js: config, module and
 * reports; each falls back to the next) and WebAssembly. A way that failed
 * where the browser's own would not have is named in one `tampered` health
 * report. When the wasm cannot run (no WebAssembly, a CSP without
 * 'wasm-unsafe-eval') it sends one `wasm_unavailable` health report and goes
 * quiet. Health reports carry the page URL redacted as findings do
 * (www/url.js). */

// The glue instantiates the module through `WebAssembly.*`: in this
// bundle's scope the name is the browser's namespace as it is when the
// loader starts (set below).
var WebAssembly;
var script = pick(document, 'currentScript');
var previous = pick(window, 'tagwatch');

// The most calls read from the queue the page filled before this script
// ran: a real one holds a few; a hostile `length` must not hold the page.
var MAX_QUEUED = 1000;

if (!pick(previous, 'loaded')) (function () {
  var config = { collector: attr('data-collector'), site: attr('data-site'), sample: 1, rules: '' };
  var monitor = null;
  var pending = [];   // commands received before the wasm was ready: [cmd, read argument, queued]
  var state = 'waiting';  // waiting (for config) | asking (the collector) | loading | running | off
  var parse = pick(JSON, 'parse');
  var stringify = pick(JSON, 'stringify');
  var told = false;   // the tampered report went out
  var net = host(window, tampered);
  var W = pick(window, 'WebAssembly');
  if (W) {
    var instantiate = pick(W, 'instantiate');
    var compile = pick(W, 'compile');
    var Instance = pick(W, 'Instance');
    WebAssembly = {
      Instance: Instance,
      // The browser's own never throws (it rejects): one that does was
      // replaced before the loader ran; compile, then instantiate.
      instantiate: function (bytes, imports) {
        try { return instantiate(bytes, imports); } catch (e) {
          tampered('WebAssembly.instantiate');
          return compile(bytes).then(function (m) { return new Instance(m, imports); });
        }
      }
    };
  }

  function tampered(api) {
    if (!told) { told = true; health('tampered', api); }
  }

  function attr(name) { try { return script.getAttribute(name) || undefined; } catch (e) { /* no script */ } }
  function str(v) { try { return v === undefined ? v : String(v); } catch (e) { /* a throwing toString */ } }
  function tri(v) { return v === true ? 1 : v === false ? 0 : -1; }

  // A call's argument as plain values, each property read on its own: a
  // getter or Proxy that throws reads as missing. `consent` gives the four
  // categories (1, 0 or -1), `config` its keys (the policy as the rules
  // text of www/policy.js: a policy that throws is ignored whole).
  function read(cmd, arg) {
    if (!arg || typeof arg !== 'object') return null;
    if (cmd === 'consent') {
      return [tri(pick(arg, 'necessary')), tri(pick(arg, 'functional')), tri(pick(arg, 'analytics')), tri(pick(arg, 'marketing'))];
    }
    if (cmd !== 'config') return null;
    var rules = '';
    try { rules = policyRules(pick(arg, 'policy')); } catch (e) { /* ignored */ }
    return { collector: str(pick(arg, 'collector')), site: str(pick(arg, 'site')), sample: pick(arg, 'sample'), rules: rules };
  }

  // Watches a vendor's API function (window.Intercom) so that identity
  // calls (`Intercom('update', {user_id})`) reach the monitor, which reads
  // only which fields are present. The global becomes an accessor that wraps
  // whatever the tag assigns, at once: the loader replaces its stub and the
  // page may call `update` right after. Where the property cannot be
  // redefined, the function is wrapped on each of the monitor's ticks. The
  // wrapper keeps the original's properties (queue, `booted`) and always
  // calls through.
  //
  // The global may be an accessor already: a consent manager may gate the
  // tag with one, the tagwatch extension's page world hooks it too. Ours
  // goes on top of it and keeps it working (an assignment reaches its
  // setter; ours wraps what its getter returns, the same wrapper for the
  // same function): replacing it would leave every function the tag assigns
  // afterwards to us alone. Whether ours is still in place is asked of the
  // global itself (reading it runs our getter), on every tick: a page that
  // redefines the global is hooked again, and two hooks that chain never
  // re-wrap each other.
  function wrap(vendor, fn, verbs) {
    if (typeof fn !== 'function' || fn.__tagwatch) return fn;
    var wrapped = function () {
      try {
        if (monitor && verbs.indexOf(arguments[0]) >= 0) monitor.api_call(vendor, String(arguments[0]), arguments[1]);
      } catch (e) { /* never in the tag's way */ }
      return fn.apply(this, arguments);
    };
    for (var k in fn) if (Object.prototype.hasOwnProperty.call(fn, k)) wrapped[k] = fn[k];
    wrapped.__tagwatch = true;
    return wrapped;
  }
  // Calls queued on tag stubs (`Intercom('boot', …)` before Intercom's
  // loader ran) when this script ran: the tag drains its queue when it
  // loads, maybe before the monitor starts (it waits for the collector's
  // settings), so they are kept here and handed over once. Only data
  // properties are read (no getter runs).
  var early = {};
  try {
    Object.keys(window).forEach(function (k) {
      var d = Object.getOwnPropertyDescriptor(window, k);
      var f = d && d.value;
      if (typeof f === 'function' && Array.isArray(f.q) && f.q.length) early[k] = f.q.slice();
    });
  } catch (e) { /* nothing kept */ }

  var hooks = {};   // api -> our accessor's state, while installed
  function hook(vendor, api, verbs) {
    var calls = early[api];
    delete early[api];
    // Later: the monitor calls this from inside start().
    if (calls) setTimeout(function () {
      calls.forEach(function (c) {
        try { if (c && verbs.indexOf(c[0]) >= 0) monitor.api_call(vendor, String(c[0]), c[1]); } catch (e) { /* next */ }
      });
    }, 0);
    var mine = hooks[api];
    if (mine) {
      mine.read = false;
      try { void window[api]; } catch (e) { return; }   // a getter above ours throws: leave it
      if (mine.read) return;
    }
    var desc = Object.getOwnPropertyDescriptor(window, api);
    var below = desc && (desc.get || desc.set) ? desc : null;
    if (!desc || desc.configurable) {
      var state = { read: false };
      var current = below ? undefined : wrap(vendor, desc && desc.value, verbs);
      var last, lastWrapped;   // what the accessor below returned, and our wrapper of it
      var get = function () {
        state.read = true;
        if (!below) return current;
        var v = below.get ? below.get.call(this) : undefined;
        if (v !== last) { last = v; lastWrapped = wrap(vendor, v, verbs); }
        return lastWrapped;
      };
      get.__tagwatch = true;   // extension builds that stand aside for this hook instead of chaining look for it
      try {
        Object.defineProperty(window, api, {
          configurable: true, enumerable: desc ? desc.enumerable : true, get: get,
          // A getter-only accessor keeps refusing assignments.
          set: below && !below.set ? undefined : function (fn) {
            if (below) below.set.call(this, fn);
            else current = wrap(vendor, fn, verbs);
          }
        });
        hooks[api] = state;
        return;
      } catch (e) { /* fall through to a plain assignment */ }
    }
    try {
      var fn = window[api];
      var wrapped = wrap(vendor, fn, verbs);
      if (wrapped !== fn) window[api] = wrapped;
    } catch (e) { /* read-only: leave it */ }
  }

  function run(cmd, a, queued) {
    if (cmd === 'consent' && a) {
      monitor.consent(a[0], a[1], a[2], a[3], queued);
    } else if (cmd === 'flush') {
      monitor.flush();
    } else if (cmd === 'config' && a && a.rules) {
      monitor.policy(a.rules);
    } else if (cmd === 'findings') {
      return parse(monitor.findings());
    }
  }

  // One report without the wasm. Built by hand: the page may have replaced
  // `toJSON` on the prototypes (JSON.stringify only quotes strings here).
  function health(status, reason) {
    if (status !== 'tampered') state = 'off';
    try {
      var q = function (v) { return stringify(String(v)); };
      net.send(config.collector, '[{"type":"tagwatch-health","age":0,"url":' + q(pageUrl(location.href)) +
        ',"user_agent":' + q(String(pick(navigator, 'userAgent')).slice(0, 512)) +
        ',"body":{"schema":1,"site":' + q(config.site) + ',"status":"' + status + '","reason":' + q(String(reason || '').slice(0, 200)) + '}}]');
    } catch (e) { /* nothing more we can do quietly */ }
  }

  // Before loading anything, ask the collector for the site's settings
  // (GET <collector origin>/config/<site>, `tagwatch site set`): off, or
  // not drawn by its sample, stops here quietly. If the collector cannot
  // answer, the page's own config decides (fail open). Nothing else is
  // downloaded before the answer: a page view left out costs one small GET.
  function boot() {
    if (state !== 'waiting' || !config.collector || !config.site) return;
    state = 'asking';
    var sample = config.sample;
    function go(c) {
      if (c && typeof c === 'object') {
        if (c.enabled === false) { state = 'off'; return; }
        if (typeof c.sample === 'number') sample = c.sample;
      }
      if (!(Math.random() < (typeof sample === 'number' ? sample : 1))) { state = 'off'; return; }
      load();
    }
    try {
      net.get(new URL('/config/' + encodeURIComponent(config.site), new URL(config.collector, location.href)).href,
        { credentials: 'omit', referrerPolicy: 'no-referrer' }, true)
        .then(function (text) {
          var c = null;
          try { c = parse(text); } catch (e) { /* not JSON: as no answer */ }
          go(c);
        })['catch'](function () {});
    } catch (e) { go(null); }
  }

  function start() {
    monitor = new wasm_bindgen.Monitor(config.site, config.collector, net.send);
    monitor.set_hook(hook);
    if (config.rules) monitor.policy(config.rules);
    state = 'running';
    var todo = pending;
    pending = [];
    for (var i = 0; i < todo.length; i++) {
      try { if (todo[i][0] !== 'config') run(todo[i][0], todo[i][1], todo[i][2]); } catch (e) { /* that call only */ }
    }
    monitor.start();
    watchConsent(monitor);   // www/consent.js
  }

  function load() {
    if (!WebAssembly || !script) return health('wasm_unavailable', 'NoWebAssembly');
    state = 'loading';
    try {
      net.get(new URL('tagwatch_bg.wasm', script.src).href, { referrerPolicy: 'no-referrer' })
        .then(function (bytes) {
          if (!bytes) return health('wasm_unavailable', 'NetworkError');
          // Only a failed instantiation is `wasm_unavailable`; what fails
          // after it stays in the page view (`start` guards each call).
          return wasm_bindgen({ module_or_path: bytes }).then(start, function (e) { health('wasm_unavailable', pick(e, 'name')); });
        })['catch'](function () {});
    } catch (e) { health('wasm_unavailable', pick(e, 'name')); }
  }

  function tagwatch(cmd, arg, queued) {
    try {
      var a = read(cmd, arg);
      if (cmd === 'config' && a) {
        for (var k in config) if (a[k] !== undefined && a[k] !== '') config[k] = a[k];
      }
      if (state === 'running') return run(cmd, a, false);
      if (state !== 'off' && cmd !== 'findings') pending[pending.length] = [cmd, a, !!queued];
      boot();
    } catch (e) { /* a guest never breaks its host */ }
  }

  // The queue the page's stub filled, read before anything else changes it.
  var queue = pick(previous, 'q');
  var queued = [];
  for (var i = 0; i < pick(queue, 'length') && i < MAX_QUEUED; i++) {
    var call = pick(queue, i);
    queued[i] = [pick(call, 0), pick(call, 1)];
  }
  var api = function (cmd, arg) { return tagwatch(cmd, arg, false); };
  api.loaded = true;
  // Calls through the page's stub arrive on its queue: where the global
  // could not be replaced (read-only, a setter that throws) and where the
  // page kept a reference to the stub, its `push` hands them over.
  api.q = { push: function (c) { tagwatch(pick(c, 0), pick(c, 1), false); } };
  try { previous.q = api.q; previous.loaded = true; } catch (e) { /* a frozen stub: calls through it are lost */ }
  try { window.tagwatch = api; } catch (e) { /* read-only: the stub's queue above */ }
  for (i = 0; i < queued.length; i++) tagwatch(queued[i][0], queued[i][1], true);
  boot();
})();
