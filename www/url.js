/* The page URL as every report carries it: the JavaScript twin of
 * core/src/url.rs `page_url`, for the one report the loader makes without
 * the wasm (the health report: the wasm may be what failed). Scheme, host
 * and port; no user info, query or fragment; path segments that look like
 * identifiers (e-mail, %40, 6+ digits, UUID shape, 16+ hex, tokens) as
 * `:id`; at most 256 bytes of path. Both are held to
 * tests/fixtures/url/page-url.json (tests/e2e/url.test.mjs and
 * core/tests/url.rs): change the rules in both or in neither. */
function pageUrl(href) {
  var s = String(href).replace(/^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g, '');
  var lower = function (v) { return v.replace(/[A-Z]/g, function (c) { return c.toLowerCase(); }); };
  var at = s.indexOf('://');
  var rest = s.slice(at + 3);
  var auth = rest.split(/[/?#]/)[0];
  var hostport = auth.slice(auth.lastIndexOf('@') + 1);
  var host = hostport[0] === '[' ? hostport.slice(0, hostport.indexOf(']') + 1) : hostport.split(':')[0];
  var path = '/';
  if (/^https?$/i.test(s.slice(0, at)) && /^[\w.[\]:-]+$/.test(host.replace(/\.+$/, ''))) {
    path = (rest.slice(auth.length).split(/[?#]/)[0] || '/').split('/').map(function (seg) {
      var switches = seg.match(/[a-z](?=[A-Z\d])|[A-Z](?=\d)|\d(?=[a-zA-Z])/g);
      return /@|%40/i.test(seg) || /^(\d{6,}|[\da-f]{16,})$/i.test(seg) ||
        (seg.length === 36 && /^[\da-f-]+$/i.test(seg) && seg.split('-').length === 5) ||
        (seg.length >= 20 && (/^eyJ[\w.-]+$/.test(seg) || (/^[\w-]+$/.test(seg) && (switches ? switches.length : 0) * 6 >= seg.length)))
        ? ':id' : seg;
    }).join('/');
    // At most 256 bytes of UTF-8, cut before the character that would pass it.
    for (var i = 0, n = 0; i < path.length; i++) {
      var c = path.charCodeAt(i);
      var pair = c >= 0xd800 && c < 0xdc00;
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
      if (n > 256) { path = path.slice(0, i); break; }
      if (pair) i++;
    }
  }
  return at < 0 ? '' : lower(s.slice(0, at)) + '://' + lower(hostport) + path;
}
