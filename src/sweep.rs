//! What is a state rather than an event: the vendors' page globals, DOM
//! markers, first-party loader scripts and identity settings, read through
//! the host on sweeps. A sweep comes SWEEP_MIN_MS after anything new (an
//! entry of a vendor, a cookie change, a consent signal, a marker found)
//! and backs off to SWEEP_MAX_MS while nothing changes. A marker once found
//! is a state the engine holds and is not looked for again; a vendor's
//! identity is judged once. The snippet's shell (www/observe.js) calls a
//! sweep only when something can have changed (an event) or its own
//! check of the host's last answer finds a change; with neither it does
//! not enter the module and backs off further (its FALLBACK_MS).

use crate::host::{truthy_at, Host};
use alloc::string::String;
use alloc::vec::Vec;
use tagwatch_core::catalog::{self, vendors, Vendor};
use tagwatch_core::engine::{Engine, Request};
use wasm_bindgen::JsValue;

/// Delay of the first sweep after something new, in ms: a tag's globals
/// and markers appear soon after its script's entry.
pub(crate) const SWEEP_MIN_MS: u32 = 1000;
/// Longest delay between sweeps, in ms: what a quiet page costs (a sweep
/// is a few dozen property reads).
pub(crate) const SWEEP_MAX_MS: u32 = 30_000;

/// What the sweeps found and when the next one is due.
pub(crate) struct Sweep {
    /// Globals, DOM ids and loader script ids found (their catalog strings).
    found: Vec<&'static str>,
    /// Vendors whose identity was judged.
    identified: Vec<&'static str>,
    /// The delay the last sweep asked for.
    delay: u32,
    /// Something new since the last sweep.
    pub(crate) activity: bool,
}

impl Sweep {
    /// No sweep yet: the first is due at once (`activity`), then after
    /// [`SWEEP_MIN_MS`].
    pub(crate) const EMPTY: Sweep = Sweep {
        found: Vec::new(),
        identified: Vec::new(),
        delay: SWEEP_MIN_MS,
        activity: true,
    };

    /// One pass over what is not found yet; returns the delay until the next.
    pub(crate) fn run(&mut self, engine: &mut Engine, host: &Host, now: u64) -> u32 {
        let found = self.found.len();
        // Everything not found yet, asked of the host in one call. Plain
        // loops, not `zip` / `any` / `all` / `enumerate` / `map` adapters
        // (instances the module carried for this alone).
        let (mut globals, mut ids, mut scripts) = (Vec::new(), Vec::new(), Vec::new());
        for vendor in vendors() {
            self.ask(vendor, vendor.globals(), &mut globals);
            self.ask(vendor, vendor.dom_ids(), &mut ids);
            self.ask(vendor, vendor.loader_script_ids(), &mut scripts);
        }
        let answer = if globals.is_empty() && ids.is_empty() && scripts.is_empty() {
            String::new()
        } else {
            let lines = |l: &Vec<(&'static Vendor, &'static str)>| {
                let mut out = String::new();
                let mut first = true;
                for (_, k) in l {
                    if !first {
                        out.push_str("\n");
                    }
                    first = false;
                    out.push_str(k);
                }
                out
            };
            host.present(&lines(&globals), &lines(&ids), &lines(&scripts))
        };
        let mut flags = answer.bytes();
        for &(vendor, path) in &globals {
            if flags.next() == Some(b'1') {
                self.found.push(path);
                engine.presence(vendor, false, path.into(), now);
            }
        }
        for &(vendor, id) in &ids {
            if flags.next() == Some(b'1') {
                self.found.push(id);
                engine.presence(vendor, true, crate::cat(&["#", id]), now);
            }
        }
        for &(vendor, id) in &scripts {
            if flags.next() == Some(b'1') {
                self.loader(engine, host, vendor, id);
            }
        }
        for vendor in vendors() {
            self.settings(engine, host, vendor, now);
        }
        let new = core::mem::take(&mut self.activity) || self.found.len() != found;
        self.delay = if new {
            SWEEP_MIN_MS
        } else {
            self.delay.saturating_mul(2).min(SWEEP_MAX_MS)
        };
        self.delay
    }

    /// A vendor's loader script `<script id>` with an entry for its `src`.
    /// Out of line: inlined into the sweep (and the sweep into
    /// `Monitor::tick`), its host reads and URL parse made that one
    /// function 29 bytes larger in the wasm's gzip, 22 in brotli
    /// (docs/benchmarks.md, fourteenth round).
    #[inline(never)]
    fn loader(
        &mut self,
        engine: &mut Engine,
        host: &Host,
        vendor: &'static Vendor,
        id: &'static str,
    ) {
        let Some((url, start, initiator)) = host.script_entry(id) else {
            return;
        };
        self.found.push(id);
        // A loader on the vendor's own host is already judged as an entry.
        let on_vendor_host = tagwatch_core::url::parse(&url)
            .is_some_and(|p| catalog::vendor_for_host(&p.host).is_some());
        if !on_vendor_host {
            engine.loader_request(
                vendor,
                Request {
                    url: &url,
                    start,
                    initiator: &initiator,
                    frame: "top",
                    ..Request::default()
                },
            );
        }
    }

    /// A running vendor's identity settings, judged once.
    fn settings(&mut self, engine: &mut Engine, host: &Host, vendor: &'static Vendor, now: u64) {
        if let Some(rule) = vendor.identity() {
            let running = vendor
                .globals()
                .first()
                .is_some_and(|g| self.found.contains(&g));
            if running && !self.identified.contains(&vendor.id) {
                if let Some(settings) = host.object(rule.settings) {
                    self.identity(engine, vendor, &settings, rule.settings, now);
                }
            }
        }
    }

    /// Adds to `asked` each item of `list` not found yet, once, for the
    /// first vendor that lists it (as when each was asked in turn and
    /// found by the first).
    fn ask(
        &self,
        vendor: &'static Vendor,
        list: catalog::Strs,
        asked: &mut Vec<(&'static Vendor, &'static str)>,
    ) {
        'items: for k in list.iter() {
            if self.found.contains(&k) {
                continue;
            }
            for (_, a) in asked.iter() {
                if *a == k {
                    continue 'items;
                }
            }
            asked.push((vendor, k));
        }
    }

    /// Judges one settings object or API call argument: an identified user
    /// without the proof of server-side verification. Only field presence
    /// is read, never a value.
    pub(crate) fn identity(
        &mut self,
        engine: &mut Engine,
        vendor: &'static Vendor,
        arg: &JsValue,
        source: &str,
        at: u64,
    ) {
        let Some(rule) = vendor.identity() else {
            return;
        };
        if !arg.is_object() || self.identified.contains(&vendor.id) {
            return;
        }
        if any_truthy(arg, rule.ids) {
            self.identified.push(vendor.id);
            if !any_truthy(arg, rule.proofs) {
                engine.identity_unverified(vendor, source, at);
            }
        }
    }
}

/// Whether one of `paths` is truthy in `arg`. A loop, not
/// `iter().any()`: with `Strs::contains` a loop too, the module has no
/// `Map::try_fold` instance left (70 bytes of gzip; either alone: none).
fn any_truthy(arg: &JsValue, paths: catalog::Strs) -> bool {
    for k in paths.iter() {
        if truthy_at(arg, k) {
            return true;
        }
    }
    false
}
