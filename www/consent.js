/* Page-side consent adapters: read what the visitor consented to from the
 * CMP on the page and hand it, in the CMP's own terms, to a sink (the wasm
 * monitor; the extension's bridge). What the terms mean (which category a
 * name stands for, what TCF purposes grant, Osano's opt-out) is decided in
 * the core only (`cmp::from_choices`, `consent::from_tcf_purposes`, `gpp`),
 * so every shell reads a CMP the same way.
 *
 * Order of trust (docs/policy.md): IAB TCF and GPP, then the CMPs' own
 * APIs and events; their cookies are read by the core on every cookie
 * change, as the fallback and the re-check. Google Consent Mode commands
 * in `dataLayer` are passed on as claims to check, not as consent.
 *
 * sink (typed, as `Monitor`'s methods in src/lib.rs; `tcf` and `gpp` called
 * by the adapters, www/cmp-api.js):
 *   cmp(id, names, granted, decided, at, services)   names: the CMP's own, one per line
 *     (`lines`), granted: 1/0 each; the last `services` names are service names
 *     (a CMP's per-service choices)
 * (lists of numbers are plain arrays: not the page's Int32Array, which it
 * may have broken by the time the monitor runs, docs/hostile-pages.md)
 *   tcf(gdprApplies, eventStatus, purposeIds, vendorIds, at)
 *   gpp(gppString, applicableSections, at)
 *   consent_mode(command, keys, values, at)   keys and values one per line
 * `adapters(ok, fail)` fetches the adapters of IAB TCF and GPP and of the
 * CMPs' own APIs (www/cmp-api.js) and calls `ok(cmpReaders)`, or `fail()`:
 * asked for only on pages where one of them shows.
 * Returns `poll()`: the host calls it on its sweeps (a CMP whose API loads
 * later is attached then); `poll.waiting()` is true while a CMP event,
 * or a TCF or GPP API, waits for the adapters. `at` is when the state took effect: -1 for a state found when the
 * adapters start (restored from storage, or chosen before the monitor
 * started: the core dates it from what the loader kept), the time of the
 * visitor's click or key press when the choice came in that event's task
 * (the page's own handler for the same choice may already have loaded a
 * tag in it: `gesture()` gives it, else -1), else now. Every entry point
 * is guarded (`guard(fn)`, the host's: www/observe.js's in the brain,
 * extension/page.js's in the extension's page world): a CMP that throws
 * never reaches the page. `took`: `parse`,
 * `now` and `on(target, type, fn)` (a listener added, never throwing) as
 * the host took them before the page's scripts ran (the snippet's loader:
 * a `postMessage` answer is parsed, a time read and a CMP's event heard by
 * the browser's own; the extension's page world passes the page's
 * `JSON.parse` and `performance.now`, called when needed, and the
 * `addEventListener` it took when it ran: each shell writes its own, so
 * the brain carries no default it never uses). */
function watchConsent(sink, gesture, adapters, took) {
  var w = window;
  var heard = {};   // CMPs that already sent an event: later reads are not restored
  var last = {};    // last value passed on per source, to drop repeats

  // When a state read now took effect: restored (-1), the gesture being handled, or now.
  function when(restored) {
    var g = restored ? -1 : gesture();
    return restored || g >= 0 ? g : took.now();
  }

  // Every DOM listener of the adapters (the CMPs' events, a locator
  // frame's `message`) goes through the host's `on`: a tag that wraps the
  // page's addEventListener to drop those event types hides no choice.
  function on(target, name, fn) { took.on(target, name, guard(fn)); }
  function fn(v) { return typeof v === 'function'; }
  // A list as the sink takes it: one item per line. A line break inside an
  // item (no CMP or Consent Mode name has one, a page may) becomes U+FFFD,
  // so the items stay in step with their flags or values and the name
  // still matches nothing, as it did whole.
  function lines(list) { return list.map(function (s) { return String(s).replace(/\n/g, '\ufffd'); }).join('\n'); }
  function flag(v) { return v ? 1 : 0; }
  // A boolean the CMP may leave out: true 1, false 0, anything else -1
  // (TCF's `gdprApplies`, Usercentrics' choices).
  function bool(v) { return v === true ? 1 : v === false ? 0 : -1; }
  // `{name: granted}` → [[names], [1/0 each]]; `value` maps a value to 1, 0
  // or anything else (dropped).
  function pairs(obj, value) {
    var names = [];
    var granted = [];
    for (var k in obj || {}) {
      var v = value ? value(obj[k]) : flag(obj[k]);
      if (v === 0 || v === 1) { names.push(k); granted.push(v); }
    }
    return [names, granted];
  }
  // `choices`: [names, granted] of the CMP's categories, and its
  // per-service choices as a third [names, granted] where it has them.
  // `at`: when the state took effect, if known (else `when`).
  var ucRead = 0;     // a Usercentrics state was read (its event or its API)
  function cmp(id, choices, decided, restored, at) {
    if (id === 'usercentrics') ucRead = 1;
    var svc = choices[2] || [[], []];
    var key = choices.join('|') + '|' + decided;
    restored = restored && !heard[id];
    if (!restored) heard[id] = 1;
    if (last[id] === key) return;
    last[id] = key;
    // decided: 2 (implied: the CMP applied consent without a choice) stays 2.
    sink.cmp(id, lines(choices[0].concat(svc[0])), choices[1].concat(svc[1]), decided === 2 ? 2 : decided ? 1 : 0,
      at === undefined ? when(restored) : at, svc[0].length);
  }

  // ---- The adapters (www/cmp-api.js) come on demand ----
  // IAB TCF and GPP's (their API, or a locator frame above a page in a
  // frame) and the CMPs' own APIs'. Asked for once one of those shows (its
  // global, a frame's parent, or one of the CMPs' events); an event heard
  // before they are there is read when they come, dated from the event.
  // TCF and GPP tell of a choice only through the listener the adapters
  // register: while they are on their way the page view waits for them
  // (`live`; the brain's start waits too, www/brain.js `begin`, so that the
  // gestures until they come still date what they first read,
  // src/prestart.rs). `adapters(ok, fail)` hands over `cmpReaders`.
  var GLOBALS = ['OneTrust', 'Cookiebot', 'Didomi', 'getCkyConsent', 'klaro', 'CookieConsent', 'Osano', 'UC_UI', '__ucCmp'];
  var live = 0;
  var readers = null;
  var asked = 0;
  var failed = 0;
  var pending = {};   // id -> when the event that asked for a read took effect
  var unread = 0;     // an event is waiting for the adapters
  function need() {
    if (asked) return;
    asked = 1;
    try {
      adapters(function (make) {
        try {
          readers = make({ w: w, cmp: cmp, pairs: pairs, flag: flag, fn: fn, guard: guard, bool: bool, on: on,
            sink: sink, when: when, last: last, parse: took.parse });
        } catch (e) { failed = 1; return; }
        for (var id in pending) guard(readers[id])(false, pending[id]);
        pending = {};
        guard(attachReaders)();
      }, function () { failed = 1; });
    } catch (e) { failed = 1; }   // never a page view held for adapters that cannot come
  }
  var attached = {};   // id -> its adapter found its CMP (read, listening)
  function attachReaders() {
    for (var id in readers) if (!attached[id]) attached[id] = readers[id](true);
  }
  // A read of one CMP asked by its event (`restored` false) or callback.
  function reread(id, restored) {
    if (readers) return readers[id](restored);
    if (!restored) { pending[id] = when(false); unread = 1; }
    need();
  }

  // ---- Events, listened to from the start: a choice counts from its event ----
  function read(id) { return function () { heard[id] = 1; reread(id, false); }; }
  // Complianz and TrustArc keep their state in cookies: their events only
  // ask for a re-read of the cookies (decided false carries no state).
  function recheck(id) { return function () { sink.cmp(id, '', [], 0, took.now(), 0); }; }
  on(w, 'OneTrustGroupsUpdated', read('onetrust'));
  ['CookiebotOnAccept', 'CookiebotOnDecline', 'CookiebotOnConsentReady'].forEach(function (e) { on(w, e, read('cookiebot')); });
  on(document, 'cookieyes_consent_update', read('cookieyes'));
  ['cc:onConsent', 'cc:onChange'].forEach(function (e) { on(w, e, read('vanilla-cookieconsent')); });
  ['cmplz_status_change', 'cmplz_fire_categories'].forEach(function (e) { on(document, e, recheck('complianz')); });
  try {
    (w.didomiOnReady = w.didomiOnReady || []).push(guard(function () { reread('didomi', true); }));
    (w.didomiEventListeners = w.didomiEventListeners || []).push({ event: 'consent.changed', listener: guard(read('didomi')) });
  } catch (e) { /* a frozen queue: the cookie still tells */ }

  // Usercentrics: the `consent_status` event on window (name set in its
  // admin, `ucEvent` by default) and in dataLayer; `ucCategory` per category
  // (null: mixed, left unknown), each service by its name as a boolean key
  // beside them (`'Google Analytics': true`; its other keys are not
  // booleans). `type` `implicit`: consent the CMP applied without a choice.
  function usercentrics(d) {
    if (!d || d.event !== 'consent_status' || !d.ucCategory) return;
    var restored = d.action === 'onSessionRestored' || d.action === 'onInitialPageLoad';
    var choices = pairs(d.ucCategory, bool);
    choices.push(pairs(d, bool));
    var type = String(d.type).toLowerCase();
    cmp('usercentrics', choices, type === 'explicit' ? 1 : type === 'implicit' ? 2 : 0, restored);
  }
  on(w, 'ucEvent', function (e) { usercentrics(e.detail); });
  // V3's own event: its detail is `__ucCmp.getConsentDetails()`'s, read there.
  on(w, 'UC_CONSENT', read('usercentrics'));

  // ---- Google Consent Mode: `gtag('consent', …)` pushes an `arguments` object ----
  var scanned = 0;
  function dataLayer(preloaded) {
    var dl = w.dataLayer;
    if (!dl || typeof dl.length !== 'number') return;
    for (; scanned < dl.length; scanned++) {
      var e = dl[scanned];
      if (!e) continue;
      if (e[0] === 'consent' && (e[1] === 'default' || e[1] === 'update') && e[2] && typeof e[2] === 'object') {
        var keys = [];
        var values = [];
        for (var k in e[2]) { keys.push(k); values.push(String(e[2][k])); }
        sink.consent_mode(e[1], lines(keys), lines(values), preloaded ? -1 : took.now());
      } else {
        usercentrics(e);
      }
    }
    // Catch later pushes as they happen. GTM replaces `push` when it loads:
    // `push` becomes an accessor that keeps wrapping whatever is assigned;
    // where it cannot be (a frozen array), the wrapper is put back on each
    // poll.
    if (dl.push && !dl.push.tagwatch) {
      var inner = dl.push;
      var wrapper = function () {
        var r = inner.apply(this, arguments);
        guard(dataLayer)(false);
        return r;
      };
      wrapper.tagwatch = 1;
      try {
        Object.defineProperty(dl, 'push', {
          configurable: true, enumerable: false,
          get: function () { return wrapper; },
          set: function (f) { inner = f; }
        });
      } catch (e) { dl.push = wrapper; }
    }
  }

  // ---- Attach now, and on each poll while CMPs are still loading ----
  function attach(first) {
    try { if (!live && (fn(w.__tcfapi) || fn(w.__gpp) || w !== w.top)) { live = 1; need(); } } catch (e) { /* not readable */ }
    for (var i = 0; i < GLOBALS.length && !asked; i++) {
      try { if (w[GLOBALS[i]]) need(); } catch (e) { /* a throwing global: not this one */ }
    }
    attachReaders();
    dataLayer(first);
  }
  guard(attach)(true);
  // The host calls it on its sweeps, which back off while nothing changes.
  // `waiting()`: a CMP event (a choice), or a TCF or GPP API, waits for the
  // adapters (`live`: a state there is read through them only). A state
  // merely restored is not waited for where a decided visitor's CMP cookie
  // holds it (the monitor waits for that cookie's reader itself); Usercentrics
  // keeps it in its own storage, readable only through its API (or its
  // `consent_status` event), so where that API is on the page the page view
  // waits until a state was read from either (V3's read is a promise), or
  // the adapters failed (judged without that choice, its findings could
  // accuse allowed tags).
  function liveOnly() {
    try { return !ucRead && !!(w.UC_UI || w.__ucCmp); } catch (e) { return false; }
  }
  var poll = guard(attach);
  poll.waiting = function () {
    if (failed) return false;
    if ((unread || live) && !readers) return true;
    if (!liveOnly()) return false;
    need();
    return true;
  };
  return poll;
}
