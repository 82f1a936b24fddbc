//! The monitor shell in a real headless Chromium (wasm-bindgen-test).
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p tagwatch-monitor --target wasm32-unknown-unknown`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Reflect, JSON};
use tagwatch_monitor::Monitor;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CANARY: &str = "CANARY7x2q";

fn js(code: &str) -> JsValue {
    Function::new_no_args(code).call0(&JsValue::NULL).expect("test script runs")
}

fn findings(m: &Monitor) -> Vec<(String, String)> {
    let parsed = JSON::parse(&m.findings()).expect("findings are JSON");
    let mut out: Vec<(String, String)> = Array::from(&parsed)
        .iter()
        .filter(|r| Reflect::get(r, &"type".into()).ok().and_then(|t| t.as_string()).as_deref() == Some("tagwatch-finding"))
        .map(|r| {
            let body = Reflect::get(&r, &"body".into()).unwrap();
            let get = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).unwrap().as_string().unwrap_or_default();
            let ev = Reflect::get(&body, &"evidence".into()).unwrap();
            let what = [get(&ev, "cookie"), get(&ev, "name"), get(&ev, "host") + &get(&ev, "path")].concat();
            (get(&body, "finding"), what)
        })
        .collect();
    out.sort();
    out
}

fn clean() {
    js("document.cookie.split(';').forEach(function(c){var n=c.split('=')[0].trim(); if(n) document.cookie=n+'=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';});
        delete window.Intercom; delete window.intercomSettings;
        document.querySelectorAll('[data-tw-test]').forEach(function(e){e.remove();});");
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

/// The host's `send(url, body)`: records into `window.__sent`.
fn new_monitor() -> Monitor {
    let send = Function::new_with_args("u, b", "(window.__sent = window.__sent || []).push([u, b]); return true;");
    Monitor::new("tw_test", "https://collector.invalid/r", send)
}

#[wasm_bindgen_test]
fn cookies_before_consent_are_found_by_name_only() {
    clean();
    js(&format!("document.cookie = 'intercom-id-abc12345={CANARY}; path=/'; document.cookie = 'theme={CANARY}; path=/';"));
    let mut m = new_monitor();
    m.consent(1, 0, 0, 0, true);
    m.start();
    assert_eq!(findings(&m), vec![("cookie_before_consent".into(), "intercom-id-abc12345".into())]);
    assert!(!m.findings().contains(CANARY), "a cookie value left the page");
    clean();
}

#[wasm_bindgen_test]
fn consent_restored_at_page_start_covers_existing_cookies() {
    clean();
    js("document.cookie = 'intercom-id-abc12345=x; path=/';");
    let mut m = new_monitor();
    m.consent(1, 1, 1, 1, true);
    m.start();
    assert_eq!(findings(&m), vec![]);
    clean();
}

#[wasm_bindgen_test]
async fn withdrawal_leaves_cookies_flagged_after_grace() {
    clean();
    js("document.cookie = 'intercom-session-abc12345=s; path=/';");
    let mut m = new_monitor();
    m.policy("g\t200");
    m.consent(1, 1, 1, 1, true);
    m.start();
    m.consent(-1, 0, -1, 0, false);
    assert_eq!(findings(&m), vec![], "within the grace period");
    sleep(1300).await;
    assert_eq!(findings(&m), vec![("cookie_after_withdrawal".into(), "intercom-session-abc12345".into())]);
    clean();
}

#[wasm_bindgen_test]
fn a_cmp_cookie_present_at_start_is_consent_restored_from_storage() {
    clean();
    js("document.cookie = 'intercom-id-abc12345=x; path=/';
        document.cookie = 'cc_cookie=' + encodeURIComponent(JSON.stringify({categories:['necessary','functionality','analytics','marketing']})) + '; path=/';");
    let mut m = new_monitor();
    m.start();
    assert_eq!(findings(&m), vec![]);
    assert!(!m.findings().contains("necessary\",\"functionality"), "no cookie value in the report");
    clean();
}

#[wasm_bindgen_test]
async fn cmp_events_and_tcf_drive_the_timeline() {
    clean();
    js("document.cookie = 'intercom-session-abc12345=s; path=/';");
    let mut m = new_monitor();
    m.policy("g\t200");
    // A CMP that restored "all granted", then the visitor withdraws in it.
    m.cmp("cookiebot", "preferences:1,statistics:1,marketing:1", true, 0.0);
    m.start();
    assert_eq!(findings(&m), vec![]);
    m.cmp("cookiebot", "preferences:0,statistics:0,marketing:0", true, -1.0);
    sleep(1300).await;
    assert_eq!(findings(&m), vec![("cookie_after_withdrawal".into(), "intercom-session-abc12345".into())]);
    assert!(m.findings().contains("\"source\":\"cookiebot\""));
    clean();

    // TCF: the UI is showing (undecided), so a cookie now is before consent.
    js("document.cookie = 'intercom-id-abc12345=x; path=/';");
    let mut m = new_monitor();
    m.tcf(1, "cmpuishown", "00000000000", "", -1.0);
    m.start();
    assert_eq!(findings(&m), vec![("cookie_before_consent".into(), "intercom-id-abc12345".into())]);
    clean();
}

#[wasm_bindgen_test]
fn consent_mode_update_without_cmp_consent_is_a_mismatch() {
    clean();
    let mut m = new_monitor();
    m.consent_mode("update", "analytics_storage\tgranted", true);
    m.start();
    // Claims settle 500 ms after they are made; a preloaded one counts from 0.
    assert_eq!(findings(&m), vec![("consent_signal_mismatch".into(), String::new())]);
    clean();
}

#[wasm_bindgen_test]
fn cookie_store_change_or_tick_sees_later_cookies() {
    clean();
    let mut m = new_monitor();
    m.start();
    js("document.cookie = 'intercom-device-id-abc12345=d; path=/';");
    // findings() sweeps, as flush does; the tick would too.
    assert_eq!(findings(&m), vec![("cookie_before_consent".into(), "intercom-device-id-abc12345".into())]);
    clean();
}

#[wasm_bindgen_test]
fn globals_and_markers_mean_the_messenger_runs() {
    clean();
    js("window.Intercom = function(){}; window.Intercom.q = [];");
    let mut m = new_monitor();
    m.start();
    assert_eq!(findings(&m), vec![], "the snippet's queue stub alone is not the Messenger");
    js("window.Intercom.booted = true;
        var f = document.createElement('iframe'); f.id = 'intercom-frame'; f.setAttribute('data-tw-test', '');
        document.body.appendChild(f);");
    assert_eq!(
        findings(&m),
        vec![
            ("script_before_consent".into(), "#intercom-frame".into()),
            ("script_before_consent".into(), "Intercom.booted".into()),
        ]
    );
    clean();
}

#[wasm_bindgen_test]
async fn first_party_loader_is_found_by_its_script_id() {
    clean();
    js("var s = document.createElement('script'); s.id = '_intercom_npm_loader'; s.src = '/intercom-shim.js?app=x';
        s.setAttribute('data-tw-test', ''); document.head.appendChild(s);");
    sleep(500).await; // the 404 response still makes a Resource Timing entry
    let mut m = new_monitor();
    m.start();
    let found = findings(&m);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "script_before_consent");
    assert!(found[0].1.ends_with("/intercom-shim.js"), "{found:?}");
    clean();
}

#[wasm_bindgen_test]
fn identity_without_verification_is_flagged_without_the_values() {
    clean();
    js(&format!("window.intercomSettings = {{ app_id: 'abc12345', user_id: '{CANARY}', email: '{CANARY}@example.com' }};
        window.Intercom = function(){{}}; window.Intercom.booted = true;"));
    let mut m = new_monitor();
    m.consent(1, 1, 1, 1, true);
    m.start();
    assert_eq!(findings(&m), vec![("identity_unverified".into(), "intercomSettings".into())]);
    assert!(!m.findings().contains(CANARY));
    clean();
    js("window.intercomSettings = { app_id: 'abc12345', user_id: 'u1', user_hash: 'h' };
        window.Intercom = function(){}; window.Intercom.booted = true;");
    let mut verified = new_monitor();
    verified.consent(1, 1, 1, 1, true);
    verified.start();
    assert_eq!(findings(&verified), vec![]);
    clean();
}

#[wasm_bindgen_test]
fn hostile_pages_do_not_make_it_throw() {
    clean();
    // A global whose getter throws, a cross-origin (opaque) frame, a frame
    // without a document yet.
    js("Object.defineProperty(window, 'Intercom', { configurable: true, get: function(){ throw new Error('boom'); } });
        var f = document.createElement('iframe'); f.src = 'data:text/html,<p>x</p>'; f.setAttribute('data-tw-test', '');
        document.body.appendChild(f);
        var g = document.createElement('iframe'); g.setAttribute('sandbox', ''); g.setAttribute('data-tw-test', '');
        document.body.appendChild(g);");
    let mut m = new_monitor();
    m.start();
    m.flush();
    assert_eq!(findings(&m), vec![]);
    js("delete window.Intercom;");
    clean();
}

#[wasm_bindgen_test]
async fn broken_timeline_apis_in_frames_or_the_page_do_not_make_it_throw() {
    clean();
    // Same-origin frames whose scripts broke what the monitor calls in their
    // realm: a throwing PerformanceObserver, throwing observe / takeRecords /
    // disconnect, a forged endless record list, a throwing `performance` or
    // `timeOrigin`, one that removes its frame while it is read; a sandboxed
    // same-origin frame without scripts. And a page that broke the entry
    // lists and entries the observers hand over. Nothing may reach the
    // page's error handlers.
    js("window.__errors = [];
        window.__onerror = function(e){ window.__errors.push(String(e && (e.message || e.reason))); };
        window.addEventListener('error', window.__onerror);
        window.addEventListener('unhandledrejection', window.__onerror);
        function frame(id, setup, attrs) {
          var f = document.createElement('iframe'); f.id = id; f.setAttribute('data-tw-test', '');
          for (var k in attrs || {}) f.setAttribute(k, attrs[k]);
          document.body.appendChild(f);
          if (setup) setup(f.contentWindow);
          return f.contentWindow;
        }
        function no() { throw new Error('no'); }
        frame('no-observer', function(w){ w.PerformanceObserver = no; });
        frame('no-observe', function(w){ w.PerformanceObserver.prototype.observe = no; });
        frame('forged', function(w){ w.PerformanceObserver.prototype.takeRecords = function(){ return { length: 1e12 }; }; });
        frame('no-performance', function(w){ Object.defineProperty(w, 'performance', { get: no }); });
        frame('no-origin', function(w){ Object.defineProperty(w.Performance.prototype, 'timeOrigin', { get: no }); });
        frame('removes-itself', function(w){
          var real = w.performance;
          Object.defineProperty(w, 'performance', { get: function(){ if (w.frameElement) w.frameElement.remove(); return real; } });
        });
        frame('sandboxed', null, { sandbox: 'allow-same-origin' });
        window.__broken = frame('broken', function(w){
          w.PerformanceObserver.prototype.takeRecords = no;
          w.PerformanceObserver.prototype.disconnect = no;
        });");
    let mut m = new_monitor();
    m.start();
    // A request in the page and one in the broken frame, delivered to every
    // observer of both timelines (the page's own sees them through a method
    // left intact), then one more task: once while the page has broken the
    // lists observers deliver, once while it has broken the entries.
    js("window.__deliver = function(){
          function seen(w, url) {
            return new Promise(function(resolve){
              new w.PerformanceObserver(function(list){
                if (list.getEntriesByType('resource').length) setTimeout(resolve, 0);
              }).observe({ type: 'resource' });
              w.fetch(url)['catch'](function(){});
            });
          }
          return Promise.all([seen(window, '/tw-page-entry?x=' + Math.random()), seen(window.__broken, '/tw-frame-entry?x=' + Math.random())]);
        };");
    let deliver = || async {
        let delivered = js("return window.__deliver();");
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(delivered)).await.unwrap();
    };
    js("window.__getEntries = PerformanceObserverEntryList.prototype.getEntries;
        PerformanceObserverEntryList.prototype.getEntries = function(){ throw new Error('no'); };");
    deliver().await;
    m.flush();
    js("PerformanceObserverEntryList.prototype.getEntries = window.__getEntries;
        window.__name = Object.getOwnPropertyDescriptor(PerformanceEntry.prototype, 'name');
        Object.defineProperty(PerformanceEntry.prototype, 'name', { configurable: true, get: function(){ throw new Error('no'); } });");
    deliver().await;
    m.flush();
    js("Object.defineProperty(PerformanceEntry.prototype, 'name', window.__name);");
    assert_eq!(findings(&m), vec![]);
    js("document.querySelectorAll('[data-tw-test]').forEach(function(f){ f.remove(); });");
    m.flush();
    drop(m);
    let errors = js("return window.__errors.join('; ');").as_string();
    assert_eq!(errors.as_deref(), Some(""), "errors reached the page");
    js("window.removeEventListener('error', window.__onerror); window.removeEventListener('unhandledrejection', window.__onerror);");
    clean();
}

#[wasm_bindgen_test]
fn flush_sends_one_batch_through_the_host_send_with_the_contract_envelope() {
    clean();
    // The shell sends through the host's function only: a page's broken
    // sendBeacon and fetch are not its business.
    js("window.__sent = []; window.__pageSend = [navigator.sendBeacon, window.fetch];
        navigator.sendBeacon = function(){ throw new Error('page broke sendBeacon'); };
        window.fetch = function(){ throw new Error('page broke fetch'); };");
    js(&format!("document.cookie = 'intercom-id-abc12345={CANARY}; path=/';"));
    let mut m = new_monitor();
    m.start();
    m.flush();
    m.flush(); // nothing new: no second request
    js("delete navigator.sendBeacon; window.fetch = window.__pageSend[1];");
    let sent: Array = js("return window.__sent;").unchecked_into();
    assert_eq!(sent.length(), 1);
    let sent = Array::from(&sent.get(0));
    assert_eq!(sent.get(0).as_string().unwrap(), "https://collector.invalid/r");
    let body = sent.get(1).as_string().unwrap();
    assert!(!body.contains(CANARY));
    let report = Array::from(&JSON::parse(&body).unwrap()).get(0);
    for key in ["type", "age", "url", "user_agent", "body"] {
        assert!(Reflect::has(&report, &key.into()).unwrap(), "missing {key}");
    }
    assert_eq!(Reflect::get(&report, &"type".into()).unwrap().as_string().unwrap(), "tagwatch-finding");
    let url = Reflect::get(&report, &"url".into()).unwrap().as_string().unwrap();
    assert!(!url.contains('?') && !url.contains('#'), "{url}");
    clean();
}

#[wasm_bindgen_test]
fn a_throwing_host_send_loses_the_batch_and_nothing_else() {
    clean();
    js(&format!("document.cookie = 'intercom-id-abc12345={CANARY}; path=/';"));
    let send = Function::new_with_args("u, b", "throw new Error('host refused');");
    let mut m = Monitor::new("tw_test", "https://collector.invalid/r", send);
    m.start();
    m.flush();
    assert_eq!(findings(&m), vec![("cookie_before_consent".into(), "intercom-id-abc12345".into())]);
    clean();
}

#[wasm_bindgen_test]
async fn a_page_that_breaks_document_cookie_is_read_through_the_cookie_store() {
    clean();
    js("document.cookie = 'intercom-id-abc12345=x; path=/';
        window.__cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
        Object.defineProperty(Document.prototype, 'cookie', {
          configurable: true, enumerable: true, set: window.__cookie.set,
          get: function () { throw new Error('this page broke document.cookie'); } });");
    let mut m = new_monitor();
    m.start();
    // cookieStore.getAll() answers asynchronously: wait for it, boundedly.
    let mut found = findings(&m);
    for _ in 0..100 {
        if !found.is_empty() {
            break;
        }
        sleep(20).await;
        found = findings(&m);
    }
    js("Object.defineProperty(Document.prototype, 'cookie', window.__cookie);");
    assert_eq!(found, vec![("cookie_before_consent".into(), "intercom-id-abc12345".into())]);
    clean();
}
