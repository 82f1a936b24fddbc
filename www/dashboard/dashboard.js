// tagwatch dashboard (served by the collector at /dashboard/).
//
// Every value shown comes from reports that untrusted browsers sent, so it
// is rendered as text only: textContent, createTextNode and setAttribute on
// plain attributes — never an HTML setter or parser. The chart is SVG
// built with createElementNS. No library, no remote asset; the collector's
// CSP (default-src 'self') allows nothing else anyway.
//
// Auth: the admin token the user enters goes into sessionStorage (this tab
// only) and into the Authorization header of every API call. A 401 forgets
// it and clears whatever was shown.
'use strict';

(() => {
  const TOKEN_KEY = 'tagwatch.admin-token';
  const SITE_KEY = 'tagwatch.site';
  const SVG = 'http://www.w3.org/2000/svg';
  const FINDINGS_LIMIT = 500;
  const MAX_CHART_DAYS = 366;
  const CATEGORIES = ['necessary', 'functional', 'analytics', 'marketing'];

  const $ = (id) => document.getElementById(id);

  class AuthError extends Error {}

  const state = {
    token: null,
    site: null,
    filter: null, // {param: 'vendor' | 'type' | 'page', value}
    release: '', // '' all releases, else only that release's reports
    generation: 0, // ignores answers for a site no longer selected
    findings: [],
  };

  // ------------------------------------------------------------ DOM helpers

  /** An element with text children only (strings become text nodes). */
  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, String(v));
      else if (k === 'title') e.title = String(v);
      else if (k === 'type') e.type = v;
      else throw new Error(`el: unsupported property ${k}`);
    }
    for (const c of children) append(e, c);
    return e;
  }

  function append(parent, child) {
    if (child === null || child === undefined) return;
    if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }

  function svg(tag, attrs = {}, text = null) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function tbody(id) {
    const body = $(id).tBodies[0];
    clear(body);
    return body;
  }

  function emptyRow(body, columns, text = 'none') {
    body.appendChild(el('tr', { class: 'empty' }, el('td', {}, text)));
    body.lastChild.firstChild.colSpan = columns;
  }

  const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
  const kb = (bytes) => (typeof bytes === 'number' ? (bytes / 1024).toFixed(1) : '–');
  const time = (iso) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '–');
  const str = (v) => (v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v));

  // ---------------------------------------------------------------- messages

  function showError(message) {
    const e = $('error');
    e.textContent = message;
    e.hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  function status(message) {
    $('status').textContent = message;
  }

  /** Hides and empties everything that came from the API. */
  function clearData() {
    $('data').hidden = true;
    for (const t of document.querySelectorAll('#data table')) clear(t.tBodies[0]);
    clear($('chart'));
    clear($('inventory-details'));
    $('finding').hidden = true;
    state.findings = [];
    for (const id of ['n-findings', 'n-occurrences', 'n-page-views']) $(id).textContent = '0';
    $('inv-page-views').textContent = '';
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.site = null;
    state.generation++;
    clearData();
    clear($('site'));
    $('site-label').hidden = true;
    $('forget').hidden = true;
    status('');
    if (message) showError(message);
  }

  // --------------------------------------------------------------------- API

  async function api(path, params = {}) {
    const url = new URL(`../api/${path}`, location.href);
    for (const [k, v] of Object.entries(params)) {
      if (v !== null && v !== undefined && v !== '') url.searchParams.set(k, v);
    }
    let res;
    try {
      res = await fetch(url, {
        headers: { Authorization: `Bearer ${state.token}` },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new Error(`cannot reach the collector (${e.message})`);
    }
    if (res.status === 401) throw new AuthError((await res.text()).trim());
    if (!res.ok) throw new Error(`GET /api/${path}: ${res.status} ${(await res.text()).trim()}`);
    return res.json();
  }

  function failed(e) {
    if (e instanceof AuthError) {
      signOut(`The collector refused this admin token (401: ${e.message}). ` +
        'Enter the TAGWATCH_ADMIN_TOKEN the collector runs with.');
    } else {
      status('');
      showError(e.message);
    }
  }

  // ------------------------------------------------------------------ sites

  async function connect() {
    clearError();
    status('Connecting…');
    let answer;
    try {
      answer = await api('sites');
    } catch (e) {
      failed(e);
      return;
    }
    $('forget').hidden = false;
    const select = $('site');
    clear(select);
    for (const s of answer.sites) {
      const origins = Array.isArray(s.origins) ? s.origins.join(', ') : '';
      const option = el('option', {}, origins ? `${origins} — ${s.site}` : s.site);
      option.value = s.site;
      select.appendChild(option);
    }
    $('site-label').hidden = false;
    if (answer.sites.length === 0) {
      status('No site registered yet: tagwatch site add --origin https://… --db …');
      return;
    }
    const remembered = sessionStorage.getItem(SITE_KEY);
    const pick = answer.sites.some((s) => s.site === remembered) ? remembered : answer.sites[0].site;
    select.value = pick;
    await loadSite(pick);
  }

  async function loadSite(site) {
    state.site = site;
    state.filter = null;
    state.release = '';
    sessionStorage.setItem(SITE_KEY, site);
    const generation = ++state.generation;
    clearError();
    status('Loading…');
    let releases;
    try {
      releases = await api('releases', { site });
    } catch (e) {
      if (generation === state.generation) failed(e);
      return;
    }
    if (generation !== state.generation) return;
    renderReleases(releases.releases || []);
    await loadData(generation);
  }

  /** Stats, findings and inventory of the site, of the chosen release if any. */
  async function loadData(generation) {
    const site = state.site;
    const scope = state.release ? { site, release: state.release } : { site };
    let stats, findings, inventory;
    try {
      [stats, findings, inventory] = await Promise.all([
        api('stats', scope),
        api('findings', { ...scope, order: 'desc', limit: FINDINGS_LIMIT }),
        api('inventory', scope),
      ]);
    } catch (e) {
      if (generation === state.generation) failed(e);
      return;
    }
    if (generation !== state.generation) return;
    clearData();
    renderStats(stats);
    renderFindings(findings.findings);
    renderInventory(inventory);
    $('data').hidden = false;
    status(`Site ${site}${state.release ? `, release ${state.release}` : ''}: ${num(stats.findings)} findings.`);
  }

  // --------------------------------------------------------------- releases

  function releaseOptions(select, releases, first) {
    clear(select);
    if (first) {
      const all = el('option', {}, first);
      all.value = '';
      select.appendChild(all);
    }
    for (const r of releases) {
      const option = el('option', {}, r.release);
      option.value = r.release;
      select.appendChild(option);
    }
  }

  function renderReleases(releases) {
    releaseOptions($('release'), releases, 'all releases');
    $('release-label').hidden = releases.length === 0;
    releaseOptions($('diff-from'), releases, null);
    releaseOptions($('diff-to'), releases, null);
    // The latest two: what the last deploy changed.
    if (releases.length >= 2) $('diff-from').value = releases[releases.length - 2].release;
    if (releases.length >= 1) $('diff-to').value = releases[releases.length - 1].release;
    $('releases').hidden = releases.length === 0;
    clear($('diff-pages'));
    tbody('diff');
  }

  async function loadDiff() {
    const generation = state.generation;
    const from = $('diff-from').value;
    const to = $('diff-to').value;
    let d;
    try {
      d = await api('diff', { site: state.site, from, to });
    } catch (e) {
      failed(e);
      return;
    }
    if (generation !== state.generation) return;
    $('diff-pages').textContent = `${d.from.release}: ${num(d.from.page_views)} page views → ${d.to.release}: ${num(d.to.page_views)} page views`;
    const body = tbody('diff');
    const rows = [
      ['vendor appeared', d.vendors.appeared, 'vendor', 'page_views'],
      ['vendor vanished', d.vendors.vanished, 'vendor', 'page_views'],
      ['new host', d.hosts.new, 'host', 'page_views'],
      ['new cookie', d.cookies.new, 'cookie', 'page_views'],
      ['finding type appeared', d.finding_types.appeared, 'type', 'findings'],
      ['finding type disappeared', d.finding_types.disappeared, 'type', 'findings'],
    ];
    for (const [change, list, key, count] of rows) {
      for (const x of list || []) {
        body.appendChild(el('tr', { 'data-change': change, 'data-name': x[key] }, el('td', {}, change), el('td', {}, x[key]),
          el('td', { class: 'n' }, num(x[count])), el('td', { class: 'n' }, str(x.per_1000_page_views))));
      }
    }
    for (const c of d.cookies.lifetime_grew || []) {
      body.appendChild(el('tr', { 'data-change': 'cookie lifetime grew', 'data-name': c.cookie }, el('td', {}, 'cookie lifetime grew'),
        el('td', {}, c.cookie), el('td', { class: 'n' }, `${num(c.from_days)} → ${num(c.to_days)} days`), el('td', { class: 'n' }, '')));
    }
    if (!body.rows.length) emptyRow(body, 4, 'no change');
  }

  async function loadFindings() {
    const generation = state.generation;
    const params = { site: state.site, order: 'desc', limit: FINDINGS_LIMIT };
    if (state.release) params.release = state.release;
    if (state.filter) params[state.filter.param] = state.filter.value;
    try {
      const answer = await api('findings', params);
      if (generation !== state.generation) return;
      renderFindings(answer.findings);
    } catch (e) {
      failed(e);
    }
    const f = $('filter');
    f.hidden = !state.filter;
    f.textContent = state.filter ? `(${state.filter.param} = ${state.filter.value})` : '';
    $('clear-filter').hidden = !state.filter;
  }

  function setFilter(param, value) {
    state.filter = { param, value };
    $('finding').hidden = true;
    loadFindings();
  }

  // ------------------------------------------------------------------ stats

  function renderStats(s) {
    $('n-findings').textContent = num(s.findings);
    $('n-occurrences').textContent = num(s.occurrences);
    $('n-page-views').textContent = num(s.page_views);
    renderChart(s.by_day || []);
    tallyTable('by-vendor', 'vendor', s.by_vendor || []);
    tallyTable('by-type', 'type', s.by_type || []);
    tallyTable('by-page', 'page', s.by_page || []);

    const sources = tbody('by-source');
    for (const r of s.consent?.by_source || []) {
      sources.appendChild(el('tr', {}, el('td', {}, r.source), el('td', { class: 'n' }, num(r.findings))));
    }
    if (!sources.rows.length) emptyRow(sources, 2);
    const cats = tbody('by-category');
    for (const c of CATEGORIES) {
      const v = s.consent?.by_category?.[c] || {};
      cats.appendChild(el('tr', {}, el('td', {}, c), el('td', { class: 'n' }, num(v.granted)),
        el('td', { class: 'n' }, num(v.denied)), el('td', { class: 'n' }, num(v.unknown))));
    }
  }

  /** A table of {key, findings, occurrences}; the key filters the findings list. */
  function tallyTable(id, key, rows) {
    const body = tbody(id);
    for (const r of rows) {
      const button = el('button', { type: 'button', class: 'link', title: `show only ${key} ${r[key]}` }, r[key]);
      button.addEventListener('click', () => setFilter(key, r[key]));
      body.appendChild(el('tr', { [`data-${key}`]: r[key] }, el('td', {}, button),
        el('td', { class: 'n' }, num(r.findings)), el('td', { class: 'n' }, num(r.occurrences))));
    }
    if (!rows.length) emptyRow(body, 3);
  }

  // ------------------------------------------------------------------ chart

  const DAY_MS = 86400000;

  /** Every UTC day from the first to the last with findings (at most MAX_CHART_DAYS, the latest). */
  function daySeries(byDay) {
    const known = new Map(byDay.map((d) => [d.day, d]));
    const parse = (d) => Date.parse(`${d}T00:00:00Z`);
    const days = byDay.map((d) => parse(d.day)).filter((t) => !Number.isNaN(t));
    if (!days.length) return [];
    const last = Math.max(...days);
    const first = Math.max(Math.min(...days), last - (MAX_CHART_DAYS - 1) * DAY_MS);
    const out = [];
    for (let t = first; t <= last; t += DAY_MS) {
      const day = new Date(t).toISOString().slice(0, 10);
      const d = known.get(day);
      out.push({ day, findings: d ? d.findings : 0, occurrences: d ? d.occurrences : 0 });
    }
    return out;
  }

  function renderChart(byDay) {
    const box = $('chart');
    clear(box);
    const series = daySeries(byDay);
    if (!series.length) {
      box.appendChild(el('p', { class: 'muted' }, 'No findings in this window.'));
      return;
    }
    const W = 900, H = 220, left = 44, right = 12, top = 12, bottom = 36;
    const plotW = W - left - right, plotH = H - top - bottom;
    const max = Math.max(1, ...series.map((d) => d.findings));
    const slot = plotW / series.length;
    const barW = Math.max(1, Math.min(40, slot * 0.8));
    const root = svg('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg',
      'aria-label': `findings per day, ${series[0].day} to ${series[series.length - 1].day}`,
    });
    root.appendChild(svg('title', {}, 'Findings per day (UTC)'));
    // y axis: 0, half, max
    for (const v of [0, Math.round(max / 2), max]) {
      const y = top + plotH - (v / max) * plotH;
      root.appendChild(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'grid-line' }));
      root.appendChild(svg('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, v));
    }
    const labelEvery = Math.ceil(series.length / 8);
    series.forEach((d, i) => {
      const x = left + slot * i + (slot - barW) / 2;
      const h = (d.findings / max) * plotH;
      const bar = svg('rect', {
        x, y: top + plotH - h, width: barW, height: Math.max(h, d.findings ? 1 : 0),
        class: 'bar', 'data-day': d.day, 'data-findings': d.findings,
      });
      bar.appendChild(svg('title', {}, `${d.day}: ${d.findings} findings, ${d.occurrences} occurrences`));
      root.appendChild(bar);
      if (i % labelEvery === 0 || i === series.length - 1) {
        root.appendChild(svg('text', {
          x: left + slot * i + slot / 2, y: H - bottom + 16, class: 'axis day', 'text-anchor': 'middle',
        }, d.day));
      }
    });
    box.appendChild(root);
  }

  // --------------------------------------------------------------- findings

  function evidenceSummary(e) {
    if (!e || typeof e !== 'object') return str(e);
    if (e.host) return `${e.host}${e.path || ''}`;
    if (e.cookie) return `cookie ${e.cookie}`;
    if (e.name) return `${e.kind || ''} ${e.name}`.trim();
    if (e.signal) return `signal ${e.signal}${e.claimed ? ` ${e.claimed}` : ''}`;
    return JSON.stringify(e);
  }

  function renderFindings(findings) {
    state.findings = findings;
    const body = tbody('findings');
    findings.forEach((f, i) => {
      const open = el('button', { type: 'button', class: 'link', title: 'evidence and consent state' }, time(f.at));
      open.addEventListener('click', () => showFinding(i));
      body.appendChild(el('tr', { 'data-index': i, 'data-type': f.type, 'data-vendor': f.vendor },
        el('td', {}, open), el('td', {}, f.type), el('td', {}, f.vendor), el('td', {}, str(f.category)),
        el('td', { class: 'url' }, f.page), el('td', { class: 'evidence' }, evidenceSummary(f.evidence)),
        el('td', { class: 'n' }, num(f.count)), el('td', { class: 'release' }, str(f.release))));
    });
    if (!findings.length) emptyRow(body, 8);
  }

  function kvRows(id, rows) {
    const body = tbody(id);
    for (const [k, v, cls] of rows) {
      body.appendChild(el('tr', { 'data-key': k }, el('th', {}, k), el('td', cls ? { class: cls } : {}, str(v))));
    }
    if (!rows.length) emptyRow(body, 2);
  }

  function consentWord(v) {
    if (v === true) return ['granted', 'granted'];
    if (v === false) return ['denied', 'denied'];
    return ['unknown', 'unknown'];
  }

  /** `consent.basis` in words (docs/report-format.md). */
  const BASIS = {
    none: 'none (nothing decided yet)',
    explicit: 'explicit (a decision the source reports)',
    implied: 'implied (applied by the CMP without a choice; counted only with policy.implied "accept")',
  };

  function showFinding(i) {
    const f = state.findings[i];
    if (!f) return;
    kvRows('finding-what', [
      ['type', f.type], ['vendor', f.vendor], ['category needed', f.category], ['page', f.page],
      ['page view', f.page_view], ['observed', f.at], ['received', f.received_at], ['count', f.count],
      ['release', f.release],
    ]);
    const ev = f.evidence && typeof f.evidence === 'object' ? f.evidence : {};
    kvRows('finding-evidence', Object.keys(ev).sort().map((k) => [k, ev[k]]));
    const c = f.consent;
    if (c && typeof c === 'object') {
      const rows = CATEGORIES.map((cat) => {
        const [word, cls] = consentWord(c[cat]);
        return [cat, word, cls];
      });
      rows.push(['source', c.source ?? 'unknown']);
      rows.push(['since', typeof c.since === 'number' ? `${c.since} ms after navigation start` : c.since]);
      rows.push(['basis', BASIS[c.basis] ?? (c.basis === undefined ? 'not reported (a monitor before consent.basis)' : c.basis)]);
      // `vendor`: the CMP's own choice about this vendor (a per-service
      // choice), which decided over its category; absent where none.
      if (typeof c.vendor === 'boolean') {
        const [word, cls] = consentWord(c.vendor);
        rows.push([`${f.vendor} itself`, `${word} (the CMP's choice about this vendor's service, over its category)`, cls]);
      }
      rows.push(['gpc', c.gpc === true ? 'on (Global Privacy Control)' : c.gpc === false ? 'off' : 'unknown']);
      for (const k of Object.keys(c).sort()) {
        if (!CATEGORIES.includes(k) && !['source', 'since', 'basis', 'gpc', 'vendor'].includes(k)) rows.push([k, c[k]]);
      }
      kvRows('finding-consent', rows);
    } else {
      kvRows('finding-consent', [['state', 'none recorded (CSP reports carry no consent state)']]);
    }
    $('finding').hidden = false;
    $('finding').scrollIntoView({ block: 'nearest' });
  }

  // -------------------------------------------------------------- inventory

  function renderInventory(inv) {
    $('inv-page-views').textContent = `(${num(inv.page_views)} page views with an inventory)`;
    const body = tbody('inventory');
    const details = $('inventory-details');
    clear(details);
    for (const v of inv.vendors || []) {
      const pp = v.per_page || {};
      const over = v.over_declared || {};
      const declared = v.declared
        ? `${v.declared.requests} scripts, ${v.declared.script_kb} KB`
        : '–';
      const declaredCell = el('td', { class: 'n' }, declared);
      if (over.script_requests || over.bytes) {
        declaredCell.className = 'n over';
        declaredCell.appendChild(el('span', { class: 'flag' }, ' over'));
      }
      body.appendChild(el('tr', { 'data-vendor': v.vendor },
        el('td', {}, v.name ? `${v.name} (${v.vendor})` : v.vendor),
        el('td', {}, str(v.category)), el('td', { class: 'n' }, num(v.page_views)),
        el('td', { class: 'n' }, str(pp.requests)), el('td', { class: 'n' }, str(pp.script_requests)),
        el('td', { class: 'n' }, kb(pp.transfer_bytes)), declaredCell,
        el('td', {}, (v.regions || []).join(', ') || '–')));

      const cookies = el('table', { class: 'cookies' },
        el('thead', {}, el('tr', {}, el('th', {}, 'cookie'), el('th', {}, 'purpose'), el('th', {}, 'category'), el('th', { class: 'n' }, 'lifetime'))),
        el('tbody'));
      for (const c of v.cookie_details || []) {
        cookies.tBodies[0].appendChild(el('tr', { 'data-cookie': c.name }, el('td', {}, c.name), el('td', {}, str(c.purpose)),
          el('td', {}, str(c.category)), el('td', { class: 'n' }, c.lifetime_days == null ? 'session / unknown' : `${c.lifetime_days} days`)));
      }
      if (!cookies.tBodies[0].rows.length) emptyRow(cookies.tBodies[0], 4);
      const dests = el('table', { class: 'destinations' },
        el('thead', {}, el('tr', {}, el('th', {}, 'destination host'), el('th', {}, 'region'))),
        el('tbody'));
      for (const d of v.destinations || []) {
        dests.tBodies[0].appendChild(el('tr', { 'data-host': d.host }, el('td', {}, d.host), el('td', {}, str(d.region))));
      }
      if (!dests.tBodies[0].rows.length) emptyRow(dests.tBodies[0], 2);
      const pages = el('ul', { class: 'pages' });
      for (const p of v.pages || []) pages.appendChild(el('li', { class: 'url' }, p));
      const block = el('details', { 'data-vendor': v.vendor },
        el('summary', {}, `${v.name || v.vendor}: ${(v.cookie_details || []).length} cookies, ${(v.destinations || []).length} destinations, ` +
          `${num(v.requests)} requests (${kb(v.transfer_bytes)} KB) on ${num(v.page_views)} page views`),
        el('div', { class: 'grid' }, cookies, dests, el('div', {}, el('h4', {}, 'pages'), pages)));
      details.appendChild(block);
    }
    if (!body.rows.length) emptyRow(body, 8);

    const un = tbody('unclassified');
    for (const h of inv.unclassified || []) {
      un.appendChild(el('tr', { 'data-host': h.host }, el('td', {}, h.host), el('td', { class: 'n' }, num(h.page_views)),
        el('td', { class: 'n' }, str(h.per_page?.requests)), el('td', { class: 'n' }, kb(h.per_page?.transfer_bytes))));
    }
    if (!un.rows.length) emptyRow(un, 4);
  }

  // ------------------------------------------------------------------ wiring

  function start() {
    $('auth').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const token = $('token').value.trim();
      if (!token) {
        showError('Enter the admin token (TAGWATCH_ADMIN_TOKEN).');
        return;
      }
      if (!/^[\x21-\x7e]+$/.test(token)) {
        signOut('An admin token is printable ASCII without spaces; this one cannot be sent in a header.');
        return;
      }
      $('token').value = '';
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      connect();
    });
    $('forget').addEventListener('click', () => signOut(null));
    $('site').addEventListener('change', () => loadSite($('site').value));
    $('release').addEventListener('change', () => {
      state.release = $('release').value;
      state.filter = null;
      loadData(++state.generation);
    });
    $('diff-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadDiff();
    });
    $('clear-filter').addEventListener('click', () => {
      state.filter = null;
      loadFindings();
    });
    $('close-finding').addEventListener('click', () => { $('finding').hidden = true; });

    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      state.token = saved;
      connect();
    } else {
      status('Enter the admin token to see the data.');
    }
  }

  start();
})();
