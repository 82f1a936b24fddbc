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
  var state = 'waiting';  // waiting (for config) | loading | running | off

  if (script) {
    config.collector = script.getAttribute('data-collector') || undefined;
    config.site = script.getAttribute('data-site') || undefined;
  }

  function tri(v) { return v === true ? 1 : v === false ? 0 : -1; }

  function applyPolicy(m, p) {
    if (!p || typeof p !== 'object') return;
    if (typeof p.grace_ms === 'number') m.grace_ms(p.grace_ms);
    (Array.isArray(p.regions) ? p.regions : []).forEach(function (r) { m.allow_region(String(r)); });
    Object.keys(p.pages || {}).forEach(function (v) {
      (Array.isArray(p.pages[v]) ? p.pages[v] : []).forEach(function (g) { m.allow_page(v, String(g)); });
    });
    Object.keys(p.vendors || {}).forEach(function (v) {
      var purposes = p.vendors[v] || {};
      Object.keys(purposes).forEach(function (k) { m.purpose_category(v, k, String(purposes[k])); });
    });
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

  function boot() {
    if (state !== 'waiting' || !config.collector || !config.site) return;
    if (!(Math.random() < (typeof config.sample === 'number' ? config.sample : 1))) { state = 'off'; return; }
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
      applyPolicy(monitor, config.policy);
      var todo = pending; pending = [];
      todo.forEach(function (c) { if (c[0] !== 'config') run(c[0], c[1], c[2]); });
      monitor.start();
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
