//! tagwatch in-page monitor: the thin shell between a host and
//! `tagwatch-core`.
//!
//! The brain (`www/brain.js` in the snippet, `extension/content.js` in the
//! extension) creates one [`Monitor`] per page view with its host (the
//! browser behind one small interface, see [`host`]), replays what the
//! loader kept from before (entries, cookie snapshots, calls, gestures,
//! commands: each with its real time), calls [`Monitor::start`], and from
//! then on pushes what it observes as it happens. Everything is judged by
//! the core; the shell converts values, dates what happened before it
//! started ([`prestart`]), reads what is a state on sweeps that back off
//! ([`sweep`]) and sends report batches through the host.
//!
//! The boundary is typed: every method takes numbers, strings, string
//! lists and typed arrays in the terms of their source (a CMP's own names,
//! TCF purpose ids), and the meanings are decided in the core; lists cross
//! as text, one item per line; the policy crosses as the lines the brain
//! writes from the contract's JSON object (`docs/policy.md`, read by the
//! same `Policy::read` as the JSON); what goes out is the report JSON
//! (`docs/report-format.md`). Times are ms after navigation
//! start, from the host's clock; `-1` marks "from before the monitor
//! started, time unknown" (a call queued before the loader ran, a state
//! read at start).
//!
//! This is the one encoding, written once (here and in each method's
//! docs), that every shell uses. `serde-wasm-bindgen` was measured for it:
//! taking the four consent signals as one serde-typed value added 21,228
//! bytes gzip to the optimised wasm (57,020 -> 78,248) and 261 to the glue,
//! two thirds of the 30 KB that every page view may download in all; plain
//! typed parameters cost only wasm-bindgen's own conversions.
//!
//! No entry point panics or lets a JS exception escape: host calls go
//! through `catch` bindings, reads of page objects through `Reflect`, and
//! state is borrowed with `try_borrow_mut` (a page getter the host runs may
//! call back in). The shell is `no_std`: a panic (none is reachable) traps.

#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
// Strings are pushed as `&str`, one character too: the shell's own
// `String::push` was a second copy of it in the module beside the core's
// (docs/benchmarks.md, fifth round).
#![allow(clippy::single_char_add_str)]

extern crate alloc;
// Without `trap` (tests, lints) std's panic handler; the shipped build
// (`trap`) links no std at all.
#[cfg(not(feature = "trap"))]
extern crate std;

mod host;
#[cfg(not(feature = "parsers"))]
mod pieces;
mod prestart;
mod sweep;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::mem::ManuallyDrop;
use host::Host;
use prestart::Prestart;
use sweep::Sweep;
use tagwatch_core::consent::{Basis, Categories, Category, Source};
use tagwatch_core::engine::{ms, Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::{self, PageView};
use tagwatch_core::{catalog, url};
use wasm_bindgen::prelude::*;

/// "From before the monitor started, time unknown" (crate docs).
const BEFORE: f64 = -1.0;

/// One page view's state.
struct Shell {
    /// The browser ([`Monitor::new`]'s host; none only in the instance's
    /// monitor before [`exports::monitor`] made it).
    host: Option<Host>,
    engine: Engine,
    site: String,
    collector: String,
    page_view: String,
    page_url: String,
    user_agent: String,
    /// The site's release (`report::release`), `""` for none.
    release: String,
    gpc: bool,
    /// When the loader started: calls queued before it count from here.
    loader: u64,
    /// Consent commands seen so far; the first queued one counts from page start.
    consent_calls: u32,
    /// The evidence, kept until the start, that dates what the start finds.
    prestart: Prestart,
    started: bool,
    sweep: Sweep,
    /// The last cookie snapshot, `name=value; …` as given.
    last_cookie: Option<String>,
    /// Cookie names seen ([`CookieNames::read`]).
    #[cfg(not(feature = "parsers"))]
    cookie_names: CookieNames,
    #[cfg(not(feature = "parsers"))]
    pieces: pieces::Pieces,
}

/// One page view's monitor. It lives as long as the page view, and its
/// memory goes with the page: the shell is never dropped, so the module
/// has no drop code for it (`ManuallyDrop`: 267 bytes gzip of the wasm).
/// The page reaches it through the module's functions ([`exports`]), not
/// as a wasm-bindgen class: one monitor per instance of the module.
pub struct Monitor {
    shell: ManuallyDrop<RefCell<Shell>>,
}

impl Monitor {
    /// A monitor of the page at `href` reporting to `collector` for site
    /// key `site` (an empty collector: nothing leaves the browser) through
    /// `host`; `loader` is when the loader started.
    pub fn new(
        host: Host,
        site: &str,
        collector: &str,
        href: &str,
        user_agent: &str,
        loader: f64,
    ) -> Monitor {
        let m = Monitor::EMPTY;
        m.reset(host, site, collector, href, user_agent, loader);
        m
    }

    /// A monitor with no page view yet, as a constant: the instance's
    /// ([`exports`]) is one in the module's data, made a page view's in
    /// place by [`Monitor::reset`].
    #[allow(clippy::declare_interior_mutable_const)] // a new RefCell each use: what it is for
    const EMPTY: Monitor = Monitor {
        shell: ManuallyDrop::new(RefCell::new(Shell::EMPTY)),
    };

    /// This monitor made [`Monitor::new`]'s, in place: the page view it had
    /// (none, but in tests and benchmarks that make several) is left, not
    /// dropped (the module has no drop code for a shell).
    fn reset(
        &self,
        host: Host,
        site: &str,
        collector: &str,
        href: &str,
        user_agent: &str,
        loader: f64,
    ) {
        // Not done where the monitor is busy (a call from inside a call:
        // then it stays as it was); the page view before is left, not
        // dropped. The fields set on the empty shell in place, not a shell
        // made on the stack and copied in (78 bytes of the wasm's gzip,
        // docs/benchmarks.md, fourteenth round).
        self.with(|s| {
            core::mem::forget(core::mem::replace(s, Shell::EMPTY));
            s.host = Some(host);
            s.site = site.into();
            s.collector = collector.into();
            s.page_view = page_view_id();
            s.page_url = url::page_url(href);
            s.user_agent = tagwatch_core::prefix(user_agent, 512).into();
            s.loader = ms(loader);
            s.engine.set_page(href);
            if let Some(parts) = url::parse(collector) {
                s.engine.ignore_host(&parts.host);
            }
        });
    }

    /// The site's policy (the contract's `config.policy`,
    /// `docs/policy.md`), replacing the one in force: the line form the
    /// loader writes from the page's object (`Policy::from_lines`, no JSON
    /// scanner in the page); in the extension's build (feature `parsers`)
    /// also the JSON its options page stores.
    pub fn policy(&self, text: &str) {
        #[cfg(feature = "parsers")]
        let policy = if text.trim_start().starts_with(['{']) {
            Policy::from_json(text)
        } else {
            Policy::from_lines(text)
        };
        #[cfg(not(feature = "parsers"))]
        let policy = Policy::from_lines(text);
        self.with(|s| {
            *s.engine.policy_mut() = policy;
            #[cfg(not(feature = "parsers"))]
            s.pieces.policy(&s.engine);
        });
    }

    /// The site's release (the embed config's `release`), carried by every
    /// report sent from now on: cleaned as `report::release` says (a text
    /// it refuses: none).
    pub fn release(&self, text: &str) {
        self.with(|s| s.release = report::release(text).into());
    }

    /// Global Privacy Control as the browser reports it.
    pub fn gpc(&self, on: bool) {
        self.with(|s| {
            s.gpc = on;
            s.engine.set_gpc(on);
        });
    }

    /// Resource Timing entries (or the extension's look-alikes of requests
    /// the page cannot see), one observer delivery in one call: their URLs
    /// and `initiatorType`s one per line (a serialized URL holds no line
    /// break; the host drops an entry whose fields do), and four numbers
    /// each: `startTime` on the top document's clock, transfer and encoded
    /// body sizes, duration. `frame` is the label their evidence carries
    /// (`top`, `#id`, `cross-origin:host`). One crossing per delivery, not
    /// per entry (each string passed costs a copy and an allocation call);
    /// entries past the shortest of the three lists are ignored.
    pub fn entries(&self, urls: &str, initiators: &str, numbers: &[f64], frame: &str) {
        if numbers.is_empty() {
            return;
        }
        self.with(|s| {
            let mut lines = Lines::new(urls, initiators);
            for n in numbers.chunks_exact(4) {
                let Some((url, initiator)) = lines.next() else {
                    break;
                };
                if let [start, transfer, encoded, duration] = *n {
                    s.request(Request {
                        url,
                        start,
                        initiator,
                        frame,
                        transfer,
                        encoded,
                        duration,
                    });
                }
            }
        });
    }

    /// The page's cookies at `at`, as a `Cookie` header (`name=value; …`).
    /// Values are read only where the core needs them (the CMPs' consent
    /// cookies) and never leave the page.
    pub fn cookies(&self, header: &str, at: f64) {
        self.with(|s| {
            let at = ms(at);
            if s.last_cookie.as_deref() == Some(header) {
                s.engine.tick(at);
                return;
            }
            // Without the consent parsers the snapshot is read in one pass
            // ([`CookieNames::read`]), and the engine gets only its vendor
            // cookies' names (the page's other cookies are not classified
            // again on every change).
            #[cfg(feature = "parsers")]
            let consent = if s.started {
                Vec::new()
            } else {
                prestart::consent_cookies(header)
            };
            #[cfg(not(feature = "parsers"))]
            let (vendor, consent, has_cmp) = s.cookie_names.read(header);
            if !s.started {
                s.prestart.cookies(consent, at);
            }
            #[cfg(not(feature = "parsers"))]
            s.pieces.cookies(&mut s.engine, header, has_cmp, at);
            s.last_cookie = Some(header.into());
            #[cfg(feature = "parsers")]
            s.engine.cookies(header, at);
            #[cfg(not(feature = "parsers"))]
            s.engine.cookie_names(vendor, at);
            s.sweep.activity = true;
        });
    }

    /// Whether the policy limits cookie lifetimes: the host then reports
    /// expiry dates ([`Monitor::expiry`]) where it can read them.
    pub fn wants_expiry(&self) -> bool {
        self.shell
            .try_borrow()
            .is_ok_and(|s| s.engine.policy().cookie_max_days.is_some())
    }

    /// A cookie's expiry, `expires` and `now_epoch` in ms since the epoch.
    pub fn expiry(&self, name: &str, expires: f64, now_epoch: f64, at: f64) {
        self.with(|s| s.engine.cookie_expiry(name, expires, now_epoch, ms(at)));
    }

    /// A `consent` command: each category 1 (granted), 0 (refused) or
    /// anything else (not mentioned: keeps its value). `at` -1: queued
    /// before the loader ran; the first such call is the state the page
    /// restored and counts from page start, the others from the loader's
    /// start.
    pub fn consent(&self, necessary: i8, functional: i8, analytics: i8, marketing: i8, at: f64) {
        self.with(|s| {
            let at = if at > BEFORE {
                ms(at)
            } else if s.consent_calls == 0 {
                0
            } else {
                s.loader
            };
            s.consent_calls = s.consent_calls.saturating_add(1);
            let mut update = Categories::default();
            let mut set = |c, v| match v {
                1 => update.set(c, Some(true)),
                0 => update.set(c, Some(false)),
                _ => {}
            };
            set(Category::Necessary, necessary);
            set(Category::Functional, functional);
            set(Category::Analytics, analytics);
            set(Category::Marketing, marketing);
            s.engine.consent(update, Source::Api, at);
            s.sweep.activity = true;
        });
    }

    /// A CMP's live state read by the page's consent adapters: its own
    /// names (`C0002`, `statistics`, `OPT_OUT`) one per line (`lines` in
    /// www/consent.js: lists cross as text, not `Vec<String>`, whose
    /// conversion, an externref per item read back one by one, weighed ≈
    /// 0.8 KB gzip of the module and its glue; a line break inside a name
    /// came as U+FFFD), and for each 1 (granted) or
    /// 0 (refused) (every number list crosses as a `Float64Array`, each read as an
    /// `Int32Array` holds it: [`int32`]), the last
    /// `services` of them service names (a CMP's per-service choices,
    /// `Google Analytics`, `hotjar`), whether the
    /// visitor decided (`decided`: 0 no, 1 yes, 2 the CMP applied consent
    /// without a choice, implied), and when it took effect:
    /// -1 for the state found at the start ([`prestart`] dates it), else
    /// the time of the event or of the click it came in.
    pub fn cmp(
        &self,
        cmp: &str,
        names: &str,
        granted: &[f64],
        decided: u32,
        at: f64,
        services: u32,
    ) {
        // Pushed by a loop, not `zip` and `collect` (generic instances the
        // module would carry for this call alone).
        let mut choices: Vec<(&str, bool)> = Vec::new();
        let mut lines = tagwatch_core::fields(names, b'\n');
        for g in granted {
            let Some(name) = lines.next() else {
                break;
            };
            choices.push((name, int32(*g) == 1));
        }
        let split = choices
            .len()
            .saturating_sub(usize::try_from(services).unwrap_or(usize::MAX));
        let (choices, services) = choices.split_at_checked(split).unwrap_or((&choices, &[]));
        self.with(|s| {
            let (restored, at) = s.dated(cmp, at);
            let basis = match decided {
                0 => Basis::None,
                2 => Basis::Implied,
                _ => Basis::Explicit,
            };
            s.engine
                .cmp_state(cmp, choices, services, basis, restored, at);
            s.sweep.activity = true;
        });
    }

    /// An IAB TCF `addEventListener` callback: `gdpr_applies` 1, 0 or -1
    /// (undefined), the `eventStatus`, the ids of the purposes with
    /// consent and the GVL ids of the vendors with consent; `at` as for
    /// [`Monitor::cmp`].
    pub fn tcf(
        &self,
        gdpr_applies: i8,
        event_status: &str,
        purposes: &[f64],
        vendors: &[f64],
        at: f64,
    ) {
        let applies = match gdpr_applies {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        };
        let ids = |list: &[f64]| -> Vec<u16> {
            let mut out = Vec::new();
            for id in list {
                if let Ok(id) = u16::try_from(int32(*id)) {
                    out.push(id);
                }
            }
            out
        };
        let (purposes, vendors) = (ids(purposes), ids(vendors));
        self.with(|s| {
            let (_, at) = s.dated("tcf", at);
            s.engine.tcf(applies, event_status, &purposes, &vendors, at);
            s.sweep.activity = true;
        });
    }

    /// An IAB GPP event with `signalStatus` `ready`: the GPP string and the
    /// `applicableSections`; `at` as for [`Monitor::cmp`].
    pub fn gpp(&self, gpp: &str, sections: &[f64], at: f64) {
        self.with(|s| {
            let (restored, at) = s.dated("gpp", at);
            #[cfg(feature = "parsers")]
            {
                let mut ids = Vec::new();
                for id in sections {
                    ids.push(int32(*id));
                }
                s.engine.gpp(gpp, &ids, restored, at);
            }
            #[cfg(not(feature = "parsers"))]
            s.pieces.gpp(&mut s.engine, gpp, sections, restored, at);
            s.sweep.activity = true;
        });
    }

    /// A Consent Mode command seen in `dataLayer` (`gtag('consent',
    /// command, {key: value})`), keys and values one per line as for
    /// [`Monitor::cmp`] (no keys: `""`, one empty key, which names
    /// nothing); `at` -1 when it was
    /// there before the monitor started (counts from page start).
    pub fn consent_mode(&self, command: &str, keys: &str, values: &str, at: f64) {
        let mut params: Vec<(&str, &str)> = Vec::new();
        for pair in Lines::new(keys, values) {
            params.push(pair);
        }
        self.with(|s| {
            s.engine
                .consent_mode(command, &params, if at > BEFORE { ms(at) } else { 0 });
            s.sweep.activity = true;
        });
    }

    /// A call to a vendor API the host watches (`Intercom('update', arg)`)
    /// at `at`. Only the presence of the identity fields in `arg` is read.
    pub fn call(&self, vendor: &str, verb: &str, arg: &JsValue, at: f64) {
        let Some(v) = catalog::vendor(vendor) else {
            return;
        };
        let Some(rule) = v.identity() else { return };
        if !rule.verbs.contains(verb) {
            return;
        }
        let source = cat(&[rule.api, "('", verb, "')"]);
        self.with(|s| {
            let Shell { engine, sweep, .. } = s;
            sweep.identity(engine, v, arg, &source, ms(at));
        });
    }

    /// The on-demand pieces this page view needs and has not asked for
    /// yet, as bits ([`pieces`]: 1 the CMP cookie reader, 2 the GPP US
    /// decoder); each is asked for once. The brain asks after each call
    /// that may need one and fetches what it is told. Always 0 in the
    /// extension's build (feature `parsers`: no pieces).
    pub fn wanted(&self) -> u32 {
        #[cfg(not(feature = "parsers"))]
        if let Ok(mut s) = self.shell.try_borrow_mut() {
            return s.pieces.take_wanted();
        }
        0
    }

    /// Hands over an on-demand piece (`kind` one bit of [`Monitor::wanted`]):
    /// what waited for it is judged now.
    #[cfg(not(feature = "parsers"))]
    pub fn piece(&self, kind: u32, piece: pieces::Piece) {
        self.with(|s| {
            let Shell { engine, pieces, .. } = s;
            pieces.attach(engine, kind, piece);
            s.sweep.activity = true;
        });
    }

    /// A trusted click or key press before the start, at `at`.
    pub fn gesture(&self, at: f64) {
        self.with(|s| {
            if !s.started {
                s.prestart.gesture(ms(at));
            }
        });
    }

    /// What happened before is replayed: from now on, a state read at the
    /// start ([`Monitor::cmp`] with `at` -1) is dated from what was kept.
    /// Takes a first sweep.
    pub fn start(&self, now: f64) -> u32 {
        self.with(|s| s.started = true);
        self.tick(now)
    }

    /// A sweep (see [`sweep`]) and the engine's clock advanced; returns the
    /// delay until the next, in ms.
    pub fn tick(&self, now: f64) -> u32 {
        let Ok(mut s) = self.shell.try_borrow_mut() else {
            return sweep::SWEEP_MIN_MS;
        };
        let now = ms(now);
        let Shell {
            engine,
            sweep,
            host: Some(host),
            ..
        } = &mut *s
        else {
            return sweep::SWEEP_MIN_MS;
        };
        let delay = sweep.run(engine, host, now);
        engine.tick(now);
        delay
    }

    /// Sends what is pending (the `flush` command, the page view's end):
    /// one report batch through the host, if anything is new. Returns
    /// false when the batch is held instead: an on-demand piece this page
    /// view needs has not arrived, and findings judged without the consent
    /// it reads could accuse tags the visitor allowed (the brain then
    /// reports the page view `unmonitored`).
    pub fn flush(&self, now: f64) -> bool {
        self.tick(now);
        #[cfg(not(feature = "parsers"))]
        if self.shell.try_borrow().is_ok_and(|s| s.pieces.waiting()) {
            return false;
        }
        self.with(|s| {
            // No collector (the extension without one): nothing leaves the browser.
            if s.collector.is_empty() {
                return;
            }
            let Shell {
                engine,
                site,
                page_view,
                page_url,
                user_agent,
                release,
                collector,
                host,
                ..
            } = s;
            let view = PageView {
                site,
                id: page_view,
                url: page_url,
                user_agent,
                release,
            };
            if let (Some(body), Some(host)) = (engine.take_batch(&view, ms(now)), host) {
                host.post(collector, &body);
            }
        });
        true
    }

    /// The page view's findings and inventory so far, as a report batch
    /// (JSON), for the extension and for debugging; sends nothing. A JS
    /// string made here (`JsValue::from_str`), not a returned `String`:
    /// that return path shrank the buffer into a boxed slice, code the
    /// module carried for this call alone (docs/benchmarks.md, eleventh
    /// round, second pass).
    pub fn findings(&self, now: f64) -> JsValue {
        self.tick(now);
        let Ok(s) = self.shell.try_borrow() else {
            return JsValue::from_str("[]");
        };
        let view = PageView {
            site: &s.site,
            id: &s.page_view,
            url: &s.page_url,
            user_agent: &s.user_agent,
            release: &s.release,
        };
        JsValue::from_str(&report::batch(
            &view,
            s.engine.findings().iter(),
            Some(s.engine.inventory()),
            ms(now),
        ))
    }

    /// The consent in force at `now`, as a finding's `consent` object
    /// (JSON), for the extension's popup: only in its build (feature
    /// `parsers`); the snippet's brain never asks (238 bytes gzip of the
    /// page's wasm, docs/benchmarks.md).
    #[cfg(feature = "parsers")]
    pub fn consent_now(&self, now: f64) -> String {
        let Ok(s) = self.shell.try_borrow() else {
            return String::new();
        };
        report::consent_json(&report::ConsentSnapshot::new(
            s.engine.consent_at(ms(now)),
            s.gpc,
        ))
    }
}

/// The module's functions: the page's boundary, each the [`Monitor`]
/// method of its name on the instance's one monitor ([`exports::monitor`]
/// makes it the page view's; before that it has no host: it sends and
/// sweeps nothing).
///
/// Functions, not a wasm-bindgen class: a class's every method went
/// through wasm-bindgen's handle (the object's `Rc` counted up and down,
/// its own `RefCell` borrowed, a borrow error thrown into the page's
/// call), a closure and a shim each, beside the monitor's own `RefCell`:
/// 1,180 bytes gzip of the wasm (docs/benchmarks.md, twelfth round). A
/// call made while another runs (a page getter the host runs calling in)
/// is still ignored by that `RefCell`, as before; it no longer meets
/// wasm-bindgen's check first.
pub mod exports {
    use super::*;

    /// The instance's monitor, in the module's data: [`monitor`] makes
    /// it the page view's in place (again: a new page view, as tests and
    /// benchmarks make several).
    struct One(Monitor);
    // A wasm32 module here has one thread (as the allocator below assumes),
    // so the monitor is never shared between threads; natively (the tests)
    // nothing calls these functions.
    #[allow(unsafe_code)]
    unsafe impl Sync for One {}
    static MONITOR: One = One(Monitor::EMPTY);

    fn m() -> &'static Monitor {
        &MONITOR.0
    }

    /// [`Monitor::new`], as the instance's monitor.
    #[wasm_bindgen]
    pub fn monitor(
        host: Host,
        site: &str,
        collector: &str,
        href: &str,
        user_agent: &str,
        loader: f64,
    ) {
        m().reset(host, site, collector, href, user_agent, loader);
    }

    /// [`Monitor::policy`].
    #[wasm_bindgen]
    pub fn policy(text: &str) {
        m().policy(text);
    }

    /// [`Monitor::release`].
    #[wasm_bindgen]
    pub fn release(text: &str) {
        m().release(text);
    }

    /// [`Monitor::gpc`].
    #[wasm_bindgen]
    pub fn gpc(on: bool) {
        m().gpc(on);
    }

    /// [`Monitor::entries`].
    #[wasm_bindgen]
    pub fn entries(urls: &str, initiators: &str, numbers: &[f64], frame: &str) {
        m().entries(urls, initiators, numbers, frame);
    }

    /// [`Monitor::cookies`].
    #[wasm_bindgen]
    pub fn cookies(header: &str, at: f64) {
        m().cookies(header, at);
    }

    /// [`Monitor::wants_expiry`].
    #[wasm_bindgen]
    pub fn wants_expiry() -> bool {
        m().wants_expiry()
    }

    /// [`Monitor::expiry`].
    #[wasm_bindgen]
    pub fn expiry(name: &str, expires: f64, now_epoch: f64, at: f64) {
        m().expiry(name, expires, now_epoch, at);
    }

    /// [`Monitor::consent`].
    #[wasm_bindgen]
    pub fn consent(necessary: i8, functional: i8, analytics: i8, marketing: i8, at: f64) {
        m().consent(necessary, functional, analytics, marketing, at);
    }

    /// [`Monitor::cmp`].
    #[wasm_bindgen]
    pub fn cmp(cmp: &str, names: &str, granted: &[f64], decided: u32, at: f64, services: u32) {
        m().cmp(cmp, names, granted, decided, at, services);
    }

    /// [`Monitor::tcf`].
    #[wasm_bindgen]
    pub fn tcf(gdpr_applies: i8, event_status: &str, purposes: &[f64], vendors: &[f64], at: f64) {
        m().tcf(gdpr_applies, event_status, purposes, vendors, at);
    }

    /// [`Monitor::gpp`].
    #[wasm_bindgen]
    pub fn gpp(gpp: &str, sections: &[f64], at: f64) {
        m().gpp(gpp, sections, at);
    }

    /// [`Monitor::consent_mode`].
    #[wasm_bindgen]
    pub fn consent_mode(command: &str, keys: &str, values: &str, at: f64) {
        m().consent_mode(command, keys, values, at);
    }

    /// [`Monitor::call`]. Not named `call`: the glue's functions are
    /// properties of a function object (`wasm_bindgen`), and where a page
    /// froze `Function.prototype` its `call` cannot be shadowed by
    /// assignment (the glue threw as it was made: `hostile.test.mjs`,
    /// built-ins frozen).
    #[wasm_bindgen]
    pub fn api_call(vendor: &str, verb: &str, arg: &JsValue, at: f64) {
        m().call(vendor, verb, arg, at);
    }

    /// [`Monitor::wanted`].
    #[wasm_bindgen]
    pub fn wanted() -> u32 {
        m().wanted()
    }

    /// [`Monitor::piece`].
    #[cfg(not(feature = "parsers"))]
    #[wasm_bindgen]
    pub fn piece(kind: u32, piece: pieces::Piece) {
        m().piece(kind, piece);
    }

    /// [`Monitor::gesture`].
    #[wasm_bindgen]
    pub fn gesture(at: f64) {
        m().gesture(at);
    }

    /// [`Monitor::start`].
    #[wasm_bindgen]
    pub fn start(now: f64) -> u32 {
        m().start(now)
    }

    /// [`Monitor::tick`].
    #[wasm_bindgen]
    pub fn tick(now: f64) -> u32 {
        m().tick(now)
    }

    /// [`Monitor::flush`].
    #[wasm_bindgen]
    pub fn flush(now: f64) -> bool {
        m().flush(now)
    }

    /// [`Monitor::findings`].
    #[wasm_bindgen]
    pub fn findings(now: f64) -> JsValue {
        m().findings(now)
    }

    /// [`Monitor::consent_now`].
    #[cfg(feature = "parsers")]
    #[wasm_bindgen]
    pub fn consent_now(now: f64) -> String {
        m().consent_now(now)
    }
}

impl Monitor {
    fn with(&self, f: impl FnOnce(&mut Shell)) {
        if let Ok(mut s) = self.shell.try_borrow_mut() {
            f(&mut s);
        }
    }
}

/// Two lists of lines read side by side, as far as the shorter goes. Not
/// `zip` of two splits, and its pairs pushed, not `collect`ed: those
/// instances cost the module 97 bytes of gzip (docs/benchmarks.md, fifth
/// round).
struct Lines<'a>(tagwatch_core::Fields<'a>, tagwatch_core::Fields<'a>);

impl<'a> Lines<'a> {
    fn new(a: &'a str, b: &'a str) -> Self {
        Lines(
            tagwatch_core::fields(a, b'\n'),
            tagwatch_core::fields(b, b'\n'),
        )
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        Some((self.0.next()?, self.1.next()?))
    }
}

/// Cookie names whose classification is kept: a page has a few dozen; past
/// this, a new name is classified on each snapshot again (only slower).
#[cfg(not(feature = "parsers"))]
const MAX_COOKIE_NAMES: usize = 512;

/// The cookie names of a page view's snapshots: whether the catalog knows
/// each, and the CMP whose consent cookie it is, each looked up once.
#[cfg(not(feature = "parsers"))]
#[derive(Default)]
struct CookieNames(Vec<(String, bool, Option<&'static str>)>);

#[cfg(not(feature = "parsers"))]
impl CookieNames {
    /// A snapshot read in one pass over its pairs, each name looked up in
    /// the catalog and the consent cookies once per page view: the names the
    /// engine judges (live, a name the catalog knows), for
    /// `Engine::cookie_names` (not joined into a header it would split
    /// again: 31 bytes of the wasm's gzip, thirteenth round); its
    /// consent cookies as [`prestart`] keeps them; whether it has a CMP's
    /// consent cookie that the cookie reader piece reads (`cmp::in_cookies`).
    /// (A busy page's start replays a few dozen snapshots; each pass over a
    /// header's pairs decodes every character.)
    fn read<'h>(&mut self, header: &'h str) -> (Vec<&'h str>, prestart::Consent, bool) {
        let mut out = Vec::new();
        let mut consent = Vec::new();
        let mut cmp = false;
        for (name, value) in tagwatch_core::cookie::pairs(header) {
            let (known, of) = match self.0.iter().find(|(n, ..)| n == name) {
                Some(&(_, known, of)) => (known, of),
                None => {
                    let known = catalog::classify_cookie(name).is_some();
                    let of = tagwatch_core::cmp::consent_cookie(name);
                    if self.0.len() < MAX_COOKIE_NAMES {
                        self.0.push((name.into(), known, of));
                    }
                    (known, of)
                }
            };
            if let Some(of) = of {
                cmp |= tagwatch_core::cmp::read_from_cookies(of);
                consent.push((of, cat(&[name, "=", value])));
            }
            if known && !name.is_empty() && !value.is_empty() {
                out.push(name);
            }
        }
        (out, consent, cmp)
    }
}

impl Shell {
    /// A page view with nothing yet, as a constant: [`Monitor::reset`]
    /// starts from it (a copy of its bytes, not a store for each field,
    /// docs/benchmarks.md, eleventh round, second pass); no host (a
    /// `JsValue` cannot be in a constant: `None` until `reset` sets it).
    const EMPTY: Shell = Shell {
        host: None,
        engine: Engine::EMPTY,
        site: String::new(),
        collector: String::new(),
        page_view: String::new(),
        page_url: String::new(),
        user_agent: String::new(),
        release: String::new(),
        gpc: false,
        loader: 0,
        consent_calls: 0,
        prestart: Prestart::EMPTY,
        started: false,
        sweep: Sweep::EMPTY,
        last_cookie: None,
        #[cfg(not(feature = "parsers"))]
        cookie_names: CookieNames(Vec::new()),
        #[cfg(not(feature = "parsers"))]
        pieces: pieces::Pieces::EMPTY,
    };

    fn request(&mut self, r: Request<'_>) {
        self.engine.request(r);
        self.sweep.activity = true;
    }

    /// `(restored, time)` of a consent state: a state found at the start
    /// (`at` -1) is dated by the prestart evidence; else its own time.
    fn dated(&self, source: &str, at: f64) -> (bool, u64) {
        if at > BEFORE {
            return (false, ms(at));
        }
        let t = self.prestart.dated(source);
        (t == 0, t)
    }
}

/// A number as an `Int32Array` element holds it (ECMAScript's ToInt32:
/// truncated towards zero, modulo 2^32; NaN and the infinities 0). The id
/// lists cross as `Float64Array`s, as the entries' numbers do, and are read
/// as the `Int32Array`s they crossed as before: one typed-array conversion
/// in the module and in the glue, not two. `x` less the multiple of 2^32
/// its quotient's integer part gives is exact (below 2^84 that part fits an
/// `i64`; from 2^84 on every double is a multiple of 2^32), so truncating
/// the rest and wrapping it to 32 bits is ToInt32 (no `trunc` or `%` in
/// `core`).
pub(crate) fn int32(x: f64) -> i32 {
    const TWO_32: f64 = 4_294_967_296.0;
    const TWO_84: f64 = 19_342_813_113_834_066_795_298_816.0;
    // Also false for NaN.
    if !(x > -TWO_84 && x < TWO_84) {
        return 0;
    }
    let whole = (x / TWO_32) as i64 as f64;
    (x - whole * TWO_32) as i64 as i32
}

/// The parts one after another. Not `concat()`: its length-overflow
/// `expect` keeps `core::fmt`'s padding code in the module.
pub(crate) fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().fold(0, |n, p| n.saturating_add(p.len())));
    for p in parts {
        out.push_str(p);
    }
    out
}

/// 16 hex chars, random per page view. Pushed as `&str`s: a `String::push`
/// here kept a second copy of it in the module beside the core's.
fn page_view_id() -> String {
    const HEX: &str = "0123456789abcdef";
    let mut out = String::with_capacity(16);
    for _ in 0..16 {
        let n = (host::random() * 16.0) as usize;
        out.push_str(HEX.get(n..=n).unwrap_or("0"));
    }
    out
}

// dlmalloc is about 8 KB of the module; the page view's heap is small and
// single-threaded, so a free-list allocator is enough.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
#[allow(unsafe_code)] // the crate's documented single-threaded constructor; wasm32 here has no threads
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

// A panic (none is reachable: no unwrap, no indexing, checked arithmetic)
// traps instead of pulling in std's formatting and unwinding: the shipped
// build (`trap`); tests and lints link std and its handler.
#[cfg(all(target_arch = "wasm32", feature = "trap"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(all(test, not(feature = "parsers")))]
mod tests {
    use super::*;
    use alloc::vec;

    /// `int32` is ECMAScript's ToInt32 (what an `Int32Array` element
    /// holds), held to its definition (truncate, modulo 2^32) by std's
    /// exact `trunc` and `rem_euclid`, on the edges and random doubles.
    #[test]
    fn int32_is_to_int32() {
        let spec = |x: f64| -> i32 {
            if !x.is_finite() {
                return 0;
            }
            x.trunc().rem_euclid(4_294_967_296.0) as u32 as i32
        };
        let two = |e: i32| 2f64.powi(e);
        let mut cases = vec![
            0.0,
            -0.0,
            1.0,
            1.5,
            -1.5,
            0.999,
            -0.999,
            5e-324,
            -5e-324,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            65535.0,
            65536.0,
            65535.9,
            two(31),
            -two(31),
            two(31) - 1.0,
            two(32),
            two(32) + 5.0,
            two(32) - 0.5,
            -two(32) - 5.0,
            two(52) + 1.0,
            two(53) + 2.0,
            two(63),
            two(63) + two(11),
            -two(63) - two(11),
            two(84) + two(32),
            two(84) + two(31),
            1e300,
            755.0,
            1e3,
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(f64::from_bits(x));
            // Doubles of every magnitude up to 2^90, both signs.
            let m = (x >> 11) as f64 / two(53);
            cases.push(if x & 1 == 1 { -m } else { m } * two((x >> 3 & 0x7f) as i32 - 30));
        }
        for c in cases {
            assert_eq!(int32(c), spec(c), "{c:e} ({:#x})", c.to_bits());
        }
    }

    /// The one pass reads a snapshot as the three passes before it did:
    /// the live vendor cookies (`vendor_cookies`), the consent cookies
    /// (`Prestart::cookies`) and whether the cookie reader is wanted
    /// (`cmp::in_cookies`), for headers with vendor, consent, TCF and
    /// empty-valued cookies, names seen before and not, in random orders.
    #[test]
    fn one_pass_reads_as_the_three_did() {
        let parts = [
            "_ga=GA1.1",
            "_ga=",
            "OptanonConsent=groups=C0003%3A1",
            "euconsent-v2=CP",
            "cmplz_marketing=deny",
            "theme=dark",
            "flag",
            "=x",
            "_hjSessionUser_3000001=eyJ",
            "cookieyes-consent=yes",
            "a=b=c",
            " _clck = 1 ",
            "intercom-session-k9x2m4qa=",
            "intercom-id-k9x2m4qa=abc",
            "",
            ";",
        ];
        let mut names = CookieNames::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let header: String = (0..n % 12)
                .map(|k| parts[((x >> (k * 5 % 60)) as usize + k) % parts.len()])
                .collect::<Vec<_>>()
                .join("; ");
            // The names `Engine::cookies` would judge of the whole header.
            let vendor: Vec<&str> = tagwatch_core::cookie::live_names(&header)
                .filter(|name| catalog::classify_cookie(name).is_some())
                .collect();
            let want = (
                vendor,
                prestart::consent_cookies(&header),
                tagwatch_core::cmp::in_cookies(&header),
            );
            assert_eq!(names.read(&header), want, "{header:?}");
        }
        assert_eq!(
            names.read("_ga=GA1.1; OptanonConsent=x; euconsent-v2=CP").1,
            vec![
                ("onetrust", "OptanonConsent=x".into()),
                ("tcf", "euconsent-v2=CP".into())
            ]
        );
    }
}
