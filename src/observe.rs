//! Browser observation: Resource Timing (top document and same-origin
//! frames), cookies, globals and DOM markers, fed into the core engine.
//! How timelines and frames are observed: the crate docs, "Frames".

use crate::{transport, Shell};
use gloo_events::{EventListener, EventListenerOptions, EventListenerPhase};
use gloo_timers::callback::Interval;
use js_sys::{Array, Function, Object, Reflect, WeakMap};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use tagwatch_core::catalog::{self, vendors, Vendor};
use tagwatch_core::engine::{ms, Engine, Request};
use tagwatch_core::report::Evidence;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlDocument, HtmlIFrameElement, Performance, PerformanceResourceTiming, Window};

/// How often cookies and globals are re-read (and frames looked for, when
/// the document's frame count changed), in ms.
const TICK_MS: u32 = 1000;

/// Entries judged from one delivery or read at most. A browser hands over
/// far fewer at once (a full buffer is 250); the bound holds when a frame's
/// scripts answer with a forged list.
const MAX_BATCH: u32 = 4096;

#[wasm_bindgen]
extern "C" {
    /// `PerformanceObserver`, the top window's or a frame's own (which the
    /// frame's scripts may have replaced), with `catch` on every call;
    /// `observe` also throws on browsers that do not know `type`.
    #[wasm_bindgen(js_name = PerformanceObserver)]
    type CatchingObserver;
    #[wasm_bindgen(method, catch)]
    fn observe(this: &CatchingObserver, options: &Object) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = takeRecords)]
    fn take_records(this: &CatchingObserver) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn disconnect(this: &CatchingObserver) -> Result<(), JsValue>;

    /// `PerformanceObserverEntryList`, same care.
    type EntryList;
    #[wasm_bindgen(method, catch, js_name = getEntries)]
    fn get_entries(this: &EntryList) -> Result<JsValue, JsValue>;

    /// A Resource Timing entry (or the extension's look-alike object), read
    /// through getters that cannot throw into the monitor.
    type Entry;
    #[wasm_bindgen(method, getter, catch)]
    fn name(this: &Entry) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch, js_name = initiatorType)]
    fn initiator_type(this: &Entry) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch, js_name = startTime)]
    fn start_time(this: &Entry) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch, js_name = transferSize)]
    fn transfer_size(this: &Entry) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch, js_name = encodedBodySize)]
    fn encoded_body_size(this: &Entry) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, getter, catch)]
    fn duration(this: &Entry) -> Result<JsValue, JsValue>;
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

/// `o[key]` when it is an object (or function); `None` when absent or when
/// reading it threw (a cross-origin window, a throwing getter).
fn object_at(o: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(o, &JsValue::from_str(key)).ok().filter(|v| v.is_object() || v.is_function())
}

fn number_at(o: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(o, &JsValue::from_str(key)).ok().and_then(|v| v.as_f64())
}

/// What the shell has already looked at.
#[derive(Default)]
pub(crate) struct WatchState {
    /// The top document's timeline.
    top: Option<Timeline>,
    frames: Vec<Frame>,
    /// Frame element → the `performance` of its document being observed: an
    /// "already observed?" that costs one call per frame.
    observed: Option<WeakMap>,
    /// The document's live `iframe` collection, and its length at the last scan.
    iframes: Option<JsValue>,
    scanned: u32,
    /// The top document's `timeOrigin`: frame entries are moved onto its clock.
    top_origin: f64,
    last_cookie: Option<String>,
    loaders_seen: Vec<&'static str>,
    identity_seen: Vec<&'static str>,
    /// The loader's function that wraps a vendor API for identity calls.
    pub(crate) hook: Option<js_sys::Function>,
}

/// A buffered resource observer on one document's timeline, the callback
/// that judges what it delivers, and the frame label and clock offset its
/// entries get. Dropping it disconnects the observer.
struct Timeline {
    observer: CatchingObserver,
    offset: f64,
    label: String,
    _callback: Closure<dyn FnMut(EntryList)>,
}

impl Timeline {
    /// Observes the timeline of `window`'s document with that window's own
    /// `PerformanceObserver`; `buffered` also delivers what the document
    /// recorded before, with the real start times. `None` when the window
    /// has no working observer.
    fn observe(shell: &Weak<RefCell<Shell>>, window: &JsValue, offset: f64, label: String) -> Option<Timeline> {
        let ctor: Function = object_at(window, "PerformanceObserver").filter(|c| c.is_function())?.unchecked_into();
        let (weak, frame) = (shell.clone(), label.clone());
        let callback = Closure::<dyn FnMut(EntryList)>::new(move |list: EntryList| {
            let Some(shell) = weak.upgrade() else { return };
            let Ok(mut s) = shell.try_borrow_mut() else { return };
            if let Ok(entries) = list.get_entries() {
                judge_all(&mut s.engine, &entries, offset, &frame);
            }
        });
        let observer: CatchingObserver = Reflect::construct(&ctor, &Array::of1(callback.as_ref())).ok()?.unchecked_into();
        let options = Object::new();
        Reflect::set(&options, &"type".into(), &"resource".into()).ok()?;
        Reflect::set(&options, &"buffered".into(), &JsValue::TRUE).ok()?;
        observer.observe(&options).ok()?;
        Some(Timeline { observer, offset, label, _callback: callback })
    }

    /// Judges the entries the observer holds and has not delivered yet, at
    /// once: before a report is built, and before the observer is dropped
    /// (its frame removed, or its document replaced). An observer keeps them
    /// after its document is gone, when its callback will never run.
    fn drain(&self, engine: &mut Engine) {
        if let Ok(list) = self.observer.take_records() {
            judge_all(engine, &list, self.offset, &self.label);
        }
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        let _ = self.observer.disconnect();
    }
}

/// A same-origin frame and the timeline of its current document.
struct Frame {
    element: JsValue,
    timeline: Timeline,
}

/// Keeps the tick and the listeners alive; dropping it detaches them.
pub(crate) struct Observers {
    _tick: Interval,
    _listeners: Vec<EventListener>,
}

impl Observers {
    /// Starts observing; `None` when the page lacks the APIs needed.
    pub(crate) fn attach(shell: &Rc<RefCell<Shell>>) -> Option<Observers> {
        let w = window()?;
        let doc = w.document()?;
        let weak = Rc::downgrade(shell);
        let gpc = Reflect::get(&w.navigator(), &"globalPrivacyControl".into()).ok().and_then(|v| v.as_bool());
        if let Ok(mut s) = shell.try_borrow_mut() {
            s.engine.set_gpc(gpc == Some(true));
            s.watch.top_origin = performance().map(|p| p.time_origin()).unwrap_or(0.0);
            s.watch.iframes = object_at(&doc, "getElementsByTagName").and_then(|f| f.unchecked_into::<Function>().call1(&doc, &"iframe".into()).ok());
            s.watch.top = Timeline::observe(&weak, &w, 0.0, "top".into());
        }
        sweep(shell);

        let tick = {
            let shell = shell.clone();
            Interval::new(TICK_MS, move || sweep(&shell))
        };
        let mut listeners = Vec::new();
        let on_exit = |shell: &Rc<RefCell<Shell>>| {
            let shell = shell.clone();
            move |_: &web_sys::Event| {
                settle(&shell);
                transport::send_pending(&shell);
            }
        };
        listeners.push(EventListener::new(&w, "pagehide", on_exit(shell)));
        {
            let shell = shell.clone();
            let hidden = doc.clone();
            listeners.push(EventListener::new(&doc, "visibilitychange", move |_| {
                if hidden.visibility_state() == web_sys::VisibilityState::Hidden {
                    settle(&shell);
                    transport::send_pending(&shell);
                }
            }));
        }
        // A frame's `load` (it does not bubble, hence the capture): a new
        // frame, or its document replaced. Observed at once.
        let capture = EventListenerOptions { phase: EventListenerPhase::Capture, passive: true };
        listeners.push(EventListener::new_with_options(&doc, "load", capture, move |event| {
            let Some(frame) = Reflect::get(event, &"target".into()).ok().filter(|t| t.is_instance_of::<HtmlIFrameElement>()) else {
                return;
            };
            let Some(shell) = weak.upgrade() else { return };
            let Ok(mut s) = shell.try_borrow_mut() else { return };
            track(&weak, &mut s, &frame);
        }));
        // Cookie Store API: react to cookie writes at once; the tick is the
        // fallback where it is missing.
        if let Some(store) = Reflect::get(&w, &"cookieStore".into()).ok().filter(|v| v.is_object()) {
            let shell = shell.clone();
            let target: web_sys::EventTarget = store.unchecked_into();
            listeners.push(EventListener::new(&target, "change", move |_| read_cookies(&shell)));
        }
        Some(Observers { _tick: tick, _listeners: listeners })
    }
}

/// Judges each entry of `list`: an array, maybe from a frame's realm, read
/// without trusting it (it ends at the first item that is no object).
fn judge_all(engine: &mut Engine, list: &JsValue, offset: f64, frame: &str) {
    let n = number_at(list, "length").unwrap_or(0.0) as u32;
    for i in 0..n.min(MAX_BATCH) {
        let Some(entry) = Reflect::get_u32(list, i).ok().filter(|e| e.is_object()) else { return };
        judge_entry(engine, &entry, offset, frame);
    }
}

/// Judges one Resource Timing entry; `offset` moves its start time onto the
/// top document's clock, `frame` is the label its evidence carries. An entry
/// whose `name` cannot be read is skipped.
pub(crate) fn judge_entry(engine: &mut Engine, entry: &JsValue, offset: f64, frame: &str) {
    let e: &Entry = entry.unchecked_ref();
    let Some(url) = e.name().ok().and_then(|v| v.as_string()) else { return };
    let text = |v: Result<JsValue, JsValue>| v.ok().and_then(|v| v.as_string()).unwrap_or_default();
    let number = |v: Result<JsValue, JsValue>| v.ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let initiator = text(e.initiator_type());
    engine.request(Request {
        url: &url,
        start: number(e.start_time()) + offset,
        initiator: &initiator,
        frame,
        transfer: number(e.transfer_size()),
        encoded: number(e.encoded_body_size()),
        duration: number(e.duration()),
    });
}

/// One pass over what is polled: cookies, globals, DOM markers; frames only
/// when the document's frame count changed (a frame whose load went unseen).
pub(crate) fn sweep(shell: &Rc<RefCell<Shell>>) {
    read(shell, false);
}

/// Everything observed so far, read synchronously before a report is built
/// (pagehide, hidden, `flush`, `findings`): every frame looked at, every
/// observer's undelivered entries judged, then a sweep.
pub(crate) fn settle(shell: &Rc<RefCell<Shell>>) {
    read(shell, true);
}

fn read(shell: &Rc<RefCell<Shell>>, settle: bool) {
    let Some(w) = window() else { return };
    let Some(doc) = w.document() else { return };
    let Ok(mut s) = shell.try_borrow_mut() else { return };
    let now = now();
    let count = s.watch.iframes.as_ref().and_then(|c| number_at(c, "length")).unwrap_or(0.0) as u32;
    if settle || count != s.watch.scanned {
        s.watch.scanned = count;
        scan(&Rc::downgrade(shell), &mut s);
    }
    if settle {
        let Shell { engine, watch, .. } = &mut *s;
        for timeline in watch.top.iter().chain(watch.frames.iter().map(|f| &f.timeline)) {
            timeline.drain(engine);
        }
    }
    for vendor in vendors() {
        presence(&mut s, &w, &doc, vendor, now);
    }
    drop(s);
    read_cookies(shell);
    hook_apis(shell);
}

/// Looks at every `iframe` of the document: observes the same-origin ones
/// not observed yet, and forgets removed ones after judging what they left.
fn scan(weak: &Weak<RefCell<Shell>>, s: &mut Shell) {
    if let Some(iframes) = s.watch.iframes.clone() {
        for i in 0..s.watch.scanned {
            if let Ok(frame) = Reflect::get_u32(&iframes, i) {
                track(weak, s, &frame);
            }
        }
    }
    let Shell { engine, watch, .. } = s;
    watch.frames.retain(|f| {
        let connected = Reflect::get(&f.element, &"isConnected".into()).is_ok_and(|v| v.is_truthy());
        if !connected {
            f.timeline.drain(engine);
        }
        connected
    });
}

/// Observes the current document of the frame `element` if it is
/// same-origin and not observed yet: a new frame, or its document replaced
/// (the old document's undelivered entries are judged first).
fn track(weak: &Weak<RefCell<Shell>>, s: &mut Shell, element: &JsValue) {
    // Cross-origin and opaque (sandboxed) frames have no readable document:
    // their timelines are out of a page's reach (the extension sees them).
    if object_at(element, "contentDocument").is_none() {
        return;
    }
    let Some(window) = object_at(element, "contentWindow") else { return };
    let Some(performance) = object_at(&window, "performance") else { return };
    let top_origin = s.watch.top_origin;
    let observed = s.watch.observed.get_or_insert_with(WeakMap::new);
    let key: &Object = element.unchecked_ref();
    if observed.get(key) == performance {
        return;
    }
    // Marked before the attempt: a document whose observer cannot be made
    // (its scripts broke `PerformanceObserver`) is not tried again.
    observed.set(key, &performance);
    let offset = number_at(&performance, "timeOrigin").map_or(0.0, |t| t - top_origin);
    let id = Reflect::get(element, &"id".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let label = if id.is_empty() { "frame".into() } else { ["#", &id.chars().take(48).collect::<String>()].concat() };
    let Some(timeline) = Timeline::observe(weak, &window, offset, label) else { return };
    let frame = Frame { element: element.clone(), timeline };
    let Shell { engine, watch, .. } = s;
    match watch.frames.iter_mut().find(|f| f.element == *element) {
        Some(old) => {
            old.timeline.drain(engine);
            *old = frame;
        }
        None => watch.frames.push(frame),
    }
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
