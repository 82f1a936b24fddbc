/* tagwatch popup: one tab's audit. The tab is the active one, or `?tab=ID`
 * (so the popup also opens as a page). Its content script answers with the
 * monitor's report batch (findings and inventory, the snippet's report
 * format), the consent in force and how vendors were seen; cookies come from
 * chrome.cookies, names and dates only. Everything is rendered as text
 * (textContent): page-derived strings never become markup. */
'use strict';

var CATEGORIES = ['necessary', 'functional', 'analytics', 'marketing'];
var BASIS = {
  none: 'nothing decided yet', explicit: 'a decision the source reports',
  implied: 'applied by the CMP without a click; counts only with policy.implied "accept"'
};
var SOURCES = {
  default: 'nothing decided yet (only necessary)', api: "the site's tagwatch('consent') call",
  tcf: 'IAB TCF (__tcfapi)', gpp: 'IAB GPP (__gpp)',
};
var params = new URLSearchParams(location.search);
var vendorsById = {};
TAGWATCH_CATALOG.forEach(function (v) { vendorsById[v.id] = v; });
var tab = null;
var last = null;       // the latest audit
var options = {};

function $(id) { return document.getElementById(id); }
function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(table, cells, header) {
  var tr = el('tr');
  cells.forEach(function (c) {
    var td = el(header ? 'th' : 'td');
    if (c instanceof Node) td.appendChild(c);
    else if (c && typeof c === 'object') {
      if (c.node) td.appendChild(c.node); else td.textContent = c.text;
      if (c.cls) td.className = c.cls;
    } else td.textContent = c === undefined || c === null ? '' : String(c);
    tr.appendChild(td);
  });
  table.appendChild(tr);
}
function fill(table, head, rows, empty) {
  table.textContent = '';
  if (!rows.length) {
    row(table, [{ text: empty, cls: 'empty' }]);
    return;
  }
  row(table, head, true);
  rows.forEach(function (r) { row(table, r); });
}
function chips(list) {
  var span = el('span');
  list.forEach(function (c) { span.appendChild(el('span', c.text || c, 'chip' + (c.warn ? ' warn' : ''))); });
  return span;
}
function kb(bytes) { return bytes >= 1024 ? (bytes / 1024).toFixed(1) + ' KB' : bytes + ' B'; }
function nameOf(id) { return (vendorsById[id] && vendorsById[id].name) || id; }
function siteOf(host) {
  var labels = host.split('.');
  var two = /^(co|com|net|org|gov|ac|edu)\.[a-z]{2}$/.test(labels.slice(-2).join('.'));
  return labels.slice(two ? -3 : -2).join('.');
}

/** The catalog vendor and cookie rule of a cookie name, in the engine's order. */
function classifyCookie(name) {
  for (var i = 0; i < TAGWATCH_CATALOG.length; i++) {
    var v = TAGWATCH_CATALOG[i];
    for (var j = 0; j < v.cookies.length; j++) {
      var c = v.cookies[j];
      if (c.match === 'exact' ? name === c.name : name.indexOf(c.name) === 0) return { vendor: v, rule: c };
    }
  }
  return null;
}

function evidenceText(e) {
  if (!e) return '';
  if (e.kind === 'request') {
    return e.host + e.path + '  (' + e.initiator + (e.frame && e.frame !== 'top' ? ', in ' + e.frame : '') + (e.region ? ', ' + e.region : '') + ')';
  }
  if (e.kind === 'cookie') return 'cookie ' + e.cookie + (e.days !== undefined ? ' (' + e.days + ' days left)' : '');
  if (e.kind === 'global') return 'global ' + e.name;
  if (e.kind === 'dom') return 'element ' + e.name;
  if (e.kind === 'signal') return e.signal + ' claims ' + e.claimed + (e.host ? ' on ' + e.host + e.path : '');
  return JSON.stringify(e);
}

function renderConsent(state) {
  var box = $('consent');
  box.textContent = '';
  if (!state) {
    box.appendChild(el('span', 'not known yet', 'muted'));
    return;
  }
  // `state`: the consent in force, as a finding's `consent` object.
  CATEGORIES.forEach(function (c) {
    var v = state[c];
    var label = v === true ? 'granted' : v === false ? 'refused' : 'unknown';
    var span = el('span', c + ': ' + label, 'cat ' + label);
    span.dataset.category = c;
    box.appendChild(span);
  });
  var source = String(state.source);
  var s = el('span', 'source: ' + source + (SOURCES[source] ? ' — ' + SOURCES[source] : ' (the CMP\'s own API, events or cookies)'), 'source');
  s.id = 'consent-source';
  box.appendChild(s);
  // `basis` (absent from monitors before it): implied consent is marked.
  if (state.basis) {
    var b = el('span', 'basis: ' + state.basis + (BASIS[state.basis] ? ' — ' + BASIS[state.basis] : ''), 'source');
    b.id = 'consent-basis';
    box.appendChild(b);
  }
}

function renderFindings(reports) {
  var findings = reports.filter(function (r) { return r.type === 'tagwatch-finding'; }).map(function (r) { return r.body; });
  findings.sort(function (a, b) { return a.at - b.at; });
  $('findings-count').textContent = findings.length ? '(' + findings.length + ')' : '';
  var count = $('count');
  count.textContent = String(findings.length);
  count.className = 'count' + (findings.length ? ' bad' : '');
  fill($('findings'), ['finding', 'vendor', 'needs', 'evidence', 'at', '×'], findings.map(function (f) {
    // `consent.vendor`: the CMP's own choice about this vendor (a
    // per-service choice), which decided over the category.
    var own = f.consent && typeof f.consent.vendor === 'boolean'
      ? ' (' + (f.consent.vendor ? 'granted' : 'refused') + ' for this vendor)' : '';
    return [
      { text: f.finding, cls: 'finding' }, nameOf(f.vendor), (f.category || '—') + own,
      { text: evidenceText(f.evidence), cls: 'ev' }, { text: f.at + ' ms', cls: 'num' }, { text: f.count, cls: 'num' },
    ];
  }), 'No findings on this page view.');
}

function renderVendors(inventory, audit) {
  var list = (inventory && inventory.vendors) || [];
  $('vendors-count').textContent = list.length ? '(' + list.length + ')' : '';
  fill($('vendors'), ['vendor', 'seen by', 'requests', 'transferred', 'time', 'declared'], list.map(function (v) {
    var how = [];
    if (v.requests) how.push('network');
    if (v.cookies.length) how.push('cookie');
    if (audit.globals.some(function (g) { return g[0] === v.vendor; })) how.push('global');
    if (audit.dom.some(function (d) { return d[0] === v.vendor; })) how.push('DOM');
    var c = vendorsById[v.vendor];
    var declared = c && c.weight ? c.weight.script_kb + ' KB, ' + c.weight.requests + ' req' : '—';
    var heavy = c && c.weight && v.transfer_bytes > c.weight.script_kb * 1024;
    var name = el('span');
    name.appendChild(el('strong', nameOf(v.vendor)));
    name.appendChild(el('span', ' ' + (c ? c.category : ''), 'muted'));
    if (v.regions.length) name.appendChild(el('span', ' · ' + v.regions.join(', '), 'muted'));
    return [
      name, chips(how), { text: v.requests + (v.script_requests ? ' (' + v.script_requests + ' scripts)' : ''), cls: 'num' },
      heavy ? { node: chips([{ text: kb(v.transfer_bytes) + ' > declared', warn: true }]), cls: 'num' } : { text: kb(v.transfer_bytes), cls: 'num' },
      { text: v.duration_ms + ' ms', cls: 'num' },
      { text: declared, cls: 'num' },
    ];
  }), 'No catalog vendor seen yet.');
  var other = (inventory && inventory.unclassified) || [];
  $('unclassified-count').textContent = other.length ? '(' + other.length + ')' : '';
  fill($('unclassified'), ['host', 'requests', 'transferred', 'time'], other.map(function (h) {
    return [h.host, { text: h.requests, cls: 'num' }, { text: kb(h.transfer_bytes), cls: 'num' }, { text: h.duration_ms + ' ms', cls: 'num' }];
  }), 'None: every third-party host is in the catalog.');
}

/** The page's cookies and the vendors' (third-party) ones, from chrome.cookies: no values. */
function renderCookies(audit, inventory) {
  var page = new URL(audit.page);
  var own = siteOf(page.hostname);
  var sites = {};
  ((inventory && inventory.vendors) || []).forEach(function (v) { v.hosts.forEach(function (h) { sites[siteOf(h)] = 1; }); });
  ((inventory && inventory.unclassified) || []).forEach(function (h) { sites[siteOf(h.host)] = 1; });
  delete sites[own];
  var reads = [chrome.cookies.getAll({ url: audit.page })].concat(Object.keys(sites).map(function (s) {
    return chrome.cookies.getAll({ domain: s });
  }));
  return Promise.all(reads).then(function (lists) {
    var seen = {};
    var cookies = [];
    lists.forEach(function (list) {
      list.forEach(function (c) {
        var key = c.domain + '|' + c.path + '|' + c.name;
        if (seen[key]) return;
        seen[key] = 1;
        cookies.push({
          name: c.name, domain: c.domain, httpOnly: c.httpOnly, secure: c.secure,
          thirdParty: siteOf(c.domain.replace(/^\./, '')) !== own,
          expires: c.session || !c.expirationDate ? null : c.expirationDate * 1000,
        });
      });
    });
    var now = Date.now();
    cookies.sort(function (a, b) { return (a.thirdParty - b.thirdParty) || a.name.localeCompare(b.name); });
    $('cookies-count').textContent = cookies.length ? '(' + cookies.length + ')' : '';
    fill($('cookies'), ['cookie', 'vendor', 'purpose', 'lifetime', 'flags', 'domain'], cookies.map(function (c) {
      var hit = classifyCookie(c.name);
      var purpose = hit ? hit.rule.purpose + ' → ' + (hit.vendor.purposes[hit.rule.purpose] || '?') : '—';
      var days = c.expires === null ? 'session' : Math.max(0, Math.round((c.expires - now) / 864e5)) + ' days';
      if (hit && hit.rule.days) days += ' (declared ' + hit.rule.days + ')';
      var flags = [];
      if (c.httpOnly) flags.push('HttpOnly');
      if (c.secure) flags.push('Secure');
      if (c.thirdParty) flags.push('third-party');
      return [{ text: c.name, cls: 'ev' }, hit ? hit.vendor.name : '—', purpose, { text: days, cls: 'num' }, chips(flags), c.domain];
    }), 'No cookies.');
  });
}

function render(audit) {
  last = audit;
  $('page').textContent = audit.page;
  var status = $('status');
  if (!audit.running) {
    status.textContent = audit.failed ? 'The monitor could not start here (' + audit.failed + ').' : 'The monitor is starting…';
    status.hidden = false;
    return Promise.resolve();
  }
  status.hidden = true;
  $('main').hidden = false;
  var reports = JSON.parse(audit.findings);
  var inventory = null;
  reports.forEach(function (r) { if (r.type === 'tagwatch-inventory') inventory = r.body; });
  renderConsent(audit.consent);
  renderFindings(reports);
  renderVendors(inventory, audit);
  return renderCookies(audit, inventory).then(function () { document.body.dataset.ready = '1'; });
}

function refresh() {
  if (tab === null) return Promise.resolve();
  return chrome.tabs.sendMessage(tab, { t: 'audit' }, { frameId: 0 }).then(function (audit) {
    if (!audit) throw new Error('no answer');
    return render(audit);
  }).catch(function () {
    $('status').textContent = 'tagwatch does not run in this tab: a browser page, or a page opened before the extension was installed (reload it).';
    $('status').hidden = false;
  });
}

function exportAudit() {
  if (!last) return;
  var host = new URL(last.page).hostname;
  var stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 13);
  var blob = new Blob([JSON.stringify(JSON.parse(last.findings), null, 2) + '\n'], { type: 'application/json' });
  var a = el('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'tagwatch-' + host + '-' + stamp + '.json';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
}

$('export').addEventListener('click', exportAudit);
$('send').addEventListener('click', function () {
  chrome.tabs.sendMessage(tab, { t: 'flush' }, { frameId: 0 }).then(function () {
    $('status').textContent = 'Sent what was new to ' + options.collector + '.';
    $('status').hidden = false;
  }, function () {});
});
$('first-visit').addEventListener('click', function () {
  $('status').textContent = 'Deleting this site\'s cookies and storage, then reloading…';
  $('status').hidden = false;
  chrome.runtime.sendMessage({ t: 'reset', tab: tab }).then(function (r) {
    $('status').textContent = r && r.ok
      ? 'Cookies and storage of ' + r.site + ' deleted; the tab reloaded as a first visit.'
      : 'Could not reset this site: ' + ((r && r.error) || 'no answer');
    document.body.dataset.reset = r && r.ok ? 'done' : 'failed';
    setTimeout(refresh, 1500);
  });
});

chrome.storage.local.get({ collector: '', site: '' }).then(function (o) {
  options = o;
  $('send').hidden = !o.collector;
});
(params.get('tab') ? Promise.resolve(Number(params.get('tab'))) : chrome.tabs.query({ active: true, currentWindow: true }).then(function (t) {
  return t[0] ? t[0].id : null;
})).then(function (id) {
  tab = id;
  return refresh();
}).then(function () { setInterval(refresh, 2000); });
