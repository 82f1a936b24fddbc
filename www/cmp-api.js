/* The page adapters of IAB TCF and GPP (`__tcfapi`, `__gpp`, or their
 * locator frames) and of the CMPs' own APIs (OneTrust, Cookiebot, Didomi,
 * CookieYes, Klaro, vanilla-cookieconsent, Osano, Usercentrics): how to read each one's
 * live state, in its own terms. Only pages with one of these need
 * them: the snippet serves them on demand (dist/ondemand/cmp-api.js, an ES
 * module the brain imports when www/consent.js sees one of their globals
 * or events, or runs in a frame; tools/bundle.mjs); the extension has them inline
 * (tools/pack-extension.mjs).
 *
 * `cmpReaders(x)` gets www/consent.js's helpers — `x.w` the window,
 * `x.cmp(id, choices, decided, restored, at)` (choices: [names, 1/0 each]
 * of the CMP's categories, then the same of its services where it records
 * choices per service), `x.pairs`, `x.flag`, `x.bool`, `x.fn`, `x.on` (a DOM listener
 * added through the host's addEventListener, taken before the page's
 * scripts ran: a locator frame's `message`),
 * `x.guard`, the sink (`x.sink.tcf`, `.gpp`), `x.when(restored)` (when a
 * state read now took effect), `x.last` (the last value passed on per
 * source) and `x.parse` (the host's JSON.parse) — and returns `{id: read(restored, at)}`: each reads its CMP
 * now, passes the state on through `x.cmp` and returns false while the
 * CMP's API is missing. `at` (optional) is when the state took effect, for
 * a read asked by an event before the adapters were there. What the names
 * mean is decided in the core only (`cmp::from_choices`). */
function cmpReaders(x) {
  var w = x.w;
  var fn = x.fn;
  var flag = x.flag;
  var pairs = x.pairs;
  var cmp = x.cmp;
  var guard = x.guard;
  var on = x.on;
  var bool = x.bool;
  var sink = x.sink;
  var when = x.when;
  var last = x.last;
  // The page's list of numbers as a plain array (at most 100: GPP has a
  // few sections).
  function numbers(list) {
    var out = [];
    for (var i = 0; list && i < list.length && i < 100; i++) out.push(+list[i] | 0);
    return out;
  }
  // ---- IAB TCF v2.2 and GPP 1.1: the page's API, or a locator frame ----
  // Each registers its listener once (`readers.tcf()` / `.gpp()`: false
  // while there is no API); its first callback is the state found (`when`
  // gives -1: the monitor dates it, src/prestart.rs), later ones choices.
  // A frame (or the page of a CMP loaded in a frame) reaches the API by
  // postMessage to the ancestor holding `__tcfapiLocator` / `__gppLocator`.
  function api(name) {
    if (fn(w[name])) return w[name];
    var frame = null;
    for (var f = w; f && !frame; f = f === w.top ? null : f.parent) {
      try { if (f !== w && f.frames[name + 'Locator']) frame = f; } catch (e) { /* cross-origin: keep walking */ }
    }
    if (!frame) return null;
    var callbacks = {};
    var n = 0;
    on(w, 'message', function (e) {
      var d = e.data;
      if (typeof d === 'string' && d.indexOf(name + 'Return') > 0) d = x.parse(d);
      var r = d && d[name + 'Return'];
      if (r && callbacks[r.callId]) callbacks[r.callId](r.returnValue, r.success);
    });
    return function (command, a, b) {
      var id = 'tagwatch' + (++n);
      var cb = fn(a) ? a : b;   // __tcfapi(cmd, version, cb); __gpp(cmd, cb)
      callbacks[id] = cb;
      var msg = {};
      msg[name + 'Call'] = { command: command, version: fn(a) ? '1.1' : a, parameter: undefined, callId: id };
      frame.postMessage(msg, '*');
    };
  }
  function tcf() {
    var call = api('__tcfapi');
    if (!call) return false;
    var first = true;
    call('addEventListener', 2, guard(function (d, ok) {
      if (!ok || !d) return;
      var applies = bool(d.gdprApplies);
      var consents = (d.purpose && d.purpose.consents) || {};
      var purposes = [];
      for (var i = 1; i <= 11; i++) if (consents[i]) purposes.push(i);
      var vendors = [];
      var given = (d.vendor && d.vendor.consents) || {};
      for (var id in given) if (given[id]) vendors.push(+id);
      var key = applies + d.eventStatus + purposes + '|' + vendors;
      var at = when(first);
      first = false;
      if (last.tcf === key) return;
      last.tcf = key;
      sink.tcf(applies, String(d.eventStatus || ''), purposes, vendors, at);
    }));
    return true;
  }
  function gpp() {
    var call = api('__gpp');
    if (!call) return false;
    var first = true;
    call('addEventListener', guard(function (evt, ok) {
      var p = evt && evt.pingData;
      if (!ok || !p || p.signalStatus !== 'ready') return;
      var key = p.gppString + '|' + p.applicableSections;
      if (last.gpp === key) return;
      last.gpp = key;
      sink.gpp(String(p.gppString || ''), numbers(p.applicableSections),
        when(first && p.cmpDisplayStatus !== 'visible'));
      first = false;
    }));
    return true;
  }

  // Services read of one CMP at most: more than a site configures (tens);
  // a hostile list's length cannot keep the page busy.
  var MAX_SERVICES = 1000;
  // A CMP's services, each `{name, <category key>: slug}` with `given(s)`
  // true or false (else skipped), passed on by name; its categories from
  // them. `decided` a value or a function called after the services.
  function perService(list, given, key, decided, restored, at) {
    var out = [[], [], [[], []]];
    var cats = {};
    for (var i = 0; i < list.length; i++) {
      var s = list[i];
      var g = s && given(s);
      if (typeof g !== 'boolean' || typeof s.name !== 'string') continue;
      out[2][0].push(s.name);
      out[2][1].push(flag(g));
      var c = '_' + s[key];
      cats[c] = cats[c] === undefined || cats[c] === g ? g : null;
    }
    for (var k in cats) {
      if (k !== '_undefined' && cats[k] !== null) { out[0].push(k.slice(1)); out[1].push(flag(cats[k])); }
    }
    cmp('usercentrics', out, fn(decided) ? decided() : decided, restored, at);
  }
  var readers = {
    tcf: tcf,
    gpp: gpp,
    onetrust: function (restored, at) {
      var ot = w.OneTrust;
      var active = w.OnetrustActiveGroups;
      if (!ot || typeof active !== 'string') return false;
      // The site's groups, so an absent group does not read as refused.
      var groups = [];
      var data = fn(ot.GetDomainData) && ot.GetDomainData();
      ((data && data.Groups) || []).forEach(function (g) { if (g && g.CustomGroupId) groups.push(g.CustomGroupId); });
      if (!groups.length) groups = active.split(',').filter(Boolean);
      cmp('onetrust', [groups, groups.map(function (g) { return flag(active.indexOf(',' + g + ',') >= 0); })],
        fn(ot.IsAlertBoxClosed) && ot.IsAlertBoxClosed(), restored, at);
      return true;
    },
    cookiebot: function (restored, at) {
      var cb = w.Cookiebot;
      if (!cb || !cb.consent) return false;
      var c = cb.consent;
      // decided 2: implied consent (Cookiebot applied it without a click).
      cmp('cookiebot', pairs({ preferences: c.preferences, statistics: c.statistics, marketing: c.marketing }),
        !cb.hasResponse ? 0 : c.method === 'implied' ? 2 : 1, restored, at);
      return true;
    },
    didomi: function (restored, at) {
      var D = w.Didomi;
      if (!D || !fn(D.getCurrentUserStatus)) return false;
      var purposes = (D.getCurrentUserStatus() || {}).purposes || {};
      cmp('didomi', pairs(purposes, function (p) { return p && typeof p.enabled === 'boolean' ? flag(p.enabled) : -1; }),
        !(fn(D.shouldConsentBeCollected) && D.shouldConsentBeCollected()), restored, at);
      return true;
    },
    cookieyes: function (restored, at) {
      if (!fn(w.getCkyConsent)) return false;
      var c = w.getCkyConsent() || {};
      cmp('cookieyes', pairs(c.categories), c.isUserActionCompleted, restored, at);
      return true;
    },
    klaro: function (restored, at) {
      var m = w.klaro && fn(w.klaro.getManager) && w.klaro.getManager();
      if (!m || !m.config) return false;
      // Klaro records consent per service; each service names its purposes.
      var out = [[], [], [[], []]];
      (m.config.services || m.config.apps || []).forEach(function (s) {
        var given = flag(m.getConsent(s.name));
        (s.purposes || []).forEach(function (p) { out[0].push(p); out[1].push(given); });
        out[2][0].push(String(s.name));
        out[2][1].push(given);
      });
      cmp('klaro', out, m.confirmed, restored, at);
      if (!m.tagwatch) {
        m.tagwatch = 1;
        m.watch({ update: guard(function (_, name) { if (name === 'saveConsents') readers.klaro(false); }) });
      }
      return true;
    },
    'vanilla-cookieconsent': function (restored, at) {
      var c = w.CookieConsent;
      if (!c || !fn(c.getUserPreferences)) return false;
      var p = c.getUserPreferences() || {};
      var yes = p.acceptedCategories || [];
      var no = p.rejectedCategories || [];
      // v3 services, per category: {category: [service names]}.
      var services = [[], []];
      [[p.acceptedServices, 1], [p.rejectedServices, 0]].forEach(function (list) {
        for (var cat in list[0] || {}) {
          (list[0][cat] || []).forEach(function (name) { services[0].push(String(name)); services[1].push(list[1]); });
        }
      });
      // A choice stored before this page view is restored, in force from
      // page start (at -1), however it is read: cookieconsent fires
      // `cc:onConsent` on every page load with a stored choice, after the
      // site's onConsent callback ran its tags.
      var saved = fn(c.getCookie) ? Date.parse(c.getCookie('lastConsentTimestamp')) : NaN;
      cmp('vanilla-cookieconsent', [yes.concat(no), yes.map(function () { return 1; }).concat(no.map(function () { return 0; })), services],
        fn(c.validConsent) && c.validConsent(), restored, saved < w.performance.timeOrigin ? -1 : at);
      return true;
    },
    // Usercentrics: V3's `__ucCmp.getConsentDetails()` (a Promise of
    // {consent: {type}, services: {id: {name, category, consent: {given}}}},
    // also the `UC_CONSENT` event's detail) or V2's
    // `UC_UI.getServicesBaseInfo()` ([{name, categorySlug, consent: {status,
    // history: [{type}]}}]). Each service by its name; a category is granted
    // or refused when all its services are (mixed: left unknown).
    usercentrics: guard(function (restored, at) {
      var v3 = w.__ucCmp;
      var ui = w.UC_UI;
      if (v3 && fn(v3.getConsentDetails)) {
        v3.getConsentDetails().then(guard(function (d) {
          var list = [];
          for (var id in d.services) if (list.push(d.services[id]) >= MAX_SERVICES) break;
          var type = String(d.consent.type).toLowerCase();
          perService(list, function (s) { return s.consent && s.consent.given; }, 'category',
            type === 'explicit' ? 1 : type === 'implicit' ? 2 : 0, restored, at);
        }));
        return true;
      }
      if (!ui || !fn(ui.getServicesBaseInfo)) return false;
      var list = ui.getServicesBaseInfo();
      var decided = 0;
      perService(Array.isArray(list) ? list.slice(0, MAX_SERVICES) : [], function (s) {
        var h = s.consent && s.consent.history;
        var type = h && h.length && h[h.length - 1] && h[h.length - 1].type;
        decided = type === 'explicit' ? 1 : decided || (type === 'implicit' ? 2 : 0);
        return s.consent && s.consent.status;
      }, 'categorySlug', function () { return decided; }, restored, at);
      return true;
    }),
    osano: function (restored, at) {
      var cm = w.Osano && w.Osano.cm;
      if (!cm || !fn(cm.getConsent)) return false;
      var choices = pairs(cm.getConsent(), function (v) { return v === 'ACCEPT' ? 1 : v === 'DENY' ? 0 : -1; });
      cmp('osano', choices, choices[0].length > 0, restored, at);
      if (!cm.tagwatch && fn(cm.addEventListener)) {
        cm.tagwatch = 1;
        cm.addEventListener('osano-cm-consent-saved', guard(function () { readers.osano(false); }));
      }
      return true;
    }
  };
  return readers;
}
