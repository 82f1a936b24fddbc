/* tagwatch extension, isolated world (content script, document_start, top
 * frame). The snippet's wasm monitor runs here, on the same engine, catalog
 * and report format: tools/pack-extension.mjs wraps this file with
 * wasm-bindgen's glue (`wasm_bindgen`), the optimised wasm (WASM, base64:
 * nothing the page could fetch or probe), the catalog facts (CATALOG),
 * www/host.js (the network) and www/observe.js (what the page shows: its
 * Resource Timing and same-origin frames, its cookies, the sweeps) in one
 * function scope.
 *
 * This file is the extension's host (src/host.rs): it answers the
 * monitor from what only an extension sees, without touching the page or
 * this world's own `document` and `window`:
 *   - the page world (page.js) reports vendor globals, identity-field
 *     presence (never values), identity API calls and consent signals over
 *     the nonce channel; `truthy(path)` and `value(name)` answer from what
 *     it reported, and the monitor's sweeps ask it to look again first
 *     (a synchronous event: the answer is in before the sweep reads it);
 *   - chrome.webRequest (through the service worker): requests the page's
 *     Resource Timing never has (cross-origin frames, WebSockets), fed in
 *     as entries;
 *   - chrome.cookies (through the service worker): HttpOnly cookie names
 *     are added to the snapshots the monitor takes, and every cookie's
 *     expiry comes from there (names, flags and dates: no value crosses). */
var HELLO = 'tagwatch-extension-hello';
var READY = 'tagwatch-extension-ready';
var KINDS = { cmp: 1, tcf: 1, gpp: 1, consent_mode: 1 };
var INITIATORS = {
  script: 'script', xmlhttprequest: 'xmlhttprequest', image: 'img', imageset: 'img', stylesheet: 'link',
  sub_frame: 'iframe', websocket: 'websocket', ping: 'beacon', font: 'css', media: 'video', object: 'object',
};
var origin = location.origin;
var timeOrigin = performance.timeOrigin;
var monitor = null;
var page = null;       // www/observe.js, once the monitor runs
var failed = '';
var backlog = [];      // calls from before the monitor existed: [fn, args]
var globals = {};      // global path -> vendor, while truthy (host.truthy, the popup)
var settings = {};     // settings global -> which identity fields it has (host.value)
var httpOnly = '';     // `name=h; …` of the HttpOnly cookies chrome.cookies sees
var jar = [];          // [{name, httpOnly, expires}] from chrome.cookies, no values
var channel = '';      // the page world's event name
var count = -1;        // findings on the badge
var badge = 0;         // a badge update is scheduled

// `guard(fn)`: www/observe.js's, in this scope.
function now() { return performance.now(); }
function call(fn, args) {
  if (monitor) monitor[fn].apply(monitor, args);
  else if (backlog.length < 2000) backlog.push([fn, args]);
  later();
}

// ---- page world: the nonce, then its messages ----
function onHello(e) {
  if (typeof e.detail !== 'string' || !/^[0-9a-f]{32}$/.test(e.detail)) return;
  document.removeEventListener(HELLO, onHello, true);
  e.preventDefault();
  e.stopImmediatePropagation();
  channel = 'tagwatch-' + e.detail;
  document.addEventListener(channel, guard(onPage), true);
}
document.addEventListener(HELLO, onHello, true);
document.dispatchEvent(new CustomEvent(READY));

function vendorOf(path) {
  for (var i = 0; i < CATALOG.length; i++) if (CATALOG[i].globals.indexOf(path) >= 0) return CATALOG[i].id;
  return null;
}

function onPage(e) {
  var m = typeof e.detail === 'string' ? JSON.parse(e.detail) : null;
  if (!Array.isArray(m)) return;
  var kind = m[0];
  var args = m.slice(1);
  if (kind === 'global' && typeof args[0] === 'string' && vendorOf(args[0])) {
    if (args[1]) globals[args[0]] = vendorOf(args[0]);
    else delete globals[args[0]];
  } else if (kind === 'settings' && CATALOG.some(function (v) { return v.identity && v.identity.settings === args[0]; })) {
    settings[args[0]] = args[1] && typeof args[1] === 'object' ? args[1] : undefined;
  } else if (kind === 'call') {
    call('api_call', [String(args[0]), String(args[1]), args[2] || {}, +args[3] || 0]);   // src/lib.rs exports::api_call
  } else if (KINDS[kind]) {
    // Typed as the monitor takes them (JSON carried them as plain arrays).
    if (kind === 'cmp') args[2] = new Int32Array(args[2] || []);
    if (kind === 'tcf') { args[2] = new Int32Array(args[2] || []); args[3] = new Int32Array(args[3] || []); }
    if (kind === 'gpp') args[1] = new Int32Array(args[1] || []);
    if (page) page.cookies(now());
    call(kind, args);
  }
}
// Asks the page world to look at its globals again; its answers arrive
// during this dispatch.
function sweepPage() {
  if (channel) document.dispatchEvent(new CustomEvent(channel + '-sweep'));
}

// ---- chrome.cookies, through the service worker ----
function refreshJar() {
  if (document.hidden && monitor) return;   // a background tab: on its return
  chrome.runtime.sendMessage({ t: 'jar' }).then(guard(function (list) {
    if (!Array.isArray(list)) return;
    jar = list;
    var names = list.filter(function (c) { return c.httpOnly; }).map(function (c) { return c.name + '=h'; }).join('; ');
    if (names !== httpOnly) {
      httpOnly = names;
      if (page) page.cookies(now());
    }
  }), function () { /* the service worker is restarting: next time */ });
}

// ---- chrome.webRequest, forwarded by the service worker ----
function hostOf(o) {
  var m = /^[a-z][a-z0-9+.-]*:\/\/([^/:]+)/i.exec(o || '');
  return m ? m[1] : 'opaque';
}
function onRequests(list) {
  list.forEach(function (r) {
    if (r.ts < timeOrigin) return;   // the previous page view's
    var ws = r.type === 'websocket';
    var crossOrigin = r.frameId !== 0 && r.initiator !== origin;
    if (!ws && !crossOrigin) return; // Resource Timing has it
    var frame = crossOrigin ? 'cross-origin:' + hostOf(r.initiator) : r.frameId === 0 ? 'top' : 'frame';
    var url = String(r.url).replace(/^ws/i, 'http');
    if (url.indexOf('\n') >= 0) return;   // never in a serialized URL (Monitor.entries: one per line)
    call('entries', [url, INITIATORS[r.type] || 'other', new Float64Array([r.ts - timeOrigin, 0, 0, 0]), frame]);
  });
}

// ---- what the popup shows ----
function audit() {
  var dom = [];
  CATALOG.forEach(function (v) {
    v.dom_ids.forEach(function (id) { if (document.getElementById(id)) dom.push([v.id, '#' + id]); });
  });
  var present = Object.keys(globals).map(function (path) { return [globals[path], path]; });
  if (page) page.settle();
  return {
    page: origin + location.pathname,
    running: !!monitor,
    engine: engine,
    failed: failed,
    findings: monitor ? monitor.findings(now()) : '[]',
    consent: monitor ? JSON.parse(monitor.consent_now(now())) : null,
    globals: present,
    dom: dom,
  };
}

chrome.runtime.onMessage.addListener(function (msg, sender, reply) {
  try {
    if (!msg || sender.id !== chrome.runtime.id) return;
    if (msg.t === 'req' && Array.isArray(msg.list)) onRequests(msg.list);
    else if (msg.t === 'audit') reply(audit());
    else if (msg.t === 'flush') { if (page) page.settle(); if (monitor) monitor.flush(now()); reply(true); }
    else if (msg.t === 'forget') { try { sessionStorage.clear(); } catch (e) { /* no storage */ } reply(true); }
  } catch (e) { /* keep listening */ }
});

// ---- the badge: the finding count, a moment after what could change it ----
function later() {
  if (!badge && monitor) badge = setTimeout(guard(updateBadge), 500);
}
function updateBadge() {
  badge = 0;
  if (document.hidden) return;   // counted again when the tab is back
  var n = 0;
  JSON.parse(monitor.findings(now())).forEach(function (r) { if (r.type === 'tagwatch-finding') n++; });
  if (n !== count) {
    count = n;
    chrome.runtime.sendMessage({ t: 'count', n: n }).catch(function () { /* asleep: next change */ });
  }
}

// ---- start ----
function bytesOf(b64) {
  var s = atob(b64);
  var out = new Uint8Array(s.length);
  for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

var options = chrome.storage.local.get({ collector: '', site: '', policy: null });
// Reports leave as the snippet's do (www/host.js), from this world's own
// fetch and sendBeacon, which the page cannot reach.
var net = host(self, function () { /* the page cannot tamper with this world */ });
var engine = 'wasm';

// The extension's host (src/host.rs): the DOM and Resource Timing as the
// snippet reads them (www/observe.js), globals and identity fields as the
// page world reported them.
// This world's built-ins are its own (the page cannot reach them): the
// entries by URL and the listeners www/observe.js asks for are theirs.
function listen(target, type, fn, options) { target.addEventListener(type, fn, options); }
var hostApi = windowHost(net.send, function (url) { return performance.getEntriesByName(url); }, listen);
hostApi.truthy = function (path) { return path in globals; };
hostApi.value = function (key) { return settings[key]; };

function start(glue) {
  return options.then(function (o) {
    // Without a collector the monitor sends nothing; with one it reports each
    // page view like the snippet does (a text/plain POST on pagehide).
    // The monitor is the glue's functions (src/lib.rs `exports`).
    var m = glue;
    m.monitor(hostApi, /^[A-Za-z0-9_-]{1,64}$/.test(o.site) ? o.site : 'extension', o.collector || '',
      location.href, navigator.userAgent, 0);
    if (o.policy && typeof o.policy === 'object') m.policy(JSON.stringify(o.policy));
    m.gpc(navigator.globalPrivacyControl === true);
    var top = null;
    page = observe(m, {
      store: { getAll: function () { return Promise.resolve(jar.filter(function (c) { return c.expires; })); } },
      events: !!self.cookieStore,
      cookies: function (header) { return httpOnly ? (header ? header + '; ' : '') + httpOnly : header; },
      entries: function (judge) {
        top = new PerformanceObserver(function (list) { judge(list.getEntries(), 0, 'top'); later(); });
        top.observe({ type: 'resource', buffered: true });
      },
      drain: function () { if (top) page.judge(top.takeRecords(), 0, 'top'); },
      list: function (list) { return list.getEntries(); },
      records: function (obs) { return obs.takeRecords(); },
      on: listen,
      poll: function () { sweepPage(); refreshJar(); later(); },
      // A frame's entries judged at once; this world's clocks.
      hold: function (list, off, label) { page.judge(list, off, label); },
      now: now,
      date: function () { return Date.now(); },
    });
    monitor = m;
    sweepPage();
    backlog.splice(0).forEach(function (c) { guard(function () { m[c[0]].apply(m, c[1]); })(); });
    page.cookies(now());
    page.start();
    try { cookieStore.addEventListener('change', guard(function () { page.cookies(now()); later(); })); } catch (e) { /* none */ }
    document.addEventListener('visibilitychange', function () { refreshJar(); later(); });
    refreshJar();
    later();
  });
}

// The page's CSP governs WebAssembly in content scripts too: where it refuses
// wasm, the service worker injects fallback.js (the same monitor compiled to
// JavaScript by wasm2js), which hands its glue and engine to this function.
self.tagwatchFallback = function (glue, compiled) {
  delete self.tagwatchFallback;
  var instantiate = WebAssembly.instantiate;
  WebAssembly.instantiate = function (bytes, imports) {
    return Promise.resolve({ instance: { exports: compiled(imports) }, module: null });
  };
  var restore = function (v) { WebAssembly.instantiate = instantiate; return v; };
  glue({ module_or_path: new Uint8Array(0) }).then(restore, function (e) { restore(); throw e; })
    .then(function () { engine = 'js'; failed = ''; return start(glue); })['catch'](function (e) { failed = (e && e.name) || 'Error'; });
};

wasm_bindgen({ module_or_path: bytesOf(WASM) }).then(function () {
  // Strings into the wasm by this isolated world's own encoder (the page's
  // scripts cannot reach it), not the glue's slower loop (tools/minify-imports.mjs).
  var text = new TextEncoder();
  wasm_bindgen.encoder(function (s, v) { return text.encodeInto(s, v); });
  return start(wasm_bindgen);
}, function (e) {
  failed = (e && e.name) || 'Error';
  if (failed === 'CompileError') return chrome.runtime.sendMessage({ t: 'fallback' });
})['catch'](function (e) {
  failed = (e && e.name) || 'Error';
});
