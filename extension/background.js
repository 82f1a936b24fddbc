/* tagwatch extension, service worker: what a page cannot see.
 *
 *   - chrome.webRequest: requests made in cross-origin frames and WebSockets
 *     (never in the page's Resource Timing) go, in small batches, to the
 *     tab's content script, whose monitor judges them like any request. The
 *     URL travels as it was requested (the engine drops query and fragment,
 *     as it does for Resource Timing entries); nothing is stored.
 *   - chrome.cookies: the names, HttpOnly flags and expiry dates of the
 *     page's cookies, never their values.
 *   - the toolbar badge: the tab's finding count.
 *   - the first-visit audit: forget the site (cookies, storage), reload.
 * Listeners are registered at the top level, so they are there on every wake. */

var BATCH_MS = 200;
var queues = new Map();   // tabId -> pending requests

function flush(tabId) {
  var q = queues.get(tabId);
  queues.delete(tabId);
  if (!q || !q.length) return;
  chrome.tabs.sendMessage(tabId, { t: 'req', list: q }, { frameId: 0 }).catch(function () { /* no monitor in that tab */ });
}

chrome.webRequest.onBeforeRequest.addListener(function (d) {
  if (d.tabId < 0 || d.type === 'main_frame') return;
  // The top document's own requests are in its Resource Timing; the content
  // script also drops same-origin frames' (it reads their timelines).
  if (d.frameId === 0 && d.type !== 'websocket') return;
  var q = queues.get(d.tabId);
  if (!q) {
    q = [];
    queues.set(d.tabId, q);
    setTimeout(flush, BATCH_MS, d.tabId);
  }
  if (q.length < 500) q.push({ url: d.url, type: d.type, initiator: d.initiator || 'null', frameId: d.frameId, ts: d.timeStamp });
}, { urls: ['<all_urls>'] });

chrome.tabs.onRemoved.addListener(function (tabId) { queues.delete(tabId); });

/** The page's cookies as chrome.cookies has them: names, flags, expiry (ms), domain, path. */
function jarOf(url) {
  return chrome.cookies.getAll({ url: url }).then(function (list) {
    return list.map(function (c) {
      return {
        name: c.name, httpOnly: c.httpOnly, secure: c.secure, domain: c.domain, path: c.path,
        expires: c.session || !c.expirationDate ? null : Math.round(c.expirationDate * 1000),
      };
    });
  });
}

/** The registrable domain, as the core approximates it (docs/report-format.md). */
function siteOf(host) {
  var labels = host.split('.');
  var two = /^(co|com|net|org|gov|ac|edu)\.[a-z]{2}$/.test(labels.slice(-2).join('.'));
  return labels.slice(two ? -3 : -2).join('.');
}

/** First-visit audit: the site's cookies and storage go, then the tab reloads. */
function forget(tabId) {
  return chrome.tabs.get(tabId).then(function (tab) {
    var url = new URL(tab.url);
    if (!/^https?:$/.test(url.protocol)) throw new Error('not a web page');
    var site = siteOf(url.hostname);
    return chrome.tabs.sendMessage(tabId, { t: 'forget' }, { frameId: 0 }).catch(function () {})
      .then(function () { return chrome.cookies.getAll({ domain: site }); })
      .then(function (cookies) {
        return Promise.all(cookies.map(function (c) {
          var host = c.domain.replace(/^\./, '');
          return chrome.cookies.remove({ url: (c.secure ? 'https://' : 'http://') + host + c.path, name: c.name, storeId: c.storeId });
        }));
      })
      .then(function () {
        var origins = [url.origin, 'https://' + site, 'http://' + site];
        return chrome.browsingData.remove({ origins: origins.filter(function (o, i) { return origins.indexOf(o) === i; }) }, {
          cacheStorage: true, cookies: true, fileSystems: true, indexedDB: true, localStorage: true, serviceWorkers: true, webSQL: true,
        });
      })
      .then(function () { return chrome.tabs.reload(tabId, { bypassCache: true }); })
      .then(function () { return { ok: true, site: site }; });
  });
}

chrome.runtime.onMessage.addListener(function (msg, sender, reply) {
  if (!msg || sender.id !== chrome.runtime.id) return false;
  var tabId = sender.tab && sender.tab.id;
  if (msg.t === 'count' && tabId !== undefined) {
    chrome.action.setBadgeBackgroundColor({ tabId: tabId, color: msg.n ? '#b42318' : '#3b7d4f' });
    chrome.action.setBadgeText({ tabId: tabId, text: String(msg.n) });
    return false;
  }
  if (msg.t === 'jar' && sender.url) {
    jarOf(sender.url).then(reply, function () { reply([]); });
    return true;
  }
  if (msg.t === 'fallback' && tabId !== undefined) {
    // The page's CSP refused the wasm: the same monitor compiled to JavaScript.
    var target = sender.documentId ? { tabId: tabId, documentIds: [sender.documentId] } : { tabId: tabId, frameIds: [0] };
    chrome.scripting.executeScript({ target: target, files: ['fallback.js'] }).then(function () { reply(true); }, function () { reply(false); });
    return true;
  }
  if (msg.t === 'reset' && typeof msg.tab === 'number') {
    forget(msg.tab).then(reply, function (e) { reply({ ok: false, error: String(e && e.message || e) }); });
    return true;
  }
  return false;
});
