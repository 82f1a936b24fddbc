//! The core as the page's wasm calls it, and nothing else: a cdylib that
//! makes the shell's calls (`src/lib.rs`, `src/observe.rs`) through plain
//! wasm exports, so the core's share of the shipped wasm can be measured
//! on its own (size with `twiggy` and gzip, first-use time under Node).
//! `bench/core-wasm/measure.sh` builds it with the shipped profile and runs
//! `bench/core-wasm/run.mjs`; docs/benchmarks.md ("issue 11: core") has
//! the numbers.
//!
//! Built for wasm32 it is `no_std` with a panic handler that traps, as the
//! shell is: what the core pulls in of `core::fmt` then shows. Natively it
//! is an ordinary std library (the workspace's tests and lints build it).
//!
//! Without feature `parsers` it is the page's main module: the CMP cookie
//! readers and the GPP decoder are on-demand pieces (`pieces/`), whose
//! answers the caller passes in (`cmp`, `sweep`, `gpp`); `run.mjs` does it
//! with the real pieces, and checks that the answers match the module with
//! `parsers`.
//!
//! ABI: strings are written by the caller into the buffer at [`input`],
//! one after another; each export takes their byte lengths. Exports that
//! answer text write it to the buffer at [`output`] and return its length.
#![cfg_attr(all(target_arch = "wasm32", feature = "trap"), no_std)]
// The buffers are two statics shared with the caller: one thread, one
// module instance, a measuring tool (never shipped).
#![allow(unsafe_code, static_mut_refs, clippy::missing_safety_doc)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use tagwatch_core::catalog::{self, vendors};
use tagwatch_core::cmp::CmpConsent;
use tagwatch_core::consent::{Basis, Categories, Category, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::{self, PageView};
use tagwatch_core::url;

#[cfg(all(target_arch = "wasm32", feature = "trap"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// Input buffer size: a page's `document.cookie` is at most a few KB.
const INPUT: usize = 1 << 16;

static mut IN: [u8; INPUT] = [0; INPUT];
static mut OUT: String = String::new();
static mut STATE: Option<State> = None;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "host")]
extern "C" {
    /// Whether the page has the global or element named by the text at
    /// `ptr` (`kind` 0 global, 1 element id, 2 loader script id).
    fn has(kind: u32, ptr: *const u8, len: usize) -> u32;
    /// ms since navigation start.
    fn now() -> f64;
}

#[cfg(not(target_arch = "wasm32"))]
unsafe fn has(_: u32, _: *const u8, _: usize) -> u32 {
    0
}

#[cfg(not(target_arch = "wasm32"))]
unsafe fn now() -> f64 {
    0.0
}

struct State {
    engine: Engine,
    page_url: String,
    user_agent: String,
    loaders_seen: Vec<&'static str>,
    identity_seen: Vec<&'static str>,
}

fn state() -> Option<&'static mut State> {
    unsafe { STATE.as_mut() }
}

fn clock() -> u64 {
    tagwatch_core::engine::ms(unsafe { now() })
}

/// The strings the caller wrote, by length.
fn strs<const N: usize>(lens: [usize; N]) -> [&'static str; N] {
    let mut at = 0;
    lens.map(|len| {
        let end = (at + len).min(INPUT);
        // The caller writes UTF-8 (TextEncoder), as wasm-bindgen's glue does.
        let s = unsafe { core::str::from_utf8_unchecked(IN.get(at..end).unwrap_or(&[])) };
        at = end;
        s
    })
}

/// `parts.concat()` without its overflow `expect`, which pulls `&str`
/// formatting (`Formatter::pad`) into the wasm.
fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    parts.iter().for_each(|p| out.push_str(p));
    out
}

fn answer(s: String) -> usize {
    let len = s.len();
    unsafe { OUT = s };
    len
}

#[no_mangle]
pub extern "C" fn input() -> *mut u8 {
    unsafe { IN.as_mut_ptr() }
}

#[no_mangle]
pub extern "C" fn output() -> *const u8 {
    unsafe { OUT.as_ptr() }
}

/// `new Monitor(site, collector, send)` on page `href`.
#[no_mangle]
pub extern "C" fn monitor(href: usize, collector: usize, ua: usize) {
    let [href, collector, ua] = strs([href, collector, ua]);
    let mut engine = Engine::new(Policy::default(), href);
    if let Some(parts) = url::parse(collector) {
        engine.ignore_host(&parts.host);
    }
    let state = State {
        engine,
        page_url: url::page_url(href),
        user_agent: ua.into(),
        loaders_seen: Vec::new(),
        identity_seen: Vec::new(),
    };
    unsafe { STATE = Some(state) };
}

/// `Monitor::policy`: the policy's JSON text.
#[no_mangle]
pub extern "C" fn policy(json: usize) {
    let [json] = strs([json]);
    if let Some(s) = state() {
        *s.engine.policy_mut() = Policy::from_json(json);
    }
}

/// `Monitor::consent`: 1 granted, 0 refused, else unchanged.
#[no_mangle]
pub extern "C" fn consent(
    necessary: i32,
    functional: i32,
    analytics: i32,
    marketing: i32,
    at: f64,
) {
    let Some(s) = state() else { return };
    let mut update = Categories::default();
    for (c, v) in Category::ALL
        .into_iter()
        .zip([necessary, functional, analytics, marketing])
    {
        match v {
            1 => update.set(c, Some(true)),
            0 => update.set(c, Some(false)),
            _ => {}
        }
    }
    s.engine
        .consent(update, Source::Api, tagwatch_core::engine::ms(at));
}

/// Whether the CMP cookie readers and the GPP decoder are in this module.
#[no_mangle]
pub extern "C" fn parsers() -> u32 {
    u32::from(cfg!(feature = "parsers"))
}

/// The policy's CMP names as the cookie reader piece takes them.
#[no_mangle]
pub extern "C" fn consent_names() -> usize {
    state().map_or(0, |s| answer(s.engine.policy().consent_names.to_text()))
}

/// A `document.cookie` snapshot; `cmp` the cookie reader piece's answer
/// for it (ignored with `parsers`: the engine reads it).
fn snapshot(s: &mut State, header: &str, cmp: u32, now: u64) {
    if !cfg!(feature = "parsers") {
        s.engine.cmp_cookie_consent(CmpConsent::from_bits(cmp), now);
    }
    s.engine.cookies(header, now);
}

/// `Monitor::cmp`: a CMP's live state, then its cookies re-read.
#[no_mangle]
pub extern "C" fn cmp(
    cmp: usize,
    choices: usize,
    decided: u32,
    at: f64,
    cookies: usize,
    cmp_bits: u32,
) {
    let [cmp, choices, header] = strs([cmp, choices, cookies]);
    let Some(s) = state() else { return };
    let choices: Vec<(&str, bool)> = choices
        .split(',')
        .filter_map(|c| c.rsplit_once(':'))
        .map(|(n, f)| (n, f == "1"))
        .collect();
    s.engine.cmp_state(
        cmp,
        &choices,
        &[],
        if decided == 1 {
            Basis::Explicit
        } else {
            Basis::None
        },
        false,
        tagwatch_core::engine::ms(at),
    );
    snapshot(s, header, cmp_bits, clock());
}

/// `Monitor::tcf`.
#[no_mangle]
pub extern "C" fn tcf(applies: i32, status: usize, purposes: usize, vendors: usize, at: f64) {
    let [status, purposes, vendors] = strs([status, purposes, vendors]);
    let applies = match applies {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    };
    let purposes: Vec<u16> = (1..)
        .zip(purposes.bytes())
        .filter(|(_, b)| *b == b'1')
        .map(|(id, _)| id)
        .collect();
    let vendors: Vec<u16> = vendors
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect();
    if let Some(s) = state() {
        s.engine.tcf(
            applies,
            status,
            &purposes,
            &vendors,
            tagwatch_core::engine::ms(at),
        );
    }
}

/// `Monitor::gpp`: `applicable` one section id a line; `categories` the
/// GPP piece's answer (ignored with `parsers`: the engine decodes).
#[no_mangle]
pub extern "C" fn gpp(gpp: usize, applicable: usize, at: f64, categories: u32) {
    let [gpp, applicable] = strs([gpp, applicable]);
    let Some(s) = state() else { return };
    let at = tagwatch_core::engine::ms(at);
    #[cfg(feature = "parsers")]
    {
        let _ = categories;
        let ids: Vec<i32> = applicable.lines().filter_map(|l| l.parse().ok()).collect();
        s.engine.gpp(gpp, &ids, false, at);
    }
    #[cfg(not(feature = "parsers"))]
    {
        let _ = (gpp, applicable);
        s.engine
            .gpp_categories(Categories::from_bits(categories as u8), false, at);
    }
}

/// `Monitor::consent_mode`: `key<TAB>value` a line.
#[no_mangle]
pub extern "C" fn consent_mode(command: usize, params: usize, at: f64) {
    let [command, params] = strs([command, params]);
    let pairs: Vec<(&str, &str)> = params.lines().filter_map(|l| l.split_once('\t')).collect();
    if let Some(s) = state() {
        s.engine
            .consent_mode(command, &pairs, tagwatch_core::engine::ms(at));
    }
}

/// `Monitor::api_call` with identity fields but no proof.
#[no_mangle]
pub extern "C" fn api_call(vendor: usize, verb: usize) {
    let [vendor, verb] = strs([vendor, verb]);
    let Some(v) = catalog::vendor(vendor) else {
        return;
    };
    let Some(rule) = v.identity() else { return };
    let source = join(&[rule.api, "('", verb, "')"]);
    if let Some(s) = state() {
        if !s.identity_seen.contains(&v.id) {
            s.identity_seen.push(v.id);
            s.engine.identity_unverified(v, &source, clock());
        }
    }
}

/// A Resource Timing entry (the observer's callback, `judge_entry`).
#[no_mangle]
pub extern "C" fn request(
    url: usize,
    initiator: usize,
    frame: usize,
    start: f64,
    transfer: f64,
    encoded: f64,
    duration: f64,
) {
    let [url, initiator, frame] = strs([url, initiator, frame]);
    if let Some(s) = state() {
        s.engine.request(Request {
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

/// The tick: every vendor's globals, markers, loaders and identity
/// settings probed (through the host), then the cookies (`cmp` as for
/// [`cmp`]).
#[no_mangle]
pub extern "C" fn sweep(cookies: usize, cmp: u32) {
    let [header] = strs([cookies]);
    let Some(s) = state() else { return };
    let now = clock();
    let probe = |kind: u32, text: &str| unsafe { has(kind, text.as_ptr(), text.len()) } == 1;
    for vendor in vendors() {
        for path in vendor.globals().iter() {
            if probe(0, path) {
                s.engine.presence(vendor, false, path.into(), now);
            }
        }
        for id in vendor.dom_ids().iter() {
            if probe(1, id) {
                s.engine.presence(vendor, true, join(&["#", id]), now);
            }
        }
        for id in vendor.loader_script_ids().iter() {
            if s.loaders_seen.contains(&id) || !probe(2, id) {
                continue;
            }
            s.loaders_seen.push(id);
            let src = "https://shop.example/proxy/loader.js";
            let on_vendor_host =
                url::parse(src).is_some_and(|p| catalog::vendor_for_host(&p.host).is_some());
            if !on_vendor_host {
                s.engine.loader_request(
                    vendor,
                    Request {
                        url: src,
                        start: 10.0,
                        initiator: "script",
                        frame: "top",
                        ..Request::default()
                    },
                );
            }
        }
        if let Some(rule) = vendor.identity() {
            if probe(0, rule.settings)
                && probe(0, rule.api)
                && rule.verbs.iter().all(|v| !v.is_empty())
            {
                let _ = rule.ids.len() + rule.proofs.len();
            }
        }
    }
    snapshot(s, header, cmp, now);
}

/// `cookieStore` expiry of one cookie.
#[no_mangle]
pub extern "C" fn cookie_expiry(name: usize, expires: f64, now_epoch: f64) {
    let [name] = strs([name]);
    if let Some(s) = state() {
        s.engine.cookie_expiry(name, expires, now_epoch, clock());
    }
}

/// `send_pending`: the batch not sent yet (empty: nothing new).
#[no_mangle]
pub extern "C" fn take_batch() -> usize {
    let Some(s) = state() else { return 0 };
    let view = PageView {
        site: "tw_site",
        id: "0123456789abcdef",
        url: &s.page_url,
        user_agent: &s.user_agent,
        release: "",
    };
    answer(s.engine.take_batch(&view, clock()).unwrap_or_default())
}

/// `Monitor::findings`: every finding and the inventory.
#[no_mangle]
pub extern "C" fn findings() -> usize {
    let Some(s) = state() else { return 0 };
    let view = PageView {
        site: "tw_site",
        id: "0123456789abcdef",
        url: &s.page_url,
        user_agent: &s.user_agent,
        release: "",
    };
    answer(report::batch(
        &view,
        s.engine.findings().iter(),
        Some(s.engine.inventory()),
        clock(),
    ))
}

/// `Monitor::consent_now`: `1`/`0`/`-` per category, then the source.
#[no_mangle]
pub extern "C" fn consent_now() -> usize {
    let Some(s) = state() else { return 0 };
    let state = s.engine.consent_at(clock());
    let c = |c| match state.categories.get(c) {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    };
    answer(join(&[
        c(Category::Necessary),
        c(Category::Functional),
        c(Category::Analytics),
        c(Category::Marketing),
        state.source.as_str(),
    ]))
}

/// The catalog's first use: one host looked up (the first entry a page
/// judges does this). Returns the vendor's index + 1, 0 for none.
#[no_mangle]
pub extern "C" fn first_lookup(host: usize) -> usize {
    let [host] = strs([host]);
    catalog::vendor_for_host(host)
        .and_then(|v| vendors().iter().position(|x| x.id == v.id))
        .map_or(0, |i| i + 1)
}
