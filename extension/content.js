/* tagwatch extension, isolated world (content script, document_start, top
 * frame). The snippet's wasm monitor runs here, on the same engine, catalog
 * and report format: tools/pack-extension.mjs wraps this file with
 * wasm-bindgen's no-modules glue (`wasm_bindgen`), the optimised wasm
 * (WASM, base64: nothing the page could fetch or probe) and the catalog facts
 * (CATALOG) in one function scope.
 *
 * The monitor observes Resource Timing, same-origin frames, DOM markers and
 * document.cookie itself, as in the snippet. What this world cannot see
 * directly reaches it three ways:
 *   - the page world (page.js) sends consent signals, vendor globals and
 *     identity-field presence over the nonce channel; globals are mirrored
 *     as plain flags on this world's own `window` (invisible to the page),
 *     where the monitor's sweep reads them like the snippet reads the real
 *     ones;
 *   - the service worker forwards chrome.webRequest requests the page's
 *     Resource Timing never has (cross-origin frames, WebSockets), fed to
 *     `Monitor.request`;
 *   - chrome.cookies: HttpOnly cookie names are added to what this world's
 *     `document.cookie` returns (names only, placeholder values), and a
 *     Cookie Store stand-in hands the monitor every cookie's expiry.
 * Neither override is visible to the page: both live on this world's
 * wrappers of `document` and `window`. */
var HELLO = 'tagwatch-extension-hello';
var READY = 'tagwatch-extension-ready';
var KINDS = { cmp: 1, tcf: 1, gpp: 1, consent_mode: 1 };
var MIRRORED = { global: 1, settings: 1, queue: 1 };
var INITIATORS = {
  script: 'script', xmlhttprequest: 'xmlhttprequest', image: 'img', imageset: 'img', stylesheet: 'link',
  sub_frame: 'iframe', websocket: 'websocket', ping: 'beacon', font: 'css', media: 'video', object: 'object',
};
var origin = location.origin;
var timeOrigin = performance.timeOrigin;
var monitor = null;
var failed = '';
var backlog = [];      // calls from before the monitor existed: [fn, args]
var mirrored = {};     // roots this world's window got from the page's globals
var globals = {};      // global path -> vendor, while truthy (for the popup)
var httpOnly = '';     // `name=h; …` of the HttpOnly cookies chrome.cookies sees
var jar = [];          // [{name, httpOnly, expires}] from chrome.cookies, no values
var count = -1;        // findings on the badge

function guard(fn) {
  return function () { try { return fn.apply(this, arguments); } catch (e) { /* keep observing */ } };
}
function call(fn, args) {
  if (monitor) monitor[fn].apply(monitor, args);
  else if (backlog.length < 2000) backlog.push([fn, args]);
}

// ---- page world: the nonce, then its messages ----
function onHello(e) {
  if (typeof e.detail !== 'string' || !/^[0-9a-f]{32}$/.test(e.detail)) return;
  document.removeEventListener(HELLO, onHello, true);
  e.preventDefault();
  e.stopImmediatePropagation();
  document.addEventListener('tagwatch-' + e.detail, guard(onPage), true);
}
document.addEventListener(HELLO, onHello, true);
document.dispatchEvent(new CustomEvent(READY));

function vendorOf(path) {
  for (var i = 0; i < CATALOG.length; i++) if (CATALOG[i].globals.indexOf(path) >= 0) return CATALOG[i].id;
  return null;
}
// `a.b` truthy in the page → `a.b` truthy here; roots this world has of its own are left alone.
function mirror(path, value) {
  var keys = path.split('.');
  var root = keys[0];
  if (!mirrored[root] && root in window) return;
  mirrored[root] = true;
  var o = window;
  for (var i = 0; i < keys.length - 1; i++) {
    if (!o[keys[i]] || typeof o[keys[i]] !== 'object') o[keys[i]] = {};
    o = o[keys[i]];
  }
  o[keys[keys.length - 1]] = value;
}

function onPage(e) {
  var m = typeof e.detail === 'string' ? JSON.parse(e.detail) : null;
  if (!Array.isArray(m)) return;
  var kind = m[0];
  var args = m.slice(1);
  // A changed global, settings object or queue is read by the monitor's
  // sweep; sweep now rather than on its next tick (a stub's queue lives
  // only until the vendor's loader replaces it). `findings()` sweeps.
  if (monitor && MIRRORED[kind]) setTimeout(guard(function () { monitor.findings(); }), 0);
  if (kind === 'global' && typeof args[0] === 'string' && vendorOf(args[0])) {
    mirror(args[0], !!args[1]);
    if (args[1]) globals[args[0]] = vendorOf(args[0]);
    else delete globals[args[0]];
  } else if (kind === 'settings' && CATALOG.some(function (v) { return v.identity && v.identity.settings === args[1]; })) {
    mirror(args[1], args[2] || undefined);
  } else if (kind === 'queue' && CATALOG.some(function (v) { return v.identity && v.identity.api === args[0]; })) {
    // Only a queue that has calls makes the API's root exist here: an empty
    // object would read as the vendor's global being present.
    var queued = Array.isArray(args[1]) ? args[1] : [];
    if (queued.length || (mirrored[args[0]] && window[args[0]])) mirror(args[0] + '.q', queued);
  } else if (kind === 'call') {
    call('api_call', [String(args[0]), String(args[1]), args[2] || {}]);
  } else if (KINDS[kind]) {
    if (kind === 'gpp') args[1] = new Int32Array(args[1] || []);
    // `at` -1 means "now" (www/consent.js): while the monitor is still
    // loading, now is when the signal arrived, not when it is replayed.
    if (!monitor && kind !== 'consent_mode' && args[args.length - 1] < 0) args[args.length - 1] = performance.now();
    call(kind, args);
  }
}

// ---- chrome.cookies, as this world's document.cookie and cookieStore ----
var nativeCookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
Object.defineProperty(document, 'cookie', {
  configurable: true,
  get: function () {
    var v = nativeCookie.get.call(document);
    return httpOnly ? (v ? v + '; ' : '') + httpOnly : v;
  },
  set: function (v) { nativeCookie.set.call(document, v); },
});
var store = new EventTarget();
store.getAll = function () {
  return refreshJar().then(function () {
    return jar.filter(function (c) { return c.expires; }).map(function (c) { return { name: c.name, expires: c.expires }; });
  });
};
Object.defineProperty(window, 'cookieStore', { configurable: true, value: store });

function refreshJar() {
  if (document.hidden && monitor) return Promise.resolve();   // a background tab: on its return
  return chrome.runtime.sendMessage({ t: 'jar' }).then(function (list) {
    if (!Array.isArray(list)) return;
    jar = list;
    var names = list.filter(function (c) { return c.httpOnly; }).map(function (c) { return c.name + '=h'; }).join('; ');
    if (names !== httpOnly) {
      httpOnly = names;
      store.dispatchEvent(new Event('change'));
    }
  }, function () { /* the service worker is restarting: next time */ });
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
    call('request', [{
      name: r.url.replace(/^ws/i, 'http'),
      initiatorType: INITIATORS[r.type] || 'other',
      startTime: r.ts - timeOrigin,
      transferSize: 0, encodedBodySize: 0, duration: 0,
    }, frame]);
  });
}

// ---- what the popup shows ----
function audit() {
  var dom = [];
  CATALOG.forEach(function (v) {
    v.dom_ids.forEach(function (id) { if (document.getElementById(id)) dom.push([v.id, '#' + id]); });
  });
  var present = Object.keys(globals).map(function (path) { return [globals[path], path]; });
  return {
    page: origin + location.pathname,
    running: !!monitor,
    engine: engine,
    failed: failed,
    findings: monitor ? monitor.findings() : '[]',
    consent: monitor ? monitor.consent_now() : '',
    globals: present,
    dom: dom,
  };
}

chrome.runtime.onMessage.addListener(function (msg, sender, reply) {
  try {
    if (!msg || sender.id !== chrome.runtime.id) return;
    if (msg.t === 'req' && Array.isArray(msg.list)) onRequests(msg.list);
    else if (msg.t === 'audit') reply(audit());
    else if (msg.t === 'flush') { if (monitor) monitor.flush(); reply(true); }
    else if (msg.t === 'forget') { try { sessionStorage.clear(); } catch (e) { /* no storage */ } reply(true); }
  } catch (e) { /* keep listening */ }
});

// The site's policy becomes the monitor's rules through policyRules()
// (www/policy.js, bundled in by tools/pack-extension.mjs).

// ---- start ----
function tick() {
  if (document.hidden) return;   // counted again when the tab is back
  var n = 0;
  JSON.parse(monitor.findings()).forEach(function (r) { if (r.type === 'tagwatch-finding') n++; });
  if (n !== count) {
    count = n;
    chrome.runtime.sendMessage({ t: 'count', n: n }).catch(function () { /* asleep: next change */ });
  }
}

function bytesOf(b64) {
  var s = atob(b64);
  var out = new Uint8Array(s.length);
  for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

var options = chrome.storage.local.get({ collector: '', site: '', policy: null });
// Reports leave as the snippet's do (www/host.js), from this world's own
// fetch and sendBeacon, which the page cannot reach.
var send = host(self, function () { /* the page cannot tamper with this world */ }).send;
var engine = 'wasm';

function start(glue) {
  return options.then(function (o) {
    // Without a collector the monitor sends nothing; with one it reports each
    // page view like the snippet does (a text/plain POST on pagehide).
    var m = new glue.Monitor(/^[A-Za-z0-9_-]{1,64}$/.test(o.site) ? o.site : 'extension', o.collector || '', send);
    var rules = policyRules(o.policy);
    if (rules) m.policy(rules);
    monitor = m;
    backlog.splice(0).forEach(function (c) { guard(function () { m[c[0]].apply(m, c[1]); })(); });
    m.start();
    refreshJar();
    setInterval(guard(tick), 1000);
    setInterval(refreshJar, 2000);
    document.addEventListener('visibilitychange', function () { guard(tick)(); refreshJar(); });
    guard(tick)();
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

wasm_bindgen({ module_or_path: bytesOf(WASM) }).then(function () { return start(wasm_bindgen); }, function (e) {
  failed = (e && e.name) || 'Error';
  if (failed === 'CompileError') return chrome.runtime.sendMessage({ t: 'fallback' });
})['catch'](function (e) {
  failed = (e && e.name) || 'Error';
});
