/* The site's `policy` (the contract's `config.policy`, docs/policy.md) as
 * the compact text the wasm monitor takes: one rule a line, fields split by
 * TAB (`Policy::apply_rule` in core/src/policy.rs), so the monitor carries
 * no JSON decoder. Shared by the snippet (build.sh bundles it with
 * loader.js) and the extension's content script (tools/pack-extension.mjs). */
function policyRules(p) {
  var rules = [];
  if (!p || typeof p !== 'object') return '';
  var clean = function (v) { return String(v).replace(/[\t\n]/g, ' '); };
  if (typeof p.grace_ms === 'number') rules.push('g\t' + p.grace_ms);
  if (typeof p.cookie_max_days === 'number') rules.push('m\t' + p.cookie_max_days);
  (Array.isArray(p.regions) ? p.regions : []).forEach(function (r) { rules.push('r\t' + clean(r)); });
  Object.keys(p.pages || {}).forEach(function (v) {
    (Array.isArray(p.pages[v]) ? p.pages[v] : []).forEach(function (g) { rules.push('p\t' + clean(v) + '\t' + clean(g)); });
  });
  Object.keys(p.vendors || {}).forEach(function (v) {
    var purposes = p.vendors[v] || {};
    Object.keys(purposes).forEach(function (k) { rules.push('c\t' + clean(v) + '\t' + clean(k) + '\t' + clean(purposes[k])); });
  });
  Object.keys(p.tcf_vendors || {}).forEach(function (v) { rules.push('v\t' + clean(v) + '\t' + clean(p.tcf_vendors[v])); });
  // What the site's CMP names mean: `cmp: {onetrust: {C0005: 'functional'}}`.
  Object.keys(p.cmp || {}).forEach(function (source) {
    var names = p.cmp[source] || {};
    Object.keys(names).forEach(function (n) {
      rules.push('n\t' + clean(source) + '\t' + clean(n) + '\t' + clean([].concat(names[n] || []).join(',')));
    });
  });
  return rules.join('\n');
}
