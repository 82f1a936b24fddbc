//! The host interface: how the shell reads the browser and sends reports.
//!
//! A host is a JavaScript object given to [`crate::Monitor::new`]. What it
//! observes it pushes into the monitor's methods (Resource Timing entries,
//! cookie snapshots with their times, consent signals, API calls); what is
//! a state rather than an event the shell reads through it on its sweeps,
//! and reports leave through it:
//!
//! | method | answers |
//! |---|---|
//! | `send(url, body)` | sends a report batch (a `text/plain` POST) |
//! | `present(globals, ids, scripts)` | which of these are there now, in one call: page globals `a.b.c` that are truthy, elements with that id, `<script id>`s whose `src` has a Resource Timing entry; each list one item per line; answers a string of `1` (there) or `0`, one per item, the globals' first, then the ids', then the scripts' |
//! | `script(id)` | the Resource Timing entry of the `src` of `<script id>`, or `undefined` |
//! | `value(name)` | the page global `name` (an identity settings object), or `undefined` |
//!
//! The snippet's host (`www/brain.js`) answers on the page's `window`; the
//! extension's (`extension/content.js`) from what its page-world script
//! reported over its channel. Every method may throw or answer nonsense (a
//! page getter runs behind `truthy`); the shell takes an exception as "no".

use alloc::string::String;
use wasm_bindgen::prelude::*;

// The two JavaScript built-ins the shell calls, bound here rather than
// through js-sys: js-sys exports a futures executor entry point
// (`__wbg_jspi_task_poll`) that keeps its executor and closures in every
// module linking it (~1.5 KB gzip).
#[wasm_bindgen]
extern "C" {
    /// `Reflect.get(target, key)`; throws on a non-object target or a throwing getter.
    #[wasm_bindgen(js_namespace = Reflect, js_name = get, catch)]
    fn reflect_get(target: &JsValue, key: &JsValue) -> Result<JsValue, JsValue>;
    /// `Math.random()`.
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub(crate) fn random() -> f64;
}

#[wasm_bindgen]
extern "C" {
    /// The host object.
    pub type Host;
    #[wasm_bindgen(method, catch)]
    fn send(this: &Host, url: &str, body: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = present)]
    fn present_flags(
        this: &Host,
        globals: &str,
        ids: &str,
        scripts: &str,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn script(this: &Host, id: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn value(this: &Host, name: &str) -> Result<JsValue, JsValue>;
}

impl Host {
    /// Sends a report batch; a host that throws loses it (better than a page error).
    pub(crate) fn post(&self, url: &str, body: &str) {
        let _ = self.send(url, body);
    }

    /// `present(…)`'s flags; a host that throws or answers no string: none there.
    pub(crate) fn present(&self, globals: &str, ids: &str, scripts: &str) -> String {
        match self.present_flags(globals, ids, scripts) {
            Ok(v) => v.as_string().unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// `(url, start, initiator)` of the entry of `<script id>`'s `src`.
    pub(crate) fn script_entry(&self, id: &str) -> Option<(String, f64, String)> {
        let entry = object(self.script(id))?;
        let url = text_at(&entry, "name").filter(|u| !u.is_empty())?;
        let start = number_at(&entry, "startTime").unwrap_or(0.0);
        Some((
            url,
            start,
            text_at(&entry, "initiatorType").unwrap_or_default(),
        ))
    }

    /// The page global `name` when it is an object.
    pub(crate) fn object(&self, name: &str) -> Option<JsValue> {
        object(self.value(name))
    }
}

/// A host's answer when it is an object. Answers are read by `match`
/// here and below, not `.ok()` / `.filter()` / `.and_then()`: each of those
/// over a `JsValue` was an instance with its own drop (43 bytes of the
/// wasm's gzip in all, docs/benchmarks.md, fifth round).
fn object(v: Result<JsValue, JsValue>) -> Option<JsValue> {
    match v {
        Ok(v) if v.is_object() => Some(v),
        _ => None,
    }
}

/// `o[key]` as a string; `None` when absent, not a string, or when reading
/// it threw (a getter, a Proxy).
pub(crate) fn text_at(o: &JsValue, key: &str) -> Option<String> {
    match reflect_get(o, &JsValue::from_str(key)) {
        Ok(v) => v.as_string(),
        Err(_) => None,
    }
}

/// `o[key]` as a number, same care.
pub(crate) fn number_at(o: &JsValue, key: &str) -> Option<f64> {
    match reflect_get(o, &JsValue::from_str(key)) {
        Ok(v) => v.as_f64(),
        Err(_) => None,
    }
}

/// Whether `o[key]` is truthy; a read that throws is false.
pub(crate) fn truthy_at(o: &JsValue, key: &str) -> bool {
    reflect_get(o, &JsValue::from_str(key)).is_ok_and(|v| v.is_truthy())
}
