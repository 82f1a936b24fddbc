/* tagwatch loader. build.sh wraps this file and wasm-bindgen's no-modules
 * glue in one function scope, so the page gets exactly one global:
 * `tagwatch(cmd, arg)`. It never throws into the page: every entry point is
 * guarded, and when the wasm cannot run (no WebAssembly, CSP without
 * 'wasm-unsafe-eval') it sends one health report and goes quiet. */
var script = document.currentScript;
var previous = window.tagwatch;
if (!(previous && previous.loaded)) (function () {
  var queue = (previous && previous.q) || [];
  var config = { sample: 1, policy: {} };
  var monitor = null;
  var pending = [];   // commands received before the wasm was ready
  var state = 'waiting';  // waiting (for config) | asking (the collector) | loading | running | off

  if (script) {
    config.collector = script.getAttribute('data-collector') || undefined;
    config.site = script.getAttribute('data-site') || undefined;
  }

  function tri(v) { return v === true ? 1 : v === false ? 0 : -1; }

  // Watches a vendor's API function (window.Intercom) so that identity
  // calls (`Intercom('update', {user_id})`) reach the monitor, which reads
  // only which fields are present. The global becomes an accessor that wraps
  // whatever the tag assigns, at once: the loader replaces its stub and the
  // page may call `update` right after. Where the property cannot be
  // redefined, the function is wrapped on each of the monitor's ticks. The
  // wrapper keeps the original's properties (queue, `booted`) and always
  // calls through.
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

  function hook(vendor, api, verbs) {
    var calls = early[api];
    delete early[api];
    // Later: the monitor calls this from inside start().
    if (calls) setTimeout(function () {
      calls.forEach(function (c) {
        try { if (c && verbs.indexOf(c[0]) >= 0) monitor.api_call(vendor, String(c[0]), c[1]); } catch (e) { /* next */ }
      });
    }, 0);
    var desc = Object.getOwnPropertyDescriptor(window, api);
    if (desc && desc.get && desc.get.__tagwatch) return;
    var current = wrap(vendor, window[api], verbs);
    if (!desc || desc.configurable) {
      var get = function () { return current; };
      get.__tagwatch = true;
      try {
        Object.defineProperty(window, api, {
          configurable: true, enumerable: true, get: get,
          set: function (fn) { current = wrap(vendor, fn, verbs); }
        });
        return;
      } catch (e) { /* fall through to a plain assignment */ }
    }
    try { if (window[api] !== current) window[api] = current; } catch (e) { /* read-only: leave it */ }
  }

  function applyPolicy(m, p) {
    if (p && typeof p === 'object') m.policy(policyRules(p));   // www/policy.js
  }

  function run(cmd, arg, queued) {
    if (cmd === 'consent' && arg && typeof arg === 'object') {
      monitor.consent(tri(arg.necessary), tri(arg.functional), tri(arg.analytics), tri(arg.marketing), !!queued);
    } else if (cmd === 'flush') {
      monitor.flush();
    } else if (cmd === 'config' && arg) {
      applyPolicy(monitor, arg.policy);
    } else if (cmd === 'findings') {
      return JSON.parse(monitor.findings());
    }
  }

  function health(status, reason) {
    state = 'off';
    try {
      var body = JSON.stringify([{
        type: 'tagwatch-health', age: 0,
        url: location.href.split(/[?#]/)[0],
        user_agent: navigator.userAgent.slice(0, 512),
        body: { schema: 1, site: config.site, status: status, reason: String(reason || '').slice(0, 200) }
      }]);
      if (!(navigator.sendBeacon && navigator.sendBeacon(config.collector, body))) {
        fetch(config.collector, { method: 'POST', body: body, keepalive: true, mode: 'no-cors' })['catch'](function () {});
      }
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
      fetch(new URL('/config/' + encodeURIComponent(config.site), new URL(config.collector, location.href)).href, { credentials: 'omit' })
        .then(function (r) { return r.ok ? r.json() : null; })['catch'](function () { return null; })
        .then(go)['catch'](function () {});
    } catch (e) { go(null); }
  }

  function load() {
    if (typeof WebAssembly !== 'object' || !script) { return health('wasm_unavailable', 'NoWebAssembly'); }
    state = 'loading';
    var wasmUrl = new URL('tagwatch_bg.wasm', script.src).href;
    var started;
    try {
      started = wasm_bindgen({ module_or_path: wasmUrl });
    } catch (e) {
      return health('wasm_unavailable', e && e.name);
    }
    started.then(function () {
      monitor = new wasm_bindgen.Monitor(String(config.site), String(config.collector));
      monitor.set_hook(hook);
      applyPolicy(monitor, config.policy);
      var todo = pending; pending = [];
      todo.forEach(function (c) { if (c[0] !== 'config') run(c[0], c[1], c[2]); });
      monitor.start();
      watchConsent(monitor);   // www/consent.js
      state = 'running';
    })['catch'](function (e) { health('wasm_unavailable', e && e.name); });
  }

  function tagwatch(cmd, arg, queued) {
    try {
      if (cmd === 'config' && arg && typeof arg === 'object') {
        for (var k in arg) if (Object.prototype.hasOwnProperty.call(arg, k)) config[k] = arg[k];
      }
      if (state === 'running') return run(cmd, arg, false);
      if (state !== 'off' && cmd !== 'findings') pending.push([cmd, arg, !!queued]);
      boot();
    } catch (e) { /* a guest never breaks its host */ }
  }
  tagwatch.loaded = true;
  window.tagwatch = function (cmd, arg) { return tagwatch(cmd, arg, false); };
  window.tagwatch.loaded = true;
  for (var i = 0; i < queue.length; i++) tagwatch(queue[i][0], queue[i][1], true);
  boot();
})();
