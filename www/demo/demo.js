// Demo page behaviour: the consent banner drives tagwatch('consent', …),
// "Send findings now" calls tagwatch('flush'). Nothing here talks to the
// collector itself.
(function () {
  'use strict';
  var ALL = { necessary: true, functional: true, analytics: true, marketing: true };
  var NONE = { necessary: true, functional: false, analytics: false, marketing: false };
  var state = Object.assign({}, DEMO.saved || NONE);

  function $(id) { return document.getElementById(id); }
  function log(msg) {
    var li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + ' — ' + msg;
    $('tw-log').prepend(li);
  }
  function render() {
    $('tw-state').textContent = ['functional', 'analytics', 'marketing']
      .map(function (k) { return k + ': ' + (state[k] ? 'yes' : 'no'); }).join(', ');
  }
  function decide(next, label) {
    var change = {};
    Object.keys(next).forEach(function (k) { if (next[k] !== state[k]) change[k] = next[k]; });
    state = Object.assign({}, state, next);
    try { localStorage.setItem(DEMO.storageKey, JSON.stringify(state)); } catch (e) { /* private mode */ }
    tagwatch('consent', change);
    log(label + ' → tagwatch(\'consent\', ' + JSON.stringify(change) + ')');
    render();
  }

  $('tw-config').textContent = DEMO.collector && DEMO.site
    ? 'Reporting to ' + DEMO.collector + ' as site ' + DEMO.site + '.'
    : 'No collector configured: start the demo with ./build.sh demo (or add ?collector=…&site=…).';

  $('tw-accept').addEventListener('click', function () { decide(ALL, 'Accept all'); });
  $('tw-reject').addEventListener('click', function () { decide(NONE, 'Reject'); });
  $('tw-withdraw').addEventListener('click', function () {
    decide({ functional: false, analytics: false, marketing: false }, 'Withdraw');
    log('Intercom keeps its cookies: tagwatch reports them once the grace period (3 s) is over.');
  });
  $('tw-flush').addEventListener('click', function () {
    tagwatch('flush');
    log("tagwatch('flush') — pending findings sent to the collector");
  });
  $('tw-forget').addEventListener('click', function () {
    try { localStorage.removeItem(DEMO.storageKey); } catch (e) { /* ignore */ }
    log('Choice forgotten; reload to start over.');
  });
  Array.prototype.forEach.call(document.querySelectorAll('.buy'), function (b) {
    b.addEventListener('click', function () {
      if (typeof window.Intercom === 'function') window.Intercom('trackEvent', 'added-to-cart', { sku: b.getAttribute('data-sku') });
      log('Added ' + b.getAttribute('data-sku') + ' to the cart (Intercom trackEvent)');
    });
  });

  render();
  log(DEMO.saved ? 'Consent restored from an earlier visit.' : 'No consent yet — Intercom is already loading.');
})();
