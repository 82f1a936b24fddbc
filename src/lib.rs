//! tagwatch in-page monitor: the thin browser shell around `tagwatch-core`.
//!
//! The loader (`www/loader.js`) creates one [`Monitor`] per page view, feeds
//! it the site's `config` and `consent` commands, and calls [`Monitor::start`].
//! Reports leave through the host's `send(url, body)` function, given to the
//! constructor: the shell itself never calls `fetch` or `sendBeacon`.
//! From then on the shell watches, on the page's idle time:
//! - Resource Timing of the top document and of every same-origin frame
//!   (Intercom's Messenger runs inside the same-origin `#intercom-frame`,
//!   whose entries are in its own timeline), see "Frames" below;
//! - `document.cookie`, re-read when the Cookie Store API signals a change and
//!   on a one-second tick (a string compare when nothing changed);
//! - the vendors' globals, DOM markers and loader `<script id>`s.
//!
//! # Frames
//!
//! A timeline is observed, never read by index: `getEntriesByType` lists
//! entries by start time, so a request that finishes after a later one was
//! read lands before any read position, and a frame's buffer keeps only 250
//! entries. The top document has a buffered `PerformanceObserver`, and each
//! same-origin frame document its own, made from that frame's window (an
//! observer watches the timeline of the realm it was made in):
//! - found when the frame's document loads (a capturing `load` listener on
//!   the document; a replaced document is a new timeline, observed anew),
//!   by the tick only when the document's frame count changed, and by every
//!   final read;
//! - what an observer has not delivered yet is taken (`takeRecords`) when a
//!   report is built (pagehide, hidden, [`Monitor::flush`],
//!   [`Monitor::findings`]) and before the observer is dropped: its frame
//!   removed (seen by the next scan) or its document replaced. An observer
//!   keeps its undelivered entries after its document is gone, when its
//!   callback will never run (a frame that removes itself in the task its
//!   last request's entry is delivered in).
//!
//! Every entry is judged once: an observer delivers each entry once, to its
//! callback or to `takeRecords`. Cross-origin and sandboxed (opaque) frames
//! are out of a page's reach; frames inside frames and in shadow roots are
//! not looked for, nor is a frame whose scripts broke its
//! `PerformanceObserver`. Calls into a frame's realm go through `catch`
//! bindings or `Reflect` (its scripts are the ones being audited), and so do
//! reads of the lists and entries observers deliver.
//!
//! Everything is judged by the core; the shell only converts browser values.
//! No entry point panics or lets a JS exception escape: fallible browser calls
//! go through `catch` bindings and state is borrowed with `try_borrow_mut`.


mod observe;
mod transport;

use observe::Observers;
use std::cell::RefCell;
use std::rc::Rc;
use tagwatch_core::consent::{Categories, Category, Source};
use tagwatch_core::engine::Engine;
use tagwatch_core::policy::Policy;
use tagwatch_core::url;
use wasm_bindgen::prelude::*;

/// State shared by the monitor's callbacks.
pub(crate) struct Shell {
    pub(crate) engine: Engine,
    pub(crate) site: String,
    pub(crate) collector: String,
    pub(crate) page_view: String,
    pub(crate) page_url: String,
    pub(crate) user_agent: String,
    /// The host's `send(url, body)`: how report batches leave the page.
    pub(crate) send: js_sys::Function,
    /// Consent commands seen so far; the first one counts from page start.
    consent_calls: u32,
    pub(crate) watch: observe::WatchState,
}

/// One page view's monitor.
#[wasm_bindgen]
pub struct Monitor {
    shell: Rc<RefCell<Shell>>,
    observers: Option<Observers>,
}

#[wasm_bindgen]
impl Monitor {
    /// A monitor reporting to `collector` for site key `site`; report
    /// batches are handed to `send(url, body)` (the host's transport).
    #[wasm_bindgen(constructor)]
    pub fn new(site: &str, collector: &str, send: js_sys::Function) -> Monitor {
        let href = observe::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        let user_agent = observe::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
        let mut engine = Engine::new(Policy::default(), &href);
        if let Some(parts) = url::parse(collector) {
            engine.ignore_host(&parts.host);
        }
        let shell = Shell {
            engine,
            site: site.into(),
            collector: collector.into(),
            page_view: page_view_id(),
            page_url: url::page_url(&href),
            user_agent,
            send,
            consent_calls: 0,
            watch: observe::WatchState::default(),
        };
        Monitor { shell: Rc::new(RefCell::new(shell)), observers: None }
    }

    /// Policy rules in the compact text form the loader builds from the
    /// `policy` config (see `Policy::apply_rule`), one rule a line.
    pub fn policy(&self, rules: &str) {
        self.with(|s| rules.lines().for_each(|line| s.engine.policy_mut().apply_rule(line)));
    }

    /// A `consent` command. Each category is 1 (granted), 0 (refused) or
    /// anything else (not mentioned: keeps its value). `queued` marks a call
    /// made before the monitor loaded: the first one is the state restored
    /// at page start and counts from time 0.
    pub fn consent(&self, necessary: i8, functional: i8, analytics: i8, marketing: i8, queued: bool) {
        let now = observe::now();
        self.with(|s| {
            let at = if queued && s.consent_calls == 0 { 0 } else { now };
            s.consent_calls = s.consent_calls.saturating_add(1);
            let mut update = Categories::default();
            for (c, v) in Category::ALL.into_iter().zip([necessary, functional, analytics, marketing]) {
                match v {
                    1 => update.set(c, Some(true)),
                    0 => update.set(c, Some(false)),
                    _ => {}
                }
            }
            s.engine.consent(update, Source::Api, at);
        });
    }

    /// A CMP's live state, read by the page's consent adapters
    /// (`www/consent.js`): `choices` are `name:1,name:0` pairs in the CMP's
    /// own names; `at` when it took effect ([`when`]: 0 when the CMP had
    /// the state from storage before anything happened on this page). The
    /// CMP's cookies are re-read at once too: they are the re-check, and
    /// the source for CMPs whose events carry no state (`decided` false then).
    pub fn cmp(&self, cmp: &str, choices: &str, decided: bool, at: f64) {
        let at = when(at);
        self.with(|s| s.engine.cmp_state(cmp, choices, decided, false, at));
        observe::read_cookies(&self.shell);
    }

    /// An IAB TCF `addEventListener` callback: `gdpr_applies` 1, 0 or -1
    /// (undefined), the `eventStatus`, purpose consents 1.. as `0`/`1`, and
    /// the GVL ids with vendor consent, comma-separated; `at` as for
    /// [`Monitor::cmp`] (the time of a `useractioncomplete`).
    pub fn tcf(&self, gdpr_applies: i8, event_status: &str, purposes: &str, vendors: &str, at: f64) {
        let now = when(at);
        let applies = match gdpr_applies {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        };
        self.with(|s| s.engine.tcf(applies, event_status, purposes, vendors, now));
    }

    /// An IAB GPP event with `signalStatus` `ready`: the GPP string and the
    /// `applicableSections`; `at` as for [`Monitor::cmp`].
    pub fn gpp(&self, gpp_string: &str, applicable: &[i32], at: f64) {
        let at = when(at);
        self.with(|s| s.engine.gpp(gpp_string, applicable, false, at));
    }

    /// A Consent Mode command seen in `dataLayer`: `params` one
    /// `key<TAB>value` a line (lists comma-joined); `preloaded` when it was
    /// pushed before the monitor loaded (counts from page start).
    pub fn consent_mode(&self, command: &str, params: &str, preloaded: bool) {
        let now = if preloaded { 0 } else { observe::now() };
        let pairs: Vec<(&str, &str)> = params.lines().filter_map(|l| l.split_once('\t')).collect();
        self.with(|s| s.engine.consent_mode(command, &pairs, now));
    }

    /// The loader's API hook: `hook(vendor, api, verbs)` wraps `window[api]`
    /// and reports calls with those verbs through [`Monitor::api_call`].
    pub fn set_hook(&self, hook: js_sys::Function) {
        self.with(|s| s.watch.hook = Some(hook));
    }

    /// A call to a vendor API the loader watches (`Intercom('update', arg)`).
    /// Only the presence of identity fields in `arg` is read.
    pub fn api_call(&self, vendor: &str, verb: &str, arg: JsValue) {
        let Some(v) = tagwatch_core::catalog::vendor(vendor) else { return };
        let Some(rule) = &v.identity else { return };
        let source = [rule.api, "('", verb, "')"].concat();
        self.with(|s| observe::identity(s, v, &arg, &source));
    }

    /// Starts watching. Safe to call once; later calls do nothing.
    pub fn start(&mut self) {
        if self.observers.is_none() {
            self.observers = Observers::attach(&self.shell);
        }
    }

    /// Sends what is pending now (the `flush` command).
    pub fn flush(&self) {
        observe::settle(&self.shell);
        transport::send_pending(&self.shell);
    }

    /// Extension: a request the page cannot see (a cross-origin frame's, a
    /// WebSocket's) from `chrome.webRequest`, shaped as a Resource Timing
    /// entry (`name`, `initiatorType`, `startTime`, sizes); `frame` is the
    /// label its evidence carries.
    pub fn request(&self, entry: JsValue, frame: &str) {
        self.with(|s| observe::judge_entry(&mut s.engine, &entry, 0.0, frame));
    }

    /// The consent in force now, for the extension's popup: `1`, `0` or
    /// `-` for necessary, functional, analytics and marketing, then the
    /// source (`1001tcf`).
    pub fn consent_now(&self) -> String {
        let Ok(s) = self.shell.try_borrow() else { return String::new() };
        let state = s.engine.consent_at(observe::now());
        let c = |c| match state.categories.get(c) {
            Some(true) => "1",
            Some(false) => "0",
            None => "-",
        };
        [c(Category::Necessary), c(Category::Functional), c(Category::Analytics), c(Category::Marketing), state.source.as_str()].concat()
    }

    /// The page view's findings so far, as a report batch (JSON), for the
    /// extension and for debugging; sends nothing.
    pub fn findings(&self) -> String {
        observe::settle(&self.shell);
        let Ok(s) = self.shell.try_borrow() else { return "[]".into() };
        let view = transport::view(&s);
        tagwatch_core::report::batch(&view, s.engine.findings().iter(), Some(s.engine.inventory()), observe::now())
    }
}

impl Monitor {
    fn with(&self, f: impl FnOnce(&mut Shell)) {
        if let Ok(mut s) = self.shell.try_borrow_mut() {
            f(&mut s);
        }
    }
}

/// When a CMP state the page adapters report took effect, in ms after
/// navigation start: `at` when they know it (0: restored from storage; the
/// visitor's click or key press the choice came from, whose task may
/// already have loaded a tag before the CMP told the adapters), never
/// later than now; negative: now.
fn when(at: f64) -> u64 {
    let now = observe::now();
    if at < 0.0 {
        now
    } else {
        now.min(tagwatch_core::engine::ms(at))
    }
}

/// 16 hex chars, random per page view.
fn page_view_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..16)
        .map(|_| {
            let n = (js_sys::Math::random() * 16.0) as usize;
            HEX.get(n).copied().map(char::from).unwrap_or('0')
        })
        .collect()
}

// dlmalloc is about 8 KB of the module; the page view's heap is small and
// single-threaded, so a free-list allocator is enough.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
#[allow(unsafe_code)] // the crate's documented single-threaded constructor; wasm32 here has no threads
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
