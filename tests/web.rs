//! The monitor shell in a real headless Chromium (wasm-bindgen-test), with
//! the snippet's host and page observation as shipped (`www/observe.js`,
//! loaded into the test page).
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p tagwatch-monitor --target wasm32-unknown-unknown`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Reflect, JSON};
use tagwatch_monitor::Monitor;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CANARY: &str = "CANARY7x2q";
const OBSERVE_JS: &str = include_str!("../www/observe.js");

fn js(code: &str) -> JsValue {
    Function::new_no_args(code)
        .call0(&JsValue::NULL)
        .expect("test script runs")
}

/// `www/observe.js` in the page: `window.observe`, `window.windowHost`,
/// and `window.__on`, a listener added as the loader's `on` adds it (the
/// `addEventListener` both are handed, taken by the loader in the snippet).
fn load_observe() {
    js(&[
        OBSERVE_JS,
        "\nwindow.observe = observe; window.windowHost = windowHost;
        window.__on = function (t, type, fn, opt) { try { t.addEventListener(type, fn, opt); } catch (e) {} };",
    ]
    .concat());
}

/// One entry through the batch call, as the host's observer hands them over.
#[allow(clippy::too_many_arguments)]
fn entry(
    m: &Monitor,
    url: &str,
    initiator: &str,
    start: f64,
    transfer: f64,
    encoded: f64,
    duration: f64,
    frame: &str,
) {
    m.entries(url, initiator, &[start, transfer, encoded, duration], frame);
}

fn findings_of(json: &str) -> Vec<(String, String)> {
    let parsed = JSON::parse(json).expect("findings are JSON");
    let mut out: Vec<(String, String)> = Array::from(&parsed)
        .iter()
        .filter(|r| {
            Reflect::get(r, &"type".into())
                .ok()
                .and_then(|t| t.as_string())
                .as_deref()
                == Some("tagwatch-finding")
        })
        .map(|r| {
            let body = Reflect::get(&r, &"body".into()).unwrap();
            let get = |o: &JsValue, k: &str| {
                Reflect::get(o, &k.into())
                    .unwrap()
                    .as_string()
                    .unwrap_or_default()
            };
            let ev = Reflect::get(&body, &"evidence".into()).unwrap();
            let what = [
                get(&ev, "cookie"),
                get(&ev, "name"),
                get(&ev, "host") + &get(&ev, "path"),
            ]
            .concat();
            (get(&body, "finding"), what)
        })
        .collect();
    out.sort();
    out
}

/// The report batch `Monitor::findings` answers (a JS string).
fn batch(m: &Monitor, now: f64) -> String {
    m.findings(now).as_string().expect("findings is a string")
}

fn findings(m: &Monitor, now: f64) -> Vec<(String, String)> {
    findings_of(&batch(m, now))
}

fn pair(finding: &str, what: &str) -> (String, String) {
    (finding.into(), what.into())
}

fn clean() {
    js("document.cookie.split(';').forEach(function(c){var n=c.split('=')[0].trim(); if(n) document.cookie=n+'=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';});
        delete window.Intercom; delete window.intercomSettings;
        document.querySelectorAll('[data-tw-test]').forEach(function(e){e.remove();});");
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

/// The snippet's host on this page (`windowHost`), its `send` recording
/// into `window.__sent`.
fn window_host() -> JsValue {
    load_observe();
    js("window.__sent = []; return windowHost(function (u, b) { window.__sent.push([u, b]); return true; },
        function (u) { return performance.getEntriesByName(u); }, window.__on);")
}

fn monitor_with(host: JsValue) -> Monitor {
    Monitor::new(
        host.unchecked_into(),
        "tw_test",
        "https://collector.invalid/r",
        "https://shop.example/pricing?q=1#f",
        "test agent",
        0.0,
    )
}

fn new_monitor() -> Monitor {
    monitor_with(window_host())
}

/// The instance's monitor (`exports::monitor`, on the snippet's host as
/// [`new_monitor`]'s) as the page's scripts reach it: an object of the
/// module's functions by name, those www/observe.js calls and `findings`.
fn js_monitor() -> JsValue {
    use tagwatch_monitor::exports as x;
    x::monitor(
        window_host().unchecked_into(),
        "tw_test",
        "https://collector.invalid/r",
        "https://shop.example/pricing?q=1#f",
        "test agent",
        0.0,
    );
    let o = js_sys::Object::new();
    let set = |k: &str, f: JsValue| {
        Reflect::set(&o, &k.into(), &f).unwrap();
    };
    set(
        "cookies",
        Closure::<dyn Fn(String, f64)>::new(|h: String, at| x::cookies(&h, at)).into_js_value(),
    );
    set(
        "entries",
        Closure::<dyn Fn(String, String, Vec<f64>, String)>::new(
            |u: String, i: String, n: Vec<f64>, f: String| x::entries(&u, &i, &n, &f),
        )
        .into_js_value(),
    );
    set(
        "expiry",
        Closure::<dyn Fn(String, f64, f64, f64)>::new(|n: String, e, now, at| {
            x::expiry(&n, e, now, at)
        })
        .into_js_value(),
    );
    set(
        "flush",
        Closure::<dyn Fn(f64) -> bool>::new(x::flush).into_js_value(),
    );
    set(
        "start",
        Closure::<dyn Fn(f64) -> u32>::new(x::start).into_js_value(),
    );
    set(
        "tick",
        Closure::<dyn Fn(f64) -> u32>::new(x::tick).into_js_value(),
    );
    set(
        "wants_expiry",
        Closure::<dyn Fn() -> bool>::new(x::wants_expiry).into_js_value(),
    );
    set(
        "findings",
        Closure::<dyn Fn(f64) -> JsValue>::new(x::findings).into_js_value(),
    );
    o.into()
}

#[wasm_bindgen_test]
fn cookies_before_consent_are_found_by_name_only() {
    let m = new_monitor();
    m.consent(1, 0, 0, 0, -1.0);
    m.cookies(
        &format!("intercom-id-abc12345={CANARY}; theme={CANARY}"),
        40.0,
    );
    assert_eq!(
        findings(&m, 50.0),
        vec![pair("cookie_before_consent", "intercom-id-abc12345")]
    );
    assert!(
        !batch(&m, 50.0).contains(CANARY),
        "a cookie value left the page"
    );
}

#[wasm_bindgen_test]
fn the_first_queued_consent_counts_from_page_start_the_others_from_the_loader() {
    let m = new_monitor();
    m.consent(1, 1, 1, 1, -1.0);
    m.cookies("intercom-id-abc12345=x", 5.0);
    assert_eq!(findings(&m, 10.0), vec![], "restored at page start");
    let m = Monitor::new(
        window_host().unchecked_into(),
        "tw_test",
        "https://collector.invalid/r",
        "https://shop.example/",
        "t",
        300.0,
    );
    m.consent(1, 0, 0, 0, -1.0);
    m.consent(1, 1, 1, 1, -1.0);
    m.cookies("intercom-id-abc12345=x", 100.0);
    assert_eq!(
        findings(&m, 400.0),
        vec![pair("cookie_before_consent", "intercom-id-abc12345")],
        "granted from 300"
    );
}

#[wasm_bindgen_test]
fn withdrawal_leaves_cookies_flagged_after_grace() {
    let m = new_monitor();
    m.policy(r#"{"grace_ms":200}"#);
    m.consent(1, 1, 1, 1, -1.0);
    m.cookies("intercom-session-abc12345=s", 10.0);
    m.consent(-1, 0, -1, 0, 1000.0);
    assert_eq!(findings(&m, 1100.0), vec![], "within the grace period");
    assert_eq!(
        findings(&m, 1300.0),
        vec![pair("cookie_after_withdrawal", "intercom-session-abc12345")]
    );
}

#[wasm_bindgen_test]
fn a_cmp_cookie_present_at_start_is_consent_restored_from_storage() {
    let m = new_monitor();
    let cc = js("return 'cc_cookie=' + encodeURIComponent(JSON.stringify({categories:['necessary','functionality','analytics','marketing']}));")
        .as_string()
        .unwrap();
    m.cookies(&format!("intercom-id-abc12345=x; {cc}"), 10.0);
    assert_eq!(findings(&m, 20.0), vec![]);
    assert!(
        !batch(&m, 20.0).contains("necessary\",\"functionality"),
        "no cookie value in the report"
    );
}

#[wasm_bindgen_test]
fn cmp_and_tcf_signals_are_typed_and_drive_the_timeline() {
    let m = new_monitor();
    m.policy(r#"{"grace_ms":200}"#);
    let names = |n: &[&str]| n.join("\n");
    // A CMP that restored "all granted", then the visitor withdraws in it.
    m.cmp(
        "cookiebot",
        &names(&["preferences", "statistics", "marketing"]),
        &[1.0, 1.0, 1.0],
        1,
        -1.0,
        0,
    );
    m.start(5.0);
    m.cookies("intercom-session-abc12345=s", 10.0);
    assert_eq!(findings(&m, 20.0), vec![]);
    m.cmp(
        "cookiebot",
        &names(&["preferences", "statistics", "marketing"]),
        &[0.0, 0.0, 0.0],
        1,
        500.0,
        0,
    );
    assert_eq!(
        findings(&m, 800.0),
        vec![pair("cookie_after_withdrawal", "intercom-session-abc12345")]
    );
    assert!(batch(&m, 800.0).contains("\"source\":\"cookiebot\""));
    assert!(
        m.consent_now(800.0).contains("\"functional\":false"),
        "{}",
        m.consent_now(800.0)
    );

    // TCF: the UI is showing (undecided), so a cookie now is before consent;
    // then purposes 1-11 and the vendors, by id.
    let m = new_monitor();
    m.tcf(1, "cmpuishown", &[], &[], -1.0);
    m.cookies("intercom-id-abc12345=x", 10.0);
    assert_eq!(
        findings(&m, 20.0),
        vec![pair("cookie_before_consent", "intercom-id-abc12345")]
    );
    let m = new_monitor();
    m.tcf(
        1,
        "tcloaded",
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0],
        &[755.0],
        900.0,
    );
    m.cookies("intercom-id-abc12345=x", 10.0);
    assert_eq!(
        findings(&m, 20.0),
        vec![],
        "tcloaded counts from page start"
    );
}

#[wasm_bindgen_test]
fn osano_opt_out_is_read_in_the_core() {
    let m = new_monitor();
    let names = "ESSENTIAL\nSTORAGE\nMARKETING\nANALYTICS\nOPT_OUT";
    m.cmp("osano", names, &[1.0, 1.0, 1.0, 1.0, 1.0], 1, -1.0, 0);
    assert!(
        m.consent_now(10.0)
            .contains("\"marketing\":false,\"source\":\"osano\""),
        "{}",
        m.consent_now(10.0)
    );
}

#[wasm_bindgen_test]
fn a_choice_made_before_the_monitor_started_keeps_its_time() {
    // The loader kept: the cookies at its start (no consent cookie), a
    // trusted click at 2000 ms and the OneTrust cookie it wrote at 2001 ms.
    let m = new_monitor();
    m.cookies("theme=dark", 5.0);
    entry(
        &m,
        "https://widget.intercom.io/widget/abc12345",
        "script",
        1500.0,
        100.0,
        100.0,
        20.0,
        "top",
    );
    m.gesture(2000.0);
    m.cookies("theme=dark; OptanonAlertBoxClosed=x; OptanonConsent=groups=C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A1", 2001.0);
    entry(
        &m,
        "https://api-iam.intercom.io/messenger/web/ping",
        "fetch",
        2500.0,
        100.0,
        100.0,
        20.0,
        "top",
    );
    m.start(3000.0);
    // The adapters find OneTrust's state when they start.
    m.cmp(
        "onetrust",
        "C0001\nC0002\nC0003\nC0004",
        &[1.0, 1.0, 1.0, 1.0],
        1,
        -1.0,
        0,
    );
    assert_eq!(
        findings(&m, 3100.0),
        vec![pair(
            "script_before_consent",
            "widget.intercom.io/widget/abc12345"
        )],
        "the loader before the click is before consent; the ping after it is not"
    );
    let consent = m.consent_now(3100.0);
    assert!(
        consent.contains("\"since\":2000"),
        "dated at the click: {consent}"
    );
}

#[wasm_bindgen_test]
fn a_state_restored_from_storage_counts_from_page_start() {
    let m = new_monitor();
    m.cookies(
        "OptanonAlertBoxClosed=x; OptanonConsent=groups=C0001%3A1%2CC0003%3A1",
        5.0,
    );
    entry(
        &m,
        "https://widget.intercom.io/widget/abc12345",
        "script",
        1500.0,
        100.0,
        100.0,
        20.0,
        "top",
    );
    m.gesture(2000.0); // an unrelated click: the consent cookie was already there
    m.start(3000.0);
    m.cmp("onetrust", "C0001\nC0003", &[1.0, 1.0], 1, -1.0, 0);
    assert_eq!(findings(&m, 3100.0), vec![]);
}

#[wasm_bindgen_test]
fn consent_mode_update_without_cmp_consent_is_a_mismatch() {
    let m = new_monitor();
    m.consent_mode("update", "analytics_storage", "granted", -1.0);
    // Claims settle 500 ms after they are made; one from before counts from 0.
    assert_eq!(
        findings(&m, 600.0),
        vec![pair("consent_signal_mismatch", "")]
    );
}

#[wasm_bindgen_test]
fn sweeps_back_off_while_nothing_changes_and_come_back_after_activity() {
    clean();
    let m = new_monitor();
    assert_eq!(m.start(0.0), 1000);
    let delays: Vec<u32> = (1..=7).map(|i| m.tick(f64::from(i) * 1000.0)).collect();
    assert_eq!(delays, vec![2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    m.cookies("theme=dark", 9000.0);
    assert_eq!(m.tick(9500.0), 1000, "something new: soon again");
}

#[wasm_bindgen_test]
fn globals_and_markers_mean_the_messenger_runs() {
    clean();
    js("window.Intercom = function(){}; window.Intercom.q = [];");
    let m = new_monitor();
    m.start(0.0);
    assert_eq!(
        findings(&m, 10.0),
        vec![],
        "the snippet's queue stub alone is not the Messenger"
    );
    js("window.Intercom.booted = true;
        var f = document.createElement('iframe'); f.id = 'intercom-frame'; f.setAttribute('data-tw-test', '');
        document.body.appendChild(f);");
    assert_eq!(
        findings(&m, 20.0),
        vec![
            pair("script_before_consent", "#intercom-frame"),
            pair("script_before_consent", "Intercom.booted")
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
    let m = new_monitor();
    m.start(0.0);
    let found = findings(&m, 10.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "script_before_consent");
    assert!(found[0].1.ends_with("/intercom-shim.js"), "{found:?}");
    clean();
}

#[wasm_bindgen_test]
fn identity_without_verification_is_flagged_without_the_values() {
    clean();
    js(&format!(
        "window.intercomSettings = {{ app_id: 'abc12345', user_id: '{CANARY}', email: '{CANARY}@example.com' }};
        window.Intercom = function(){{}}; window.Intercom.booted = true;"
    ));
    let m = new_monitor();
    m.consent(1, 1, 1, 1, -1.0);
    m.start(0.0);
    assert_eq!(
        findings(&m, 10.0),
        vec![pair("identity_unverified", "intercomSettings")]
    );
    assert!(!batch(&m, 10.0).contains(CANARY));
    clean();
    js(
        "window.intercomSettings = { app_id: 'abc12345', user_id: 'u1', user_hash: 'h' };
        window.Intercom = function(){}; window.Intercom.booted = true;",
    );
    let verified = new_monitor();
    verified.consent(1, 1, 1, 1, -1.0);
    verified.start(0.0);
    assert_eq!(findings(&verified, 10.0), vec![]);
    clean();
    // A call the loader kept: only the fields' presence is read.
    let called = new_monitor();
    called.consent(1, 1, 1, 1, -1.0);
    let arg = js(&format!(
        "return {{ user_id: '{CANARY}', email: 'x@example.com' }};"
    ));
    called.call("intercom", "trackEvent", &arg, 100.0);
    assert_eq!(findings(&called, 200.0), vec![], "not an identity verb");
    called.call("intercom", "update", &arg, 300.0);
    assert_eq!(
        findings(&called, 400.0),
        vec![pair("identity_unverified", "Intercom('update')")]
    );
    assert!(!batch(&called, 400.0).contains(CANARY));
}

#[wasm_bindgen_test]
fn a_host_that_throws_or_lies_does_not_make_it_throw() {
    clean();
    let host = js("var no = function () { throw new Error('no'); };
        return { send: no, present: no, truthy: no, element: function () { return null; },
                 script: function () { return { get name() { throw new Error('no'); } }; },
                 value: function () { return new Proxy({}, { get: no }); } };");
    let m = monitor_with(host);
    m.cookies("intercom-id-abc12345=x", 10.0);
    m.start(20.0);
    m.flush(30.0);
    assert_eq!(
        findings(&m, 40.0),
        vec![pair("cookie_before_consent", "intercom-id-abc12345")],
        "the batch is lost, nothing else"
    );
    let m = monitor_with(js("return {};"));
    m.start(0.0);
    m.flush(10.0);
    // An answer that is not a string of flags: nothing found.
    let m = monitor_with(js(
        "return { send: function () {}, present: function () { return 111; } };",
    ));
    m.start(0.0);
    assert_eq!(findings(&m, 10.0), vec![]);
}

#[wasm_bindgen_test]
fn entries_in_one_call_stop_at_the_shortest_list() {
    let m = new_monitor();
    // Two URLs, one initiator type, numbers for two: only the first is judged.
    m.entries(
        "https://widget.intercom.io/widget/abc12345\nhttps://api-iam.intercom.io/messenger/web/ping",
        "script",
        &[100.0, 0.0, 0.0, 0.0, 200.0, 0.0, 0.0, 0.0],
        "top",
    );
    // Numbers for one entry short of four: none.
    m.entries(
        "https://js.intercomcdn.com/frame.js",
        "script",
        &[300.0, 0.0],
        "top",
    );
    m.entries("", "", &[], "top");
    assert_eq!(
        findings(&m, 400.0),
        vec![pair(
            "script_before_consent",
            "widget.intercom.io/widget/abc12345"
        )]
    );
}

#[wasm_bindgen_test]
fn hostile_policies_are_ignored_key_by_key() {
    let m = new_monitor();
    for text in [
        "",
        "null",
        "[",
        "{\"regions\":",
        "{\"grace_ms\":-5,\"regions\":[1,{}]}",
        &"[".repeat(10_000),
        "\t\t\t",
        "regions\t",
        "grace_ms\t\"-5\nregions\t\t[\n\u{0}\t\u{ffff}",
        &"regions\t".repeat(10_000),
    ] {
        m.policy(text);
    }
    m.policy(r#"{"regions":["eu"],"grace_ms":"x"}"#);
    entry(
        &m,
        "https://api-iam.intercom.io/messenger/web/ping",
        "fetch",
        100.0,
        0.0,
        0.0,
        0.0,
        "top",
    );
    let found = findings(&m, 200.0);
    assert!(
        found.contains(&pair(
            "region_not_allowed",
            "api-iam.intercom.io/messenger/web/ping"
        )),
        "{found:?}"
    );
}

/// The policy as the loader writes it for the page's monitor (the line
/// form, `Policy::from_lines`; tests/fixtures/policy/).
#[wasm_bindgen_test]
fn the_loaders_line_form_is_the_policy() {
    let m = new_monitor();
    m.policy("regions\t[\nregions\t\t\"eu\ngrace_ms\t\"x\n");
    entry(
        &m,
        "https://api-iam.intercom.io/messenger/web/ping",
        "fetch",
        100.0,
        0.0,
        0.0,
        0.0,
        "top",
    );
    assert!(findings(&m, 200.0).contains(&pair(
        "region_not_allowed",
        "api-iam.intercom.io/messenger/web/ping"
    )));
}

#[wasm_bindgen_test]
fn flush_sends_one_batch_through_the_host_send_with_the_contract_envelope() {
    // The shell sends through the host's function only: a page's broken
    // sendBeacon and fetch are not its business.
    js("window.__pageSend = [navigator.sendBeacon, window.fetch];
        navigator.sendBeacon = function(){ throw new Error('page broke sendBeacon'); };
        window.fetch = function(){ throw new Error('page broke fetch'); };");
    let m = new_monitor();
    m.cookies(&format!("intercom-id-abc12345={CANARY}"), 10.0);
    m.flush(20.0);
    m.flush(30.0); // nothing new: no second request
    js("delete navigator.sendBeacon; window.fetch = window.__pageSend[1];");
    let sent: Array = js("return window.__sent;").unchecked_into();
    assert_eq!(sent.length(), 1);
    let sent = Array::from(&sent.get(0));
    assert_eq!(
        sent.get(0).as_string().unwrap(),
        "https://collector.invalid/r"
    );
    let body = sent.get(1).as_string().unwrap();
    assert!(!body.contains(CANARY));
    let report = Array::from(&JSON::parse(&body).unwrap()).get(0);
    for key in ["type", "age", "url", "user_agent", "body"] {
        assert!(Reflect::has(&report, &key.into()).unwrap(), "missing {key}");
    }
    assert_eq!(
        Reflect::get(&report, &"type".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "tagwatch-finding"
    );
    let url = Reflect::get(&report, &"url".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert_eq!(url, "https://shop.example/pricing", "no query, no fragment");
}

/// `observe(m, o)` of www/observe.js on this page, with the loader's parts
/// made here: a top observer, no Cookie Store events (cookies on sweeps),
/// the browser's own entry lists, listeners and clocks (the snippet hands
/// over the loader's), a frame's entries judged at once (the brain holds
/// them until its start).
/// The monitor goes to JavaScript (`m` is its JS object afterwards).
fn observe(m: &JsValue) -> JsValue {
    // As the loader's: a page that broke entry lists gets no error from it.
    let o = js("var top = new PerformanceObserver(function (l) { try { window.__judge(l.getEntries(), 0, 'top'); } catch (e) {} });
        top.observe({ type: 'resource', buffered: true });
        return { store: window.cookieStore, events: false, cookies: function (h) { return h; },
                 entries: function (fn) { window.__judge = fn; },
                 drain: function () { window.__judge(top.takeRecords(), 0, 'top'); },
                 poll: function () {},
                 list: function (l) { return l.getEntries(); },
                 records: function (obs) { return obs.takeRecords(); },
                 on: window.__on,
                 hold: function (l, off, label) { window.__judge(l, off, label); },
                 now: function () { return performance.now(); },
                 date: function () { return Date.now(); } };");
    let observe: Function = js("return window.observe;").unchecked_into();
    let page = observe.call2(&JsValue::NULL, m, &o).expect("observe runs");
    let start: Function = Reflect::get(&page, &"start".into())
        .unwrap()
        .unchecked_into();
    start.call0(&page).expect("start runs");
    page
}

/// `m[method](...args)` on a monitor handed to JavaScript.
fn call(m: &JsValue, method: &str, args: &[JsValue]) -> JsValue {
    let f: Function = Reflect::get(m, &method.into()).unwrap().unchecked_into();
    f.apply(m, &args.iter().collect::<Array>())
        .expect("monitor call")
}

fn settle(page: &JsValue) {
    let f: Function = Reflect::get(page, &"settle".into())
        .unwrap()
        .unchecked_into();
    f.call0(page).expect("settle runs");
}

#[wasm_bindgen_test]
async fn a_page_that_breaks_document_cookie_is_read_through_the_cookie_store() {
    clean();
    let m = js_monitor();
    js("document.cookie = 'intercom-id-abc12345=x; path=/';
        window.__cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
        Object.defineProperty(Document.prototype, 'cookie', {
          configurable: true, enumerable: true, set: window.__cookie.set,
          get: function () { throw new Error('this page broke document.cookie'); } });");
    let page = observe(&m);
    // cookieStore.getAll() answers asynchronously: wait for it, boundedly.
    let mut found = Vec::new();
    for _ in 0..100 {
        settle(&page);
        found = findings_of(&call(&m, "findings", &[10.0.into()]).as_string().unwrap());
        if !found.is_empty() {
            break;
        }
        sleep(20).await;
    }
    js("Object.defineProperty(Document.prototype, 'cookie', window.__cookie);");
    assert_eq!(
        found,
        vec![pair("cookie_before_consent", "intercom-id-abc12345")]
    );
    clean();
}

#[wasm_bindgen_test]
async fn broken_timeline_apis_in_frames_or_the_page_do_not_make_it_throw() {
    clean();
    // Same-origin frames whose scripts broke what the observation calls in
    // their realm: a throwing PerformanceObserver, throwing observe /
    // takeRecords / disconnect, a forged endless record list, a throwing
    // `performance` or `timeOrigin`, one that removes its frame while it is
    // read; a sandboxed same-origin frame without scripts. And a page that
    // broke the entry lists and entries the observers hand over. Nothing
    // may reach the page's error handlers.
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
    let m = js_monitor();
    let page = observe(&m);
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
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(delivered))
            .await
            .unwrap();
    };
    js(
        "window.__getEntries = PerformanceObserverEntryList.prototype.getEntries;
        PerformanceObserverEntryList.prototype.getEntries = function(){ throw new Error('no'); };",
    );
    deliver().await;
    settle(&page);
    call(&m, "flush", &[100.0.into()]);
    js("PerformanceObserverEntryList.prototype.getEntries = window.__getEntries;
        window.__name = Object.getOwnPropertyDescriptor(PerformanceEntry.prototype, 'name');
        Object.defineProperty(PerformanceEntry.prototype, 'name', { configurable: true, get: function(){ throw new Error('no'); } });");
    deliver().await;
    settle(&page);
    call(&m, "flush", &[200.0.into()]);
    js("Object.defineProperty(PerformanceEntry.prototype, 'name', window.__name);");
    assert_eq!(
        findings_of(&call(&m, "findings", &[300.0.into()]).as_string().unwrap()),
        vec![]
    );
    js("document.querySelectorAll('[data-tw-test]').forEach(function(f){ f.remove(); });");
    settle(&page);
    call(&m, "flush", &[400.0.into()]);
    let errors = js("return window.__errors.join('; ');").as_string();
    assert_eq!(errors.as_deref(), Some(""), "errors reached the page");
    js("window.removeEventListener('error', window.__onerror); window.removeEventListener('unhandledrejection', window.__onerror);");
    clean();
}

#[wasm_bindgen_test]
fn a_cmps_per_service_choice_is_its_vendors_through_the_monitor() {
    // cookieconsent: analytics granted, its service `ga` accepted and
    // `hotjar` refused (the last 2 names are services): Hotjar's script is
    // a finding, GA4's hit is not.
    let m = new_monitor();
    let names = |n: &[&str]| n.join("\n");
    m.cmp(
        "vanilla-cookieconsent",
        &names(&["necessary", "analytics", "ga", "hotjar"]),
        &[1.0, 1.0, 1.0, 0.0],
        1,
        -1.0,
        2,
    );
    m.start(5.0);
    let hotjar = "https://static.hotjar.com/c/hotjar-3000001.js?sv=6";
    entry(&m, hotjar, "script", 100.0, 100.0, 100.0, 20.0, "top");
    let ga = "https://region1.google-analytics.com/g/collect?v=2";
    entry(&m, ga, "fetch", 110.0, 100.0, 100.0, 20.0, "top");
    assert_eq!(
        findings(&m, 200.0),
        vec![pair(
            "script_before_consent",
            "static.hotjar.com/c/hotjar-3000001.js"
        )]
    );
    // A services count beyond the names (a page can call the sink) is all
    // services: no category, nothing panics.
    let m = new_monitor();
    m.cmp("klaro", &names(&["hotjar"]), &[1.0], 1, -1.0, u32::MAX);
    m.cmp("klaro", "", &[], 1, -1.0, 7);
    m.start(5.0);
    entry(&m, hotjar, "script", 100.0, 100.0, 100.0, 20.0, "top");
    assert_eq!(findings(&m, 200.0), vec![]);
}
