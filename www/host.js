/* The network half of the monitor's host interface, on the browser's own
 * functions taken when `host(window, tampered)` runs: the page's later
 * scripts (the ones being audited) may replace or break `fetch`,
 * `sendBeacon` or `XMLHttpRequest`; a way that fails gives way to the next.
 *   get(url, init, text) → Promise of the body (a string when `text`, else
 *     an ArrayBuffer), null when it cannot be had: fetch(url, init), else
 *     XMLHttpRequest;
 *   fetch(url, init) → fetch's own Promise of a Response (the wasm, compiled
 *     while it streams in); throws where fetch does;
 *   send(url, body, resend) → a text/plain POST (report batches, the wasm
 *     shell's `send`): fetch(keepalive), else sendBeacon, else
 *     XMLHttpRequest (the last does not outlive the page); a `resend` by
 *     fetch only. Returns fetch's Promise of the Response when fetch took
 *     it (undefined after a fallback), so that the brain can send a
 *     refused batch once more (www/observe.js `windowHost`).
 * send's fetch carries no Referer and no cookies; it is a CORS request (a
 * simple one: no preflight), so its Origin is the page's whatever the
 * Referrer-Policy (a no-cors POST's would be `null` under `no-referrer`).
 * The fallbacks cannot choose: they follow the page's Referrer-Policy
 * (by default a cross-origin collector gets the page's origin only).
 * `tampered(api)` hears of a way that failed where the browser's own would
 * not have: missing, throwing, or a GET that failed through fetch and then
 * got an answer through XMLHttpRequest. It is never told more than the API's
 * name. Nothing here throws (`get`, only when the page had broken `Promise`
 * before `host` ran). */

/** `o[k]`, or undefined when reading it throws (a getter, a Proxy); of
 * no object (`undefined`, `null`) undefined without an exception: one
 * thrown, even caught, costs the loader's run ≈ 1.5 ms of CPU
 * (docs/benchmarks.md, sixteenth round). */
function pick(o, k) { try { return o?.[k]; } catch (e) { /* as missing */ } }

function host(w, tampered) {
  var nav = pick(w, 'navigator');
  var fetch = pick(w, 'fetch');
  var beacon = pick(nav, 'sendBeacon');
  var XHR = pick(w, 'XMLHttpRequest');
  var apply = pick(pick(w, 'Reflect'), 'apply');
  var P = pick(w, 'Promise');

  function xhr(method, url, body, type, done) {
    try {
      var x = new XHR();
      x.open(method, url);
      if (type) x.responseType = type;
      x.onload = function () { done(x.status, x.response); };
      x.onerror = function () { done(0); };
      x.send(body);
      return true;
    } catch (e) { tampered('XMLHttpRequest'); done(0); }
  }

  return {
    fetch: function (url, init) {
      try { return fetch(url, init); } catch (e) { tampered('fetch'); throw e; }
    },
    get: function (url, init, text) {
      return new P(function (resolve) {
        function viaXhr(fetchFailed) {
          xhr('GET', url, null, text ? 'text' : 'arraybuffer', function (status, body) {
            if (fetchFailed && status) tampered('fetch');
            resolve(status === 200 ? body : null);
          });
        }
        try {
          fetch(url, init).then(function (r) { return r.ok ? (text ? r.text() : r.arrayBuffer()) : null; })
            .then(resolve, function () { viaXhr(1); });
        } catch (e) { tampered('fetch'); viaXhr(); }
      });
    },
    send: function (url, body, resend) {
      function fallback() {
        // A batch's one resend (www/observe.js) went by fetch before, and
        // a failure of its fetch is the page being left (Chromium fails a
        // keepalive fetch as navigation begins, yet carries it on) or over
        // the keepalive quota (which sendBeacon shares): another way would
        // deliver it a third time in the first case (retry.test.mjs).
        if (resend) return;
        try { if (apply(beacon, nav, [url, body])) return; } catch (e) { tampered('sendBeacon'); }
        xhr('POST', url, body, '', function () {});
      }
      try {
        return fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'omit', referrerPolicy: 'no-referrer' })
          .then(null, fallback);
      } catch (e) { tampered('fetch'); fallback(); }
    }
  };
}
