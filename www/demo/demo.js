// Demo page behaviour. The consent banner is a real CMP (orestbida
// cookieconsent v3 from npm); tagwatch reads it on its own, the page never
// calls tagwatch('consent'). The panel's buttons drive the CMP's API the way
// its own banner buttons do; "Send findings now" calls tagwatch('flush').
(function () {
  'use strict';
  var CATEGORIES = ['functionality', 'analytics', 'marketing'];

  function $(id) { return document.getElementById(id); }
  function log(msg) {
    var li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + ' — ' + msg;
    $('tw-log').prepend(li);
  }
  function cmp() { return window.CookieConsent; }
  function render() {
    var accepted = cmp() && cmp().validConsent() ? cmp().getUserPreferences().acceptedCategories : [];
    $('tw-state').textContent = CATEGORIES
      .map(function (k) { return (k === 'functionality' ? 'functional' : k) + ': ' + (accepted.indexOf(k) >= 0 ? 'yes' : 'no'); })
      .join(', ');
  }

  $('tw-config').textContent = DEMO.collector && DEMO.site
    ? 'Reporting to ' + DEMO.collector + ' as site ' + DEMO.site + '.'
    : 'No collector configured: start the demo with ./build.sh demo (or add ?collector=…&site=…).';

  if (!cmp()) {
    log('The CMP did not load (vanilla-cookieconsent from node_modules): run npm ci.');
    return;
  }
  cmp().run({
    categories: {
      necessary: { enabled: true, readOnly: true },
      functionality: {},
      analytics: {},
      marketing: {}
    },
    language: {
      default: 'en',
      translations: {
        en: {
          consentModal: {
            title: 'We value your privacy',
            description: 'We use cookies for our support chat (functionality), statistics (analytics) and personalised offers (marketing).',
            acceptAllBtn: 'Accept all',
            acceptNecessaryBtn: 'Reject all',
            showPreferencesBtn: 'Choose'
          },
          preferencesModal: {
            title: 'Cookie preferences',
            acceptAllBtn: 'Accept all',
            acceptNecessaryBtn: 'Reject all',
            savePreferencesBtn: 'Save',
            sections: [
              { title: 'Strictly necessary', linkedCategory: 'necessary' },
              { title: 'Support chat (Intercom)', linkedCategory: 'functionality' },
              { title: 'Statistics', linkedCategory: 'analytics' },
              { title: 'Personalised offers', linkedCategory: 'marketing' }
            ]
          }
        }
      }
    }
  });
  window.addEventListener('cc:onConsent', function () { log('CMP: consent given (cc:onConsent)'); render(); });
  window.addEventListener('cc:onChange', function () { log('CMP: consent changed (cc:onChange)'); render(); });

  $('tw-accept').addEventListener('click', function () { cmp().acceptCategory('all'); log('Accept all'); render(); });
  $('tw-reject').addEventListener('click', function () { cmp().acceptCategory([]); log('Reject all'); render(); });
  $('tw-withdraw').addEventListener('click', function () {
    cmp().acceptCategory([]);
    log('Withdraw: Intercom keeps its cookies, and tagwatch reports them once the grace period (3 s) is over.');
    render();
  });
  $('tw-flush').addEventListener('click', function () {
    tagwatch('flush');
    log("tagwatch('flush') — pending findings sent to the collector");
  });
  $('tw-forget').addEventListener('click', function () {
    cmp().reset(true);
    log('Choice forgotten (cc_cookie removed); reload to start over.');
    render();
  });
  Array.prototype.forEach.call(document.querySelectorAll('.buy'), function (b) {
    b.addEventListener('click', function () {
      if (typeof window.Intercom === 'function') window.Intercom('trackEvent', 'added-to-cart', { sku: b.getAttribute('data-sku') });
      log('Added ' + b.getAttribute('data-sku') + ' to the cart (Intercom trackEvent)');
    });
  });

  render();
  log(cmp().validConsent() ? 'Consent restored by the CMP from an earlier visit.' : 'No consent yet — Intercom is already loading.');
})();
