/* tagwatch auditor options: collector URL, site key and policy, in chrome.storage.local. */
'use strict';
var form = document.getElementById('form');
var fields = { collector: document.getElementById('collector'), site: document.getElementById('site'), policy: document.getElementById('policy') };
var saved = document.getElementById('saved');

chrome.storage.local.get({ collector: '', site: '', policy: null }).then(function (o) {
  fields.collector.value = o.collector;
  fields.site.value = o.site;
  fields.policy.value = o.policy ? JSON.stringify(o.policy, null, 2) : '';
});

form.addEventListener('submit', function (e) {
  e.preventDefault();
  var collector = fields.collector.value.trim();
  var site = fields.site.value.trim();
  var policy = null;
  if (collector && !/^https?:\/\/[^\s]+$/.test(collector)) return say('The collector URL must start with http:// or https://.');
  if (site && !/^[A-Za-z0-9_-]{1,64}$/.test(site)) return say('A site key is 1 to 64 letters, digits, _ or -.');
  if (collector && !site) return say('A collector needs the site key it stores reports under.');
  if (fields.policy.value.trim()) {
    try { policy = JSON.parse(fields.policy.value); } catch (err) { return say('The policy is not JSON: ' + err.message); }
    if (!policy || typeof policy !== 'object' || Array.isArray(policy)) return say('The policy is a JSON object.');
  }
  chrome.storage.local.set({ collector: collector, site: site, policy: policy }).then(function () {
    say(collector ? 'Saved. Reports go to ' + collector + '.' : 'Saved. Nothing leaves the browser.');
  });
});

function say(text) { saved.textContent = text; }
