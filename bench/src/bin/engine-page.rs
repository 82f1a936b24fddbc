//! The engine's work for a page's Resource Timing entries, as a program to
//! count instructions of (`tools/bench-engine.mjs` runs it under valgrind's
//! callgrind, twice, and divides the difference): `VIEWS` page views, each
//! a new engine given the page's consent and then every entry of the file,
//! as the monitor's `entries()` hands them over. A count, not a time, so
//! the machine's load does not move it.
//!
//!   engine-page ENTRIES VIEWS
//!
//! ENTRIES: one entry a line, `startTime<TAB>initiatorType<TAB>URL` (the
//! tool writes the busy page's, tests/fixtures/fake-intercom/busy.mjs).
//! The consent is the busy page's (`tagwatch('consent', …)` at its start):
//! analytics granted, functional and marketing refused. Prints the number
//! of findings of the last page view (so the work is not optimised away).

use std::hint::black_box;
use std::io::Read;
use tagwatch_core::consent::{Basis, Categories, Source, Vendors};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;

/// The page the entries come from, as the busy page's URL.
const PAGE: &str = "https://shop.example/running-shoes";

/// Largest entries file read (a page of 300 entries is about 20 KB).
const MAX_FILE: u64 = 16 << 20;

/// When the page's consent call runs, ms after navigation start (before
/// any entry of the file, as on the busy page).
const CONSENT_AT: u64 = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, views] = args.as_slice() else {
        eprintln!("usage: engine-page ENTRIES VIEWS");
        std::process::exit(2);
    };
    let mut text = String::new();
    #[allow(clippy::disallowed_methods)] // Bounded: take(MAX_FILE).
    let read = std::fs::File::open(file).and_then(|f| f.take(MAX_FILE).read_to_string(&mut text));
    if let Err(e) = read {
        eprintln!("engine-page: cannot read {file}: {e}");
        std::process::exit(2);
    }
    let views: usize = views.parse().unwrap_or_else(|_| {
        eprintln!("engine-page: VIEWS must be a number, got {views}");
        std::process::exit(2);
    });
    let entries: Vec<(f64, &str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((f.next()?.parse().ok()?, f.next()?, f.next()?))
        })
        .collect();
    let mut findings = 0;
    for _ in 0..views {
        findings = page_view(black_box(&entries));
    }
    println!("{findings}");
}

#[inline(never)]
fn page_view(entries: &[(f64, &str, &str)]) -> usize {
    let mut e = Engine::new(Policy::default(), PAGE);
    e.ignore_host("collector.tagwatch.example");
    e.consent_with(
        Categories([Some(true), Some(false), Some(true), Some(false)]),
        Vendors::default(),
        Source::Api,
        Basis::Explicit,
        CONSENT_AT,
    );
    for &(start, initiator, url) in entries {
        e.request(Request {
            url,
            start,
            initiator,
            frame: "top",
            transfer: 3000.0,
            encoded: 2700.0,
            duration: 40.0,
        });
    }
    e.findings().len()
}
