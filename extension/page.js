/* tagwatch extension, page world (content script, world MAIN, document_start).
 *
 * tools/pack-extension.mjs wraps this file, www/cmp-api.js, www/consent.js and the catalog
 * facts it needs (CATALOG: per vendor its page globals and identity rule) in
 * one function scope, so the page gets no new global from it. What the page
 * can see are the hooks the snippet also sets: the consent adapters'
 * listeners and queues (www/consent.js) and the wrapper around a vendor API
 * that identifies users (`window.Intercom`).
 *
 * Everything observed goes to the extension's isolated world (content.js),
 * where the wasm monitor runs, as CustomEvents on `document` whose name
 * carries a random nonce; the isolated world asks for a new look at the
 * globals (`<name>-sweep`) when its monitor sweeps, so this world keeps no
 * timer of its own. The nonce is handed over before any page script
 * runs: this script dispatches it in a cancelable `tagwatch-extension-hello`
 * event, which the isolated world takes (and cancels, which is how this side
 * knows it arrived); if the isolated world was not listening yet, its
 * `tagwatch-extension-ready` event asks for it once more. Payloads are JSON
 * strings of names and flags only: cookie values, identity values and query
 * strings never cross.
 *
 * Nothing here may throw into the page: every entry point is guarded, and the
 * natives used later are taken before page scripts can replace them. */
var HELLO = 'tagwatch-extension-hello';
var READY = 'tagwatch-extension-ready';
var w = window;
var doc = document;
var Custom = w.CustomEvent;
var dispatch = w.EventTarget.prototype.dispatchEvent;
var listen = w.EventTarget.prototype.addEventListener;
var unlisten = w.EventTarget.prototype.removeEventListener;
var stringify = w.JSON.stringify;
var slice = w.Array.prototype.slice;
var isView = w.ArrayBuffer.isView;
var later = w.setTimeout;
var defineProperty = w.Object.defineProperty;
var describe = w.Object.getOwnPropertyDescriptor;
var hasOwn = w.Object.prototype.hasOwnProperty;
var wrappers = new w.WeakSet();   // our API wrappers, marked without a property the page could see
var nonce = '';
var channel = '';

function guard(fn) {
  return function () { try { return fn.apply(this, arguments); } catch (e) { /* never the page's problem */ } };
}

var backlog = [];   // messages from before the isolated world took the nonce
function send(kind, args) {
  var out = [kind];
  for (var i = 0; i < args.length; i++) out.push(isView(args[i]) ? slice.call(args[i]) : args[i]);
  var detail = stringify(out);
  if (channel) dispatch.call(doc, new Custom(channel, { detail: detail }));
  else if (backlog.length < 200) backlog.push(detail);
}
function connect() {
  channel = 'tagwatch-' + nonce;
  // The isolated world's monitor sweeps: look again first (the answers
  // arrive during its dispatch).
  listen.call(doc, channel + '-sweep', function () { tick(); }, true);
  backlog.splice(0).forEach(function (detail) { dispatch.call(doc, new Custom(channel, { detail: detail })); });
}

// ---- the nonce ----
var bytes = new w.Uint8Array(16);
w.crypto.getRandomValues(bytes);
for (var b = 0; b < bytes.length; b++) nonce += (bytes[b] + 256).toString(16).slice(1);
function hello() {
  // Cancelled by the isolated world when it took the nonce.
  return !dispatch.call(doc, new Custom(HELLO, { detail: nonce, cancelable: true }));
}
var onReady = guard(function () {
  unlisten.call(doc, READY, onReady, true);
  if (hello()) connect();
});
if (hello()) connect();
else listen.call(doc, READY, onReady, true);

// ---- consent: the snippet's adapters, with a sink that forwards ----
var sink = {};
['cmp', 'tcf', 'gpp', 'consent_mode'].forEach(function (name) {
  sink[name] = guard(function () { send(name, arguments); });
});
// The trusted click or key press being handled (its task), else -1: a
// choice made in it counts from the gesture (www/consent.js).
var gesture = -1;
function mark(e) {
  if (!e.isTrusted) return;
  gesture = e.timeStamp;
  later(function () { gesture = -1; }, 0);
}
listen.call(w, 'click', mark, true);
listen.call(w, 'keydown', mark, true);
var clock = w.performance;
var now = w.Performance.prototype.now;

// ---- vendor globals and identity: presence only ----
function valueAt(path) {
  var v = w;
  var keys = path.split('.');
  for (var i = 0; i < keys.length; i++) {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return undefined;
    v = v[keys[i]];
  }
  return v;
}
// Which of the identity rule's fields `arg` has (never their values).
function fields(rule, arg) {
  if (!arg || typeof arg !== 'object') return null;
  var out = {};
  rule.ids.concat(rule.proofs).forEach(function (k) {
    try { out[k] = !!arg[k]; } catch (e) { out[k] = false; }
  });
  return out;
}
// Forwards identity calls (`Intercom('update', {...})`), like the snippet's
// loader: an accessor on the global, installed at document_start before the
// tag exists (no sweep needed to find it), wraps whatever the tag assigns,
// at once; the sweeps only put it back where the page replaced it.
function wrap(vendor, rule, fn) {
  if (typeof fn !== 'function' || wrappers.has(fn)) return fn;
  var wrapped = function () {
    try {
      if (rule.verbs.indexOf(arguments[0]) >= 0) send('call', [vendor, String(arguments[0]), fields(rule, arguments[1]), now.call(clock)]);
    } catch (e) { /* never in the tag's way */ }
    return fn.apply(this, arguments);
  };
  for (var k in fn) if (hasOwn.call(fn, k)) wrapped[k] = fn[k];
  wrappers.add(wrapped);
  return wrapped;
}
// An accessor already on the global (the site's own tagwatch snippet hooks
// it as its loader runs, on top of ours or below it when the extension
// was installed later; a consent manager may hold the tag with one)
// is chained to, never replaced nor stood aside for, and whether ours is
// still in place is asked of the global itself: the snippet's hook follows
// the same rules (www/loader.js says why), so each sees every call
// whichever hooked first.
var hooked = {};   // api -> our accessor's state, while installed
function hook(vendor, rule) {
  var api = rule.api;
  var mine = hooked[api];
  var fn;
  if (mine) mine.read = false;
  try { fn = w[api]; } catch (e) { return; }   // a getter that throws: nothing to wrap
  if (mine && mine.read) return;
  var desc = describe(w, api);
  var below = desc && (desc.get || desc.set) ? desc : null;
  if (!desc || desc.configurable) {
    var state = { read: false };
    var current = below ? undefined : wrap(vendor, rule, fn);
    var last, lastWrapped;   // what the accessor below returned, and our wrapper of it
    try {
      defineProperty(w, api, {
        configurable: true, enumerable: desc ? desc.enumerable : true,
        get: function () {
          state.read = true;
          if (!below) return current;
          var v = below.get ? below.get.call(this) : undefined;
          if (v !== last) { last = v; lastWrapped = wrap(vendor, rule, v); }
          return lastWrapped;
        },
        // A getter-only accessor keeps refusing assignments.
        set: below && !below.set ? undefined : function (v) {
          if (below) below.set.call(this, v);
          else current = wrap(vendor, rule, v);
        }
      });
      hooked[api] = state;
      return;
    } catch (e) { /* fall through to a plain assignment */ }
  }
  var wrapped = wrap(vendor, rule, fn);
  try { if (wrapped !== fn) w[api] = wrapped; } catch (e) { /* read-only: leave it */ }
}

var seen = {};   // last value sent per key, to send changes only
function changed(key, value) {
  var s = stringify(value);
  if (seen[key] === s) return false;
  seen[key] = s;
  return true;
}
function sweep() {
  CATALOG.forEach(function (v) {
    v.globals.forEach(function (path) {
      var on = false;
      try { on = !!valueAt(path); } catch (e) { /* a throwing getter is not presence */ }
      if (changed('g ' + path, on)) send('global', [path, on]);
    });
    var rule = v.identity;
    if (!rule) return;
    var settings = null;
    try { settings = fields(rule, w[rule.settings]); } catch (e) { /* unreadable */ }
    if (changed('s ' + v.id, settings)) send('settings', [rule.settings, settings]);
    hook(v.id, rule);
  });
  poll();
}

var poll = function () {};
// The CMPs' API adapters are inline here (www/cmp-api.js), not fetched.
// `took`: this world's JSON.parse and clock, called when needed, and the
// addEventListener taken above (the snippet's brain passes its loader's,
// taken at parse time).
poll = watchConsent(sink, function () { return gesture; }, function (ok) { ok(cmpReaders); },
  { parse: function (s) { return JSON.parse(s); }, now: function () { return w.performance.now(); },
    on: function (target, type, fn) { try { listen.call(target, type, fn); } catch (e) { /* no target */ } } }) || poll;   // www/consent.js
var tick = guard(sweep);
tick();
listen.call(doc, 'DOMContentLoaded', tick);
listen.call(w, 'load', tick);
