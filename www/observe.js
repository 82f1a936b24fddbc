/* What the page shows the monitor, pushed into it as it happens: the part
 * of the host (src/host.rs) that the snippet's brain (www/brain.js) and the
 * extension's isolated world (extension/content.js) share. `observe(m, o)`
 * wires, for the monitor `m`:
 *   - Resource Timing: `o.entries(fn)` hands the top document's entries
 *     to `fn` as they come (the loader's buffered observer, or the
 *     extension's own), `o.drain()` what its observer holds undelivered;
 *     every same-origin frame document gets its own buffered observer
 *     (its deliveries to `o.hold(list, offset, label)`: the brain holds
 *     them to judge later, www/brain.js; the extension judges at once),
 *     made from that frame's window (an observer watches the timeline of
 *     its realm), found when the frame's `load` reaches the document (a
 *     capturing listener: a new frame, or its document replaced) and by a
 *     scan when the number of frames changed or a report is built. An
 *     observer's undelivered entries are taken before a report and before
 *     it is dropped (frame removed, document replaced): every entry judged
 *     once. Cross-origin and sandboxed frames are out of a page's reach.
 *   - cookies: `document.cookie` (or the Cookie Store's list, `o.store`,
 *     where the page broke it) when the caller hears a Cookie Store
 *     `change` (it calls `cookies`), before each consent signal (what a tag
 *     set before the visitor chose is judged before the choice), before
 *     each report, and on the sweeps where the caller has no change events
 *     (`o.events` false); `o.cookies(header)` may add what only the host
 *     sees (HttpOnly cookies). Expiry dates when the policy limits
 *     lifetimes.
 *   - sweeps: `m.tick()` when the monitor asks (it backs off while nothing
 *     changes), with `o.poll()` (the consent adapters' late attach). Where
 *     the caller's host can check cheaply (`o.check.same()`: its last
 *     answer still holds, `windowHost` below) and there are cookie change
 *     events, a full sweep comes only when something can have changed —
 *     `wake()`: an entry, a cookie change, a consent signal, an API call, a
 *     piece (the caller calls it), the page shown again, or the check
 *     finding a change; otherwise a sweep is that check alone (no call into
 *     the monitor), backing off to FALLBACK_MS, and comes within
 *     SWEEP_SOON_MS of a DOM change (a MutationObserver: a marker element
 *     or a frame added).
 *   - times: `o.now()` (the brain: the loader's clock, taken at parse
 *     time, which the page cannot have replaced; the extension: its
 *     world's `performance.now`); cookie expiry dates against `o.date()`
 *     likewise (the loader's `Date.now`). Each caller passes its own: no
 *     default the brain would carry unused.
 *   - the browser's own, from the caller: `o.list(list)` the entries of a
 *     delivered list (`getEntries`), `o.records(observer)` what an
 *     observer holds undelivered (`takeRecords`), `o.on(target, type, fn,
 *     options)` a listener added (`addEventListener`). The snippet's are the
 *     loader's, taken before the page's later scripts ran (a tag that
 *     filters its own entries out of what the page's lists answer, or drops
 *     the page view's end listeners, changes nothing then; the top realm's
 *     functions serve every same-origin frame's lists and observers too);
 *     the extension's, its isolated world's.
 *   - the page view's end (pagehide, hidden): everything read, one batch
 *     sent; `o.held()` (optional) when the monitor held it back.
 * Returns { judge(list, offset, label), settle(), cookies(at), exit(), start(), wake() }:
 * what was kept from before is replayed through `judge` and `cookies`
 * first, then `start()` subscribes to the entries and starts the sweeps;
 * `exit()` is what the page view's end does (for a caller whose own end
 * listener comes first).
 * Calls into a frame's realm and reads of what its observers deliver are
 * guarded: its scripts are the audited ones. A frame announces itself
 * with its `load` (a new document too, which a MutationObserver would not
 * see); the MutationObserver only brings the next check closer. */

// Entries judged from one delivery at most: a browser hands over far fewer
// (a full buffer is 250); the bound holds against a forged list.
var MAX_BATCH = 4096;
// A sweep after an event, in ms (src/sweep.rs SWEEP_MIN_MS): a tag's
// globals and markers appear soon after its script's entry.
var SWEEP_SOON_MS = 1000;
// The longest a quiet page goes without a check, in ms. It covers the one
// case no event announces: a state set by the page's own timer with no
// entry, no DOM change the observer keeps and no cookie (a vendor's global
// booted late by code already loaded). Such a state is found at the page
// view's end at the latest (a report sweeps first): the interval bounds how
// late its finding is dated, not whether it is found. A minute: a check
// is a fifth of a full sweep's instructions (tools/bench-sweep.mjs), and a
// minute apart it is one wake-up of an idle page a minute; on the bench
// machine, whose idle memory goes cold, that one wake-up still costs
// 15-18 ms of samples (docs/benchmarks.md, tenth round).
var FALLBACK_MS = 60000;

// `fn` that never throws: calls into a frame's realm and the page's
// objects, and a CMP's callbacks. One for the scripts that share a scope
// with this file: in the brain www/consent.js uses it too; the
// extension's page world, which has www/consent.js without this file, has
// its own (extension/page.js).
function guard(fn) {
  return function () { try { return fn.apply(this, arguments); } catch (e) { /* keep observing */ } };
}

function observe(m, o) {
  var W = window;
  var D = document;
  var perf = W.performance;
  var origin = perf.timeOrigin;
  var store = o.store;
  var frames = [];   // {el, perf, obs, off, label}
  var iframes = D.getElementsByTagName('iframe');
  var scanned = 0;
  var timer = 0;
  var later = W.setTimeout;
  var delay = SWEEP_SOON_MS;
  var due = 0;        // when the next sweep comes (0: not started)
  var dirty = true;   // something can have changed since the last full sweep
  var checks = o.check && o.events;

  var now = o.now;
  var on = o.on;
  // One call into the monitor per delivery (`m.entries`: URLs and
  // initiator types one per line, four numbers each in a plain array).
  function judge(list, off, label) {
    var n = Math.min(+list.length || 0, MAX_BATCH);
    var names = '';
    var types = '';
    var nums = [];   // not a Float64Array: the page's constructor (docs/hostile-pages.md)
    var k = 0;
    for (var i = 0; i < n; i++) {
      try {
        var e = list[i];
        var name = e.name;
        var type = String(e.initiatorType);
        if (typeof name !== 'string' || (name + type).indexOf('\n') >= 0) continue;
        var start = +e.startTime + off;
        var transfer = +e.transferSize || 0;
        var encoded = +e.encodedBodySize || 0;
        var duration = +e.duration || 0;
        names += (k ? '\n' : '') + name;
        types += (k ? '\n' : '') + type;
        nums[4 * k] = start;
        nums[4 * k + 1] = transfer;
        nums[4 * k + 2] = encoded;
        nums[4 * k++ + 3] = duration;
      } catch (x) { /* a forged entry: skipped */ }
    }
    if (k) { m.entries(names, types, nums, label); wake(); }
  }

  function drain(f) { try { judge(o.records(f.obs), f.off, f.label); } catch (e) { /* a broken observer */ } }
  function drop(f) { drain(f); try { f.obs.disconnect(); } catch (e) { /* gone */ } }

  // Observes the current document of a same-origin frame, unless it is
  // already: a new frame, or its document replaced (the old one drained).
  function track(el) {
    try {
      if (!el.contentDocument) return;
      var w = el.contentWindow;
      var p = w.performance;
      for (var i = 0; i < frames.length; i++) {
        if (frames[i].el !== el) continue;
        if (frames[i].perf === p) return;
        drop(frames.splice(i, 1)[0]);
        break;
      }
      var id = el.id;
      var f = { el: el, perf: p, off: p.timeOrigin - origin, label: id ? '#' + String(id).slice(0, 48) : 'frame' };
      // Kept before the attempt: a document whose observer cannot be made
      // (its scripts broke PerformanceObserver) is not tried again.
      frames.push(f);
      f.obs = new w.PerformanceObserver(function (l) {
        try { o.hold(o.list(l), f.off, f.label); } catch (e) { /* a forged list */ }
      });
      f.obs.observe({ type: 'resource', buffered: true });
    } catch (e) { /* cross-origin, opaque or broken */ }
  }

  function scan() {
    scanned = iframes.length;
    for (var i = 0; i < scanned; i++) track(iframes[i]);
    frames = frames.filter(function (f) {
      if (f.el.isConnected) return true;
      drop(f);
      return false;
    });
  }

  function expiry(list, at) {
    var epoch = o.date();
    for (var i = 0; i < list.length; i++) {
      if (typeof list[i].expires === 'number') m.expiry(String(list[i].name), list[i].expires, epoch, at);
    }
  }
  function all(then) {
    try { store.getAll().then(guard(then), function () { /* refused */ }); } catch (e) { /* no Cookie Store */ }
  }
  // The cookies now: document.cookie, else (a page that broke it, an
  // opaque origin) the Cookie Store's list.
  function cookies(at) {
    var header;
    try { header = D.cookie; } catch (e) {
      return all(function (list) {
        m.cookies(o.cookies(list.map(function (c) { return c.name + '=' + c.value; }).join('; ')), at);
      });
    }
    m.cookies(o.cookies(header), at);
    if (m.wants_expiry()) all(function (list) { expiry(list, at); });
    wake();
  }

  function settle() {
    o.drain();
    scan();
    for (var i = 0; i < frames.length; i++) drain(frames[i]);
    cookies(now());
  }

  // A full sweep when something can have changed (or the caller cannot
  // tell), else the check alone, backing off.
  function tick() {
    if (!o.events) cookies(now());
    if (iframes.length !== scanned) { scan(); dirty = true; }
    if (!dirty && checks && o.check.same()) {
      delay = Math.min(2 * delay, FALLBACK_MS);
    } else {
      dirty = false;
      o.poll();
      delay = m.tick(now());
    }
    sweepIn(delay);
  }
  function sweepIn(ms) {
    clearTimeout(timer);
    due = now() + ms;
    timer = later(guard(tick), ms);
  }
  // The next sweep within SWEEP_SOON_MS; `wake`: a full one.
  function soon() {
    if (due && due - now() > SWEEP_SOON_MS) sweepIn(SWEEP_SOON_MS);
  }
  function wake() {
    dirty = true;
    soon();
  }

  function exit() {
    settle();
    // false: held for an on-demand piece not there yet (src/pieces.rs).
    if (m.flush(now()) === false && o.held) o.held();
  }

  try {
    on(D, 'load', guard(function (e) { if (e.target.tagName === 'IFRAME') track(e.target); }), { capture: true, passive: true });
    on(W, 'pagehide', guard(exit));
    on(D, 'visibilitychange', guard(function () { if (D.visibilityState === 'hidden') exit(); else wake(); }));
    if (checks) new W.MutationObserver(guard(soon)).observe(D, { childList: true, subtree: true });
  } catch (e) { /* no events: every sweep is a full one */ checks = false; }
  return {
    judge: judge, settle: settle, cookies: cookies, exit: exit, wake: wake,
    start: function () {
      o.entries(guard(judge));
      scan();
      sweepIn(m.start(now()));
    }
  };
}

// A batch the collector refused (503: its store is unavailable; 429: over
// its limits) was not stored: it is sent once more after the answer's
// `Retry-After` (at most RETRY_MAX_S seconds; RETRY_DEFAULT_S when the
// answer has none), or at once when the page is left before that. Once
// only: a collector still refusing then is down for longer than a page
// view (it counts its refusals).
var RETRY_MAX_S = 30;
var RETRY_DEFAULT_S = 2;

/* The snippet's host (src/host.rs) on the page's `window`; `send` is the
 * loader's (www/host.js), here sending a refused batch once more
 * (RETRY_MAX_S); `byName(url)` answers `url`'s Resource Timing entries
 * (`performance.getEntriesByName`) and `on(target, type, fn)` adds a
 * listener, the browser's own from the caller (`o.on` of observe() above).
 * The extension's host is this one too. */
function windowHost(send, byName, on) {
  var W = window;
  var D = document;
  var asked = null;   // the last `present` lists, and its answer
  var answer;
  var valued = 0;     // the sweep read a `value` (an identity, not in `present`)
  return {
    send: function (url, body) {
      var sent = send(url, body);
      if (sent) sent.then(function (r) {
        try {
          if (!r || (r.status !== 503 && r.status !== 429)) return;
          var s = parseInt(r.headers.get('Retry-After'), 10);
          var done = 0;
          var again = function () {
            if (done++) return;
            try { W.removeEventListener('pagehide', again); } catch (e) { /* sent all the same */ }
            send(url, body, 1);
          };
          on(W, 'pagehide', again);
          W.setTimeout(again, 1000 * Math.min(s >= 0 ? s : RETRY_DEFAULT_S, RETRY_MAX_S));
        } catch (e) { /* the batch is lost, as before */ }
      }, function () { /* a failed send fell back already */ });
    },
    truthy: function (path) {
      var v = W;
      var keys = path.split('.');
      for (var i = 0; i < keys.length; i++) {
        if (!v || (typeof v !== 'object' && typeof v !== 'function')) return false;
        v = v[keys[i]];
      }
      return !!v;
    },
    element: function (id) { return !!D.getElementById(id); },
    script: function (id) {
      var e = D.getElementById(id);
      var src = e && e.src;
      return src ? byName(src)[0] : undefined;
    },
    value: function (key) { valued = 1; return W[key]; },
    // Whether the last sweep's answer holds: the same lists asked again
    // (no call into the monitor); never where that sweep read more.
    same: function () {
      var before = answer;
      return !!asked && !valued && this.present.apply(this, asked) === before;
    },
    // The shell's sweep in one call (src/host.rs): `1`/`0` per item. Each
    // read is guarded (a getter that throws: not there); `truthy` is asked
    // of the host itself, which the extension answers its own way. The
    // three readers are called as they are (none uses `this`): no closure
    // around each, 3 bytes of the brain's gzip.
    present: function (globals, ids, scripts) {
      var self = this;
      var out = '';
      function each(list, fn) {
        if (!list) return;
        var items = list.split('\n');
        for (var i = 0; i < items.length; i++) {
          var v = false;
          try { v = fn(items[i]); } catch (e) { /* not there */ }
          out += v ? '1' : '0';
        }
      }
      each(globals, self.truthy);
      each(ids, self.element);
      each(scripts, self.script);
      asked = [globals, ids, scripts];
      valued = 0;
      return answer = out;
    }
  };
}
