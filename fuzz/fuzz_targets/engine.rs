//! The engine fed arbitrary observations. Input: the page URL on the first
//! line, then one observation a line, its first byte the kind, fields split
//! by TAB:
//!
//! - `R url initiator start frame transfer`: a Resource Timing entry
//! - `L vendor url start`: a loader request of a catalog vendor
//! - `C header now`: a `document.cookie` snapshot
//! - `M header at`: CMP cookies (`cmp::from_cookies`) as a consent update
//! - `K cats at`: a consent update; `cats` is 4 of `1`/`0`/other (unknown)
//! - `S cmp choices basis restored now`: a live CMP state (`cmp_state`, the
//!   choices as category and as service names;
//!   choices `name:1`/`name:0` split by `,`; basis `1` a choice, `2` implied, other undecided)
//! - `F applies status purposes vendors now`: a TCF event (`tcf`; purpose
//!   and vendor ids comma-separated)
//! - `Q gpp applicable now`: a GPP event (`gpp`; applicable comma-separated)
//! - `D command params now`: a Consent Mode command (`consent_mode`;
//!   params `k=v` pairs split by `&`)
//! - `P json`: a policy (`Policy::from_json`)
//! - `I host`: ignore a host; `G0`|`G1`: GPC; `T now`: tick
//! - `E name expires now_epoch now`: a cookie lifetime
//! - `B now`: take a batch (it must be a JSON array)
//!
//! Times other than a request's start never go back (the shell's clock).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::consent::{Basis, Categories, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::PageView;
use tagwatch_core::{catalog, cmp, url};

fn f64_of(s: Option<&str>) -> f64 {
    s.and_then(|s| s.trim().parse().ok()).unwrap_or(0.0)
}

fn u64_of(s: Option<&str>) -> u64 {
    s.and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn batch(engine: &mut Engine, view: &PageView<'_>, now: u64) {
    if let Some(body) = engine.take_batch(view, now) {
        let value: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("take_batch gave invalid JSON ({e}): {body}"));
        assert!(value.is_array(), "a batch is a JSON array: {body}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let href = lines.next().unwrap_or("");
    let page = url::page_url(href);
    let view = PageView { site: "site_fuzz", id: "0123456789abcdef", url: &page, user_agent: "fuzz", release: "" };
    let mut engine = Engine::new(Policy::default(), href);
    let mut clock = 0u64;

    for line in lines.take(256) {
        let Some(kind) = line.chars().next() else { continue };
        let rest = &line[kind.len_utf8()..];
        let mut f = rest.split('\t');
        match kind {
            'R' => {
                let url = f.next().unwrap_or("");
                let initiator = f.next().unwrap_or("script");
                let start = f64_of(f.next());
                let frame = f.next().unwrap_or("top");
                let transfer = f64_of(f.next());
                engine.request(Request { url, initiator, start, frame, transfer, encoded: transfer, duration: start });
            }
            'L' => {
                let id = f.next().unwrap_or("");
                let url = f.next().unwrap_or("");
                let start = f64_of(f.next());
                if let Some(vendor) = catalog::vendor(id) {
                    engine.loader_request(vendor, Request { url, start, initiator: "script", frame: "top", ..Default::default() });
                }
            }
            'C' => {
                let header = f.next().unwrap_or("");
                clock = clock.max(u64_of(f.next()));
                engine.cookies(header, clock);
            }
            'M' => {
                let header = f.next().unwrap_or("");
                clock = clock.max(u64_of(f.next()));
                if let Some(c) = cmp::from_cookies(header) {
                    engine.consent(c.categories, Source::Api, clock);
                }
            }
            'K' => {
                let mut cats = Categories::default();
                for (slot, b) in cats.0.iter_mut().zip(f.next().unwrap_or("").bytes()) {
                    *slot = match b {
                        b'1' => Some(true),
                        b'0' => Some(false),
                        _ => None,
                    };
                }
                clock = clock.max(u64_of(f.next()));
                engine.consent(cats, Source::Api, clock);
            }
            'S' => {
                let (cmp, choices) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
                let basis = match f.next() {
                    Some("1") => Basis::Explicit,
                    Some("2") => Basis::Implied,
                    _ => Basis::None,
                };
                let restored = f.next() == Some("1");
                clock = clock.max(u64_of(f.next()));
                let choices: Vec<(&str, bool)> =
                    choices.split(',').filter_map(|c| c.rsplit_once(':')).map(|(n, v)| (n, v == "1")).collect();
                engine.cmp_state(cmp, &choices, &choices, basis, restored, clock);
            }
            'F' => {
                let applies = match f.next() {
                    Some("1") => Some(true),
                    Some("0") => Some(false),
                    _ => None,
                };
                let (status, purposes, vendors) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
                clock = clock.max(u64_of(f.next()));
                let ids = |s: &str| -> Vec<u16> { s.split(',').filter_map(|n| n.trim().parse().ok()).collect() };
                engine.tcf(applies, status, &ids(purposes), &ids(vendors), clock);
            }
            'Q' => {
                let gpp = f.next().unwrap_or("");
                let applicable: Vec<i32> = f.next().unwrap_or("").split(',').filter_map(|n| n.parse().ok()).collect();
                clock = clock.max(u64_of(f.next()));
                engine.gpp(gpp, &applicable, false, clock);
            }
            'D' => {
                let command = f.next().unwrap_or("");
                let params: Vec<(&str, &str)> = f.next().unwrap_or("").split('&').filter_map(|p| p.split_once('=')).collect();
                clock = clock.max(u64_of(f.next()));
                engine.consent_mode(command, &params, clock);
            }
            'P' => *engine.policy_mut() = Policy::from_json(rest),
            'I' => engine.ignore_host(rest),
            'G' => engine.set_gpc(rest == "1"),
            'T' => {
                clock = clock.max(u64_of(f.next()));
                engine.tick(clock);
            }
            'E' => {
                let name = f.next().unwrap_or("");
                let expires = f64_of(f.next());
                let now_epoch = f64_of(f.next());
                clock = clock.max(u64_of(f.next()));
                engine.cookie_expiry(name, expires, now_epoch, clock);
            }
            'B' => {
                clock = clock.max(u64_of(f.next()));
                batch(&mut engine, &view, clock);
            }
            _ => {}
        }
    }
    let _ = engine.findings();
    let _ = engine.inventory();
    batch(&mut engine, &view, clock);
});
