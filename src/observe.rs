//! Browser observation: Resource Timing (top document and same-origin
//! frames), cookies, globals and DOM markers, fed into the core engine.

use crate::{transport, Shell};
use gloo_events::EventListener;
use gloo_timers::callback::Interval;
use js_sys::{Array, Object, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use tagwatch_core::catalog::{self, vendors, Vendor};
use tagwatch_core::engine::{ms, Request};
use tagwatch_core::report::Evidence;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlDocument, HtmlIFrameElement, Performance, PerformanceObserver, PerformanceResourceTiming, Window};

/// How often frames, cookies and globals are re-read, in ms.
const TICK_MS: u32 = 1000;

#[wasm_bindgen]
extern "C" {
    /// `PerformanceObserver`, bound again for a `catch` version of `observe`,
    /// which throws on browsers that do not know `type`.
    #[wasm_bindgen(js_name = PerformanceObserver)]
    type CatchingObserver;
    #[wasm_bindgen(method, catch, js_name = observe)]
    fn observe(this: &CatchingObserver, options: &Object) -> Result<(), JsValue>;
}

pub(crate) fn window() -> Option<Window> {
    web_sys::window()
}

fn performance() -> Option<Performance> {
    window()?.performance()
}

/// ms since navigation start.
pub(crate) fn now() -> u64 {
    performance().map(|p| ms(p.now())).unwrap_or(0)
}

/// What the shell has already looked at.
#[derive(Default)]
pub(crate) struct WatchState {
    frames: Vec<Frame>,
    last_cookie: Option<String>,
    loaders_seen: Vec<&'static str>,
    identity_seen: Vec<&'static str>,
    /// The loader's function that wraps a vendor API for identity calls.
    pub(crate) hook: Option<js_sys::Function>,
}

/// A same-origin frame whose timeline is read on every tick.
struct Frame {
    element: HtmlIFrameElement,
    performance: Performance,
    label: String,
    read: u32,
}

/// A resource observer and the callback it holds (kept alive together).
type ResourceObserver = (PerformanceObserver, Closure<dyn FnMut(web_sys::PerformanceObserverEntryList)>);

/// Keeps the observers alive; dropping it detaches them.
pub(crate) struct Observers {
    observer: Option<ResourceObserver>,
    _tick: Interval,
    _listeners: Vec<EventListener>,
}

impl Drop for Observers {
    fn drop(&mut self) {
        if let Some((o, _)) = &self.observer {
            o.disconnect();
        }
    }
}

impl Observers {
    /// Starts observing; `None` when the page lacks the APIs needed.
    pub(crate) fn attach(shell: &Rc<RefCell<Shell>>) -> Option<Observers> {
        let w = window()?;
        let gpc = Reflect::get(&w.navigator(), &"globalPrivacyControl".into()).ok().and_then(|v| v.as_bool());
        if let Ok(mut s) = shell.try_borrow_mut() {
            s.engine.set_gpc(gpc == Some(true));
        }
        sweep(shell);

        let observer = top_observer(shell);
        let tick = {
            let shell = shell.clone();
            Interval::new(TICK_MS, move || sweep(&shell))
        };
        let mut listeners = Vec::new();
        let on_exit = |shell: &Rc<RefCell<Shell>>| {
            let shell = shell.clone();
            move |_: &web_sys::Event| {
                sweep(&shell);
                transport::send_pending(&shell);
            }
        };
        listeners.push(EventListener::new(&w, "pagehide", on_exit(shell)));
        if let Some(doc) = w.document() {
            let shell = shell.clone();
            let hidden = doc.clone();
            listeners.push(EventListener::new(&doc, "visibilitychange", move |_| {
                if hidden.visibility_state() == web_sys::VisibilityState::Hidden {
                    sweep(&shell);
                    transport::send_pending(&shell);
                }
            }));
        }
        // Cookie Store API: react to cookie writes at once; the tick is the
        // fallback where it is missing.
        if let Some(store) = Reflect::get(&w, &"cookieStore".into()).ok().filter(|v| v.is_object()) {
            let shell = shell.clone();
            let target: web_sys::EventTarget = store.unchecked_into();
            listeners.push(EventListener::new(&target, "change", move |_| read_cookies(&shell)));
        }
        Some(Observers { observer, _tick: tick, _listeners: listeners })
    }
}

/// The top document's buffered resource observer: it also delivers the
/// entries from before the monitor started, with their real start times.
fn top_observer(shell: &Rc<RefCell<Shell>>) -> Option<ResourceObserver> {
    let shell = shell.clone();
    let callback = Closure::<dyn FnMut(web_sys::PerformanceObserverEntryList)>::new(
        move |list: web_sys::PerformanceObserverEntryList| {
            let Ok(mut s) = shell.try_borrow_mut() else { return };
            for entry in list.get_entries().iter() {
                judge_entry(&mut s, entry.unchecked_ref(), 0.0, "top");
            }
        },
    );
    let observer = PerformanceObserver::new(callback.as_ref().unchecked_ref()).ok()?;
    let options = Object::new();
    Reflect::set(&options, &"type".into(), &"resource".into()).ok()?;
    Reflect::set(&options, &"buffered".into(), &JsValue::TRUE).ok()?;
    observer.unchecked_ref::<CatchingObserver>().observe(&options).ok()?;
    Some((observer, callback))
}

pub(crate) fn judge_entry(s: &mut Shell, entry: &PerformanceResourceTiming, offset: f64, frame: &str) {
    let url = entry.name();
    let initiator = entry.initiator_type();
    s.engine.request(Request {
        url: &url,
        start: entry.start_time() + offset,
        initiator: &initiator,
        frame,
        transfer: entry.transfer_size(),
        encoded: entry.encoded_body_size(),
        duration: entry.duration(),
    });
}

/// One pass over everything that is polled: frames, cookies, presence.
pub(crate) fn sweep(shell: &Rc<RefCell<Shell>>) {
    let Some(w) = window() else { return };
    let Some(doc) = w.document() else { return };
    let Ok(mut s) = shell.try_borrow_mut() else { return };
    let now = now();
    read_frames(&mut s, &doc);
    for vendor in vendors() {
        presence(&mut s, &w, &doc, vendor, now);
    }
    drop(s);
    read_cookies(shell);
    hook_apis(shell);
}

fn read_frames(s: &mut Shell, doc: &web_sys::Document) {
    let top_origin = performance().map(|p| p.time_origin()).unwrap_or(0.0);
    let iframes = doc.get_elements_by_tag_name("iframe");
    for i in 0..iframes.length() {
        let Some(el) = iframes.item(i).and_then(|e| e.dyn_into::<HtmlIFrameElement>().ok()) else { continue };
        // Cross-origin frames have no readable document: their timelines are
        // out of a page's reach (the extension sees them).
        if el.content_document().is_none() {
            continue;
        }
        let Some(perf) = el
            .content_window()
            .and_then(|fw| Reflect::get(&fw, &"performance".into()).ok())
            .filter(|p| p.is_object())
            .map(|p| p.unchecked_into::<Performance>())
        else {
            continue;
        };
        let tracked = s.watch.frames.iter().position(|f| f.element == el);
        match tracked {
            // A navigated frame has a new timeline: start over.
            Some(k) if s.watch.frames.get(k).is_some_and(|f| f.performance != perf) => {
                if let Some(f) = s.watch.frames.get_mut(k) {
                    f.performance = perf;
                    f.read = 0;
                }
            }
            Some(_) => {}
            None => {
                let id = el.id();
                let label = if id.is_empty() { "frame".into() } else { ["#", &id.chars().take(48).collect::<String>()].concat() };
                s.watch.frames.push(Frame { element: el, performance: perf, label, read: 0 });
            }
        }
    }
    let mut frames = std::mem::take(&mut s.watch.frames);
    frames.retain(|f| f.element.is_connected());
    for f in &mut frames {
        let entries: Array = f.performance.get_entries_by_type("resource");
        let offset = f.performance.time_origin() - top_origin;
        let total = entries.length();
        for j in f.read..total {
            judge_entry(s, entries.get(j).unchecked_ref(), offset, &f.label);
        }
        f.read = total;
    }
    s.watch.frames = frames;
}

pub(crate) fn read_cookies(shell: &Rc<RefCell<Shell>>) {
    let Some(doc) = window().and_then(|w| w.document()) else { return };
    match doc.unchecked_into::<HtmlDocument>().cookie() {
        Ok(header) => cookies_seen(shell, header),
        // Sandboxed and opaque-origin documents throw on `cookie`, and so does
        // a page that broke it (the page's scripts are the audited ones): the
        // Cookie Store API has the same cookies, where the page has one.
        Err(_) => cookie_store_all(shell, cookie_store_seen),
    }
}

/// `cookieStore.getAll()`'s list as the `Cookie` header it stands for.
fn cookie_store_seen(shell: &Rc<RefCell<Shell>>, list: Array) {
    let mut header = String::new();
    for c in list.iter() {
        let get = |k: &str| Reflect::get(&c, &k.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        if !header.is_empty() {
            header.push_str("; ");
        }
        header.push_str(&get("name"));
        header.push('=');
        header.push_str(&get("value"));
    }
    cookies_seen(shell, header);
}

/// The page's cookies now, as a `Cookie` header (`name=value; …`).
fn cookies_seen(shell: &Rc<RefCell<Shell>>, header: String) {
    let Ok(mut s) = shell.try_borrow_mut() else { return };
    let now = now();
    if s.watch.last_cookie.as_deref() == Some(header.as_str()) {
        s.engine.tick(now);
    } else {
        s.engine.cookies(&header, now);
        s.watch.last_cookie = Some(header);
        drop(s);
        read_expiry(shell);
    }
}

fn presence(s: &mut Shell, w: &Window, doc: &web_sys::Document, vendor: &'static Vendor, now: u64) {
    for &path in &vendor.globals {
        if truthy_path(w, path) {
            s.engine.presence(vendor, Evidence::Global { name: path.into() }, now);
        }
    }
    for &id in &vendor.dom_ids {
        if doc.get_element_by_id(id).is_some() {
            s.engine.presence(vendor, Evidence::Dom { name: ["#", id].concat() }, now);
        }
    }
    for &id in &vendor.loader_script_ids {
        if s.watch.loaders_seen.contains(&id) {
            continue;
        }
        // The `src` property (not the attribute) is already absolute, as Resource Timing names it.
        let src = doc.get_element_by_id(id).and_then(|e| Reflect::get(&e, &"src".into()).ok()).and_then(|v| v.as_string());
        let Some(src) = src.filter(|s| !s.is_empty()) else { continue };
        let Some(entry) = performance().and_then(|p| p.get_entries_by_name(&src).get(0).dyn_into::<PerformanceResourceTiming>().ok()) else { continue };
        s.watch.loaders_seen.push(id);
        // A loader on the vendor's own host is already judged by the observer.
        let name = entry.name();
        let on_vendor_host = tagwatch_core::url::parse(&name).is_some_and(|p| catalog::vendor_for_host(&p.host).is_some());
        if !on_vendor_host {
            let initiator = entry.initiator_type();
            s.engine.loader_request(vendor, Request { url: &name, start: entry.start_time(), initiator: &initiator, frame: "top", ..Request::default() });
        }
    }
    if let Some(rule) = &vendor.identity {
        if !s.watch.identity_seen.contains(&vendor.id) && truthy_path(w, vendor.globals.first().copied().unwrap_or("")) {
            if let Some(settings) = Reflect::get(w, &rule.settings.into()).ok().filter(|v| v.is_object()) {
                identity(s, vendor, &settings, rule.settings);
            }
        }
        // Calls queued on the snippet's stub before the loader ran.
        let queued = Reflect::get(w, &rule.api.into()).and_then(|api| Reflect::get(&api, &"q".into()));
        if let Ok(queue) = queued.and_then(|q| q.dyn_into::<Array>()) {
            for call in queue.iter() {
                let verb = Reflect::get(&call, &0.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
                if rule.verbs.contains(&verb.as_str()) {
                    if let Ok(arg) = Reflect::get(&call, &1.into()) {
                        identity(s, vendor, &arg, &[rule.api, "('", &verb, "')"].concat());
                    }
                }
            }
        }
    }
}

/// Judges one settings object or call argument: an identified user without
/// the proof of server-side verification. Only field *presence* is read.
pub(crate) fn identity(s: &mut Shell, vendor: &'static Vendor, arg: &JsValue, source: &str) {
    let Some(rule) = &vendor.identity else { return };
    if !arg.is_object() || s.watch.identity_seen.contains(&vendor.id) {
        return;
    }
    let has = |k: &&str| Reflect::get(arg, &(*k).into()).is_ok_and(|v| v.is_truthy());
    if rule.ids.iter().any(has) {
        s.watch.identity_seen.push(vendor.id);
        if !rule.proofs.iter().any(has) {
            s.engine.identity_unverified(vendor, source, now());
        }
    }
}

/// Asks the loader to watch each vendor's API function for identity calls
/// (`Intercom('update', {...})`); the loader re-wraps it when the tag
/// replaces its stub, and reports calls through `Monitor::api_call`.
fn hook_apis(shell: &Rc<RefCell<Shell>>) {
    let Some(hook) = shell.try_borrow().ok().and_then(|s| s.watch.hook.clone()) else { return };
    for vendor in vendors() {
        if let Some(rule) = &vendor.identity {
            let verbs: Array = rule.verbs.iter().map(|v| JsValue::from_str(v)).collect();
            let _ = hook.call3(&JsValue::NULL, &vendor.id.into(), &rule.api.into(), &verbs);
        }
    }
}

/// Reads cookie expiry through the Cookie Store API (where the browser has
/// it) when the policy limits cookie lifetime.
fn read_expiry(shell: &Rc<RefCell<Shell>>) {
    let wants = shell.try_borrow().is_ok_and(|s| s.engine.policy().cookie_max_days.is_some());
    if !wants {
        return;
    }
    cookie_store_all(shell, expiry_seen);
}

fn expiry_seen(shell: &Rc<RefCell<Shell>>, list: Array) {
    let Ok(mut s) = shell.try_borrow_mut() else { return };
    let (now_epoch, at) = (js_sys::Date::now(), now());
    for c in list.iter() {
        let name = Reflect::get(&c, &"name".into()).ok().and_then(|v| v.as_string());
        let expires = Reflect::get(&c, &"expires".into()).ok().and_then(|v| v.as_f64());
        if let (Some(name), Some(expires)) = (name, expires) {
            s.engine.cookie_expiry(&name, expires, now_epoch, at);
        }
    }
}

/// `cookieStore.getAll()`, its list handed to `then` when it resolves;
/// nothing where the page has no Cookie Store API or it refuses.
fn cookie_store_all(shell: &Rc<RefCell<Shell>>, then_do: fn(&Rc<RefCell<Shell>>, Array)) {
    let Some(w) = window() else { return };
    let Some(store) = Reflect::get(&w, &"cookieStore".into()).ok().filter(|v| v.is_object()) else { return };
    let Ok(get_all) = Reflect::get(&store, &"getAll".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) else {
        return;
    };
    let Ok(promise) = get_all.call0(&store) else { return };
    let Ok(then) = Reflect::get(&promise, &"then".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) else {
        return;
    };
    let shell = shell.clone();
    let on_cookies: JsValue = Closure::once_into_js(move |list: JsValue| then_do(&shell, Array::from(&list)));
    // One-shot callbacks: freed after they run, unlike a forgotten Closure.
    // The rejection handler keeps a refused read out of the page's
    // `unhandledrejection` listeners.
    let on_refused: JsValue = Closure::once_into_js(|_: JsValue| {});
    let _ = then.call2(&promise, &on_cookies, &on_refused);
}

/// `a.b.c` on `window` is truthy.
fn truthy_path(w: &Window, path: &str) -> bool {
    let mut v: JsValue = w.clone().into();
    for key in path.split('.') {
        if !v.is_object() && !v.is_function() {
            return false;
        }
        match Reflect::get(&v, &key.into()) {
            Ok(next) => v = next,
            Err(_) => return false,
        }
    }
    !path.is_empty() && v.is_truthy()
}
